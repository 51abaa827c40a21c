"""`tcpscope demo`: the bundled capture of the classic experiment, listed and summarised.

The capture (data/demo.pcap, see data/README.md) is a server on 127.0.0.1:5000 that
says `Welcome!` and answers each name with `Hello, <name>!`, and a client that sends
two names and `exit`. The demo prints the tcpdump-compatible listing, then one
paragraph per connection saying what the packets show.
"""
from __future__ import annotations

import textwrap
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO

from tcpscope.capture.reader import open_capture
from tcpscope.present.tcpdump import TcpdumpOptions, write_listing
from tcpscope.wire.dissect import dissect_batch
from tcpscope.wire.options import Mss, SackPermitted, Timestamp, WindowScale
from tcpscope.wire.packet import Packet
from tcpscope.wire.record import ACK, FIN, RST, SYN

WIDTH = 100


@contextmanager
def demo_capture() -> Iterator[Path]:
    """The path of the bundled capture (extracted if the package is zipped)."""
    with resources.as_file(resources.files("tcpscope") / "data" / "demo.pcap") as path:
        yield path


def run_demo(out: IO[str]) -> None:
    with demo_capture() as path:
        out.write("tcpscope demo: the classic experiment, recorded on loopback\n")
        out.write("(a server on 127.0.0.1:5000 says Welcome! and Hello, <name>!)\n\n")
        out.write(f"$ tcpscope read {path.name}\n")
        write_listing(str(path), TcpdumpOptions(), out)
        out.write("\n")
        for paragraph in summarize(tcp_packets(path)):
            out.write(textwrap.fill(paragraph, WIDTH, break_on_hyphens=False) + "\n\n")


def tcp_packets(path: Path | str) -> list[Packet]:
    """Every TCP packet of a (small) capture as per-packet views."""
    packets: list[Packet] = []
    with open_capture(path) as reader:
        for batch in reader:
            records = dissect_batch(batch)
            for i, rec in enumerate(records):
                if rec["kind"] != 3 or rec["stop_reason"] != 0:
                    continue
                start = int(batch.offset[i])
                data = batch.data[start : start + int(batch.caplen[i])]
                packets.append(Packet.from_record(rec, data, batch.first_frame + i,
                                                  int(batch.ts_ns[i])))
    return packets


@dataclass
class _Side:
    addr: str
    port: int
    isn: int | None = None
    options: list[str] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    data_bytes: int = 0
    fin_ts: int | None = None
    reset: bool = False


def summarize(packets: list[Packet]) -> Iterable[str]:
    """One plain-language paragraph per connection (by address/port pair)."""
    conns: dict[tuple, list[Packet]] = {}
    for p in packets:
        key = tuple(sorted([(p.src, p.sport), (p.dst, p.dport)]))
        conns.setdefault(key, []).append(p)
    if not conns:
        yield "The capture holds no TCP packets."
    for pkts in conns.values():
        yield _describe(pkts)


def _describe(pkts: list[Packet]) -> str:
    first = next((p for p in pkts if p.flags & (SYN | ACK) == SYN), pkts[0])
    client = _Side(first.src or "?", first.sport)
    server = _Side(first.dst or "?", first.dport)
    sides = {(client.addr, client.port): client, (server.addr, server.port): server}
    for p in pkts:
        me = sides[(p.src, p.sport)]
        if p.flags & SYN and me.isn is None:
            me.isn = p.seq
            me.options = _option_words(p)
        if p.payload:
            me.messages.append(p.payload)
            me.data_bytes += p.payload_len
        if p.flags & FIN and me.fin_ts is None:
            me.fin_ts = p.ts_ns
        if p.flags & RST:
            me.reset = True

    duration = (pkts[-1].ts_ns - pkts[0].ts_ns) / 1e9
    parts = [
        f"{len(pkts)} TCP packets over {duration:.3f} s between the client "
        f"{client.addr}:{client.port} and the server {server.addr}:{server.port}."
    ]
    if client.isn is not None and server.isn is not None:
        parts.append(
            f"The 3-way handshake: the client's SYN chooses its initial sequence number "
            f"{client.isn}; the server's SYN-ACK chooses {server.isn} and acknowledges "
            f"{(client.isn + 1) % 2**32} = the client's ISN + 1, because a SYN consumes one "
            f"sequence number; the client's ACK acknowledges {(server.isn + 1) % 2**32}. "
            "From then on tcpdump shows numbers relative to each ISN, so the first data byte "
            "is 1."
        )
        if client.options and client.options == server.options:
            parts.append(f"Both sides offered {', '.join(client.options)}.")
        else:
            for who, side in (("client", client), ("server", server)):
                if side.options:
                    parts.append(f"The {who} offered {', '.join(side.options)}.")
    for who, side in (("client", client), ("server", server)):
        if side.messages:
            shown = ", ".join(_quote(m) for m in side.messages[:6])
            more = "" if len(side.messages) <= 6 else ", …"
            parts.append(
                f"The {who} sent {side.data_bytes} bytes in {len(side.messages)} segments "
                f"({shown}{more}); each is acknowledged with ack = seq + length."
            )
    closers = sorted((s.fin_ts, name) for name, s in (("client", client), ("server", server))
                     if s.fin_ts is not None)
    if len(closers) == 2:
        first_closer = closers[0][1]
        other = "server" if first_closer == "client" else "client"
        parts.append(
            f"The {first_closer} closed first with a FIN (which, like the SYN, consumes one "
            f"sequence number); the {other} acknowledged it and later sent its own FIN, "
            f"acknowledged in turn. The {first_closer}, which closed first, ends in TIME_WAIT "
            "for 2×MSL."
        )
    elif client.reset or server.reset:
        parts.append("The connection ended with a reset (RST).")
    return " ".join(parts)


def _option_words(p: Packet) -> list[str]:
    words = []
    for opt in p.options:
        if isinstance(opt, Mss):
            words.append(f"MSS {opt.value}")
        elif isinstance(opt, WindowScale):
            words.append(f"window scale {opt.shift} (windows ×{1 << min(opt.shift, 14)})")
        elif isinstance(opt, SackPermitted):
            words.append("SACK")
        elif isinstance(opt, Timestamp):
            words.append("timestamps")
    return words


def _quote(payload: bytes) -> str:
    text = payload.decode("ascii", errors="replace")
    return f'"{text}"' if text.isprintable() else f"{len(payload)} binary bytes"

"""What tcpscope's analysis says about a lab capture: the facts expectations are checked on.

`Facts.from_capture(path)` runs tcpscope's pipeline over the capture (reader ->
dissector -> engine -> lifecycle) with one consumer, `LabCollector`, that keeps
per TCP packet what the expectations need: stream, direction, tcpdump flags,
relative seq/ack, length, window, SACK blocks, the engine's analysis flags,
both endpoints' states after it and the lifecycle events it caused, and its
payload; per stream, the connection (`analysis/connections.py`) and its
`Lifecycle` (handshake and teardown kinds, SYN and FIN frames, final states).
Nothing here looks at the experiment's own sockets: a "pass" means tcpscope saw
it in the capture.

What the kernel itself showed during the run (``ss`` samples, netstat counters)
is kept apart in `Facts.kernel`, filled by the experiment; expectations that
rely on it say so (their ``source`` is ``"kernel"``).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.annotation import flag_names
from ..analysis.connections import connection_dicts
from ..analysis.engine import DEFAULT_MODE
from ..analysis.lifecycle import Lifecycle
from ..analysis.states import STATE_NAMES
from ..pipeline import Chunk, Options, Result, run
from ..wire.record import ACK, FIN, KIND, RST, SYN
from ..wire.text import format_addresses, tcp_flags_text

__all__ = ["Pkt", "Facts", "LabCollector", "intervals"]


@dataclass(frozen=True, slots=True)
class Pkt:
    """One TCP packet as the analysis saw it."""

    frame: int
    t: float  #: seconds since the capture's first packet
    stream: int
    from_server: bool
    src: str
    sport: int
    dst: str
    dport: int
    flags: str  #: tcpdump letters: ``S``, ``S.``, ``P.``, ``F.``, ``R.``, ``.``
    bits: int  #: the raw TCP flag bits
    seq: int
    ack: int
    rel_seq: int
    rel_ack: int
    len: int
    win: int
    win_scaled: int
    sack_blocks: int
    analysis: tuple[str, ...]  #: the engine's flags (``retransmission``, ``duplicate_ack``...)
    #: The endpoint states after this packet, as tcpscope's state machine infers them
    #: (RFC 9293 names: ``SYN_RECEIVED``, ``TIME_WAIT``...).
    client_state: str
    server_state: str
    events: tuple[str, ...] = ()  #: lifecycle events this packet caused

    @property
    def syn(self) -> bool:
        return bool(self.bits & SYN) and not self.bits & ACK

    @property
    def synack(self) -> bool:
        return bool(self.bits & SYN) and bool(self.bits & ACK)

    @property
    def fin(self) -> bool:
        return bool(self.bits & FIN)

    @property
    def rst(self) -> bool:
        return bool(self.bits & RST)

    @property
    def side(self) -> str:
        return "server" if self.from_server else "client"

    def has(self, flag: str) -> bool:
        return flag in self.analysis


def intervals(times: Iterable[float]) -> list[float]:
    """Gaps between consecutive times, in seconds."""
    ts = list(times)
    return [b - a for a, b in zip(ts, ts[1:])]


class LabCollector:
    """Pipeline consumer: every TCP packet of the capture as a `Pkt`, and its payload."""

    def __init__(self) -> None:
        self.packets: list[Pkt] = []
        self.payloads: dict[int, bytes] = {}
        self.connections: list[dict[str, Any]] = []
        self.lifecycles: dict[int, Lifecycle] = {}
        self.t0: float | None = None

    def feed(self, chunk: Chunk) -> None:
        rec, ann, life, batch = chunk.records, chunk.annotations, chunk.life, chunk.batch
        if self.t0 is None and len(rec):
            self.t0 = float(chunk.ts_ns[0]) / 1e9
        tcp = np.flatnonzero((rec["kind"] == KIND["TCP"]) & (ann["stream"] >= 0))
        if not tcp.size:
            return
        ts = chunk.ts_ns
        frames = batch.frame_numbers
        srcs = format_addresses(rec["src"][tcp], rec["ip_version"][tcp])
        dsts = format_addresses(rec["dst"][tcp], rec["ip_version"][tcp])
        for j, i in enumerate(tcp.tolist()):
            r, n = rec[i], ann[i]
            frame = int(frames[i])
            self.packets.append(Pkt(
                frame=frame,
                t=float(ts[i]) / 1e9 - self.t0,
                stream=int(n["stream"]),
                from_server=bool(n["from_server"]),
                src=srcs[j] or "?",
                sport=int(r["sport"]),
                dst=dsts[j] or "?",
                dport=int(r["dport"]),
                flags=tcp_flags_text(int(r["tcp_flags"])),
                bits=int(r["tcp_flags"]),
                seq=int(r["seq"]),
                ack=int(r["ack"]),
                rel_seq=int(n["rel_seq"]),
                rel_ack=int(n["rel_ack"]),
                len=int(r["payload_len"]),
                win=int(r["win"]),
                win_scaled=int(n["win_scaled"]),
                sack_blocks=int(r["sack_count"]),
                analysis=tuple(flag_names(int(n["flags"]))),
                client_state=STATE_NAMES[int(life.client[i])],
                server_state=STATE_NAMES[int(life.server[i])],
                events=tuple(life.events.get(i, ())),
            ))
            cap = int(r["payload_cap"])
            if cap and not int(r["stop_reason"]):
                start = int(batch.offset[i]) + int(r["l4_off"]) + int(r["tcp_hlen"])
                self.payloads[frame] = bytes(batch.data[start:start + cap])

    def finish(self, result: Result) -> None:
        self.connections = connection_dicts(result.analyzer.connections())
        self.lifecycles = result.tracker.lifecycles()


@dataclass
class Facts:
    """A capture as tcpscope analysed it, plus what the kernel showed during the run."""

    path: Path
    packets: list[Pkt]
    connections: list[dict[str, Any]]
    t0: float  #: wall-clock time of the first packet (capture clock)
    lifecycles: dict[int, Lifecycle] = field(default_factory=dict)
    payloads: dict[int, bytes] = field(default_factory=dict, repr=False)  #: frame -> payload
    kernel: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_capture(cls, path: Path | str, mode: str = DEFAULT_MODE) -> Facts:
        lab = LabCollector()
        run(path, [lab], Options(mode=mode))
        return cls(Path(path), lab.packets, lab.connections, lab.t0 or 0.0, lab.lifecycles,
                   lab.payloads)

    # -- selections ------------------------------------------------------------

    def stream(self, n: int) -> list[Pkt]:
        return [p for p in self.packets if p.stream == n]

    def streams(self) -> list[int]:
        return sorted({p.stream for p in self.packets})

    def where(self, pred: Callable[[Pkt], bool], stream: int | None = None) -> list[Pkt]:
        return [p for p in self.packets if (stream is None or p.stream == stream) and pred(p)]

    def flagged(self, flag: str, stream: int | None = None) -> list[Pkt]:
        """Packets the engine marked with analysis flag `flag`."""
        return self.where(lambda p: p.has(flag), stream)

    def flag_sequence(self, stream: int = 0) -> list[str]:
        """tcpdump flag letters of a stream's packets, in order (``S``, ``S.``, ``.``, ...)."""
        return [p.flags for p in self.stream(stream)]

    def connection(self, stream: int = 0) -> dict[str, Any] | None:
        for c in self.connections:
            if c["stream"] == stream:
                return c
        return None

    def stream_to_port(self, port: int) -> list[int]:
        """Streams whose server port is `port`."""
        return [c["stream"] for c in self.connections if c["server_port"] == port]

    def frames(self, frames: Iterable[int]) -> list[Pkt]:
        """The packets of these frame numbers, in that order."""
        by_frame = {p.frame: p for p in self.packets}
        return [by_frame[f] for f in frames if f in by_frame]

    def payload(self, p: Pkt) -> bytes:
        """The captured payload bytes of a packet."""
        return self.payloads.get(p.frame, b"")

    def data(self, side: str, stream: int = 0) -> list[Pkt]:
        """The data segments a side (``client`` / ``server``) sent."""
        return [p for p in self.stream(stream) if p.side == side and p.len > 0]

    def lifecycle(self, stream: int = 0) -> Lifecycle | None:
        """The lifecycle of a stream (None: no such stream)."""
        return self.lifecycles.get(stream)

"""Every TCP option kind, and malformed option lists, through `tcpscope read` and tcpdump.

The listing prints every TCP segment in C, whatever its options. These tests
build frames with the packet builder that carry each of the 256 option kinds
at a range of lengths (its own, others: tcpdump's ``[len N]``), empty, with a
length below 2 or beyond the header (``[bad opt]``), with data cut by the
capture (`` [|tcp]>``), first in the list or behind a nop, on a connection
whose ACKs make SACK edges relative; every MPTCP subtype at every length its
printer knows, on SYN, SYN-ACK and ACK; and option lists that run into the
payload or past the capture. tcpdump reads the same file (``-nn -#`` with
``-v``, ``-vv``, ``-S``) and every frame's text must be tcpdump's.
(tests/read_cases.py pins a selection of these without tcpdump.)
"""
from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest

from conftest import require_tool
from read_cases import listing_frames

from tcpscope.capture.writer import PcapWriter
from tcpscope.present.tcpdump import TcpdumpOptions, write_listing
from tcpscope.wire.builder import IPv4, IPv6, Ether, Frame, TCP

pytestmark = pytest.mark.oracle

T0 = 1_700_000_000_000_000_000
FLAG_SETS = [[], ["-v"], ["-vv"], ["-S"]]
LENGTHS = (2, 3, 4, 6, 8, 10, 12, 18, 20, 26, 34)


def _data(kind: int, n: int) -> bytes:
    return bytes((kind * 7 + 13 * i + 1) & 0xFF for i in range(n))


def _segment(options: bytes, *, flags: str = "A", payload: bytes = b"", v6: bool = False,
             data_offset: int | None = None, seq: int = 1000, ack: int = 5000) -> bytes:
    options += b"\x01" * (-len(options) % 4)
    ip = IPv6(src="fd00::1", dst="fd00::2") if v6 else IPv4(src="10.0.0.1", dst="10.0.0.2")
    tcp = TCP(sport=40000, dport=5000, flags=flags, seq=seq, ack=ack, options=(options,),
              pad_options=False, data_offset=data_offset)
    return Frame(Ether(), ip, tcp, payload).build()


def _frames() -> list[tuple[bytes, int]]:
    """(captured bytes, original length) of every frame of the sweep."""
    out: list[tuple[bytes, int]] = []

    def add(frame: bytes, caplen: int | None = None) -> None:
        out.append((frame[:caplen] if caplen is not None else frame, len(frame)))

    # The connection's first ACK stores tcpdump's bases; SACK edges after it are relative.
    add(_segment(b"", flags="S", seq=999, ack=0))
    add(_segment(b"", flags="SA", seq=4999, ack=1000))
    for kind in range(2, 256):
        for ln in LENGTHS:
            opt = bytes((kind, ln)) + _data(kind, ln - 2)
            add(_segment(opt))
            add(_segment(b"\x01" + opt, flags="SA" if kind == 30 else "A"))
        for bad in (0, 1, 41, 255):
            add(_segment(b"\x01" + bytes((kind, bad)) + _data(kind, 6)))
            add(_segment(bytes((kind, bad)) + _data(kind, 6)))
        # Declared data the capture does not hold: after the first option and as the first.
        opt = bytes((kind, 10)) + _data(kind, 8)
        seg = _segment(b"\x01\x01" + opt)
        add(seg, 14 + 20 + 20 + 2 + 4)
        seg = _segment(opt + b"\x01\x01")
        add(seg, 14 + 20 + 20 + 3)
    # MPTCP: every subtype at every length its printer knows, on SYN, SYN-ACK and ACK.
    for subtype in range(16):
        for ln in (3, 4, 8, 10, 12, 16, 18, 20, 22, 24, 28, 30):
            body = bytes((subtype << 4 | (ln & 1), 0x81 if ln & 2 else 0x15)) + _data(subtype, ln - 4)
            for flags in ("S", "SA", "A"):
                add(_segment(bytes((30, ln)) + body[: ln - 2], flags=flags))
    # DSS with each combination of its flags.
    for dflags in range(32):
        body = bytes((0x20, dflags)) + _data(dflags, 26)
        for ln in (4, 8, 12, 16, 18, 20, 22, 24, 26, 28):
            add(_segment(bytes((30, ln)) + body[: ln - 2], flags="PA", payload=b"x"))
    # SACK with 1 to 4 blocks, edges around the bases; on a segment without ACK (absolute).
    for blocks in range(1, 5):
        edges = b"".join((e & 0xFFFFFFFF).to_bytes(4, "big")
                         for i in range(blocks) for e in (5000 + 100 * i, 4990 + 150 * i))
        add(_segment(b"\x01\x01" + bytes((5, 2 + 8 * blocks)) + edges))
        add(_segment(b"\x01\x01" + bytes((5, 2 + 8 * blocks)) + edges, flags="R"))
    # TFO and its experimental form; an MPTCP version tcpdump does not know.
    for cookie in (b"", b"\xab" * 3, b"\xcd" * 4, b"\xef" * 16, b"\x12" * 18):
        add(_segment(bytes((34, 2 + len(cookie))) + cookie, flags="S"))
        add(_segment(bytes((254, 4 + len(cookie), 0xF9, 0x89)) + cookie, flags="S"))
    for version in range(4):
        add(_segment(bytes((30, 12, version, 0x81)) + _data(version, 8), flags="S"))
    # A truncation after an MPTCP option is marked [|mptcp]: tcpdump's last protocol name.
    mp = bytes((30, 12, 0, 0x81)) + _data(1, 8)
    add(_segment(mp + bytes((8, 10)) + _data(8, 8), flags="S"), 14 + 20 + 20 + 12 + 4)
    add(_segment(mp + b"\x01\x08", flags="S"), 14 + 20 + 20 + 13)
    # Option lists that run into the payload, or past the capture.
    add(_segment(b"\x01\x01\x01\x02", payload=b"\x04\x05\xb4"))
    add(_segment(b"\x01\x01\x01\x02", payload=b"\x04\x05\xb4"), 14 + 20 + 24)
    add(_segment(b"\x01\x01\x01\x08", payload=b"\x0a" + bytes(8)))
    add(_segment(b"\x02\x04\x05\xb4"), 14 + 20 + 21)
    add(_segment(b"\x02\x04\x05\xb4", data_offset=15, payload=bytes(60)))
    add(_segment(b"\x02\x04\x05\xb4", data_offset=15))
    add(_segment(b"\x05\x12" + _data(5, 16), v6=True))
    add(_segment(b"\x13\x12" + _data(19, 16), payload=b"data"))
    add(_segment(b"\x13\x12" + _data(19, 16), payload=b"data"), 14 + 20 + 20 + 18 + 2)
    return out


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> tuple[Path, int]:
    frames = _frames()
    path = tmp_path_factory.mktemp("options") / "options.pcap"
    with PcapWriter(path, 1, nanosecond=True) as w:
        for i, (data, origlen) in enumerate(frames):
            w.write_record(T0 + i * 1000, data, origlen)
    return path, len(frames)


@pytest.mark.parametrize("flags", FLAG_SETS, ids=lambda f: " ".join(["-nn", *f]))
def test_every_option_kind_as_tcpdump_prints_it(capture, flags: list[str]) -> None:
    tcpdump = require_tool("tcpdump")
    path, count = capture
    proc = subprocess.run([tcpdump, "-nn", "-#", "-tt", *flags, "-r", str(path)],
                          env=dict(os.environ, TZ="UTC"), stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, check=False)
    theirs = listing_frames(proc.stdout.decode("utf-8", "replace"))
    out = io.StringIO()
    write_listing(path, TcpdumpOptions(verbose=sum(f.count("v") for f in flags),
                                       absolute="-S" in flags, tstyle=2, number=True), out)
    mine = listing_frames(out.getvalue())
    assert len(theirs) == count
    differ = [n for n in theirs if mine.get(n) != theirs[n]]
    print(f"\n{' '.join(['-nn', *flags])}: {count - len(differ)}/{count} frames as tcpdump prints them")
    assert not differ, "\n".join(f"frame {n}:\n  tcpdump:  {theirs[n]!r}\n  tcpscope: {mine.get(n)!r}"
                                 for n in differ[:5])

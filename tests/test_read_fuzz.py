"""Random frames through `tcpscope read`: against tcpdump, and the listing's own invariants.

Hypothesis builds small captures of TCP segments with random headers, option
bytes (mostly well-formed, sometimes not), payloads on plain and decoded ports,
link layers, and snaplen cuts:

- with tcpdump installed (oracle), tcpscope prints what tcpdump prints for every
  frame the dissector calls TCP;
- the text does not depend on how the frames are cut into batches (the state
  tcpdump keeps across packets lives in the printer, not in a batch);
- any bytes at all, under any link type, print one line per frame and never
  raise (the C printer reads only what was captured).
"""
from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import require_tool
from read_cases import listing_frames

from tcpscope.capture.batch import FrameBatch
from tcpscope.capture.writer import PcapWriter
from tcpscope.present.tcpdump import TcpdumpListing, TcpdumpOptions
from tcpscope.wire.builder import (
    DestOpts, Ether, Fragment, Frame, HopByHop, IPv4, IPv6, Mpls, Null, Pppoe, Raw, Sll, Sll2, TCP,
    Vlan,
)
from tcpscope.wire.dissect import dissect_batch
from tcpscope.wire.record import KIND

T0 = 1_700_000_000_000_000_000

_OPTION_CHUNKS = st.one_of(
    st.just(bytes.fromhex("01")),
    st.just(bytes.fromhex("00")),
    st.integers(0, 0xFFFF).map(lambda v: bytes((2, 4)) + v.to_bytes(2, "big")),
    st.integers(0, 255).map(lambda v: bytes((3, 3, v))),
    st.just(bytes.fromhex("0402")),
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)).map(
        lambda t: bytes((8, 10)) + t[0].to_bytes(4, "big") + t[1].to_bytes(4, "big")),
    st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=8).map(
        lambda xs: bytes((5, 2 + 4 * (len(xs) // 2 * 2))) + b"".join(
            x.to_bytes(4, "big") for x in xs[: len(xs) // 2 * 2])),
    st.binary(min_size=0, max_size=16).map(lambda b: bytes((34, 2 + len(b))) + b),
    st.binary(min_size=0, max_size=8).map(lambda b: bytes((254, 4 + len(b), 0xF9, 0x89)) + b),
    st.binary(min_size=2, max_size=20).map(lambda b: bytes((30, 2 + len(b))) + b),
    st.integers(0, 0xFFFF).map(lambda v: bytes((28, 4)) + v.to_bytes(2, "big")),
    st.binary(min_size=0, max_size=6).map(lambda b: bytes((99, 2 + len(b))) + b),
    st.binary(min_size=1, max_size=4),  # anything, often malformed
)

# Ports whose payload printers tcpscope does not reproduce (docs/differences.md) are left out.
_UNREPRODUCED = {179, 323, 639, 646, 2049, 6633, 6653, 10288}
_PORTS = st.one_of(st.integers(1, 65535).filter(lambda p: p not in _UNREPRODUCED),
                   st.sampled_from([21, 22, 23, 25, 53, 80, 1723, 6379]))
_TEXT = st.sampled_from([b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"HTTP/1.0 404 Not Found\r\n",
                         b"SSH-2.0-x\r\n", b"+OK\r\n", b"220 ready\r\n", b"\xff\xfb\x01"])


@st.composite
def tcp_frames(draw) -> tuple[bytes, int, int]:
    """(captured bytes, original length, link type) of one TCP frame."""
    v6 = draw(st.booleans())
    ext = draw(st.lists(st.sampled_from([HopByHop(), DestOpts(), Fragment(ident=5)]),
                        max_size=2)) if draw(st.integers(0, 4)) == 0 else []
    ip_opts = draw(st.one_of(st.just(b""), st.just(b""), st.binary(max_size=12),
                             st.just(bytes.fromhex("94040000")),
                             st.just(bytes.fromhex("0107040a0000010000"))))
    ip = IPv6(src="fd00::1", dst=draw(st.sampled_from(["fd00::2", "fd00::1"])),
              flow=draw(st.integers(0, 0xFFFFF)), tc=draw(st.integers(0, 255)),
              ext=tuple(ext)) if v6 else IPv4(
        src="192.0.2.1", dst=draw(st.sampled_from(["192.0.2.2", "192.0.2.1"])),
        id=draw(st.integers(0, 0xFFFF)), ttl=draw(st.integers(0, 255)),
        tos=draw(st.integers(0, 255)), df=draw(st.booleans()), options=ip_opts,
        checksum=draw(st.one_of(st.none(), st.none(), st.integers(0, 0xFFFF))))
    raw_opts = b"".join(draw(st.lists(_OPTION_CHUNKS, max_size=6)))[:40]
    tcp = TCP(
        sport=draw(_PORTS), dport=draw(_PORTS),
        seq=draw(st.integers(0, 2**32 - 1)), ack=draw(st.integers(0, 2**32 - 1)),
        flags=draw(st.integers(0, 0x1FF)), win=draw(st.integers(0, 0xFFFF)),
        urg=draw(st.integers(0, 0xFFFF)), options=(raw_opts,),
        checksum=draw(st.one_of(st.none(), st.integers(0, 0xFFFF))),
    )
    payload = draw(st.one_of(st.just(b""), st.binary(max_size=40), _TEXT))
    link = draw(st.sampled_from([Ether(), Ether(vlans=(Vlan(3),)), Raw(), Sll2(ifindex=1),
                                 Null(), Ether(mpls=Mpls()), Ether(pppoe=Pppoe()), Sll()]))
    data = Frame(link, ip, tcp, payload).build()
    caplen = draw(st.one_of(st.just(len(data)), st.integers(0, len(data))))
    return data[:caplen], len(data), link.linktype


@st.composite
def captures(draw) -> tuple[int, list[tuple[bytes, int]]]:
    linktype_frames = draw(st.lists(tcp_frames(), min_size=1, max_size=25))
    linktype = linktype_frames[0][2]
    frames = [(d, o) for d, o, lt in linktype_frames if lt == linktype]
    # A few follow-up segments of the first flow, so the relative table matters.
    return linktype, frames + frames[: draw(st.integers(0, 3))]


def _batch(frames: list[tuple[bytes, int]], linktype: int) -> FrameBatch:
    caplen = np.array([len(d) for d, _ in frames], dtype=np.uint32)
    offset = np.zeros(len(frames), dtype=np.int64)
    offset[1:] = np.cumsum(caplen[:-1])
    n = len(frames)
    return FrameBatch(b"".join(d for d, _ in frames), offset, caplen,
                      np.array([o for _, o in frames], dtype=np.uint32),
                      T0 + np.arange(n, dtype=np.int64) * 1000, np.zeros(n, np.uint16),
                      np.full(n, linktype, np.uint16))


FLAGS = st.sampled_from([[], ["-v"], ["-vv"], ["-S"], ["-S", "-vv"]])


def _opts(flags: list[str]) -> TcpdumpOptions:
    return TcpdumpOptions(verbose=sum(f.count("v") for f in flags), absolute="-S" in flags,
                          tstyle=2, number=True)


def _listing(flags: list[str], batch: FrameBatch) -> str:
    return TcpdumpListing(_opts(flags), io.StringIO()).format_batch(batch)


def _one_frame_batches(frames: list[tuple[bytes, int]], linktype: int) -> list[FrameBatch]:
    out = []
    for i, frame in enumerate(frames):
        b = _batch([frame], linktype)
        b.first_frame = i + 1
        b.ts_ns[:] = T0 + i * 1000
        out.append(b)
    return out


@settings(max_examples=60, deadline=None)
@given(captures(), FLAGS)
def test_listing_does_not_depend_on_batches(capture, flags) -> None:
    linktype, frames = capture
    whole = _listing(flags, _batch(frames, linktype))
    listing = TcpdumpListing(_opts(flags), io.StringIO())
    pieces = "".join(listing.format_batch(b) for b in _one_frame_batches(frames, linktype))
    assert pieces == whole


_LINKTYPES = st.sampled_from([0, 1, 9, 12, 14, 50, 101, 108, 113, 228, 229, 239, 242, 258, 276,
                              147])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=120), st.integers(0, 200)), min_size=1,
                max_size=8), _LINKTYPES, FLAGS)
def test_any_bytes_print_one_line_per_frame(frames, linktype, flags) -> None:
    frames = [(data, len(data) + extra) for data, extra in frames]
    text = _listing(flags, _batch(frames, linktype))
    assert sorted(listing_frames(text)) == list(range(1, len(frames) + 1))


@settings(max_examples=200, deadline=None)
@given(captures(), FLAGS, st.data())
def test_cut_frames_print_one_line_per_frame(capture, flags, data) -> None:
    """Every prefix of a valid frame: tcpdump's truncation markers, never a crash."""
    linktype, frames = capture
    cut = [(d[: data.draw(st.integers(0, len(d)))], o) for d, o in frames]
    text = _listing(flags, _batch(cut, linktype))
    assert sorted(listing_frames(text)) == list(range(1, len(cut) + 1))


@pytest.mark.oracle
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(captures(), FLAGS)
def test_tcpdump_agrees(tmp_path: Path, capture, flags) -> None:
    tcpdump = require_tool("tcpdump")
    linktype, frames = capture
    batch = _batch(frames, linktype)
    path = tmp_path / "fuzz.pcap"
    with PcapWriter(path, linktype, nanosecond=True) as w:
        for i, (data, origlen) in enumerate(frames):
            w.write_record(T0 + i * 1000, data, origlen)
    out = subprocess.run([tcpdump, "-nn", "-#", "-tt", *flags, "-r", str(path)],
                         env=dict(os.environ, TZ="UTC"), stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, check=False)
    theirs = listing_frames(out.stdout.decode("utf-8", "replace"))
    mine = listing_frames(_listing(flags, batch))
    records = dissect_batch(batch)
    for i in np.flatnonzero(records["kind"] == KIND["TCP"]).tolist():
        n = i + 1
        if n in theirs:
            assert mine.get(n) == theirs[n], f"frame {n}, flags {flags}"

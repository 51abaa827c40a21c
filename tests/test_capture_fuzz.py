"""Robustness: any bytes give frames or CaptureError, never a crash or a hang; cuts give prefixes.

h11's fuzz invariant, applied to the capture layer: for any input, open_capture
either raises CaptureError or returns a reader whose iteration ends (with or
without Damage). Every truncation of a real capture yields a prefix of the full
read, and ends cleanly only at a record (block) boundary.
"""
from __future__ import annotations

import gzip
import io
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import CORPUS
from tcpscope.capture import CaptureError, PcapngWriter, PcapWriter, open_capture

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INT64_MAX = 2**63 - 1
MAX_TS_SECONDS = 9223372035


def read_everything(data: bytes, **kwargs):
    """(frames, damage), or raises CaptureError; anything else fails the test."""
    with open_capture(io.BytesIO(data), **kwargs) as cap:
        frames = list(cap.frames())
        # counters and interfaces must stay readable whatever happened
        assert cap.counters["frames"] == len(frames)
        assert all(f.iface < len(cap.interfaces) for f in frames)
        assert all(f.caplen == len(f.data) for f in frames)
    return frames, cap.damage


def must_not_crash(data: bytes, **kwargs) -> None:
    try:
        read_everything(data, **kwargs)
    except CaptureError as exc:
        assert "\n" not in str(exc)


def pcap_header(byteorder: str = "<", magic: int = 0xA1B2C3D4, snaplen: int = 65535) -> bytes:
    return struct.pack(byteorder + "IHHiIII", magic, 2, 4, 0, 0, snaplen, 1)


def pcapng_head(byteorder: str = "<", idb: bool = True) -> bytes:
    out = io.BytesIO()
    with PcapngWriter(out, byteorder=byteorder) as w:
        if idb:
            w.add_interface(1, "eth0", tsresol_base=2, tsresol_exp=20)
    return out.getvalue()


chunk_sizes = st.sampled_from([64, 100, 4096, 1 << 20])


@FUZZ
@given(data=st.binary(max_size=600), chunk_size=chunk_sizes)
@example(data=b"\x0a\x0d\x0d\x0a", chunk_size=64)
@example(data=b"\x1f\x8b", chunk_size=64)
def test_arbitrary_bytes(data, chunk_size):
    must_not_crash(data, chunk_size=chunk_size)


@FUZZ
@given(
    header=st.sampled_from([
        pcap_header("<"), pcap_header(">"), pcap_header("<", 0xA1B23C4D), pcap_header(">", 0xA1B2CD34),
        pcap_header("<", snaplen=0), pcap_header(">", snaplen=2**32 - 1),
        pcapng_head("<"), pcapng_head(">"), pcapng_head("<", idb=False),
    ]),
    body=st.binary(max_size=800),
    chunk_size=chunk_sizes,
    batch_frames=st.sampled_from([1, 5, 65536]),
)
def test_arbitrary_bytes_after_a_valid_header(header, body, chunk_size, batch_frames):
    must_not_crash(header + body, chunk_size=chunk_size, batch_frames=batch_frames)


@FUZZ
@given(
    header=st.sampled_from([pcap_header("<"), pcapng_head(">")]),
    records=st.lists(
        st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
                  st.integers(0, 2**32 - 1), st.binary(max_size=40)),
        max_size=6),
)
def test_records_with_arbitrary_header_fields(header, records):
    """Plausible structure with wild numbers: lengths near 2^32, any interface id."""
    body = b""
    for a, b, c, d, payload in records:
        if header.startswith(b"\x0a"):
            total = 32 + len(payload) + (-len(payload) % 4)
            body += struct.pack(">IIIIIII", 6, total, a % 3, b, c, d, d) + payload + b"\0" * (-len(payload) % 4)
            body += struct.pack(">I", total)
        else:
            body += struct.pack("<IIII", a, b, c % 300, d) + payload
    must_not_crash(header + body)


SMALL_CAPTURES = [
    "zeek__tcp_fin_retransmission.pcap",
    "seladb__nanosecs_big_endian.pcap",
    "rusticata__modified-format.pcap",
    "zeek__pcapng-multi-interface.pcapng",
    "hadrielk__output_be_difficult_test202.pcapng",
]


def corpus_bytes(name: str) -> bytes:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    return path.read_bytes()


@FUZZ
@given(name=st.sampled_from(SMALL_CAPTURES), flips=st.lists(
    st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4))
def test_mutated_real_captures(name, flips):
    data = bytearray(corpus_bytes(name))
    for pos, xor in flips:
        data[pos % len(data)] ^= xor
    must_not_crash(bytes(data), chunk_size=128)


def record_boundaries(data: bytes) -> set[int]:
    """Offsets at which a well-formed capture may end cleanly (after a record or block)."""
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        boundaries, pos, order = set(), 0, "<"
        while pos < len(data):
            if data[pos:pos + 4] == b"\x0a\x0d\x0d\x0a":
                order = "<" if data[pos + 8:pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            pos += struct.unpack_from(order + "I", data, pos + 4)[0]
            boundaries.add(pos)
        return boundaries
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\x34\xcd\xb2\xa1") else ">"
    header = 24 if data[:4] in (b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34") else 16
    boundaries, pos = {24}, 24
    while pos < len(data):
        pos += header + struct.unpack_from(order + "I", data, pos + 8)[0]
        boundaries.add(pos)
    return boundaries


def first_block_end(data: bytes) -> int:
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        order = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        return struct.unpack_from(order + "I", data, 4)[0]
    return 24


@pytest.mark.parametrize("name", SMALL_CAPTURES)
def test_every_truncation_of_a_real_capture(name):
    data = corpus_bytes(name)
    full, damage = read_everything(data)
    assert damage is None
    boundaries = record_boundaries(data)
    header_end = first_block_end(data)
    previous = 0
    for cut in range(len(data) + 1):
        if cut < header_end:
            with pytest.raises(CaptureError):
                read_everything(data[:cut])
            continue
        frames, damage = read_everything(data[:cut], chunk_size=64)
        assert frames == full[:len(frames)], cut
        assert len(frames) >= previous, cut
        previous = len(frames)
        if cut in boundaries:
            assert damage is None, (cut, damage)
        else:
            assert damage is not None, cut
            assert damage.frame == len(frames) + 1 and damage.byte_offset <= cut, (cut, damage)
    assert previous == len(full)


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(0, 10**6))
def test_truncations_of_a_gzip_compressed_capture(cut):
    data = corpus_bytes("zeek__tcp_reassembly.pcap")
    packed = gzip.compress(data, mtime=0)
    cut %= len(packed) + 1
    full, _ = read_everything(data)
    try:
        frames, damage = read_everything(packed[:cut])
    except CaptureError:
        return  # cut before 24 bytes of the pcap came out
    assert frames == full[:len(frames)]
    assert (damage is None) == (cut == len(packed)), (cut, damage)


# ---------------------------------------------------------------------------
# pcapng timestamp arithmetic against Python's exact integers
# ---------------------------------------------------------------------------


def expected_ts_ns(units: int, base: int, exp: int, tsoffset: int) -> int:
    per_second = base**exp
    seconds = units // per_second + tsoffset
    if seconds > MAX_TS_SECONDS:
        return INT64_MAX
    if seconds < -MAX_TS_SECONDS:
        return -INT64_MAX - 1
    return seconds * 10**9 + (units % per_second) * 10**9 // per_second


@settings(max_examples=300, deadline=None)
@given(
    units=st.one_of(st.integers(0, 2**64 - 1), st.integers(0, 2**40), st.sampled_from([0, 2**64 - 1, 2**63])),
    base=st.sampled_from([2, 10]),
    exp=st.one_of(st.integers(0, 127), st.sampled_from([0, 6, 9, 19, 20, 32, 33, 63, 64, 95, 96, 127])),
    tsoffset=st.one_of(st.just(0), st.integers(-(2**63), 2**63 - 1), st.integers(-(10**10), 10**10)),
)
def test_pcapng_timestamp_conversion_is_exact(units, base, exp, tsoffset):
    out = io.BytesIO()
    with PcapngWriter(out) as w:
        w.add_interface(1, tsresol_base=base, tsresol_exp=exp, tsoffset=tsoffset)
        w.write_block(6, struct.pack("<IIIII", 0, units >> 32, units & 0xFFFFFFFF, 0, 0))
    [frame], damage = read_everything(out.getvalue())
    assert damage is None
    assert frame.ts_ns == expected_ts_ns(units, base, exp, tsoffset)


@settings(max_examples=100, deadline=None)
@given(ts=st.integers(0, 2**32 * 10**9 - 1), nanosecond=st.booleans(), byteorder=st.sampled_from("<>"))
def test_pcap_timestamps_round_trip(ts, nanosecond, byteorder):
    out = io.BytesIO()
    with PcapWriter(out, 1, nanosecond=nanosecond, byteorder=byteorder) as w:
        w.write(ts, b"x")
    [frame], _ = read_everything(out.getvalue())
    assert frame.ts_ns == (ts if nanosecond else ts - ts % 1000)


def test_no_test_here_depends_on_the_corpus_silently():
    """The corpus-based tests above skip visibly (pytest.skip) when ../shared is absent."""
    assert isinstance(CORPUS, Path)

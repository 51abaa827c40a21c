"""The fuzz targets: one function per native entry point, each taking arbitrary bytes.

A target runs its entry point on the input and checks what must hold whatever
the input is; any exception other than the documented ones is a finding (the
fuzzer reports it with the input), as is any crash the sanitizers see in the C
code underneath. Only the public Python entry points are called, so the targets
survive changes to the C files behind them:

- ``scan``: `open_capture` over the input as a file (pcap, pcapng, or gzip /
  zstd / xz of either), read to the end with small chunks and batches, so
  that records cut by chunk ends and every scanner status are reached
  (``tcpscope.capture._scan`` and the decompressors);
- ``dissect``: `dissect_arrays` over frames (``tcpscope.wire._dissect``);
- ``engine``: `Analyzer.feed` over the dissected frames, in two batches, then
  the connection table and stats (``tcpscope.analysis._engine``);
- ``listing``: `write_listing` over a pcap of the frames
  (``tcpscope.present.tcpdump`` and the C formatter behind it).

The last three read the input as frames (`parse_frames`), a format the
fuzzer's mutations keep meaningful: a flags byte, a 16-bit link type, then
records of (16-bit length, 16-bit time step in 100 µs, the frame's bytes), all
big-endian; a record cut by the end of the input keeps what there is.
`fuzz/make_corpus.py` writes their seeds (fuzz/corpus/frames/) from the fixtures.

Used by `fuzz/run.py` (atheris) and by tests/test_fuzz_corpus.py (every seed,
without a fuzzer).
"""
from __future__ import annotations

import io
import struct
from typing import Callable, NamedTuple

import numpy as np

from tcpscope.analysis.engine import Analyzer
from tcpscope.capture import CaptureError, Damage, open_capture, write_pcap
from tcpscope.present.tcpdump import TcpdumpOptions, write_listing
from tcpscope.wire.dissect import dissect_arrays

# Flags byte of the frames format.
FLAG_IMPROVED = 0x01      # engine: the "improved" mode
FLAG_TRUNCATED = 0x02     # origlen = caplen + 100: the capture kept a prefix
LISTING_SHIFT = 2         # bits 2-4: which TcpdumpOptions (see LISTING_OPTIONS)

LISTING_OPTIONS = (
    TcpdumpOptions(tstyle=2),
    TcpdumpOptions(verbose=1, tstyle=4),
    TcpdumpOptions(verbose=2, absolute=True, tstyle=3),
    TcpdumpOptions(verbose=3, number=True, tstyle=5),
    TcpdumpOptions(tstyle=1, count=5),
    TcpdumpOptions(verbose=1, absolute=True, tstyle=2, number=True),
    TcpdumpOptions(verbose=2, tstyle=1),
    TcpdumpOptions(tstyle=5),
)
TIME_STEP_NS = 100_000
T0_NS = 1_700_000_000 * 1_000_000_000
TRUNCATED_EXTRA = 100


class Frames(NamedTuple):
    flags: int
    linktype: int
    data: bytes              # the frames, one after the other
    offset: np.ndarray       # int64
    caplen: np.ndarray       # uint32
    origlen: np.ndarray      # uint32
    ts_ns: np.ndarray        # int64

    def __len__(self) -> int:
        return int(self.offset.shape[0])


def parse_frames(data: bytes) -> Frames:
    """The frames format (module docstring) to arrays; any input parses."""
    flags = data[0] if data else 0
    linktype = struct.unpack(">H", data[1:3])[0] if len(data) >= 3 else 1
    pos, ts, parts, offsets, lengths, stamps = 3, T0_NS, [], [], [], []
    at = 0
    while pos + 4 <= len(data):
        length, step = struct.unpack_from(">HH", data, pos)
        frame = data[pos + 4:pos + 4 + length]
        pos += 4 + length
        ts += step * TIME_STEP_NS
        offsets.append(at)
        lengths.append(len(frame))
        stamps.append(ts)
        parts.append(frame)
        at += len(frame)
    caplen = np.array(lengths, np.uint32)
    extra = TRUNCATED_EXTRA if flags & FLAG_TRUNCATED else 0
    return Frames(flags, linktype, b"".join(parts), np.array(offsets, np.int64), caplen,
                  caplen + np.uint32(extra), np.array(stamps, np.int64))


def format_frames(flags: int, linktype: int, frames: list[tuple[int, bytes]]) -> bytes:
    """The frames format for (time step in 100 µs, frame bytes) pairs: for seeds and tests."""
    out = [struct.pack(">BH", flags, linktype)]
    for step, frame in frames:
        frame = frame[:0xFFFF]
        out.append(struct.pack(">HH", len(frame), min(step, 0xFFFF)) + frame)
    return b"".join(out)


# ---------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------


def scan(data: bytes) -> None:
    chunk_size = 64 << (len(data) % 7)          # 64 B .. 4 KiB: many records cut by chunk ends
    batch_frames = 1 + len(data) % 5
    try:
        cap = open_capture(io.BytesIO(data), chunk_size=chunk_size, batch_frames=batch_frames)
    except CaptureError as exc:
        assert "\n" not in str(exc), exc
        return
    with cap:
        expected = 1
        for batch in cap:
            n = len(batch)
            assert 0 < n <= batch_frames and batch.first_frame == expected
            end = batch.offset.astype(np.int64) + batch.caplen
            assert (batch.offset >= 0).all() and (end <= len(batch.data)).all()
            for i in range(n):
                batch.frame_bytes(i)
            expected += n
        assert cap.damage is None or isinstance(cap.damage, Damage)
        assert cap.counters["frames"] == expected - 1


def dissect(data: bytes) -> None:
    f = parse_frames(data)
    records = dissect_arrays(f.data, f.offset, f.caplen, f.origlen, f.linktype)
    assert records.shape[0] == len(f)
    # A per-frame link type array takes the other path through the dissector.
    linktypes = np.full(len(f), f.linktype, np.uint16)
    again = dissect_arrays(f.data, f.offset, f.caplen, f.origlen, linktypes,
                           verify_checksums=False)
    assert again.shape[0] == len(f)


def engine(data: bytes) -> None:
    f = parse_frames(data)
    records = dissect_arrays(f.data, f.offset, f.caplen, f.origlen, f.linktype)
    mode = "improved" if f.flags & FLAG_IMPROVED else "wireshark"
    # an odd number of frames: the table at its smallest bounds (eviction, retirement and
    # deletion from the table on every few connections)
    tiny = {"max_attempts": 1, "max_evicted": 1, "max_closed": 1, "attempt_timeout": 0.001}
    analyzer = Analyzer(mode, **(tiny if len(f) % 2 else {}))
    frames = np.arange(1, len(f) + 1, dtype=np.int64)
    half = len(f) // 2
    for part in (slice(0, half), slice(half, len(f))):
        annotations = analyzer.feed(records[part], f.ts_ns[part], frames[part])
        assert annotations.shape[0] == part.stop - part.start
    analyzer.drain()
    analyzer.connections()
    analyzer.connection_dicts()
    analyzer.stats()


def listing(data: bytes) -> None:
    f = parse_frames(data)
    pcap = io.BytesIO()
    write_pcap(pcap, [(int(f.ts_ns[i]), f.data[int(f.offset[i]):int(f.offset[i] + f.caplen[i])],
                       int(f.origlen[i])) for i in range(len(f))], f.linktype)
    pcap.seek(0)
    opts = LISTING_OPTIONS[(f.flags >> LISTING_SHIFT) % len(LISTING_OPTIONS)]
    out = io.StringIO()
    printed = write_listing(pcap, opts, out)
    assert printed <= len(f)


#: The seed directory under fuzz/corpus/ of each target.
SEEDS = {"scan": "scan", "dissect": "frames", "engine": "frames", "listing": "frames"}

TARGETS: dict[str, Callable[[bytes], None]] = {
    "scan": scan,
    "dissect": dissect,
    "engine": engine,
    "listing": listing,
}

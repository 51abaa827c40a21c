"""Compressed input: bounded memory whatever it decompresses to, and nothing readable lost.

Decompression bombs (10 GiB of zeros in a few hundred KB) are made here as a stream and
piped into `tcpscope` as standard input, never stored; the child's peak memory
(``ru_maxrss``) must stay under 200 MB. Damaged streams (a flipped CRC, checksum or
check, a cut anywhere, corrupt data) must deliver every frame that decompressed and then
say what went wrong and where. See docs/capture.md, "Compression".
"""
from __future__ import annotations

import functools
import gzip
import io
import lzma
import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator

import pytest
import zstandard
from conftest import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpscope.capture import CaptureError, open_capture, write_pcap
from tcpscope.capture.decompress import DECODER_MEMORY_LIMIT
from tcpscope.capture.source import open_source

MiB = 1 << 20
GiB = 1 << 30
BOMB_SIZE = 10 * GiB
UNIT = 64 * MiB  # gzip and xz bombs: one member per 64 MiB (each made once, then repeated)
MEMORY_LIMIT_MB = 200
HANG_LIMIT_S = 600  # generous: a hang, not a speed, fails here
T0 = 1_700_000_000 * 1_000_000_000

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
SHB = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
IDB = struct.pack("<IIHHII", 1, 20, 1, 0, 0, 20)
# A 64 KiB block of a type nobody knows: read, checked and skipped by the scanner.
UNKNOWN_BLOCK = struct.pack("<II", 0x0000BEEF, 65536) + bytes(65536 - 12) + struct.pack("<I", 65536)


# ---------------------------------------------------------------------------
# Bombs, made as streams
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _member(kind: str, data_id: str) -> bytes:
    data = {"zeros": bytes(UNIT), "blocks": UNKNOWN_BLOCK * (UNIT // len(UNKNOWN_BLOCK))}[data_id]
    if kind == "gzip":
        return gzip.compress(data, compresslevel=1, mtime=0)
    if kind == "xz":
        return lzma.compress(data, preset=0)
    return zstandard.ZstdCompressor(level=1).compress(data)


def bomb(kind: str, head: bytes, data_id: str, total: int) -> Iterator[bytes]:
    """`head` then `total` bytes of zeros (or unknown pcapng blocks), compressed, as pieces.

    zstd is one frame made as it goes (the case that broke: zstd has no output limit per
    call); gzip and xz are members of 64 MiB each, made once and repeated.
    """
    if kind == "zstd" and data_id == "zeros":
        c = zstandard.ZstdCompressor(level=1).compressobj()
        yield c.compress(head)
        zeros = bytes(MiB)
        for _ in range(total // MiB):
            out = c.compress(zeros)
            if out:
                yield out
        yield c.flush()
        return
    compress = {"gzip": gzip.compress, "xz": lzma.compress,
                "zstd": zstandard.ZstdCompressor().compress}[kind]
    yield compress(head)
    member = _member(kind, data_id)
    for _ in range(total // UNIT):
        yield member


# Runs tcpscope as a child it forks, and writes the child's peak memory (KiB) to argv[1].
# The test process cannot measure its own child: Linux carries the peak RSS of a process
# across exec, and a child spawned from the (large) test process starts with the test
# process's memory as its peak. A fork of this small process starts from its ~10 MB.
PEAK_OF_CHILD = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "tcpscope", *sys.argv[2:]])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_fed(args: list[str], pieces: Iterator[bytes], tmp_path) -> tuple[int, str, str, int]:
    """Run tcpscope with `pieces` on stdin; (exit code, stdout, stderr, peak memory in MB)."""
    peak_file = tmp_path / "peak"
    proc = subprocess.Popen([sys.executable, "-c", PEAK_OF_CHILD, str(peak_file), *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)

    def feed() -> None:
        try:
            for piece in pieces:
                proc.stdin.write(piece)
        except (BrokenPipeError, ValueError):
            pass  # the reader stopped early: what it should do with most bombs
        finally:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass

    outputs: dict[str, bytes] = {}

    def drain(name: str, stream) -> None:
        outputs[name] = stream.read()

    threads = [threading.Thread(target=feed, daemon=True),
               threading.Thread(target=drain, args=("out", proc.stdout), daemon=True),
               threading.Thread(target=drain, args=("err", proc.stderr), daemon=True)]
    for t in threads:
        t.start()
    try:
        proc.wait(timeout=HANG_LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
        pytest.fail(f"tcpscope {' '.join(args)} still running after {HANG_LIMIT_S} s")
    for t in threads:
        t.join(30)
    out, err = outputs["out"], outputs["err"]
    return proc.returncode, out.decode(), err.decode(), int(peak_file.read_text()) // 1024


KINDS = ["zstd", "gzip", "xz"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_a_bomb_of_zeros_is_not_a_capture_in_bounded_memory(kind, tmp_path):
    rc, out, err, peak = run_fed(["read", "-"], bomb(kind, b"", "zeros", BOMB_SIZE), tmp_path)
    print(f"{kind}: 10 GiB of zeros -> exit {rc}, peak {peak} MB")
    assert rc == 1 and out == ""
    assert err == f"tcpscope: -: {kind}-compressed data is not a capture file (pcap or pcapng): " \
                  "starts with 00 00 00 00\n"
    assert peak <= MEMORY_LIMIT_MB


@pytest.mark.slow
@pytest.mark.parametrize("command", ["read", "conns"])
@pytest.mark.parametrize("kind", KINDS)
def test_zeros_after_a_pcap_header_are_damage_at_once(kind, command, tmp_path):
    rc, out, err, peak = run_fed([command, "-"], bomb(kind, PCAP_HEADER, "zeros", BOMB_SIZE),
                                 tmp_path)
    print(f"{kind} {command}: pcap header + 10 GiB of zeros -> exit {rc}, peak {peak} MB")
    assert rc == 0 and peak <= MEMORY_LIMIT_MB
    if command == "read":
        assert out == ""
        assert err == ("tcpscope: -: capture damaged at byte 24 (frame 1): "
                       "record header is all zeros (zero-filled data from here on?)\n")


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_a_bomb_that_is_a_capture_is_read_to_its_end_in_bounded_memory(kind, tmp_path):
    # A valid pcapng: 1 GiB of blocks the reader must check and skip, compressed to ~1 MB.
    rc, out, err, peak = run_fed(["read", "-"], bomb(kind, SHB + IDB, "blocks", GiB), tmp_path)
    print(f"{kind}: pcapng of 1 GiB of skipped blocks -> exit {rc}, peak {peak} MB")
    assert (rc, out, err) == (0, "", "")
    assert peak <= MEMORY_LIMIT_MB


def test_decoders_may_not_need_more_than_the_limit():
    # zstd: a frame header asking for a 2 GiB window; xz: a block asking for a 4 GiB dictionary.
    zstd = bytearray(b"".join(bomb("zstd", PCAP_HEADER, "zeros", 0)))
    assert zstd[4] & 0x20 == 0  # not single-segment: byte 5 is the window descriptor
    zstd[5] = (31 - 10) << 3
    xz = bytearray(lzma.compress(PCAP_HEADER))
    header_size = (xz[12] + 1) * 4
    assert xz[13:16] == b"\x00\x21\x01"  # one filter, LZMA2, 1 byte of properties
    xz[16] = 40  # dictionary 4 GiB - 1
    xz[12 + header_size - 4:12 + header_size] = struct.pack(
        "<I", zlib.crc32(bytes(xz[12:12 + header_size - 4])))
    for kind, data, reason in [("zstd", zstd, "Frame requires too much memory for decoding"),
                               ("xz", xz, "Memory usage limit exceeded")]:
        with pytest.raises(CaptureError) as info:
            open_capture(io.BytesIO(bytes(data)))
        assert f"{kind}-compressed data: {kind} data is corrupt at compressed byte " in str(info.value)
        assert reason in str(info.value)
    assert DECODER_MEMORY_LIMIT == 128 * MiB


# ---------------------------------------------------------------------------
# Damaged compressed captures keep every frame that decompressed
# ---------------------------------------------------------------------------

N_FRAMES = 40


def capture(n: int = N_FRAMES, seed: int = 1) -> bytes:
    import random

    rng = random.Random(seed)
    out = io.BytesIO()
    write_pcap(out, [(T0 + i * 1000, rng.randbytes(20) + bytes(40)) for i in range(n)], 1)
    return out.getvalue()


COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda d: gzip.compress(d, mtime=0),
    "zstd": lambda d: zstandard.ZstdCompressor(write_checksum=True).compress(d),
    "xz": lzma.compress,
}


def read_all(data: bytes) -> tuple[list, object]:
    with open_capture(io.BytesIO(data)) as cap:
        return [f.data for f in cap.frames()], cap.damage


def xz_index_size(packed: bytes) -> int:
    return (struct.unpack_from("<I", packed, len(packed) - 8)[0] + 1) * 4


@pytest.mark.parametrize("kind, where, what", [
    ("gzip", lambda p: len(p) - 8, "the CRC-32 in the trailer"),
    ("gzip", lambda p: len(p) - 4, "the length in the trailer"),
    ("zstd", lambda p: len(p) - 1, "Restored data doesn't match checksum"),
    ("xz", lambda p: len(p) - 12 - xz_index_size(p) - 1, "Corrupt input data"),  # the block's check
    ("xz", lambda p: len(p) - 12 - xz_index_size(p) + 1, "Corrupt input data"),  # the index
])
def test_a_flipped_integrity_check_keeps_every_frame(kind, where, what):
    raw = capture()
    packed = bytearray(COMPRESS[kind](raw))
    at = where(packed)
    packed[at] ^= 0x01
    frames, damage = read_all(bytes(packed))
    assert len(frames) == N_FRAMES
    assert damage.byte_offset == len(raw) and damage.frame == N_FRAMES + 1
    assert damage.reason.startswith(f"{kind} data is corrupt at compressed byte ")
    assert f"(decompressed byte {len(raw)})" in damage.reason and what in damage.reason
    print(damage)


def test_the_issue_case_a_gzip_with_a_flipped_crc_byte():
    packed = bytearray((FIXTURES / "lo_ipv4.pcap.gz").read_bytes())
    packed[-6] ^= 0x40
    frames, damage = read_all(bytes(packed))
    assert len(frames) == 17
    assert "the CRC-32 in the trailer" in damage.reason and damage.frame == 18


def reference_output(kind: str, packed: bytes) -> bytes:
    """What the library's own decoder yields from a cut stream (no output limit)."""
    if kind == "gzip":
        return zlib.decompressobj(wbits=31).decompress(packed)
    if kind == "xz":
        return lzma.LZMADecompressor().decompress(packed)
    return zstandard.ZstdDecompressor().decompressobj().decompress(packed)


def whole_frames(data: bytes) -> int:
    """How many whole pcap records `data` (a pcap prefix) holds."""
    pos, n = 24, 0
    while pos + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, pos + 8)[0]
        if pos + 16 + caplen > len(data):
            break
        pos += 16 + caplen
        n += 1
    return n


@pytest.mark.parametrize("kind", KINDS)
def test_every_cut_keeps_every_frame_the_decoder_can_give(kind):
    raw = capture()
    full = read_all(raw)[0]
    packed = COMPRESS[kind](raw)
    for cut in range(len(packed) + 1):
        try:
            frames, damage = read_all(packed[:cut])
        except CaptureError as exc:
            assert len(reference_output(kind, packed[:cut])) < 24, (cut, exc)
            continue
        assert frames == full[:len(frames)], cut
        if cut == len(packed):
            assert damage is None and len(frames) == N_FRAMES
            continue
        assert damage is not None and f"the {kind} stream is truncated" in damage.reason, cut
        assert len(frames) == whole_frames(reference_output(kind, packed[:cut])), cut


def test_corrupt_deflate_data_keeps_what_decoded_before_it():
    raw = capture(400, seed=2)
    packed = gzip.compress(raw, mtime=0)
    tried = 0
    for at in range(20, len(packed) - 8, 97):
        bad = bytearray(packed)
        bad[at] ^= 0x10
        # What zlib gives fed one byte at a time, up to the byte where it finds the damage.
        d, before = zlib.decompressobj(wbits=31), []
        try:
            for i in range(len(bad)):
                before.append(d.decompress(bad[i:i + 1]))
        except zlib.error:
            pass
        expected = b"".join(before)
        source = open_source(io.BytesIO(bytes(bad)))
        got = b"".join(iter(lambda: source.stream.read(1 << 16), b""))
        # Both are prefixes of the one output the damaged stream decodes to.
        assert got[:len(expected)] == expected and len(got) >= len(expected), at
        assert source.stream.stream_error.startswith("gzip data is corrupt at compressed byte ")
        tried += 1
    assert tried > 10


class Trickle(io.RawIOBase):
    """A stream that gives one byte per read: every field of every framing is cut."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._pos >= len(self._data):
            return 0
        buffer[0] = self._data[self._pos]
        self._pos += 1
        return 1


def gzip_with_every_header_field(data: bytes) -> bytes:
    body = gzip.compress(data, mtime=0)[10:]
    header = bytearray(b"\x1f\x8b\x08\x1e" + bytes(4) + b"\x00\xff")  # EXTRA NAME COMMENT HCRC
    header += b"\x04\x00ab\x00\x00" + b"capture.pcap\x00" + b"a comment\x00"
    header += struct.pack("<H", zlib.crc32(bytes(header)) & 0xFFFF)
    return bytes(header) + body


def multi(kind: str, raw: bytes) -> bytes:
    parts = [raw[:100], raw[100:1000], raw[1000:]]
    if kind == "gzip":
        return b"".join(gzip.compress(p, mtime=0) for p in parts) + bytes(12)
    if kind == "xz":
        return b"".join(lzma.compress(p, check=c) + bytes(4 * i) for i, (p, c) in enumerate(
            zip(parts, [lzma.CHECK_SHA256, lzma.CHECK_NONE, lzma.CHECK_CRC32])))
    z = zstandard.ZstdCompressor(write_checksum=True)
    skippable = struct.pack("<II", 0x184D2A5E, 5) + b"hello"
    return z.compress(parts[0]) + skippable + z.compress(parts[1]) + \
        zstandard.ZstdCompressor().compress(parts[2])


@pytest.mark.parametrize("name, make", [
    ("gzip header fields", gzip_with_every_header_field),
    ("gzip members", lambda d: multi("gzip", d)),
    ("zstd frames", lambda d: multi("zstd", d)),
    ("xz streams", lambda d: multi("xz", d)),
    ("xz filters", lambda d: lzma.compress(d, format=lzma.FORMAT_XZ, filters=[
        {"id": lzma.FILTER_X86}, {"id": lzma.FILTER_DELTA, "dist": 2},
        {"id": lzma.FILTER_LZMA2, "preset": 9}])),
    ("xz uncompressed chunks", lambda d: lzma.compress(d, preset=0)),
])
def test_framings_read_the_same_one_byte_at_a_time(name, make):
    raw = capture(300)
    packed = make(raw)
    if name.startswith("gzip"):
        assert gzip.decompress(packed) == raw  # the crafted file is valid gzip
    full = read_all(raw)[0]
    for stream in (io.BytesIO(packed), Trickle(packed)):
        with open_capture(stream) as cap:
            frames = [f.data for f in cap.frames()]
        assert frames == full and cap.damage is None, name
        assert cap.counters.get("compressed_trailing_garbage", 0) == 0


def test_a_bad_gzip_header_crc_is_damage():
    packed = bytearray(gzip_with_every_header_field(capture()))
    packed[10 + 6 + 13 + 10] ^= 1  # the header CRC
    with pytest.raises(CaptureError, match="the header CRC does not match the header"):
        open_capture(io.BytesIO(bytes(packed)))


# ---------------------------------------------------------------------------
# Zero-filled data after a good start
# ---------------------------------------------------------------------------


def test_an_all_zero_record_header_is_damage_but_an_empty_record_is_a_frame():
    raw = capture(3)
    frames, damage = read_all(raw + bytes(16 * 100))
    assert len(frames) == 3 and damage.byte_offset == len(raw)
    assert damage.reason == "record header is all zeros (zero-filled data from here on?)"
    # caplen 0 and origlen 0 at a real time: tcpdump prints "[Invalid header: ...]" for it.
    empty = struct.pack("<IIII", 1_700_000_000, 5, 0, 0)
    frames, damage = read_all(raw + empty + raw[24:24 + 76])
    assert len(frames) == 5 and damage is None and frames[3] == b""


# ---------------------------------------------------------------------------
# A FIFO blocks until a writer comes, as with tcpdump -r
# ---------------------------------------------------------------------------


def test_a_fifo_waits_for_its_writer(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-m", "tcpscope", "read", str(fifo)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "TZ": "UTC"})
    try:
        time.sleep(1.0)
        assert proc.poll() is None  # opening a FIFO with no writer blocks
        with open(fifo, "wb") as w:
            w.write(capture(3))
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0 and err == b"" and len(out.splitlines()) == 3


# ---------------------------------------------------------------------------
# Never silent: a damaged compressed stream either reads exactly or says so
# ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(KINDS), at=st.integers(0, 10**6), bit=st.integers(0, 7))
def test_a_flipped_bit_anywhere_is_never_silent(kind, at, bit):
    raw = capture()
    full = read_all(raw)[0]
    packed = bytearray(COMPRESS[kind](raw))
    at %= len(packed)
    packed[at] ^= 1 << bit
    try:
        frames, damage = read_all(bytes(packed))
    except CaptureError:
        return
    # Every format here checks its data (gzip CRC-32, zstd checksum, xz check): a flip is
    # found, or it hit a byte that does not matter (xz padding, a gzip header's OS byte).
    assert damage is not None or frames == full, (kind, at, bit)

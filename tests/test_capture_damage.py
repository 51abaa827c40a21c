"""What is not a capture (CaptureError) and what is a damaged capture (Damage)."""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import struct

import pytest
import zstandard

from tcpscope.capture import CaptureError, PcapngWriter, PcapWriter, open_capture, write_pcap

ETHERNET = 1
T0 = 1_700_000_000_000_000_000


def pcap_bytes(n: int = 3, size: int = 38, **options) -> bytes:
    out = io.BytesIO()
    write_pcap(out, [(T0 + i * 1000, bytes([i % 256]) * size) for i in range(n)], ETHERNET, **options)
    return out.getvalue()


def pcapng_bytes(n: int = 3, byteorder: str = "<") -> bytes:
    out = io.BytesIO()
    with PcapngWriter(out, byteorder=byteorder) as w:
        w.add_interface(ETHERNET, "eth0")
        for i in range(n):
            w.write(T0 + i, 0, bytes([i]) * 38)
    return out.getvalue()


def read_bytes(data: bytes, **kwargs):
    with open_capture(io.BytesIO(data), **kwargs) as cap:
        frames = list(cap.frames())
    return cap, frames


def open_error(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(CaptureError) as info:
        open_capture(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message[len(f"{path}: "):]


# ---------------------------------------------------------------------------
# Not a capture: CaptureError at open, one line naming the file
# ---------------------------------------------------------------------------


def test_text_file(tmp_path):
    reason = open_error(tmp_path, "notes.txt", b"# tcpscope notes\n")
    assert reason == "not a capture file (pcap or pcapng): starts with 23 20 74 63"


def test_empty_file(tmp_path):
    assert open_error(tmp_path, "e.pcap", b"") == "not a capture file (pcap or pcapng): the file is empty"


def test_short_file(tmp_path):
    assert open_error(tmp_path, "s", b"\x01\x02") == "not a capture file (pcap or pcapng): starts with 01 02"


def test_solaris_snoop(tmp_path):
    reason = open_error(tmp_path, "x.snoop", b"snoop\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x04")
    assert reason.startswith("Solaris snoop format is not supported")


def test_bzip2_is_named(tmp_path):
    reason = open_error(tmp_path, "x.pcap.bz2", bz2.compress(pcap_bytes()))
    assert reason.startswith("bzip2 compression is not supported")


def test_compressed_text(tmp_path):
    reason = open_error(tmp_path, "x.gz", gzip.compress(b"hello world"))
    assert reason == "gzip-compressed data is not a capture file (pcap or pcapng): starts with 68 65 6c 6c"


def test_compressed_nothing(tmp_path):
    reason = open_error(tmp_path, "x.zst", zstandard.ZstdCompressor().compress(b""))
    assert reason == "zstd-compressed data: decompresses to nothing"


def test_truncated_compressed_header(tmp_path):
    reason = open_error(tmp_path, "x.xz", lzma.compress(pcap_bytes())[:20])
    assert reason.startswith("xz-compressed data: the xz stream is truncated")


def test_directory(tmp_path):
    with pytest.raises(CaptureError, match=r": is a directory, not a capture file$"):
        open_capture(tmp_path)


def test_missing_file(tmp_path):
    with pytest.raises(CaptureError, match=r"nope\.pcap: cannot open: No such file or directory$"):
        open_capture(tmp_path / "nope.pcap")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a mode-000 file")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.pcap"
    path.write_bytes(pcap_bytes())
    path.chmod(0)
    with pytest.raises(CaptureError, match="cannot open: Permission denied"):
        open_capture(path)


def test_truncated_pcap_file_header(tmp_path):
    reason = open_error(tmp_path, "h.pcap", pcap_bytes()[:10])
    assert reason == "truncated pcap file header: 10 of 24 bytes"


def test_unsupported_pcap_version(tmp_path):
    data = bytearray(pcap_bytes())
    data[4:6] = struct.pack("<H", 3)
    assert open_error(tmp_path, "v.pcap", bytes(data)) == "unsupported pcap version 3.4"


def test_bad_first_section_header(tmp_path):
    data = bytearray(pcapng_bytes())
    data[8:12] = b"\x00\x11\x22\x33"
    reason = open_error(tmp_path, "b.pcapng", bytes(data))
    assert reason == "section header block has a bad byte-order magic 00112233"
    assert open_error(tmp_path, "t.pcapng", pcapng_bytes()[:20]).startswith(
        "truncated pcapng section header block: 20 of ")


def test_pcapng_unsupported_major_version(tmp_path):
    out = io.BytesIO()
    with PcapngWriter(out) as w:
        w.new_section("<", version=(2, 0))
    assert open_error(tmp_path, "v2.pcapng", out.getvalue()[out.getvalue().index(b"\x0a\x0d\x0d\x0a", 4):]) == \
        "unsupported pcapng version 2.0"


# ---------------------------------------------------------------------------
# pcap damage: every frame before it delivered, then Damage
# ---------------------------------------------------------------------------


def test_pcap_huge_caplen():
    data = bytearray(pcap_bytes(3))
    second = 24 + 16 + 38
    data[second + 8:second + 12] = struct.pack("<I", 0xFFFFFFFF)
    cap, frames = read_bytes(bytes(data))
    assert len(frames) == 1
    assert cap.damage.byte_offset == second and cap.damage.frame == 2
    assert cap.damage.reason == "record header claims caplen 4294967295, more than the 262144-byte limit"
    assert str(cap.damage) == ("capture damaged at byte 78 (frame 2): record header claims caplen "
                               "4294967295, more than the 262144-byte limit")


def test_pcap_caplen_limit_follows_a_large_snaplen():
    data = pcap_bytes(1, size=300_000, snaplen=400_000)
    cap, [frame] = read_bytes(data)
    assert cap.damage is None and frame.caplen == 300_000


def test_pcap_file_ends_inside_a_record():
    data = pcap_bytes(3)  # records of 16 + 38 = 54 bytes
    cap, frames = read_bytes(data[:24 + 54 * 2 + 30], chunk_size=64)
    assert len(frames) == 2
    assert cap.damage.reason == "file ends inside a record: 30 of 54 bytes"
    assert (cap.damage.byte_offset, cap.damage.frame) == (24 + 108, 3)


def test_pcap_file_ends_inside_a_record_header():
    cap, frames = read_bytes(pcap_bytes(3)[:24 + 54 + 7])
    assert len(frames) == 1
    assert cap.damage.reason == "file ends inside a record header: 7 of 16 bytes"


def test_pcap_clean_end_at_a_record_boundary():
    cap, frames = read_bytes(pcap_bytes(3)[:24 + 54 * 2])
    assert len(frames) == 2 and cap.damage is None


def test_damage_in_a_later_chunk_keeps_earlier_batches():
    data = bytearray(pcap_bytes(1000))
    at = 24 + 54 * 700
    data[at + 8:at + 12] = struct.pack("<I", 10**9)
    with open_capture(io.BytesIO(bytes(data)), chunk_size=4096, batch_frames=64) as cap:
        total = sum(len(b) for b in cap)
    assert total == 700 and cap.damage.frame == 701 and cap.damage.byte_offset == at


# ---------------------------------------------------------------------------
# pcapng damage
# ---------------------------------------------------------------------------


def epb_offsets(data: bytes) -> list[int]:
    """Offsets of the EPBs of a little-endian pcapng made by pcapng_bytes()."""
    pos, out = 0, []
    while pos < len(data):
        block_type, total = struct.unpack_from("<II", data, pos)
        if block_type == 6:
            out.append(pos)
        pos += total
    return out


def test_pcapng_block_length_not_a_multiple_of_4():
    data = bytearray(pcapng_bytes())
    second = epb_offsets(bytes(data))[1]
    data[second + 4:second + 8] = struct.pack("<I", 7)
    cap, frames = read_bytes(bytes(data))
    assert len(frames) == 1
    assert cap.damage.reason == "block length 7 is not a multiple of 4"
    assert (cap.damage.byte_offset, cap.damage.frame) == (second, 2)


@pytest.mark.parametrize("length, reason", [
    (8, "block length 8 is less than the 12-byte minimum"),
    (2**32 - 4, "block length 4294967292 is more than the 16777216-byte limit"),
    (68, "block length 68 at its start does not match 72 at its end"),
])
def test_pcapng_bad_block_lengths(length, reason):
    data = bytearray(pcapng_bytes())
    last = epb_offsets(bytes(data))[2]
    data[last + 4:last + 8] = struct.pack("<I", length)
    if length == 68:
        data[last + 64:last + 68] = struct.pack("<I", 72)  # where a 68-byte block's trailer is
    cap, frames = read_bytes(bytes(data))
    assert len(frames) == 2 and cap.damage.reason == reason


def test_pcapng_epb_caplen_beyond_its_block():
    data = bytearray(pcapng_bytes())
    first = epb_offsets(bytes(data))[0]
    data[first + 20:first + 24] = struct.pack("<I", 41)
    cap, frames = read_bytes(bytes(data))
    assert frames == []
    assert cap.damage.reason == "enhanced packet block claims caplen 41, but the block has room for only 40 bytes"


def test_pcapng_undefined_interface():
    data = bytearray(pcapng_bytes())
    second = epb_offsets(bytes(data))[1]
    data[second + 8:second + 12] = struct.pack("<I", 1)
    cap, frames = read_bytes(bytes(data))
    assert len(frames) == 1
    assert cap.damage.reason == "enhanced packet block on interface 1, but the section describes only 1 interface(s)"


def test_pcapng_packet_before_any_interface():
    out = io.BytesIO()
    with PcapngWriter(out) as w:
        w.write_block(3, struct.pack("<I", 4) + b"abcd")
    cap, frames = read_bytes(out.getvalue())
    assert frames == []
    assert cap.damage.reason == ("simple packet block on interface 0, but the section has no "
                                 "interface description block")


def test_pcapng_interfaces_do_not_carry_over_to_the_next_section():
    out = io.BytesIO()
    with PcapngWriter(out) as w:
        w.add_interface(ETHERNET)
        w.write(T0, 0, b"ok")
        w.new_section(">")
        w.write_block(6, struct.pack(">IIIII", 0, 0, 0, 2, 2) + b"no")
    cap, frames = read_bytes(out.getvalue())
    assert [f.data for f in frames] == [b"ok"] and cap.damage.frame == 2
    assert "section has no interface description block" in cap.damage.reason


def test_pcapng_bad_later_section_header_is_damage():
    data = pcapng_bytes(2) + bytearray(pcapng_bytes(1, byteorder=">"))
    data = bytearray(data)
    second_shb = len(pcapng_bytes(2))
    data[second_shb + 8:second_shb + 12] = b"ABCD"
    cap, frames = read_bytes(bytes(data))
    assert len(frames) == 2
    assert cap.damage.reason == "section header block has a bad byte-order magic 41424344"
    assert cap.damage.byte_offset == second_shb


def test_pcapng_short_interface_description_block():
    out = io.BytesIO()
    with PcapngWriter(out) as w:
        w.write_block(1, b"\x01\x00\x00\x00")
    cap, frames = read_bytes(out.getvalue())
    assert cap.damage.reason == "interface description block length 16 is less than the 20-byte minimum"


def test_pcapng_malformed_options_are_counted_not_fatal():
    out = io.BytesIO()
    with PcapngWriter(out) as w:
        # if_name claiming 200 bytes in a block that has 8
        w.write_block(1, struct.pack("<HHI", ETHERNET, 0, 0) + struct.pack("<HH", 2, 200) + b"eth0")
        w.write_block(6, struct.pack("<IIIII", 0, 0, 0, 1, 1) + b"x")
    cap, frames = read_bytes(out.getvalue())
    assert len(frames) == 1 and cap.damage is None and cap.counters["malformed_options"] == 1


@pytest.mark.parametrize("cut, reason", [
    (5, "file ends inside a block header: 5 of 8 bytes"),
    (30, "file ends inside a block: 30 of 72 bytes"),
])
def test_pcapng_file_ends_inside_a_block(cut, reason):
    data = pcapng_bytes(3)
    last = epb_offsets(data)[2]
    cap, frames = read_bytes(data[:last + cut])
    assert len(frames) == 2 and cap.damage.reason == reason and cap.damage.byte_offset == last


# ---------------------------------------------------------------------------
# Compressed damage
# ---------------------------------------------------------------------------

COMPRESSORS = {
    "gzip": gzip.compress,
    "zstd": lambda d: zstandard.ZstdCompressor().compress(d),
    "xz": lzma.compress,
}


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_compressed_round_trip(kind):
    data = pcap_bytes(500)
    cap, frames = read_bytes(COMPRESSORS[kind](data), chunk_size=1000)
    assert cap.compression == kind and cap.damage is None and len(frames) == 500


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_truncated_compressed_stream(kind):
    raw = pcap_bytes(10000)  # several zstd blocks of 128 KiB: zstd outputs whole blocks only
    packed = COMPRESSORS[kind](raw)
    cap, frames = read_bytes(packed[:len(packed) * 2 // 3])
    assert 0 < len(frames) < 10000 and cap.damage is not None
    assert f"the {kind} stream is truncated" in cap.damage.reason
    assert [f.data for f in frames] == [bytes([i % 256]) * 38 for i in range(len(frames))]


def test_compressed_stream_truncated_at_a_record_boundary_is_still_damage():
    packed = gzip.compress(pcap_bytes(10))
    cap, frames = read_bytes(packed[:-8])  # only the CRC and size trailer are missing
    assert len(frames) == 10
    assert cap.damage.reason == "the gzip stream is truncated (it ends before its end marker)"
    assert cap.damage.byte_offset == 24 + 10 * 54 and cap.damage.frame == 11


def test_corrupt_gzip_keeps_the_frames_before_the_error():
    random = __import__("random").Random(7)
    raw = io.BytesIO()
    write_pcap(raw, [(T0 + i, random.randbytes(60)) for i in range(20000)], ETHERNET)
    packed = bytearray(gzip.compress(raw.getvalue(), mtime=0))
    packed[len(packed) // 2] ^= 0xFF
    cap, frames = read_bytes(bytes(packed))
    # Random payloads are stored as they are: the flip changes one frame's bytes, not the
    # structure, so every frame comes out, and then the trailer's CRC-32 says the data is bad.
    assert len(frames) == 20000
    assert "the CRC-32 in the trailer" in cap.damage.reason
    assert cap.damage.reason.startswith("gzip data is corrupt at compressed byte ")


def test_concatenated_gzip_members_and_zero_padding():
    raw = pcap_bytes(10)
    packed = gzip.compress(raw[:100]) + gzip.compress(raw[100:]) + b"\x00" * 16
    cap, frames = read_bytes(packed)
    assert len(frames) == 10 and cap.damage is None
    assert cap.counters.get("compressed_trailing_garbage", 0) == 0


def test_garbage_after_gzip_is_counted():
    cap, frames = read_bytes(gzip.compress(pcap_bytes(3)) + b"trailing junk")
    assert len(frames) == 3 and cap.damage is None
    assert cap.counters["compressed_trailing_garbage"] == 1


def test_concatenated_zstd_frames_and_xz_streams():
    raw = pcap_bytes(10)
    z = zstandard.ZstdCompressor()
    assert len(read_bytes(z.compress(raw[:50]) + z.compress(raw[50:]))[1]) == 10
    assert len(read_bytes(lzma.compress(raw[:50]) + lzma.compress(raw[50:]))[1]) == 10


def test_read_error_mid_stream_is_damage():
    class Failing(io.RawIOBase):
        def __init__(self, data):
            self._data = data
            self._sent = False

        def readable(self):
            return True

        def readinto(self, b):
            if self._sent:
                raise OSError(5, "Input/output error")
            n = min(len(b), len(self._data))
            b[:n] = self._data[:n]
            self._data = self._data[n:]
            self._sent = not self._data
            return n

    data = pcap_bytes(3)
    with open_capture(Failing(data[:24 + 54 + 20])) as cap:
        frames = list(cap.frames())
    assert len(frames) == 1
    assert cap.damage.reason == "file ends inside a record: 20 of 54 bytes (read error: Input/output error)"


def test_writer_can_make_an_inconsistent_record_for_tests():
    out = io.BytesIO()
    with PcapWriter(out, ETHERNET) as w:
        w.write_record(T0, b"abc", 3, caplen=300)
    cap, frames = read_bytes(out.getvalue())
    assert frames == [] and cap.damage.reason == "file ends inside a record: 19 of 316 bytes"

"""Write captures with our writers, read them back exactly: every variant the readers handle."""
from __future__ import annotations

import io
import math
import os
import struct

import numpy as np
import pytest

from tcpscope.capture import (
    CaptureError,
    Frame,
    PcapngWriter,
    PcapWriter,
    open_capture,
    write_pcap,
    write_pcapng,
)

ETHERNET, NULL, RAW, SLL, SLL2 = 1, 0, 101, 113, 276
T0 = 1_700_000_000_123_456_789  # an arbitrary instant, to the nanosecond


def payload(i: int, n: int = 60) -> bytes:
    return bytes((i + k) % 256 for k in range(n))


def read(source, **kwargs):
    """(reader, frames) after reading everything."""
    with open_capture(source, **kwargs) as cap:
        frames = list(cap.frames())
    return cap, frames


# ---------------------------------------------------------------------------
# pcap
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcap_round_trip(tmp_path, byteorder, nanosecond):
    path = tmp_path / "x.pcap"
    times = [T0, T0 + 1, T0 + 999_999_999, 0, (2**32 - 1) * 10**9 + 999_999_999]
    with PcapWriter(path, SLL, nanosecond=nanosecond, snaplen=80, byteorder=byteorder) as w:
        for i, ts in enumerate(times):
            w.write(ts, payload(i, 40 + 20 * i))
    cap, frames = read(path)

    assert cap.format == "pcap" and cap.compression is None and cap.damage is None
    assert cap.byteorder == byteorder and cap.nanosecond is nanosecond
    [iface] = cap.interfaces
    assert (iface.index, iface.linktype, iface.snaplen) == (0, SLL, 80)
    assert (iface.tsresol_base, iface.tsresol_exp, iface.fcs_len) == (10, 9 if nanosecond else 6, None)
    expected_ts = [t if nanosecond else t - t % 1000 for t in times]
    assert [f.ts_ns for f in frames] == expected_ts
    assert [f.origlen for f in frames] == [40 + 20 * i for i in range(5)]
    assert [f.caplen for f in frames] == [min(80, 40 + 20 * i) for i in range(5)]
    assert [f.data for f in frames] == [payload(i, 40 + 20 * i)[:80] for i in range(5)]
    assert [f.number for f in frames] == [1, 2, 3, 4, 5]
    assert {f.linktype for f in frames} == {SLL} and {f.iface for f in frames} == {0}
    assert cap.counters["frames"] == 5
    assert cap.counters["snaplen_truncated"] == 2  # the 100- and 120-byte frames


def test_batch_columns_and_types(tmp_path):
    path = tmp_path / "x.pcap"
    write_pcap(path, [(T0 + i, payload(i)) for i in range(10)], ETHERNET, nanosecond=True)
    with open_capture(path) as cap:
        [batch] = list(cap)
    assert len(batch) == 10 and batch.first_frame == 1
    assert batch.offset.dtype == np.int64 and batch.ts_ns.dtype == np.int64
    assert batch.caplen.dtype == np.uint32 and batch.origlen.dtype == np.uint32
    assert batch.iface.dtype == np.uint16 and batch.linktype.dtype == np.uint16
    assert batch.frame_bytes(3) == payload(3)
    assert bytes(batch.data[batch.offset[3]:batch.offset[3] + 60]) == payload(3)
    assert list(batch.frame_numbers) == list(range(1, 11))


def test_batches_split_at_batch_frames_and_number_on(tmp_path):
    path = tmp_path / "x.pcap"
    write_pcap(path, [(T0 + i, payload(i, 10 + i)) for i in range(100)], ETHERNET)
    with open_capture(path, batch_frames=7) as cap:
        batches = list(cap)
    assert [len(b) for b in batches] == [7] * 14 + [2]
    assert [b.first_frame for b in batches] == list(range(1, 100, 7))
    frames = [f for b in batches for f in b.frames()]
    assert [f.data for f in frames] == [payload(i, 10 + i) for i in range(100)]


@pytest.mark.parametrize("chunk_size", [64, 100, 333, 4096])
def test_records_cut_by_chunk_ends_and_bigger_than_a_chunk(tmp_path, chunk_size):
    path = tmp_path / "x.pcap"
    sizes = [1, 5000, 60, 0, 100_000, 64, 200_000, 3]  # several far bigger than the chunk
    write_pcap(path, [(T0 + i, payload(i, n)) for i, n in enumerate(sizes)], ETHERNET)
    cap, frames = read(path, chunk_size=chunk_size)
    assert cap.damage is None
    assert [f.data for f in frames] == [payload(i, n) for i, n in enumerate(sizes)]


def test_modified_pcap_and_its_extra_fields(tmp_path):
    path = tmp_path / "m.pcap"
    with PcapWriter(path, ETHERNET, modified=True, byteorder=">") as w:
        w.write(T0, payload(1), ifindex=3, protocol=0x0800, pkt_type=4)
        w.write(T0 + 1000, payload(2), ifindex=-1, protocol=0x86DD, pkt_type=0)
    with open_capture(path) as cap:
        [batch] = list(cap)
    assert cap.format == "pcap-modified"
    assert list(batch.extra["ifindex"]) == [3, -1]
    assert list(batch.extra["protocol"]) == [0x0800, 0x86DD]
    assert list(batch.extra["pkt_type"]) == [4, 0]
    assert [f.data for f in batch.frames()] == [payload(1), payload(2)]
    assert list(batch.ts_ns) == [T0 - T0 % 1000, T0 + 1000 - T0 % 1000]


@pytest.mark.parametrize("version", [(2, 2), (2, 3)])
def test_old_versions_with_swapped_lengths(tmp_path, version):
    path = tmp_path / "old.pcap"
    with PcapWriter(path, ETHERNET, version=version, snaplen=50) as w:
        w.write(T0, payload(1, 80))  # caplen 50, origlen 80, stored swapped
    cap, [frame] = read(path)
    assert (frame.caplen, frame.origlen, frame.data) == (50, 80, payload(1, 80)[:50])
    assert cap.version == version


def test_fcs_bits_of_the_linktype_field(tmp_path):
    path = tmp_path / "fcs.pcap"
    with PcapWriter(path, ETHERNET, fcs_len=4) as w:
        w.write(T0, payload(0))
    cap, [frame] = read(path)
    assert cap.interfaces[0].linktype == ETHERNET and cap.interfaces[0].fcs_len == 4
    assert frame.linktype == ETHERNET


def test_caplen_over_snaplen_is_clipped_like_libpcap(tmp_path):
    path = tmp_path / "clip.pcap"
    with PcapWriter(path, ETHERNET, snaplen=64) as w:
        w.write_record(T0, payload(0, 100), 100)  # a record longer than the file's snaplen
        w.write(T0 + 1, payload(1, 10))
    cap, frames = read(path)
    assert [(f.caplen, f.origlen) for f in frames] == [(64, 100), (10, 10)]
    assert frames[0].data == payload(0, 100)[:64] and frames[1].data == payload(1, 10)
    assert cap.counters["caplen_clipped_to_snaplen"] == 1 and cap.damage is None


def test_caplen_over_origlen_is_kept_as_recorded(tmp_path):
    path = tmp_path / "odd.pcap"
    with PcapWriter(path, ETHERNET) as w:
        w.write(T0, payload(0, 60), origlen=40)
    cap, [frame] = read(path)
    assert (frame.caplen, frame.origlen, frame.data) == (60, 40, payload(0, 60))
    assert cap.counters["caplen_exceeds_origlen"] == 1


def test_timestamp_fraction_out_of_range_is_carried_and_kept_raw(tmp_path):
    path = tmp_path / "ts.pcap"
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        f.write(struct.pack("<IIII", 100, 999_999, 4, 4) + b"abcd")
        f.write(struct.pack("<IIII", 100, 1_500_000, 4, 4) + b"efgh")  # 1.5 s of microseconds
    with open_capture(path) as cap:
        [batch] = list(cap)
    assert list(batch.ts_ns) == [100_999_999_000, 101_500_000_000]
    assert cap.counters["timestamp_fraction_out_of_range"] == 1
    assert list(batch.extra["ts_sec"]) == [100, 100]
    assert list(batch.extra["ts_frac"]) == [999_999, 1_500_000]


def test_header_only_pcap_is_an_empty_capture(tmp_path):
    path = tmp_path / "empty.pcap"
    write_pcap(path, [], RAW)
    cap, frames = read(path)
    assert frames == [] and cap.damage is None and cap.interfaces[0].linktype == RAW


# ---------------------------------------------------------------------------
# pcapng
# ---------------------------------------------------------------------------


def test_pcapng_interfaces_link_types_and_names(tmp_path):
    path = tmp_path / "x.pcapng"
    with PcapngWriter(path) as w:
        eth = w.add_interface(ETHERNET, "eth0", description="first", snaplen=0)
        lo = w.add_interface(NULL, "lo0", tsresol_exp=6)
        sll = w.add_interface(SLL2, "any", tsresol_exp=3)
        w.write(T0, eth, payload(0))
        w.write(T0 + 5, lo, payload(1), flags=1)
        w.write(T0 + 7, sll, payload(2, 100), origlen=1500)
    cap, frames = read(path)
    assert cap.format == "pcapng" and cap.damage is None
    assert [(i.index, i.linktype, i.name, i.section, i.local_index) for i in cap.interfaces] == [
        (0, ETHERNET, "eth0", 0, 0), (1, NULL, "lo0", 0, 1), (2, SLL2, "any", 0, 2)]
    assert cap.interfaces[0].description == "first" and cap.interfaces[0].snaplen == 0
    assert [(i.tsresol_base, i.tsresol_exp) for i in cap.interfaces] == [(10, 9), (10, 6), (10, 3)]
    assert [(f.iface, f.linktype) for f in frames] == [(0, ETHERNET), (1, NULL), (2, SLL2)]
    assert [f.ts_ns for f in frames] == [T0, T0 + 5 - (T0 + 5) % 1000, T0 + 7 - (T0 + 7) % 10**6]
    assert (frames[2].caplen, frames[2].origlen) == (100, 1500)
    assert cap.counters["enhanced_packet_blocks"] == 3 and cap.counters["sections"] == 1
    assert cap.counters["interfaces"] == 3
    assert cap.sections[0].userappl == "tcpscope"


def test_pcapng_interfaces_are_known_before_iterating(tmp_path):
    path = tmp_path / "x.pcapng"
    with PcapngWriter(path) as w:
        w.add_interface(ETHERNET, "eth0")
        w.write(T0, 0, payload(0))
    with open_capture(path) as cap:
        assert [i.name for i in cap.interfaces] == ["eth0"]
        assert sum(len(b) for b in cap) == 1


@pytest.mark.parametrize(
    "base, exp",
    [(10, 0), (10, 3), (10, 6), (10, 9), (10, 12), (10, 19), (2, 0), (2, 10), (2, 30), (2, 40), (2, 63)],
)
def test_pcapng_timestamp_resolutions(tmp_path, base, exp):
    path = tmp_path / "r.pcapng"
    per_second = base**exp
    # Timestamps the resolution can represent exactly: whole units.
    candidates = [0, 1, per_second - 1, 1_700_000_000 * per_second + per_second // 3, 2**62 + 12345, 2**64 - 1]
    units = [u for u in candidates if u < 2**64]
    expected = [u * 10**9 // per_second for u in units]
    with PcapngWriter(path, byteorder=">") as w:
        w.add_interface(ETHERNET, tsresol_base=base, tsresol_exp=exp)
        for u in units:  # write the raw units, so the test does not depend on the writer's rounding
            w.write_block(6, struct.pack(">IIIII", 0, u >> 32, u & 0xFFFFFFFF, 4, 4) + b"abcd")
    cap, frames = read(path)
    assert [f.ts_ns for f in frames] == [min(e, 2**63 - 1) for e in expected]
    assert (cap.interfaces[0].tsresol_base, cap.interfaces[0].tsresol_exp) == (base, exp)


@pytest.mark.parametrize("base, exp", [(10, 3), (10, 9), (10, 12), (2, 10), (2, 30)])
def test_pcapng_writer_round_trips_representable_times(tmp_path, base, exp):
    path = tmp_path / "w.pcapng"
    per_second = base**exp
    step = per_second // math.gcd(per_second, 10**9)  # j / per_second s is whole ns iff step | j
    start = T0 - T0 % 10**9
    times = [start + j * 10**9 // per_second for j in (0, step, 5 * step, per_second - step)]
    with PcapngWriter(path) as w:
        # if_tsoffset keeps 10^-12 units of 2023 within 64 bits
        w.add_interface(RAW, tsresol_base=base, tsresol_exp=exp, tsoffset=start // 10**9)
        for t in times:
            w.write(t, 0, b"x")
    _, frames = read(path)
    assert [f.ts_ns for f in frames] == times


def test_pcapng_tsoffset_positive_and_negative(tmp_path):
    path = tmp_path / "off.pcapng"
    with PcapngWriter(path) as w:
        a = w.add_interface(ETHERNET, "plus", tsoffset=3600)
        b = w.add_interface(ETHERNET, "minus", tsoffset=-1_000_000_000, tsresol_exp=6)
        w.write(T0, a, b"a")
        w.write(T0 + 5000, b, b"b")
    cap, frames = read(path)
    assert [i.tsoffset for i in cap.interfaces] == [3600, -1_000_000_000]
    assert [f.ts_ns for f in frames] == [T0, T0 + 5000 - (T0 + 5000) % 1000]


def test_pcapng_raw_tsoffset_is_added(tmp_path):
    path = tmp_path / "off.pcapng"
    with PcapngWriter(path) as w:
        w.add_interface(ETHERNET, tsoffset=1_000_000_000, tsresol_exp=6)
        w.write_block(6, struct.pack("<IIIII", 0, 0, 2_500_000, 1, 1) + b"z")
    _, [frame] = read(path)
    assert frame.ts_ns == 1_000_000_002_500_000_000


def test_pcapng_timestamps_beyond_2262_saturate_and_are_counted(tmp_path):
    path = tmp_path / "far.pcapng"
    with PcapngWriter(path) as w:
        w.add_interface(ETHERNET, tsresol_exp=0)  # whole seconds
        w.write_block(6, struct.pack("<IIIII", 0, 0xFFFFFFFF, 0xFFFFFFFF, 1, 1) + b"z")
        w.add_interface(ETHERNET, tsresol_exp=0, tsoffset=-(2**63))
        w.write_block(6, struct.pack("<IIIII", 1, 0, 5, 1, 1) + b"z")
        w.add_interface(ETHERNET, tsresol_exp=0, tsoffset=-(2**62))
        w.write_block(6, struct.pack("<IIIII", 2, 0xFFFFFFFF, 0xFFFFFFFF, 1, 1) + b"z")
    cap, frames = read(path)
    assert [f.ts_ns for f in frames] == [2**63 - 1, -(2**63), 2**63 - 1]
    assert cap.counters["timestamp_out_of_range"] == 3


def test_pcapng_time_2106(tmp_path):
    path = tmp_path / "2106.pcapng"
    with PcapngWriter(path) as w:
        w.add_interface(ETHERNET)
        w.write(2**32 * 10**9, 0, b"late")
    _, [frame] = read(path)
    assert frame.ts_ns == 2**32 * 10**9


def test_pcapng_sections_with_different_byte_orders(tmp_path):
    path = tmp_path / "s.pcapng"
    with PcapngWriter(path, byteorder="<") as w:
        w.add_interface(ETHERNET, "eth0")
        w.add_interface(NULL, "lo0")
        w.write(T0, 1, b"s0-lo0")
        w.new_section(">")
        w.add_interface(RAW, "tun0", tsresol_base=2, tsresol_exp=10)
        w.write(T0 - T0 % 10**9, 0, b"s1-tun0")  # section-local interface 0
        w.new_section("<")
        w.add_interface(SLL, "any")
        w.add_interface(ETHERNET, "eth1")
        w.write(T0 + 2, 1, b"s2-eth1")
        w.write(T0 + 3, 0, b"s2-any")
    cap, frames = read(path)
    assert cap.damage is None
    assert [(i.index, i.name, i.section, i.local_index) for i in cap.interfaces] == [
        (0, "eth0", 0, 0), (1, "lo0", 0, 1), (2, "tun0", 1, 0), (3, "any", 2, 0), (4, "eth1", 2, 1)]
    assert [s.byteorder for s in cap.sections] == ["<", ">", "<"]
    assert [(f.data, f.iface, f.linktype) for f in frames] == [
        (b"s0-lo0", 1, NULL), (b"s1-tun0", 2, RAW), (b"s2-eth1", 4, ETHERNET), (b"s2-any", 3, SLL)]
    assert [f.ts_ns for f in frames] == [T0, T0 - T0 % 10**9, T0 + 2, T0 + 3]
    assert cap.counters["sections"] == 3


def test_pcapng_simple_packet_blocks(tmp_path):
    path = tmp_path / "spb.pcapng"
    with PcapngWriter(path, byteorder=">") as w:
        w.add_interface(ETHERNET, "eth0", snaplen=50)
        w.add_interface(NULL, "lo0")
        w.write_simple(payload(0, 80))  # cut to the interface's snaplen
        w.write_simple(payload(1, 30))
        w.write(T0, 1, b"epb")
        # An SPB whose original length exceeds what the block holds (and the snaplen).
        w.write_block(3, struct.pack(">I", 9000) + payload(2, 40))
    with open_capture(path) as cap:
        batches = list(cap)
    frames = [f for b in batches for f in b.frames()]
    assert [(f.caplen, f.origlen, f.iface, f.ts_ns) for f in frames] == [
        (50, 80, 0, 0), (30, 30, 0, 0), (3, 3, 1, T0), (40, 9000, 0, 0)]
    assert [f.data for f in frames] == [payload(0, 80)[:50], payload(1, 30), b"epb", payload(2, 40)]
    assert list(batches[0].extra["no_timestamp"]) == [True, True, False, True]
    assert cap.counters["simple_packet_blocks"] == 3


def test_pcapng_obsolete_packet_blocks(tmp_path):
    path = tmp_path / "pb.pcapng"
    with PcapngWriter(path) as w:
        w.add_interface(ETHERNET, "eth0", tsresol_exp=6)
        w.add_interface(RAW, "raw0", tsresol_exp=6)
        w.write_obsolete(T0, 1, payload(0, 70), origlen=1000, drops=2)
        w.write_obsolete(T0 + 10**6, 0, payload(1, 3))
    cap, frames = read(path)
    assert [(f.iface, f.linktype, f.caplen, f.origlen) for f in frames] == [
        (1, RAW, 70, 1000), (0, ETHERNET, 3, 3)]
    assert [f.ts_ns for f in frames] == [T0 - T0 % 1000, T0 + 10**6 - T0 % 1000]
    assert cap.counters["obsolete_packet_blocks"] == 2


def test_pcapng_other_blocks_are_skipped_and_counted(tmp_path):
    path = tmp_path / "other.pcapng"
    with PcapngWriter(path) as w:
        w.write_block(4, struct.pack("<HH", 0, 0))  # NRB (empty: just nrb_record_end)
        w.add_interface(ETHERNET)
        w.write_block(0x00000BAD, struct.pack("<I", 32473) + b"custom")  # Custom Block
        w.write(T0, 0, b"one")
        w.write_block(5, struct.pack("<III", 0, 0, 0))  # ISB
        w.write_block(0x0000000A, struct.pack("<II", 0x544C534B, 4) + b"keys")  # DSB
        w.write_block(0x40000BAD, struct.pack("<I", 32473))  # Custom Block, not to be copied
        w.write_block(0x12345678, b"who knows")  # unknown
        w.write(T0 + 1, 0, b"two")
    cap, frames = read(path)
    assert [f.data for f in frames] == [b"one", b"two"]
    c = cap.counters
    assert (c["name_resolution_blocks"], c["interface_statistics_blocks"], c["decryption_secrets_blocks"],
            c["custom_blocks"], c["unknown_blocks_skipped"]) == (1, 1, 1, 2, 1)


def test_pcapng_without_packets(tmp_path):
    only_shb = tmp_path / "shb.pcapng"
    with PcapngWriter(only_shb, byteorder=">"):
        pass
    cap, frames = read(only_shb)
    assert frames == [] and cap.damage is None and cap.interfaces == []
    shb_idb = tmp_path / "idb.pcapng"
    with PcapngWriter(shb_idb) as w:
        w.add_interface(ETHERNET, "eth0")
    cap, frames = read(shb_idb)
    assert frames == [] and cap.damage is None and cap.interfaces[0].name == "eth0"


def test_pcapng_fcs_len_option(tmp_path):
    path = tmp_path / "fcs.pcapng"
    with PcapngWriter(path) as w:
        w.add_interface(ETHERNET, fcs_len=4)
    cap, _ = read(path)
    assert cap.interfaces[0].fcs_len == 4


def test_pcapng_caplen_over_interface_snaplen_is_kept_and_counted(tmp_path):
    path = tmp_path / "x.pcapng"
    with PcapngWriter(path) as w:
        w.add_interface(ETHERNET, snaplen=10)
        w.write_block(6, struct.pack("<IIIII", 0, 0, 0, 20, 20) + payload(0, 20))
    cap, [frame] = read(path)
    assert frame.data == payload(0, 20) and cap.counters["caplen_exceeds_snaplen"] == 1


@pytest.mark.parametrize("chunk_size", [64, 256, 5000])
def test_pcapng_with_small_chunks_and_big_blocks(tmp_path, chunk_size):
    path = tmp_path / "big.pcapng"
    sizes = [10, 70_000, 3, 300_000, 50]
    with PcapngWriter(path) as w:
        w.add_interface(ETHERNET, snaplen=0)
        for i, n in enumerate(sizes):
            w.write(T0 + i, 0, payload(i, n))
            if i == 2:
                w.new_section(">")
                w.add_interface(RAW, "r", snaplen=0)
    cap, frames = read(path, chunk_size=chunk_size, batch_frames=2)
    assert cap.damage is None
    assert [f.data for f in frames] == [payload(i, n) for i, n in enumerate(sizes)]
    assert [f.iface for f in frames] == [0, 0, 0, 1, 1]


# ---------------------------------------------------------------------------
# Sources and writers
# ---------------------------------------------------------------------------


def test_reads_a_binary_file_object_and_leaves_it_open(tmp_path):
    data = io.BytesIO()
    write_pcapng(data, [(T0, b"abc"), (T0 + 1, b"defg", 100)], ETHERNET)
    data.seek(0)
    cap, frames = read(data)
    assert cap.name == "<stream>" and not data.closed
    assert frames == [Frame(1, T0, 0, ETHERNET, 3, 3, b"abc"), Frame(2, T0 + 1, 0, ETHERNET, 4, 100, b"defg")]


class _Pipe(io.RawIOBase):
    """A non-seekable stream that returns at most 7 bytes per read."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), 7, len(self._data))
        b[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


def test_short_reads_from_a_non_seekable_stream(tmp_path):
    buf = io.BytesIO()
    write_pcap(buf, [(T0 + i, payload(i, 5 * i)) for i in range(30)], ETHERNET)
    cap, frames = read(_Pipe(buf.getvalue()), chunk_size=100)
    assert cap.damage is None and [f.data for f in frames] == [payload(i, 5 * i) for i in range(30)]


def test_path_like_and_name(tmp_path):
    path = tmp_path / "p.pcap"
    write_pcap(path, [(T0, b"x")], ETHERNET)
    with open_capture(path) as cap:
        assert cap.name == str(path)
    with open_capture(str(path)) as cap:
        assert cap.name == str(path)


def test_writer_to_a_path_is_atomic(tmp_path):
    path = tmp_path / "atomic.pcap"
    with pytest.raises(RuntimeError):
        with PcapWriter(path, ETHERNET) as w:
            w.write(T0, b"x")
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []  # neither the file nor its temporary
    w = PcapWriter(path, ETHERNET)
    w.write(T0, b"x")
    assert not path.exists()  # not before close
    w.close()
    assert path.exists() and len(os.listdir(tmp_path)) == 1
    with pytest.raises(ValueError):
        w.write(T0, b"late")


def test_writer_replaces_an_existing_file_only_at_close(tmp_path):
    path = tmp_path / "f.pcap"
    write_pcap(path, [(T0, b"old")], ETHERNET)
    with pytest.raises(KeyError):
        with PcapWriter(path, ETHERNET) as w:
            w.write(T0, b"new")
            raise KeyError
    assert read(path)[1][0].data == b"old"


def test_writer_to_a_file_object_leaves_it_open():
    out = io.BytesIO()
    with PcapngWriter(out) as w:
        w.add_interface(ETHERNET)
        w.write(T0, 0, b"x")
    assert not out.closed and out.getvalue()[:4] == b"\x0a\x0d\x0d\x0a"


def test_writer_rejects_what_it_cannot_write(tmp_path):
    with pytest.raises(ValueError):
        PcapWriter(io.BytesIO(), ETHERNET, modified=True, nanosecond=True)
    with pytest.raises(ValueError):
        PcapWriter(io.BytesIO(), ETHERNET).write(-1, b"x")
    with pytest.raises(ValueError):
        PcapWriter(io.BytesIO(), ETHERNET, byteorder="=")
    w = PcapngWriter(io.BytesIO())
    with pytest.raises(ValueError):
        w.write(T0, 0, b"no interface yet")
    with pytest.raises(ValueError):
        w.write_simple(b"no interface yet")


def test_open_capture_rejects_other_types():
    with pytest.raises(TypeError):
        open_capture(42)  # type: ignore[arg-type]


def test_capture_error_names_the_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"# tcpscope notes\n")
    with pytest.raises(CaptureError) as info:
        open_capture(path)
    assert info.value.name == str(path)
    assert info.value.reason == "not a capture file (pcap or pcapng): starts with 23 20 74 63"
    assert str(info.value) == f"{path}: not a capture file (pcap or pcapng): starts with 23 20 74 63"


def test_atomic_output_writes_into_devices_and_fifos_never_over_them(tmp_path):
    """-o /dev/null must not turn /dev/null into a plain file (as root a rename would)."""
    import stat
    import threading

    from tcpscope.capture.writer import AtomicOutput

    out = AtomicOutput("/dev/null")
    out.write(b"x" * 100)
    out.commit()
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    out = AtomicOutput(fifo)
    out.write(b"through the pipe")
    out.commit()
    reader.join(10)
    assert got == [b"through the pipe"] and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["fifo"]

"""Per-packet views, columns for formatters, damage counters."""
from __future__ import annotations

import socket
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpscope.wire.builder import TCP, UDP, Ether, Frame, IPv4, IPv6, Sll2
from tcpscope.wire.dissect import COUNTER_NAMES, damage_counters, dissect_frame, dissect_frames
from tcpscope.wire.options import Mss, Nop, Sack, Timestamp
from tcpscope.wire.packet import Packet, records_to_columns
from tcpscope.wire.text import format_address, format_addresses, tcp_flags_text

SEG = Frame(Ether(), IPv4(src="192.0.2.10", dst="192.0.2.20"),
            TCP(sport=5000, dport=22, seq=10, ack=20, flags="PA", options=(Nop(), Nop(), Timestamp(3, 4))),
            b"payload")


def test_packet_view():
    raw = SEG.build()
    p = Packet.from_record(dissect_frame(raw, 1), raw, frame=7, ts_ns=123, interface="eth0", linktype=1)
    assert (p.frame, p.ts_ns, p.interface, p.linktype, p.caplen, p.origlen) == (7, 123, "eth0", 1, len(raw), len(raw))
    assert (p.kind, p.src, p.dst, p.sport, p.dport) == ("tcp", "192.0.2.10", "192.0.2.20", 5000, 22)
    assert (p.seq, p.ack, p.win, p.flags_str, p.payload, p.payload_len) == (10, 20, 65535, "P.", b"payload", 7)
    assert p.tcp_checksum == "ok" and p.ip_checksum == "ok" and p.warnings == () and p.complete
    assert p.stop_reason == "none" and p.stop_layer == "none" and p.stop_off is None
    assert p.options[:3] == (Nop(), Nop(), Timestamp(3, 4)) and p.sll_pkttype is None
    assert p.is_tcp


def test_packet_view_of_damage():
    raw = SEG.with_tcp(checksum=1).build()
    p = Packet.from_record(dissect_frame(raw[:60], 1, origlen=len(raw)), raw[:60], frame=1, origlen=len(raw))
    assert p.stop_reason == "truncated_tcp_options" and p.stop_layer == "tcp_options" and p.stop_off == 54
    assert "snaplen_truncated" in p.warnings and p.payload == b"" and p.tcp_checksum == "unverified"
    assert not p.options_complete and p.origlen == len(raw) and not p.complete
    bad = Packet.from_record(dissect_frame(raw, 1), raw, frame=2)
    assert bad.tcp_checksum == "bad" and bad.warnings == ("bad_tcp_checksum",)
    assert bad.tcp_csum == 1 and bad.tcp_csum_calc == dissect_frame(SEG.build(), 1)["tcp_csum"]


def test_packet_view_sll2_and_ipv6():
    f = replace(SEG, link=Sll2(ifindex=3, pkttype=4), ip=IPv6(src="2001:db8::1", dst="fe80::1:2"))
    raw = f.build()
    p = Packet.from_record(dissect_frame(raw, f.linktype), raw, frame=1)
    assert (p.src, p.dst, p.ifindex, p.sll_pkttype, p.ip_version) == ("2001:db8::1", "fe80::1:2", 3, 4, 6)


@pytest.mark.parametrize("text", ["::", "::1", "2001:db8::", "2001:db8:0:1:0:0:0:1", "::ffff:10.1.2.3",
                                  "::10.1.2.3", "fe80::1%0"[:-2], "1:0:0:1:0:0:0:1", "2001:db8:1:2:3:4:5:6"])
def test_ipv6_text_is_inet_ntop(text):
    packed = socket.inet_pton(socket.AF_INET6, text)
    assert format_address(packed, 6) == socket.inet_ntop(socket.AF_INET6, packed)


def test_format_address_versions():
    assert format_address(bytes([1, 2, 3, 4]) + bytes(12), 4) == "1.2.3.4"
    assert format_address(bytes(16), 0) is None


@given(st.lists(st.tuples(st.sampled_from([0, 4, 6]), st.binary(min_size=16, max_size=16)), max_size=50))
@settings(max_examples=200, deadline=None)
def test_format_addresses_equals_one_by_one(rows):
    versions = np.array([v for v, _ in rows], dtype=np.uint8)
    addrs = np.frombuffer(b"".join(a for _, a in rows), dtype=np.uint8).reshape(len(rows), 16)
    assert format_addresses(addrs, versions) == [format_address(a, v) for v, a in rows]


def test_records_to_columns():
    frames = [SEG.build(), SEG.with_tcp(options=(Sack(((1, 2), (3, 4))),), flags="A").build(),
              Frame(Ether(), IPv4(src="192.0.2.10"), UDP(1, 2)).build(), b"\x01" * 10]
    recs = dissect_frames(frames, 1)
    cols = records_to_columns(recs, ["src", "dst", "sport", "sack", "flags_str", "kind_name",
                                     "tcp_csum_verdict", "stop_reason_name"])
    assert cols["src"] == ["192.0.2.10", "192.0.2.10", "192.0.2.10", None]
    assert cols["sport"] == [5000, 5000, 1, 0]
    assert cols["sack"] == [(), ((1, 2), (3, 4)), (), ()]
    assert cols["flags_str"] == ["P.", ".", "none", "none"]
    assert cols["kind_name"] == ["tcp", "tcp", "udp", "unknown"]
    assert cols["tcp_csum_verdict"] == ["ok", "ok", "unverified", "unverified"]
    assert cols["stop_reason_name"] == ["none", "none", "none", "truncated_link"]
    everything = records_to_columns(recs)
    assert set(everything) == set(recs.dtype.names) and all(len(v) == 4 for v in everything.values())


def test_tcpdump_flag_letters():
    assert [tcp_flags_text(f) for f in (0x002, 0x012, 0x018, 0x011, 0x004, 0x014, 0x010, 0x0C2, 0, 0x1FF)] == [
        "S", "S.", "P.", "F.", "R", "R.", ".", "SEW", "none", "FSRP.UEWe"]


def test_damage_counters():
    raw = SEG.build()
    frames = [raw, raw[:20], SEG.with_tcp(checksum=3).build(), raw[:60], SEG.with_tcp(sport=0).build()]
    recs = dissect_frames(frames, 1, origlen=[len(raw), 20, len(raw), len(raw), len(raw)])
    counts = damage_counters(recs)
    assert list(counts) == list(COUNTER_NAMES)
    nonzero = {k: v for k, v in counts.items() if v}
    assert nonzero == {"truncated_ip": 1, "truncated_tcp_options": 1, "snaplen_truncated": 1, "payload_truncated": 1,
                       "bad_tcp_checksum": 1, "zero_port": 1}
    assert "none" not in counts
    empty = damage_counters(dissect_frames([], 1))
    assert set(empty.values()) == {0}


def test_unsupported_linktype_counter():
    recs = dissect_frames([b"abc", b"def"], 4242)
    assert damage_counters(recs)["unsupported_linktype"] == 2

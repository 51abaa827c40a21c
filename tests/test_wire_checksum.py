"""Checksums: correct, bad (with the value tcpdump says it should be), TX offload, when not verified."""
from __future__ import annotations

import re
import struct
import subprocess
from dataclasses import replace

import pytest

from conftest import require_tool
from tcpscope.wire.builder import (
    CSUM_PARTIAL, CSUM_PARTIAL_NO_LEN, TCP, Ether, Fragment, Frame, IPv4, IPv6, Routing,
)
from tcpscope.wire.checksum import fold_add, internet_checksum, ones_sum, partial_checksum, pseudo_header, should_be
from tcpscope.wire.dissect import dissect_frame, dissect_frames
from tcpscope.wire.options import Nop, Timestamp
from tcpscope.wire.record import CSUM, WARNING

SEG = Frame(Ether(), IPv4(src="10.1.2.3", dst="10.3.2.1"),
            TCP(sport=1234, dport=80, seq=1, ack=2, flags="PA", options=(Nop(), Nop(), Timestamp(5, 6))),
            b"some payload!")
SEG6 = replace(SEG, ip=IPv6(src="2001:db8::a", dst="2001:db8::b"))


def dis(frame: Frame, **kw):
    return dissect_frame(frame.build(), frame.linktype, **kw)


def correct_value(frame: Frame) -> int:
    return int(dis(frame)["tcp_csum"])


def test_ones_sum_reference():
    # RFC 1071 §3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2
    assert ones_sum(bytes.fromhex("0001f203f4f5f6f7")) == 0xDDF2
    assert ones_sum(b"") == 0 and ones_sum(b"\xff\xff") == 0xFFFF and ones_sum(b"\x01") == 0x0100
    assert fold_add(0xFFFF, 1) == 1


@pytest.mark.parametrize("frame", [SEG, SEG6], ids=["v4", "v6"])
def test_correct_checksum(frame):
    r = dis(frame)
    assert r["tcp_csum_status"] == CSUM["OK"] and r["tcp_csum_calc"] == r["tcp_csum"]
    assert r["warnings"] == 0


@pytest.mark.parametrize("frame", [SEG, SEG6], ids=["v4", "v6"])
@pytest.mark.parametrize("delta", [1, 0x100, 0x8000, 0xFFFE])
def test_bad_checksum_reports_what_it_should_be(frame, delta):
    good = correct_value(frame)
    wrong = (good + delta) & 0xFFFF
    r = dis(frame.with_tcp(checksum=wrong))
    assert r["tcp_csum"] == wrong
    assert r["tcp_csum_status"] == CSUM["BAD"] and r["warnings"] == WARNING["BAD_TCP_CHECKSUM"]
    assert r["tcp_csum_calc"] == good


def test_zero_and_ffff_are_the_same_in_ones_complement():
    # Choose the last payload word so that the correct field is 0x0000: with a zero word
    # the field is ~S0, and a word equal to ~S0 makes the sum 0xFFFF.
    c0 = correct_value(SEG.with_payload(b"\x00\x00"))
    f = SEG.with_payload(c0.to_bytes(2, "big"))
    assert correct_value(f) == 0
    # 0xFFFF there is the same number in one's complement (RFC 1624 §3): tcpdump says "correct"
    r = dis(f.with_tcp(checksum=0xFFFF))
    assert r["tcp_csum_status"] == CSUM["OK"]


@pytest.mark.parametrize("frame", [SEG, SEG6], ids=["v4", "v6"])
@pytest.mark.parametrize("form", [CSUM_PARTIAL, CSUM_PARTIAL_NO_LEN, "complement", "complement-no-len"])
def test_offload_partial_sum(frame, form):
    src, dst = frame.ip.src_bytes(), frame.ip.dst_bytes()
    seg_len = len(frame.build()) - 14 - (20 if frame.ip.version == 4 else 40)
    value = {
        CSUM_PARTIAL: partial_checksum(src, dst, seg_len),
        CSUM_PARTIAL_NO_LEN: partial_checksum(src, dst, 0),
        "complement": ~partial_checksum(src, dst, seg_len) & 0xFFFF,
        "complement-no-len": ~partial_checksum(src, dst, 0) & 0xFFFF,
    }[form]
    r = dis(frame.with_tcp(checksum=value))
    assert r["tcp_csum_status"] == CSUM["OFFLOAD"]
    assert not r["warnings"] & WARNING["BAD_TCP_CHECKSUM"]
    assert r["tcp_csum_calc"] == correct_value(frame)
    if form == CSUM_PARTIAL:
        assert dis(frame.with_tcp(checksum=CSUM_PARTIAL))["tcp_csum"] == value


def test_not_verified_when_asked_not_to():
    r = dis(SEG.with_tcp(checksum=1), verify_checksums=False)
    assert r["tcp_csum_status"] == CSUM["UNVERIFIED"] and r["ip_csum_status"] == CSUM["UNVERIFIED"]
    assert r["warnings"] == 0 and r["tcp_csum"] == 1


def test_not_verified_when_not_all_captured():
    raw = SEG.with_tcp(checksum=1).build()
    r = dissect_frame(raw[:-1], 1, origlen=len(raw))
    assert r["tcp_csum_status"] == CSUM["UNVERIFIED"] and not r["warnings"] & WARNING["BAD_TCP_CHECKSUM"]


def test_not_verified_on_fragments():
    assert dis(SEG.with_ip(mf=True).with_tcp(checksum=1))["tcp_csum_status"] == CSUM["UNVERIFIED"]
    first6 = replace(SEG6, ip=replace(SEG6.ip, ext=(Fragment(0, True, 3),)))
    assert dis(first6.with_tcp(checksum=1))["tcp_csum_status"] == CSUM["UNVERIFIED"]


def test_ipv6_atomic_fragment_is_verified():
    # RFC 6946: offset 0 and M=0 is not a fragment. (tcpdump prints no checksum for it.)
    atomic = replace(SEG6, ip=replace(SEG6.ip, ext=(Fragment(0, False, 3),)))
    assert dis(atomic)["tcp_csum_status"] == CSUM["OK"]
    assert dis(atomic.with_tcp(checksum=1))["tcp_csum_status"] == CSUM["BAD"]


def test_source_route_final_destination_enters_the_pseudo_header():
    lsrr = bytes([131, 11, 4]) + bytes([10, 9, 9, 1]) + bytes([10, 9, 9, 2])
    f = SEG.with_ip(options=lsrr)
    assert f.ip.final_dst() == bytes([10, 9, 9, 2])
    assert dis(f)["tcp_csum_status"] == CSUM["OK"]
    # the same bytes, checksummed over the header's destination instead, are wrong
    seg = f.build()[14 + 32:]
    zeroed = seg[:16] + b"\x00\x00" + seg[18:]
    naive = internet_checksum(pseudo_header(f.ip.src_bytes(), f.ip.dst_bytes(), len(seg)) + zeroed)
    assert dis(f.with_tcp(checksum=naive))["tcp_csum_status"] == CSUM["BAD"]


@pytest.mark.parametrize("rtype,addrs,final", [
    (0, ("2001:db8::1:1", "2001:db8::1:2"), "2001:db8::1:2"),
    (2, ("2001:db8::2:1",), "2001:db8::2:1"),
    (4, ("2001:db8::4:1", "2001:db8::4:2"), "2001:db8::4:1"),  # SRH: segment 0 is the last hop
])
def test_routing_header_final_destination(rtype, addrs, final):
    f = replace(SEG6, ip=replace(SEG6.ip, ext=(Routing(rtype, 1, addrs),)))
    assert f.ip.final_dst() == IPv6(dst=final).dst_bytes()
    assert dis(f)["tcp_csum_status"] == CSUM["OK"]


def test_ipv4_header_checksum():
    r = dis(SEG)
    assert r["ip_csum_status"] == CSUM["OK"]
    r = dis(SEG.with_ip(checksum=0))
    assert r["ip_csum_status"] == CSUM["BAD"] and r["warnings"] == WARNING["BAD_IP_CHECKSUM"]
    assert r["ip_csum_calc"] == dis(SEG)["ip_csum"]
    assert r["tcp_csum_status"] == CSUM["OK"]  # the TCP checksum does not cover the IP header


def test_should_be_matches_the_python_reference():
    for delta in (1, 77, 0x1234):
        f = SEG.with_tcp(checksum=(correct_value(SEG) + delta) & 0xFFFF)
        raw = f.build()
        seg = raw[34:]
        total = ones_sum(pseudo_header(f.ip.src_bytes(), f.ip.dst_bytes(), len(seg)) + seg)
        carried = struct.unpack(">H", seg[16:18])[0]
        assert should_be(carried, total) == dis(f)["tcp_csum_calc"]


def test_big_tcp_ipv4_length_is_cut_to_16_bits_like_tcpdump():
    big = SEG.with_ip(total_length=0).with_payload(b"x" * 70000)
    r = dis(big)
    assert r["payload_len"] == 70000 and r["ip_len"] == 20 + 32 + 70000
    assert r["tcp_csum_status"] == CSUM["OK"]  # the builder cuts the pseudo length the same way


# --------------------------------------------------------------------------
# Oracle: tcpdump -v says the same on the same frames
# --------------------------------------------------------------------------

def _write_pcap(path, frames, linktype):
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
        for i, raw in enumerate(frames):
            fh.write(struct.pack("<IIII", i, 0, len(raw), len(raw)) + raw)


@pytest.mark.oracle
def test_tcpdump_agrees_on_verdict_and_value(tmp_path):
    tcpdump = require_tool("tcpdump")
    frames = [SEG, SEG6, SEG.with_tcp(checksum=0x1234), SEG6.with_tcp(checksum=0xBEEF),
              SEG.with_tcp(checksum=CSUM_PARTIAL), SEG.with_ip(options=bytes([131, 7, 4, 10, 9, 9, 9]) + b"\x00"),
              SEG.with_ip(checksum=0), SEG.with_payload(b"odd")]
    raws = [f.build() for f in frames]
    path = tmp_path / "c.pcap"
    _write_pcap(path, raws, 1)
    out = subprocess.run([tcpdump, "-nn", "-v", "-r", str(path)], capture_output=True, text=True).stdout
    verdicts = re.findall(r"Flags \[[^\]]*\], cksum 0x([0-9a-f]{4}) \((correct|incorrect -> 0x([0-9a-f]{4}))\)", out)
    assert len(verdicts) == len(frames)
    recs = dissect_frames(raws, 1)
    for (carried, word, should), r in zip(verdicts, recs):
        assert int(carried, 16) == r["tcp_csum"]
        if word == "correct":
            assert r["tcp_csum_status"] == CSUM["OK"]
        else:
            assert r["tcp_csum_status"] in (CSUM["BAD"], CSUM["OFFLOAD"])
            assert int(should, 16) == r["tcp_csum_calc"]

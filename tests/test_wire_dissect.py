"""Exact dissection cases, each frame made with the builder: link types, IP, TCP, truncation."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tcpscope.wire import linktypes
from tcpscope.wire.builder import (
    ICMP, TCP, UDP, DestOpts, Ether, Fragment, Frame, HopByHop, IPv4, IPv6, Ipoib, Mpls, Nflog,
    Null, Pktap, Pppoe, Raw, Routing, Sll, Sll2, Vlan,
)
from tcpscope.wire.dissect import dissect_arrays, dissect_frame, dissect_frames
from tcpscope.wire.options import Mss, Nop, Timestamp, WindowScale
from tcpscope.wire.record import ACK, AE, CSUM, CWR, ECE, FIN, KIND, LAYER, OPTION, PSH, REASON, RST, SYN, URG, WARNING

OFF_NONE = 0xFFFF

SEG = Frame(Ether(), IPv4(src="192.0.2.1", dst="198.51.100.7", id=0x1234, ttl=61, tos=0x10),
            TCP(sport=43210, dport=443, seq=0xFFFF_FF00, ack=0x0102_0304, flags="PA", win=501,
                options=(Nop(), Nop(), Timestamp(1000, 2000))),
            b"hello")
SEG6 = replace(SEG, ip=IPv6(src="2001:db8::1", dst="2001:db8::2", flow=0x12345, tc=0xB8, hlim=58))


def dis(frame: Frame, **kw):
    return dissect_frame(frame.build(), frame.linktype, **kw)


def assert_complete_tcp(r, payload=b"hello"):
    assert r["kind"] == KIND["TCP"]
    assert r["stop_reason"] == REASON["NONE"] and r["stop_layer"] == LAYER["NONE"]
    assert r["stop_off"] == OFF_NONE
    assert r["payload_len"] == len(payload) == r["payload_cap"]
    assert r["tcp_csum_status"] == CSUM["OK"]


def ipv4_of(r) -> str:
    return ".".join(str(b) for b in r["src"][:4])


# --------------------------------------------------------------------------
# Ethernet and encapsulations
# --------------------------------------------------------------------------

def test_ethernet_ipv4_tcp_fields():
    r = dis(SEG)
    assert_complete_tcp(r)
    assert r["ethertype"] == 0x0800 and r["vlan_depth"] == 0
    assert r["l3_off"] == 14 and r["l4_off"] == 34 and r["opt_off"] == 54 and r["opt_len"] == 12
    assert ipv4_of(r) == "192.0.2.1" and bytes(r["dst"][:4]) == bytes([198, 51, 100, 7])
    assert bytes(r["src"][4:]) == bytes(12)
    assert (r["ip_version"], r["ip_hlen"], r["ip_ttl"], r["ip_tos"], r["ip_id"]) == (4, 20, 61, 0x10, 0x1234)
    assert r["ip_flags"] == 2 and r["ip_frag_off"] == 0  # DF
    assert r["ip_len"] == 20 + 32 + 5 and r["ip_proto"] == 6
    assert r["ip_csum_status"] == CSUM["OK"] and r["ip_csum_calc"] == r["ip_csum"]
    assert (r["sport"], r["dport"], r["seq"], r["ack"], r["win"]) == (43210, 443, 0xFFFF_FF00, 0x01020304, 501)
    assert r["tcp_flags"] == PSH | ACK and r["tcp_hlen"] == 32
    assert r["opt_present"] == OPTION["TIMESTAMP"] and (r["ts_val"], r["ts_ecr"]) == (1000, 2000)
    assert r["warnings"] == 0 and r["sll_pkttype"] == 0xFFFF


@pytest.mark.parametrize("tags", [
    (Vlan(100),),
    (Vlan(100, tpid=0x88A8), Vlan(200)),  # 802.1ad QinQ
    (Vlan(1, tpid=0x9100), Vlan(2, tpid=0x9100), Vlan(3)),
    tuple(Vlan(i) for i in range(1, 9)),  # the bound: 8 tags
])
def test_vlan_tags(tags):
    r = dis(replace(SEG, link=Ether(vlans=tags)))
    assert_complete_tcp(r)
    assert r["vlan_depth"] == len(tags) and r["l3_off"] == 14 + 4 * len(tags)
    assert r["ethertype"] == 0x0800


def test_too_many_vlan_tags_is_a_bad_link_header():
    r = dis(replace(SEG, link=Ether(vlans=tuple(Vlan(i) for i in range(1, 10)))))
    assert (r["stop_layer"], r["stop_reason"], r["stop_off"]) == (LAYER["LINK"], REASON["BAD_LINK_HEADER"], 14 + 32)
    assert r["kind"] == KIND["UNKNOWN"] and r["vlan_depth"] == 8


def test_vlan_then_ipv6():
    r = dis(replace(SEG6, link=Ether(vlans=(Vlan(7),))))
    assert_complete_tcp(r)
    assert r["ethertype"] == 0x86DD and r["l3_off"] == 18 and r["ip_version"] == 6


@pytest.mark.parametrize("labels", [(16,), (16, 17, 18)])
@pytest.mark.parametrize("ip", [SEG.ip, SEG6.ip])
def test_mpls_stack(labels, ip):
    r = dis(replace(SEG, link=Ether(vlans=(Vlan(5),), mpls=Mpls(labels)), ip=ip))
    assert_complete_tcp(r)
    assert r["l3_off"] == 18 + 4 * len(labels)
    assert r["ethertype"] == (0x0800 if ip.version == 4 else 0x86DD)


def test_mpls_without_ip_is_non_ip():
    f = Frame(Ether(mpls=Mpls((16,))), None, None, b"\x00\x00\x00\x00" + b"\x02" * 20)  # pseudowire control word
    r = dis(f)
    assert r["kind"] == KIND["NON_IP"] and r["ethertype"] == 0x8847 and r["stop_reason"] == 0


def test_mpls_stack_bound():
    f = replace(SEG, link=Ether(mpls=Mpls(tuple(range(16, 33)))))
    r = dis(f)
    assert r["stop_reason"] == REASON["BAD_LINK_HEADER"]


@pytest.mark.parametrize("ip", [SEG.ip, SEG6.ip])
def test_pppoe_session(ip):
    r = dis(replace(SEG, link=Ether(vlans=(Vlan(10, tpid=0x88A8), Vlan(20)), pppoe=Pppoe(0x42)), ip=ip))
    assert_complete_tcp(r)
    assert r["l3_off"] == 14 + 8 + 8 and r["vlan_depth"] == 2


def test_pppoe_non_ip_protocol():
    r = dis(replace(SEG, link=Ether(pppoe=Pppoe(ppp_protocol=0xC021))))  # LCP
    assert r["kind"] == KIND["NON_IP"] and r["ethertype"] == 0x8864


def test_arp_is_non_ip_with_its_ethertype():
    f = Frame(Ether(ethertype=0x0806), None, None, bytes(28))
    r = dis(f)
    assert r["kind"] == KIND["NON_IP"] and r["ethertype"] == 0x0806
    assert r["stop_reason"] == 0 and r["l3_off"] == OFF_NONE


def test_8023_llc_snap_carries_an_ethertype():
    dgram = SEG.datagram()
    llc = bytes.fromhex("aaaa03000000") + b"\x08\x00"
    raw = bytes(12) + (len(llc) + len(dgram)).to_bytes(2, "big") + llc + dgram
    r = dissect_frame(raw, linktypes.ETHERNET)
    assert_complete_tcp(r)
    assert r["l3_off"] == 22
    plain = bytes(12) + (10).to_bytes(2, "big") + bytes(10)
    assert dissect_frame(plain, 1)["kind"] == KIND["NON_IP"]


# --------------------------------------------------------------------------
# Other link types
# --------------------------------------------------------------------------

def test_linux_sll():
    r = dis(replace(SEG, link=Sll(pkttype=4)))
    assert_complete_tcp(r)
    assert r["sll_pkttype"] == 4 and r["l3_off"] == 16 and r["ethertype"] == 0x0800


def test_linux_sll2_keeps_ifindex_and_packet_type():
    r = dis(replace(SEG6, link=Sll2(ifindex=0x01020304, pkttype=4)))
    assert_complete_tcp(r)
    assert r["ifindex"] == 0x01020304 and r["sll_pkttype"] == 4 and r["l3_off"] == 20


def test_sll_with_vlan_protocol():
    r = dis(replace(SEG, link=Sll(protocol=0x8100)).with_payload(b""))  # not followed by a tag here
    assert r["vlan_depth"] == 1


@pytest.mark.parametrize("family,version", [(2, 4), (10, 6), (24, 6), (28, 6), (30, 6)])
@pytest.mark.parametrize("byteorder", ["little", "big"])
@pytest.mark.parametrize("loop", [False, True])
def test_null_and_loop_address_families(family, version, byteorder, loop):
    ip = SEG.ip if version == 4 else SEG6.ip
    f = replace(SEG, link=Null(family=family, byteorder=byteorder, loop=loop), ip=ip)
    assert f.linktype == (108 if loop else 0)
    r = dis(f)
    assert_complete_tcp(r)
    assert r["l3_off"] == 4 and r["ip_version"] == version


def test_null_other_family_is_non_ip():
    r = dis(replace(SEG, link=Null(family=7)))  # AF_OSI... not IP
    assert r["kind"] == KIND["NON_IP"]


def test_null_family_contradicting_the_header():
    r = dis(replace(SEG, link=Null(family=30)))  # says IPv6, carries IPv4
    assert (r["stop_layer"], r["stop_reason"], r["stop_off"]) == (LAYER["IP"], REASON["BAD_IP_VERSION"], 4)


@pytest.mark.parametrize("lt", [101, 12, 14])
@pytest.mark.parametrize("ip", [SEG.ip, SEG6.ip])
def test_raw_ip(lt, ip):
    r = dis(replace(SEG, link=Raw(lt), ip=ip))
    assert_complete_tcp(r)
    assert r["l3_off"] == 0 and r["ethertype"] == 0


def test_linktype_ipv4_and_ipv6():
    assert_complete_tcp(dis(replace(SEG, link=Raw(228))))
    assert_complete_tcp(dis(replace(SEG6, link=Raw(229))))
    r = dis(replace(SEG6, link=Raw(228)))
    assert r["stop_reason"] == REASON["BAD_IP_VERSION"] and r["stop_layer"] == LAYER["IP"]
    r = dissect_frame(b"\x95" + bytes(30), 101)
    assert r["stop_reason"] == REASON["BAD_IP_VERSION"] and r["ip_version"] == 0


@pytest.mark.parametrize("byteorder", ["little", "big"])
@pytest.mark.parametrize("ip", [SEG.ip, SEG6.ip])
def test_nflog(byteorder, ip):
    link = Nflog(byteorder=byteorder, tlvs=((1, b"\x08\x00\x01\x00"), (10, b"prefix\x00")))
    r = dis(replace(SEG, link=link, ip=ip))
    assert_complete_tcp(r)
    assert r["l3_off"] == 4 + 8 + 12 + 4


def test_nflog_without_payload_and_with_bad_tlv():
    f = Frame(Nflog(), None, None, b"")
    raw = f.build()[:-4]  # drop the (empty) payload TLV header
    assert dissect_frame(raw, 239)["kind"] == KIND["NON_IP"]
    bad = raw + b"\x02\x00\x09\x00"  # a TLV of length 2
    r = dissect_frame(bad, 239)
    assert r["stop_reason"] == REASON["BAD_LINK_HEADER"] and r["stop_off"] == len(raw)


def test_ipoib():
    r = dis(replace(SEG, link=Ipoib()))
    assert_complete_tcp(r)
    assert r["l3_off"] == 44 and r["ethertype"] == 0x0800


@pytest.mark.parametrize("inner", [Ether(), Null(), Raw()])
def test_pktap(inner):
    r = dis(replace(SEG, link=Pktap(inner=inner)))
    assert_complete_tcp(r)
    assert r["l3_off"] == 108 + {Ether: 14, Null: 4, Raw: 0}[type(inner)]


def test_mpacket_express_frame_and_continuation():
    frame = SEG.build()
    r = dissect_frame(b"\x55" * 7 + b"\xd5" + frame + b"CRC!", linktypes.ETHERNET_MPACKET)
    assert_complete_tcp(r)
    assert r["l3_off"] == 8 + 14 and r["warnings"] == WARNING["TRAILING_BYTES"]
    r = dissect_frame(b"\x55" * 7 + b"\x61" + b"\x00" + frame, linktypes.ETHERNET_MPACKET)
    assert r["kind"] == KIND["NON_IP"]


@pytest.mark.parametrize("lt", [147, 9999, 65535, 105])
def test_unsupported_linktype_is_counted_not_fatal(lt):
    r = dissect_frame(SEG.build(), lt)
    assert r["kind"] == KIND["UNKNOWN"]
    assert (r["stop_layer"], r["stop_reason"], r["stop_off"]) == (LAYER["LINK"], REASON["UNSUPPORTED_LINKTYPE"], 0)


def test_per_frame_linktypes_in_one_call():
    frames = [SEG.build(), replace(SEG, link=Sll2()).build(), replace(SEG, link=Raw()).build()]
    recs = dissect_frames(frames, [1, 276, 101])
    assert recs["kind"].tolist() == [KIND["TCP"]] * 3
    assert recs["l3_off"].tolist() == [14, 20, 0]


# --------------------------------------------------------------------------
# IPv4
# --------------------------------------------------------------------------

def test_ipv4_options_warn_and_lengths():
    r = dis(SEG.with_ip(options=bytes([7, 7, 4]) + bytes(4)))  # record route
    assert_complete_tcp(r)
    assert r["warnings"] == WARNING["IP_OPTIONS"] and r["ip_hlen"] == 28 and r["l4_off"] == 14 + 28


def test_ipv4_flags_and_reserved_bit():
    r = dis(SEG.with_ip(df=False, reserved_flag=True))
    assert r["ip_flags"] == 4


def test_ipv4_first_fragment_parses_tcp_unverified():
    r = dis(SEG.with_ip(mf=True, id=7))
    assert r["kind"] == KIND["TCP"] and r["stop_reason"] == 0
    assert r["warnings"] == WARNING["IP_FRAGMENTED"]
    assert r["tcp_csum_status"] == CSUM["UNVERIFIED"] and r["ip_flags"] & 1
    assert r["payload_len"] == 5


def test_ipv4_non_first_fragment():
    r = dis(SEG.with_ip(frag_offset=185, mf=True))
    assert r["kind"] == KIND["FRAGMENT"] and r["stop_reason"] == 0
    assert r["ip_frag_off"] == 185 and r["l4_off"] == OFF_NONE and r["sport"] == 0
    assert r["payload_len"] == r["payload_cap"] == 32 + 5  # the fragment's data bytes
    r = dis(SEG.with_ip(frag_offset=1, mf=False))
    assert r["kind"] == KIND["FRAGMENT"]


def test_ipv4_bad_header_length():
    r = dis(SEG.with_ip(ihl=4))
    assert (r["stop_layer"], r["stop_reason"], r["stop_off"]) == (LAYER["IP"], REASON["BAD_IP_HEADER_LENGTH"], 14)
    assert ipv4_of(r) == "192.0.2.1"  # the fixed header was kept


def test_ipv4_header_length_beyond_capture():
    r = dis(SEG.with_ip(ihl=15).with_tcp(options=()).with_payload(b""))  # 60 > 40 bytes there
    assert (r["stop_layer"], r["stop_reason"]) == (LAYER["IP"], REASON["TRUNCATED_IP"])


def test_ipv4_total_length_below_header():
    r = dis(SEG.with_ip(total_length=19))
    assert (r["stop_layer"], r["stop_reason"]) == (LAYER["IP"], REASON["BAD_IP_TOTAL_LENGTH"])
    assert r["ip_len"] == 19


def test_ipv4_total_length_zero_is_tso():
    r = dis(SEG.with_ip(total_length=0, checksum=0))
    assert r["kind"] == KIND["TCP"] and r["stop_reason"] == 0
    assert r["ip_len"] == 57 and r["payload_len"] == 5
    assert r["warnings"] == WARNING["IP_LENGTH_FROM_FRAME"] | WARNING["BAD_IP_CHECKSUM"]
    assert r["tcp_csum_status"] == CSUM["OK"]


def test_ipv4_total_length_beyond_frame():
    r = dis(SEG.with_ip(total_length=57 + 100))
    assert r["warnings"] & WARNING["IP_LENGTH_EXCEEDS_FRAME"]
    assert r["warnings"] & WARNING["PAYLOAD_TRUNCATED"]
    assert not r["warnings"] & WARNING["SNAPLEN_TRUNCATED"]
    assert r["payload_len"] == 105 and r["payload_cap"] == 5
    assert r["tcp_csum_status"] == CSUM["UNVERIFIED"]


def test_ethernet_padding_is_not_payload():
    f = SEG.with_tcp(options=(), flags="A").with_payload(b"")
    raw = f.build() + bytes(6)  # padded to the 60-byte Ethernet minimum
    assert len(raw) == 60
    r = dissect_frame(raw, 1)
    assert r["payload_len"] == 0 and r["payload_cap"] == 0
    assert r["warnings"] == WARNING["TRAILING_BYTES"] and r["tcp_csum_status"] == CSUM["OK"]


def test_non_tcp_transports():
    udp = dis(Frame(Ether(), IPv4(), UDP(5353, 53), b"query"))
    assert udp["kind"] == KIND["UDP"] and (udp["sport"], udp["dport"]) == (5353, 53) and udp["payload_len"] == 5
    icmp = dis(Frame(Ether(), IPv4(), ICMP(8, 0), b"ping"))
    assert icmp["kind"] == KIND["ICMP"] and (icmp["sport"], icmp["dport"]) == (8, 0) and icmp["payload_len"] == 12
    icmp6 = dis(Frame(Ether(), IPv6(), ICMP(128, 0, v6=True), b"ping"))
    assert icmp6["kind"] == KIND["ICMP6"] and icmp6["sport"] == 128
    other = dis(Frame(Ether(), IPv4(proto=47), None, b"gre!"))
    assert other["kind"] == KIND["IP"] and other["ip_proto"] == 47 and other["stop_reason"] == 0
    short = dis(Frame(Ether(), IPv4(), UDP(1, 2), b"").with_ip(total_length=26))
    assert short["stop_reason"] == REASON["TRUNCATED_TRANSPORT"] and short["stop_layer"] == LAYER["TRANSPORT"]


# --------------------------------------------------------------------------
# IPv6 and extension headers
# --------------------------------------------------------------------------

def test_ipv6_fields():
    r = dis(SEG6)
    assert_complete_tcp(r)
    assert r["ip_version"] == 6 and r["ip6_flow"] == 0x12345 and r["ip_tos"] == 0xB8 and r["ip_ttl"] == 58
    assert r["ip_len"] == 40 + 32 + 5 and r["ip_hlen"] == 40 and r["ip6_ext"] == 0
    assert r["ip_csum_status"] == CSUM["UNVERIFIED"]
    assert bytes(r["src"]) == bytes.fromhex("20010db8000000000000000000000001")


@pytest.mark.parametrize("ext,bit,size", [
    ((HopByHop(),), 1, 8),
    ((Routing(0, 1, ("2001:db8::99",)),), 2, 24),
    ((Routing(4, 1, ("2001:db8::98", "2001:db8::99")),), 2, 40),
    ((Fragment(0, False, 0xDEAD),), 4, 8),
    ((DestOpts(b"\x01\x04" + bytes(4)),), 8, 8),
    ((HopByHop(), DestOpts(), Routing(2, 1, ("2001:db8::7",)), Fragment(0, False, 1), DestOpts()), 15, 56),
])
def test_ipv6_extension_headers(ext, bit, size):
    r = dis(replace(SEG6, ip=replace(SEG6.ip, ext=ext)))
    assert_complete_tcp(r)
    assert r["ip6_ext"] == bit and r["ip_hlen"] == 40 + size and r["l4_off"] == 14 + 40 + size
    assert r["ip_proto"] == 6 and r["ip_len"] == 40 + size + 37


def test_ipv6_first_fragment_and_later_fragment():
    first = dis(replace(SEG6, ip=replace(SEG6.ip, ext=(Fragment(0, True, 0xABCDEF01),))))
    assert first["kind"] == KIND["TCP"] and first["warnings"] == WARNING["IP_FRAGMENTED"]
    assert first["ip6_frag_id"] == 0xABCDEF01 and first["ip_flags"] == 1
    assert first["tcp_csum_status"] == CSUM["UNVERIFIED"]
    later = dis(replace(SEG6, ip=replace(SEG6.ip, ext=(HopByHop(), Fragment(100, False, 9)))))
    assert later["kind"] == KIND["FRAGMENT"] and later["ip_frag_off"] == 100
    assert later["l4_off"] == OFF_NONE and later["ip_proto"] == 6
    assert later["payload_len"] == later["payload_cap"] == 37


def test_ipv6_extension_chain_bound():
    chain = tuple(DestOpts() for _ in range(9))
    r = dis(replace(SEG6, ip=replace(SEG6.ip, ext=chain)))
    assert (r["stop_layer"], r["stop_reason"], r["stop_off"]) == (LAYER["IP6_EXT"], REASON["BAD_IP6_EXT"], 14 + 40 + 64)
    ok = dis(replace(SEG6, ip=replace(SEG6.ip, ext=chain[:8])))
    assert_complete_tcp(ok)


def test_ipv6_extension_beyond_payload_length():
    f = replace(SEG6, ip=replace(SEG6.ip, ext=(HopByHop(),), payload_length=4))
    r = dis(f)
    assert (r["stop_layer"], r["stop_reason"], r["stop_off"]) == (LAYER["IP6_EXT"], REASON["BAD_IP6_EXT"], 54)


def test_ipv6_no_next_header_and_esp():
    r = dis(Frame(Ether(), IPv6(next_header=59), None, b""))
    assert r["kind"] == KIND["IP"] and r["ip_proto"] == 59
    r = dis(Frame(Ether(), IPv6(ext=(HopByHop(),), next_header=50), None, bytes(16)))
    assert r["kind"] == KIND["IP"] and r["ip_proto"] == 50 and r["ip6_ext"] == 1


def test_ipv6_payload_length_zero_is_big_tcp():
    r = dis(replace(SEG6, ip=replace(SEG6.ip, payload_length=0)))
    assert r["kind"] == KIND["TCP"] and r["payload_len"] == 5
    assert r["warnings"] == WARNING["IP_LENGTH_FROM_FRAME"] and r["tcp_csum_status"] == CSUM["OK"]


def test_ipv6_jumbo_payload_option():
    jumbo = bytes([0xC2, 4]) + (8 + 37).to_bytes(4, "big")  # RFC 2675
    f = replace(SEG6, ip=replace(SEG6.ip, payload_length=0, ext=(HopByHop(jumbo),)))
    r = dis(f)
    assert_complete_tcp(r)
    assert r["ip_len"] == 40 + 8 + 37 and r["warnings"] == 0


# --------------------------------------------------------------------------
# TCP header
# --------------------------------------------------------------------------

@pytest.mark.parametrize("letters,value", [
    ("F", FIN), ("S", SYN), ("R", RST), ("P", PSH), ("A", ACK), ("U", URG), ("E", ECE), ("W", CWR), ("e", AE),
    ("FSRPAUEWe", 0x1FF), ("SEWe", SYN | ECE | CWR | AE), ("", 0),
])
def test_all_nine_flag_bits(letters, value):
    r = dis(SEG.with_tcp(flags=letters))
    assert r["tcp_flags"] == value and r["tcp_csum_status"] == CSUM["OK"]
    assert bool(r["warnings"] & WARNING["SYN_FIN"]) == ((value & (SYN | FIN)) == (SYN | FIN))


@pytest.mark.parametrize("reserved", [1, 2, 4, 7])
def test_reserved_bits_warn_and_do_not_leak_into_flags(reserved):
    r = dis(SEG.with_tcp(reserved=reserved, flags="e"))
    assert r["tcp_flags"] == AE and r["warnings"] == WARNING["TCP_RESERVED_BITS"]


def test_zero_port_and_urgent():
    r = dis(SEG.with_tcp(sport=0, urg=77, flags="U"))
    assert r["warnings"] == WARNING["ZERO_PORT"] and r["urg"] == 77


@pytest.mark.parametrize("words", [0, 4, 9, 15])
def test_bad_data_offset(words):
    r = dis(SEG.with_tcp(data_offset=words, options=()).with_payload(b"x" * 4))
    assert (r["stop_layer"], r["stop_reason"], r["stop_off"]) == (LAYER["TCP"], REASON["BAD_TCP_DATA_OFFSET"], 34)
    assert r["tcp_hlen"] == 4 * words and r["sport"] == 43210 and r["seq"] == 0xFFFF_FF00


# --------------------------------------------------------------------------
# Truncation at every byte: the exact stop, snaplen told apart from damage
# --------------------------------------------------------------------------

def _layout_v4():
    # (start, end, layer, reason) of each header of SEG, in order
    return [(0, 14, "LINK", "TRUNCATED_LINK"), (14, 34, "IP", "TRUNCATED_IP"),
            (34, 54, "TCP", "TRUNCATED_TCP"), (54, 66, "TCP_OPTIONS", "TRUNCATED_TCP_OPTIONS")]


TEMPLATES = {
    "ether-v4": (SEG, _layout_v4()),
    "vlan-v6-ext": (
        replace(SEG6, link=Ether(vlans=(Vlan(3),)), ip=replace(SEG6.ip, ext=(HopByHop(), Fragment(0, False, 1)))),
        [(0, 14, "LINK", "TRUNCATED_LINK"), (14, 18, "LINK", "TRUNCATED_ENCAP"), (18, 58, "IP", "TRUNCATED_IP"),
         (58, 66, "IP6_EXT", "TRUNCATED_IP6_EXT"), (66, 74, "IP6_EXT", "TRUNCATED_IP6_EXT"),
         (74, 94, "TCP", "TRUNCATED_TCP"), (94, 106, "TCP_OPTIONS", "TRUNCATED_TCP_OPTIONS")]),
    "sll2-v4": (replace(SEG, link=Sll2()),
                [(0, 20, "LINK", "TRUNCATED_LINK"), (20, 40, "IP", "TRUNCATED_IP"),
                 (40, 60, "TCP", "TRUNCATED_TCP"), (60, 72, "TCP_OPTIONS", "TRUNCATED_TCP_OPTIONS")]),
    "null-v6": (replace(SEG6, link=Null()),
                [(0, 4, "LINK", "TRUNCATED_LINK"), (4, 44, "IP", "TRUNCATED_IP"),
                 (44, 64, "TCP", "TRUNCATED_TCP"), (64, 76, "TCP_OPTIONS", "TRUNCATED_TCP_OPTIONS")]),
    "pppoe-v4": (replace(SEG, link=Ether(pppoe=Pppoe())),
                 [(0, 14, "LINK", "TRUNCATED_LINK"), (14, 22, "LINK", "TRUNCATED_ENCAP"), (22, 42, "IP", "TRUNCATED_IP"),
                  (42, 62, "TCP", "TRUNCATED_TCP"), (62, 74, "TCP_OPTIONS", "TRUNCATED_TCP_OPTIONS")]),
}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
@pytest.mark.parametrize("snaplen", [True, False])
def test_truncation_at_every_byte(name, snaplen):
    frame, layout = TEMPLATES[name]
    raw = frame.build()
    headers_end = layout[-1][1]
    cut = [raw[:n] for n in range(len(raw))]
    recs = dissect_frames(cut, frame.linktype, origlen=[len(raw) if snaplen else n for n in range(len(raw))])
    for n, r in enumerate(recs):
        snap = WARNING["SNAPLEN_TRUNCATED"]
        assert bool(r["warnings"] & snap) == snaplen, n
        if n < headers_end:
            start, _, layer, reason = next(h for h in layout if h[0] <= n < h[1])
            assert (r["stop_layer"], r["stop_reason"], r["stop_off"]) == (LAYER[layer], REASON[reason], start), n
        else:
            assert r["stop_reason"] == 0 and r["payload_cap"] == n - headers_end and r["payload_len"] == 5, n
            assert r["warnings"] & WARNING["PAYLOAD_TRUNCATED"]
            assert r["tcp_csum_status"] == CSUM["UNVERIFIED"]
        # never an offset beyond the captured bytes
        for key in ("l3_off", "l4_off", "stop_off"):
            assert r[key] == OFF_NONE or r[key] <= n, (n, key)
        assert r["payload_cap"] <= r["payload_len"]
    assert recs["kind"][headers_end - 1] == KIND["TCP"]


def test_cut_tcp_header_keeps_what_is_there():
    raw = SEG.build()
    r = dissect_frame(raw[:34 + 13], 1, origlen=len(raw))  # up to the ack, without flags
    assert (r["sport"], r["dport"], r["seq"], r["ack"]) == (43210, 443, 0xFFFF_FF00, 0x01020304)
    assert r["tcp_flags"] == 0 and r["stop_reason"] == REASON["TRUNCATED_TCP"]
    r = dissect_frame(raw[:34 + 3], 1, origlen=len(raw))
    assert r["sport"] == 0  # a port needs both bytes


def test_cut_options_keep_the_complete_ones():
    raw = SEG.with_tcp(options=(Mss(1400), WindowScale(7), Nop(), Timestamp(1, 2))).build()
    r = dissect_frame(raw[:54 + 9], 1, origlen=len(raw))
    assert r["stop_reason"] == REASON["TRUNCATED_TCP_OPTIONS"] and r["opt_len"] == 9
    assert r["opt_present"] == OPTION["MSS"] | OPTION["WSCALE"] and r["mss"] == 1400 and r["wscale"] == 7
    assert not r["warnings"] & WARNING["MALFORMED_TCP_OPTIONS"]


def test_batch_arrays_validated():
    raw = SEG.build()
    with pytest.raises(ValueError):
        dissect_arrays(raw, np.array([10], np.int64), np.array([len(raw)], np.uint32),
                       np.array([len(raw)], np.uint32), 1)
    with pytest.raises(ValueError):
        dissect_arrays(raw, np.array([-1], np.int64), np.array([1], np.uint32), np.array([1], np.uint32), 1)
    empty = dissect_arrays(b"", np.zeros(0, np.int64), np.zeros(0, np.uint32), np.zeros(0, np.uint32), 1)
    assert empty.shape == (0,)


def test_dissect_batch_on_a_frame_batch():
    batch_mod = pytest.importorskip("tcpscope.capture.batch")
    from tcpscope.wire.dissect import dissect_batch

    frames = [SEG.build(), replace(SEG6, link=Ether()).build(), b"\x00" * 5]
    data = b"junk" + b"".join(frames)
    offs = np.array([4, 4 + len(frames[0]), 4 + len(frames[0]) + len(frames[1])], np.int64)
    lens = np.array([len(f) for f in frames], np.uint32)
    batch = batch_mod.FrameBatch(data=data, offset=offs, caplen=lens, origlen=lens,
                                 ts_ns=np.zeros(3, np.int64), iface=np.zeros(3, np.uint16),
                                 linktype=np.ones(3, np.uint16), first_frame=1)
    recs = dissect_batch(batch)
    assert recs["kind"].tolist() == [KIND["TCP"], KIND["TCP"], KIND["UNKNOWN"]]
    assert recs["stop_reason"][2] == REASON["TRUNCATED_LINK"]
    unverified = dissect_batch(batch, verify_checksums=False)
    assert (unverified["tcp_csum_status"] == CSUM["UNVERIFIED"]).all()
    assert (unverified["ip_csum_status"] == CSUM["UNVERIFIED"]).all()

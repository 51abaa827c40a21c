"""Properties: any bytes under any link type dissect without harm; build -> dissect round trips."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tcpscope.wire import linktypes
from tcpscope.wire.builder import (
    TCP, DestOpts, Ether, Fragment, Frame, HopByHop, IPv4, IPv6, Mpls, Nflog, Null, Pktap, Pppoe, Raw,
    Routing, Sll, Sll2, Vlan,
)
from tcpscope.wire.dissect import dissect_frame, dissect_frames
from tcpscope.wire.options import Mss, Nop, SackPermitted, Timestamp, WindowScale, parse_options
from tcpscope.wire.packet import Packet
from tcpscope.wire.record import CSUM, KIND, OPTION, REASON, WARNING

OFF_NONE = 0xFFFF
ALL_LINKTYPES = sorted(linktypes.SUPPORTED) + [2, 147, 65535]


def check_invariants(r, caplen: int) -> None:
    """What every record must satisfy, whatever the input."""
    for key in ("l3_off", "l4_off", "stop_off", "opt_off"):
        assert r[key] == OFF_NONE or r[key] <= caplen, key
    if r["opt_off"] != OFF_NONE:
        assert r["opt_off"] + r["opt_len"] <= caplen
    assert r["payload_cap"] <= r["payload_len"]
    if r["kind"] == KIND["TCP"] and r["stop_reason"] == 0:
        assert r["l4_off"] + r["tcp_hlen"] + r["payload_cap"] <= caplen
    assert (r["stop_reason"] == 0) == (r["stop_off"] == OFF_NONE)
    assert r["stop_reason"] <= max(REASON.values())
    assert r["kind"] <= max(KIND.values())
    assert r["tcp_csum_status"] <= 3 and r["ip_csum_status"] <= 3


@given(st.binary(max_size=400), st.sampled_from(ALL_LINKTYPES), st.integers(0, 70000))
@settings(max_examples=3000, deadline=None)
def test_any_bytes_any_linktype(data, linktype, extra):
    r = dissect_frame(data, linktype, origlen=len(data) + extra)
    check_invariants(r, len(data))
    p = Packet.from_record(r, data, frame=1)
    parse_options(p.options_bytes, complete=p.options_complete)


def _valid_frames():
    seg = TCP(flags="PA", options=(Mss(1460), Nop(), WindowScale(7), SackPermitted(), Timestamp(1, 2)))
    v6 = IPv6(ext=(HopByHop(), Routing(0, 1, ("2001:db8::9",)), Fragment(0, False, 1), DestOpts()))
    return [
        Frame(Ether(vlans=(Vlan(1, tpid=0x88A8), Vlan(2))), IPv4(options=bytes([131, 7, 4, 1, 2, 3, 4])), seg, b"x" * 20),
        Frame(Ether(mpls=Mpls((16, 17))), v6, seg, b"y" * 9),
        Frame(Ether(pppoe=Pppoe()), IPv4(), seg, b""),
        Frame(Sll(), v6, seg, b"z"),
        Frame(Sll2(), IPv4(mf=True), seg, b"z"),
        Frame(Null(), v6, seg, b""),
        Frame(Raw(), IPv4(), seg, b"abc"),
        Frame(Nflog(), v6, seg, b"abc"),
        Frame(Pktap(), IPv4(), seg, b"abc"),
    ]


VALID = [(f.build(), f.linktype) for f in _valid_frames()]


@given(st.sampled_from(VALID), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
       st.integers(0, 250))
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_valid_frames(frame, flips, cut):
    raw, lt = frame
    b = bytearray(raw)
    for pos, value in flips:
        if pos < len(b):
            b[pos] = value
    b = bytes(b[: max(0, len(b) - cut)])
    r = dissect_frame(b, lt, origlen=len(raw))
    check_invariants(r, len(b))
    Packet.from_record(r, b, frame=1).options


ipv4 = st.builds(lambda a: ".".join(map(str, a)), st.tuples(*[st.integers(0, 255)] * 4))
ipv6 = st.binary(min_size=16, max_size=16)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 2**32 - 1)


@st.composite
def frames(draw):
    version = draw(st.sampled_from([4, 6]))
    if version == 4:
        ip = IPv4(src=draw(ipv4), dst=draw(ipv4), id=draw(u16), ttl=draw(st.integers(0, 255)),
                  tos=draw(st.integers(0, 255)), df=draw(st.booleans()))
    else:
        ip = IPv6(src=draw(ipv6), dst=draw(ipv6), tc=draw(st.integers(0, 255)), flow=draw(st.integers(0, 0xFFFFF)),
                  hlim=draw(st.integers(0, 255)),
                  ext=tuple(draw(st.lists(st.sampled_from([HopByHop(), DestOpts(), Fragment(0, False, 7)]), max_size=3))))
    options = tuple(draw(st.lists(st.sampled_from([Mss(536), Nop(), WindowScale(3), SackPermitted(),
                                                   Timestamp(9, 8)]), max_size=4)))
    tcp = TCP(sport=draw(u16), dport=draw(u16), seq=draw(u32), ack=draw(u32), flags=draw(st.integers(0, 0x1FF)),
              win=draw(u16), urg=draw(u16), options=options)
    link = draw(st.sampled_from([Ether(), Ether(vlans=(Vlan(5),)), Sll(), Sll2(ifindex=3), Null(), Raw(),
                                 Ether(mpls=Mpls()), Ether(pppoe=Pppoe()), Nflog(), Pktap()]))
    return Frame(link, ip, tcp, draw(st.binary(max_size=120)))


@given(frames())
@settings(max_examples=1000, deadline=None)
def test_build_dissect_round_trip(frame):
    raw = frame.build()
    r = dissect_frame(raw, frame.linktype)
    tcp, ip = frame.l4, frame.ip
    assert r["kind"] == KIND["TCP"] and r["stop_reason"] == 0
    assert (r["sport"], r["dport"], r["seq"], r["ack"], r["win"], r["urg"]) == (
        tcp.sport, tcp.dport, tcp.seq, tcp.ack, tcp.win, tcp.urg)
    assert r["tcp_flags"] == tcp.flags and r["payload_len"] == len(frame.payload) == r["payload_cap"]
    expected_warnings = (WARNING["ZERO_PORT"] if 0 in (tcp.sport, tcp.dport) else 0) | (
        WARNING["SYN_FIN"] if tcp.flags & 3 == 3 else 0)
    assert r["tcp_csum_status"] == CSUM["OK"] and r["warnings"] == expected_warnings
    assert bytes(r["src"][: 4 if ip.version == 4 else 16]) == ip.src_bytes()
    assert bytes(r["dst"][: 4 if ip.version == 4 else 16]) == ip.dst_bytes()
    if ip.version == 4:
        assert (r["ip_id"], r["ip_ttl"], r["ip_tos"]) == (ip.id, ip.ttl, ip.tos)
        assert r["ip_csum_status"] == CSUM["OK"]
    else:
        assert (r["ip6_flow"], r["ip_ttl"], r["ip_tos"]) == (ip.flow, ip.hlim, ip.tc)
    p = Packet.from_record(r, raw, frame=1)
    assert p.payload == frame.payload
    assert [o for o in p.options if o.__class__.__name__ != "Eol"] == list(tcp.options)
    present = 0
    for o in tcp.options:
        present |= {Mss: OPTION["MSS"], WindowScale: OPTION["WSCALE"], SackPermitted: OPTION["SACK_PERM"],
                    Timestamp: OPTION["TIMESTAMP"]}.get(type(o), 0)
    assert int(r["opt_present"]) & ~OPTION["EOL"] == present


@given(st.lists(frames(), min_size=1, max_size=20))
@settings(max_examples=100, deadline=None)
def test_a_batch_equals_frames_one_by_one(fs):
    raws = [f.build() for f in fs]
    batch = dissect_frames(raws, [f.linktype for f in fs])
    for raw, f, row in zip(raws, fs, batch):
        single = dissect_frame(raw, f.linktype)
        assert row.tobytes() == np.array(single).tobytes()


def test_record_padding_is_zeroed():
    raw = replace(_valid_frames()[0]).build()
    r = dissect_frames([raw, raw], 1)
    assert r[0].tobytes() == r[1].tobytes()

"""Hand-made frames for `tcpscope read`, whose expected lines tcpdump 4.99 wrote.

Each `Case` is a short capture made with the packet builder. The lines
``tcpdump -nn FLAGS`` prints for it are kept in golden/read_cases.json, and
test_read_cases.py's oracle test checks them against tcpdump itself, so the
expectations are tcpdump's, not ours (TCPSCOPE_UPDATE_GOLDEN=1 rewrites them
from tcpdump). The cases pin the rules tcpscope read must follow: the relative
sequence table, flags, options and their malformed forms, truncation markers,
-v/-vv header lines, link-layer prefixes and payload printers.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from tcpscope.wire.builder import (
    Ether, Fragment, Frame, HopByHop, IPv4, IPv6, Mpls, Null, Pppoe, Raw, Sll, Sll2, TCP, UDP,
    Vlan,
)

T0 = 1_600_000_000_000_000_000  # 2020-09-13 12:26:40 UTC, in ns

A = Frame(Ether(), IPv4(src="10.0.0.1", dst="10.0.0.2", id=1),
          TCP(sport=40000, dport=5000, flags="S", seq=1000, win=64240))
B_TO_A = dict(src="10.0.0.2", dst="10.0.0.1")
A6 = Frame(Ether(), IPv6(src="fd00::1", dst="fd00::2"),
           TCP(sport=40000, dport=5000, flags="S", seq=1000, win=64240))


_FRAME_LINE = re.compile(r"^ *(\d+)  ")


def listing_frames(text: str) -> dict[int, str]:
    """A ``-#`` listing (tcpdump's or tcpscope's) -> {frame number: its text}, a packet's
    continuation lines (``-v``, payload lines) joined to its first line by newlines."""
    frames: dict[int, str] = {}
    current = None
    for line in text.split("\n"):
        m = _FRAME_LINE.match(line)
        if m and (current is None or int(m.group(1)) == current + 1):
            current = int(m.group(1))
            frames[current] = line[m.end():]
        elif current is not None and line:
            frames[current] += "\n" + line
    return frames


def rev(frame: Frame, **tcp) -> Frame:
    """The frame in the other direction (addresses and ports swapped), with TCP changes."""
    ip = frame.ip
    f = frame.with_ip(src=ip.dst, dst=ip.src)
    ports = dict(sport=frame.l4.dport, dport=frame.l4.sport)
    ports.update(tcp)
    return f.with_tcp(**ports)


def opts(raw: str) -> dict:
    """TCP options from hex, unpadded, for exact option bytes."""
    return dict(options=(bytes.fromhex(raw),), pad_options=False)


@dataclass
class Case:
    name: str
    frames: list  # Frame, bytes, or (bytes, origlen) for a snaplen-cut frame
    flags: str = "-t"
    linktype: int | None = None  # default: the first Frame's
    ts_ns: list[int] | None = None  # default: T0 + 1 ms per frame
    tz: str = "UTC"
    extra: dict = field(default_factory=dict)

    def raw_frames(self) -> list[tuple[bytes, int]]:
        out = []
        for f in self.frames:
            if isinstance(f, Frame):
                b = f.build()
                out.append((b, len(b)))
            elif isinstance(f, tuple):
                out.append(f)
            else:
                out.append((f, len(f)))
        return out

    @property
    def link(self) -> int:
        if self.linktype is not None:
            return self.linktype
        return next((f.linktype for f in self.frames if isinstance(f, Frame)), 1)

    def times(self) -> list[int]:
        return self.ts_ns or [T0 + i * 1_000_000 for i in range(len(self.frames))]


def cut(frame: Frame, caplen: int) -> tuple[bytes, int]:
    b = frame.build()
    return b[:caplen], len(b)


HANDSHAKE = [
    A,
    rev(A, flags="SA", seq=5000, ack=1001, win=65160),
    A.with_tcp(flags="A", seq=1001, ack=5001, win=502),
    A.with_tcp(flags="PA", seq=1001, ack=5001, win=502).with_payload(b"hello\n"),
    rev(A, flags="A", seq=5001, ack=1007, win=509),
    A.with_tcp(flags="FA", seq=1007, ack=5001, win=502),
    rev(A, flags="FA", seq=5001, ack=1008, win=509),
    A.with_tcp(flags="A", seq=1008, ack=5002, win=502),
]

CASES: list[Case] = [
    Case("handshake_relative", HANDSHAKE),
    Case("handshake_absolute", HANDSHAKE, flags="-t -S"),
    Case("handshake_vv_seq_on_pure_ack", HANDSHAKE[:3], flags="-t -vv"),
    Case("midstream_first_ack_is_absolute", [
        A.with_tcp(flags="A", seq=7000, ack=9000),
        A.with_tcp(flags="PA", seq=7000, ack=9000).with_payload(b"xyz"),
        rev(A, flags="A", seq=9000, ack=7003),
    ]),
    Case("syn_ack_retransmission_resets_table", [
        A, rev(A, flags="SA", seq=5000, ack=1001), A.with_tcp(flags="A", seq=1001, ack=5001),
        rev(A, flags="SA", seq=6000, ack=1001), A.with_tcp(flags="A", seq=1001, ack=6001),
    ]),
    Case("wraparound", [
        A.with_tcp(seq=0xFFFFFFF0),
        rev(A, flags="SA", seq=0xFFFFFFFE, ack=0xFFFFFFF1),
        A.with_tcp(flags="PA", seq=0xFFFFFFF1, ack=0xFFFFFFFF).with_payload(b"0123456789abcdefghij"),
        rev(A, flags="A", seq=0xFFFFFFFF, ack=0x00000005),
    ]),
    Case("equal_ports_order_by_address", [
        Frame(Ether(), IPv4(src="10.0.0.9", dst="10.0.0.1"), TCP(sport=7, dport=7, flags="A", seq=10, ack=20)),
        Frame(Ether(), IPv4(src="10.0.0.1", dst="10.0.0.9"), TCP(sport=7, dport=7, flags="A", seq=20, ack=11)),
        Frame(Ether(), IPv4(src="10.0.0.9", dst="10.0.0.1"), TCP(sport=7, dport=7, flags="PA", seq=11, ack=20)).with_payload(b"a"),
    ]),
    Case("flags", [
        A.with_tcp(flags=""), A.with_tcp(flags="R"), A.with_tcp(flags="RA", ack=5),
        A.with_tcp(flags="SEW"), A.with_tcp(flags="FSRPAUEW", ack=1, urg=3),
        A.with_tcp(flags="Se"), A.with_tcp(flags="PAU", ack=1, urg=77).with_payload(b"!"),
    ]),
    Case("ipv6", [A6, rev(A6, flags="SA", seq=9, ack=1001),
                  A6.with_tcp(flags="A", seq=1001, ack=10)]),
    Case("ipv6_v", [A6.with_ip(tc=0xB8, flow=0x12345), A6.with_ip(flow=7)], flags="-t -v"),
    Case("ipv4_v", [
        A, A.with_ip(df=False, tos=0x03, ttl=0), A.with_ip(mf=True, reserved_flag=True),
        A.with_ip(checksum=0x1234), A.with_tcp(checksum=0xBEEF),
    ], flags="-t -v"),
    Case("options_common", [
        A.with_tcp(options=(bytes.fromhex("020405b40402080a000000640000000001030307"),)),
        A.with_tcp(flags="A", ack=1, **opts("0101080a0000006400000065")),
        A.with_tcp(flags="A", ack=1, **opts("0101050a000003e9000003f1000007d1000007d9")),
        A.with_tcp(**opts("1c020101")),                  # uto too short
        A.with_tcp(**opts("010113060102030405060000")),
    ]),
    Case("options_sack_relative", [
        A, rev(A, flags="SA", seq=5000, ack=1001),
        A.with_tcp(flags="A", seq=1001, ack=5001, **opts("0101050a000013a1000013b1")),
        rev(A, flags="A", seq=5001, ack=1001, **opts("0101050a000003f1000003f9")),
    ]),
    Case("options_odd", [
        A.with_tcp(**opts("1e040000")),                  # MPTCP capable, no key
        A.with_tcp(**opts("fe04f989")),                  # exp-tfo cookie request
        A.with_tcp(**opts("220a01020304050607080101")),  # tfo cookie
        A.with_tcp(**opts("fe06abcd01020000")),          # experimental, other ExID
        A.with_tcp(**opts("990401020000")),              # unknown kind
        A.with_tcp(**opts("1c040065")),                  # uto, minutes
        A.with_tcp(**opts("0203ff00")),                  # mss with a wrong length
        A.with_tcp(**opts("02ff0000")),                  # length beyond the header
        A.with_tcp(**opts("02010000")),                  # length < 2
        A.with_tcp(**opts("00020405b4000000")),          # eol ends the list
        A.with_tcp(**opts("080a0000")),                  # TS cut by the header end
        A.with_tcp(**opts("050b0000000100000002000000")),  # sack not a multiple of 8
        A.with_tcp(**opts("1304" + "00" * 2)),           # md5 too short
        A.with_tcp(**opts("0d06000000090000")),          # ccecho (no name)
    ]),
    Case("mptcp", [
        A.with_tcp(**opts("1e0c0081" + "0123456789abcdef")),
        rev(A, flags="SA", seq=1, ack=1001, **opts("1e0c0081" + "fedcba9876543210")),
        A.with_tcp(flags="A", seq=1001, ack=2, **opts("1e140081" + "0123456789abcdef" + "fedcba9876543210")),
        A.with_tcp(flags="PA", seq=1001, ack=2, **opts("1e142005" + "00000005" + "0000000a" + "00000001" + "0004" + "abcd")).with_payload(b"data"),
        A.with_tcp(flags="A", seq=1005, ack=2, **opts("1e0c7000" + "1122334455667788")),
    ]),
    Case("options_every_named_kind", [
        A.with_tcp(flags="A", ack=1, **opts(h + "01" * (-len(h) // 2 % 4))) for h in (
            "020405b4", "01030307", "01010402", "0101050a000003e9000003f1", "010106060000002a",
            "01010706000004d2", "0101080a0000000100000002", "01010b06000000ff", "01010c0600000100",
            "01010d0600000009", "01011312" + "aa" * 16, "01011404ab07", "01011c048005",
            "01011d0605070102", "2202", "2206abcdef01", "fe06f9891234", "fe06c0de0102",
            "01018c0401020000",
        )
    ]),
    Case("options_malformed_lists", [
        A.with_tcp(flags="A", ack=1, **opts("020405b40203ffff")),            # [len 3] on mss
        A.with_tcp(flags="A", ack=1, **opts("020405b4080a00000001")),        # TS beyond the header
        A.with_tcp(flags="A", ack=1, **opts("0101010101010102")),            # kind, no length byte
        A.with_tcp(flags="A", ack=1, **opts("010101020101")).with_payload(b"\x04"),  # length from the payload
        cut(A.with_tcp(flags="A", ack=1, **opts("0101080a0000000100000002")), 14 + 20 + 20 + 6),
        cut(A.with_tcp(flags="A", ack=1, **opts("080a000000010000000201010101")), 14 + 20 + 20 + 5),
        cut(A.with_tcp(flags="A", ack=1, **opts("01010101")), 14 + 20 + 20 + 2),
        cut(A.with_tcp(**opts("1e0c0081" + "11" * 8 + "080a0000000100000002")), 14 + 20 + 20 + 16),
    ]),
    Case("options_mptcp_on_syn_and_dss", [
        A.with_tcp(**opts("1e0c0181" + "11" * 8)),
        A.with_tcp(flags="PA", ack=1, **opts("1e1c201f" + "00000000000000ff" + "0000000000000102" + "00000009" + "0004" + "beef")).with_payload(b"data"),
    ]),
    Case("options_sack_absolute", [
        A, rev(A, flags="SA", seq=5000, ack=1001),
        A.with_tcp(flags="A", seq=1001, ack=5001, **opts("0101050a000013a1000013b1")),
    ], flags="-t -S"),
    Case("ipv6_embedded_ipv4", [
        Frame(Ether(), IPv6(src=a, dst="::ffff:10.0.0.2"), A6.l4)
        for a in ("::ffff:10.0.0.1", "::10.0.0.1", "::0.0.0.1", "64:ff9b::10.0.0.1")
    ]),
    Case("truncated_headers", [
        cut(A, 14 + 10),                      # inside the IP header
        cut(A, 14 + 20 + 2),                  # only the source port
        cut(A, 14 + 20 + 10),                 # inside the TCP header
        cut(A.with_tcp(options=(bytes.fromhex("020405b40402080a0000006400000000"),)), 14 + 20 + 20 + 9),
        cut(A.with_tcp(options=(bytes.fromhex("020405b40402080a0000006400000000"),)), 14 + 20 + 20 + 4),
        cut(A.with_tcp(flags="PA", ack=1).with_payload(b"x" * 100), 14 + 20 + 20 + 10),
    ]),
    Case("truncated_v", [
        cut(A.with_tcp(flags="PA", ack=1).with_payload(b"x" * 100), 14 + 20 + 20 + 10),
    ], flags="-t -v"),
    Case("bad_lengths", [
        A.with_tcp(data_offset=4),
        A.with_tcp(data_offset=15),
        A.with_ip(total_length=30),
        A.with_ip(total_length=200),
        A.with_ip(ihl=4),
    ]),
    Case("rst_data", [
        A.with_tcp(flags="R", seq=1).with_payload(b"Connection reset by peer\x01\x80 and more text"),
        A.with_tcp(flags="RA", seq=1, ack=1).with_payload(b"short"),
        cut(A.with_tcp(flags="R", seq=1).with_payload(b"0123456789"), 14 + 20 + 20 + 4),
    ], flags="-t -v"),
    Case("payload_printers", [
        A.with_tcp(dport=80, flags="PA", ack=1).with_payload(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"),
        rev(A, sport=80, flags="PA", seq=1, ack=1).with_payload(b"HTTP/1.1 200 OK\r\nServer: y\r\n\r\n"),
        A.with_tcp(dport=80, flags="PA", ack=1).with_payload(b"binary\x00stuff"),
        A.with_tcp(dport=21, flags="PA", ack=1).with_payload(b"USER anonymous\r\n"),
        A.with_tcp(dport=22, flags="PA", ack=1).with_payload(b"SSH-2.0-OpenSSH_9.6\r\n"),
        A.with_tcp(dport=23, flags="PA", ack=1).with_payload(bytes.fromhex("fffd01fffb1ffffa1f005000" "18fff0")),
        A.with_tcp(dport=6379, flags="PA", ack=1).with_payload(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
        A.with_tcp(dport=25, flags="PA", ack=1).with_payload(b"EHLO example.org\r\n"),
        A.with_tcp(dport=53, flags="PA", ack=1).with_payload(
            bytes.fromhex("001d" "1234" "0100" "0001000000000000" "076578616d706c65036f726700" "00010001")),
    ]),
    Case("payload_printers_v", [
        A.with_tcp(dport=80, flags="PA", ack=1).with_payload(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"),
        A.with_tcp(dport=80, flags="PA", ack=1).with_payload(b"POST / HTTP/1.0\r\nno end"),
    ], flags="-t -v"),
    Case("link_sll2", [
        Frame(Sll2(ifindex=1, pkttype=0), A.ip, A.l4),
        Frame(Sll2(ifindex=1, pkttype=4), A.ip, A.l4),
        Frame(Sll2(ifindex=999, pkttype=1), A.ip, A.l4),
    ]),
    Case("link_sll", [Frame(Sll(pkttype=4), A.ip, A.l4)]),
    Case("link_vlan_qinq", [Frame(Ether(vlans=(Vlan(5),)), A.ip, A.l4),
                            Frame(Ether(vlans=(Vlan(5, tpid=0x88A8), Vlan(7))), A.ip, A.l4)]),
    Case("link_mpls", [Frame(Ether(mpls=Mpls(labels=(16,), tc=5, ttl=64)), A.ip, A.l4)]),
    Case("link_mpls_v", [Frame(Ether(mpls=Mpls(labels=(16,), tc=5, ttl=64)), A.ip, A.l4)],
         flags="-t -v"),
    Case("link_pppoe", [Frame(Ether(pppoe=Pppoe(session=0x1234)), A.ip, A.l4)]),
    Case("link_null", [Frame(Null(), A.ip, A.l4), Frame(Null(), A6.ip, A6.l4),
                       Frame(Null(family=10), A6.ip, A6.l4)]),
    Case("link_loop", [Frame(Null(loop=True), A.ip, A.l4)]),
    Case("link_raw", [Frame(Raw(), A.ip, A.l4), Frame(Raw(), A6.ip, A6.l4)]),
    Case("ipv6_ext_headers", [
        Frame(Ether(), IPv6(ext=(HopByHop(),)), A6.l4),
        Frame(Ether(), IPv6(ext=(Fragment(offset=0, more=False, ident=7),)), A6.l4),
    ]),
    Case("ipv6_ext_headers_v", [
        Frame(Ether(), IPv6(ext=(HopByHop(),)), A6.l4),
        Frame(Ether(), IPv6(ext=(Fragment(offset=0, more=False, ident=7),)), A6.l4),
    ], flags="-t -v"),
    Case("ipv4_fragments", [
        A.with_ip(mf=True).with_tcp(flags="PA", ack=1).with_payload(b"p" * 40),
        A.with_ip(frag_offset=8),
    ], flags="-t -v"),
    Case("udp_and_icmp_do_not_break_tcp", [
        Frame(Ether(), IPv4(), UDP(sport=9999, dport=9998)).with_payload(b"x" * 10),
        A,
    ]),
    Case("timestamps_default", HANDSHAKE[:3], flags=""),
    Case("timestamps_default_tz", HANDSHAKE[:2], flags="", tz="Asia/Tokyo"),
    Case("timestamps_epoch", HANDSHAKE[:3], flags="-tt"),
    Case("timestamps_delta", HANDSHAKE[:3], flags="-ttt",
         ts_ns=[T0, T0 + 1_500_000_000, T0 + 1_500_000_500]),
    Case("timestamps_delta_negative", HANDSHAKE[:3], flags="-ttt",
         ts_ns=[T0, T0 - 2_000_000, T0 + 3_000]),
    Case("timestamps_date", HANDSHAKE[:2], flags="-tttt"),
    Case("timestamps_bit31", HANDSHAKE[:2], flags="",
         ts_ns=[0x80000000 * 10**9, 0xFFFFFFFF * 10**9 + 123_456_789]),
    Case("count", HANDSHAKE, flags="-t -c 3"),
]

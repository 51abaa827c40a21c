"""One frame as tcpdump 4.99 prints it with ``-nn``: the reference (slow) path.

`FramePrinter.frame` walks a frame's captured bytes the way tcpdump's
printers do: the link layer (Ethernet with VLAN tags, MPLS and PPPoE, Linux
cooked v1/v2, BSD loopback, raw IP, NFLOG, IP over InfiniBand, PKTAP), then
IPv4/IPv6 (with the ``-v`` header line and IPv6 extension headers), then TCP
with its options and the payload printers of well-known ports. It keeps
tcpdump's distinction between the on-the-wire length (what headers claim)
and the captured bytes ("snapend"), because that distinction decides every
truncation marker tcpdump prints.

It is written for exactness, not speed: `tcpdump.Listing` prints ordinary
TCP segments from the dissected records on a fast path and sends everything
else here, and the tests check that both paths print the same text.

Non-TCP packets get a short tcpdump-like summary (UDP ports and length, ICMP
type, ARP); their exact text is not part of the contract.
"""
from __future__ import annotations

import socket
from ipaddress import IPv6Address

from .tcpdump_options import Cursor, Truncated, print_tcp_options
from .tcpdump_payload import print_rst_data, print_tcp_payload

__all__ = ["FramePrinter", "SeqTable", "ip4_str", "ip6_str", "IPPROTO_NAMES"]

M32 = 0xFFFFFFFF

# tcpdump's ipproto_values (names used by -v).
IPPROTO_NAMES = {
    0: "Options", 1: "ICMP", 2: "IGMP", 4: "IPIP", 6: "TCP", 8: "EGP", 9: "IGRP", 17: "UDP",
    33: "DCCP", 41: "IPv6", 43: "Routing", 44: "Fragment", 46: "RSVP", 47: "GRE", 50: "ESP",
    51: "AH", 55: "Mobile IP", 58: "ICMPv6", 62: "Mobile IP (old)", 88: "EIGRP", 89: "OSPF",
    103: "PIM", 108: "Compressed IP", 112: "VRRP", 113: "PGM", 132: "SCTP", 135: "Mobility",
    240: "pfsync",
}
# 112 is also CARP in tcpdump's table, listed after VRRP: VRRP wins.

_ETHERTYPE_NAMES = {
    0x0800: "IPv4", 0x0806: "ARP", 0x86DD: "IPv6", 0x8100: "802.1Q", 0x88A8: "802.1Q-QinQ",
    0x9100: "802.1Q-9100", 0x8847: "MPLS unicast", 0x8848: "MPLS multicast",
    0x8863: "PPPoE D", 0x8864: "PPPoE S", 0x8035: "Reverse ARP", 0x88CC: "LLDP",
}
_VLAN_TYPES = (0x8100, 0x88A8, 0x9100, 0x9200)
_SLL_PKTTYPES = {0: "In", 1: "B", 2: "M", 3: "P", 4: "Out"}
_PPPOE_CODES = {0: "", 0x09: "PADI", 0x07: "PADO", 0x19: "PADR", 0x65: "PADS", 0xA7: "PADT"}
_MPLS_LABEL_NAMES = ("IPv4 explicit NULL", "router alert", "IPv6 explicit NULL",
                     "implicit NULL", "rsvd", "rsvd", "rsvd", "entropy label indicator",
                     "rsvd", "rsvd", "rsvd", "rsvd", "rsvd", "rsvd", "rsvd", "rsvd")
_TCP_FLAG_LETTERS = ((0x01, "F"), (0x02, "S"), (0x04, "R"), (0x08, "P"), (0x10, "."),
                     (0x20, "U"), (0x40, "E"), (0x80, "W"))


def tcp_flags_text(flags: int) -> str:
    """tcpdump's ``Flags [..]`` letters for the low 8 flag bits (``none`` if none)."""
    s = "".join(letter for bit, letter in _TCP_FLAG_LETTERS if flags & bit)
    return s or "none"


FLAGS_TEXT = tuple(tcp_flags_text(f) for f in range(256))


def ip4_str(b: bytes) -> str:
    return f"{b[0]}.{b[1]}.{b[2]}.{b[3]}"


def ip6_str(b: bytes) -> str:
    return str(IPv6Address(bytes(b)))


def in_cksum_shouldbe(carried: int, correct: int) -> int:
    """What tcpdump prints after ``->``: the correct value, 0xffff standing for 0."""
    return correct if correct else 0xFFFF


def _ones_sum(data: bytes | memoryview, initial: int = 0) -> int:
    if len(data) & 1:
        data = bytes(data) + b"\0"
    total = initial + sum(memoryview(bytes(data)).cast("H"))
    # cast("H") reads native (little-endian) words; swap the folded result.
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ((total & 0xFF) << 8) | (total >> 8)


def hex_and_ascii(cur: Cursor, p: int, length: int, indent: str = "\n\t") -> None:
    """tcpdump's default print of undecoded bytes: 16 per line, hex words then ASCII."""
    out = cur.out
    data = bytes(cur.buf[p : p + max(min(length, cur.end - p), 0)])
    for off in range(0, len(data), 16):
        chunk = data[off : off + 16]
        words = "".join(f" {chunk[i]:02x}{chunk[i + 1]:02x}" if i + 1 < len(chunk)
                        else f" {chunk[i]:02x}" for i in range(0, len(chunk), 2))
        text = "".join(chr(c) if 0x21 <= c <= 0x7E else "." for c in chunk)
        out.append(f"{indent}0x{off:04x}: {words:<40}  {text}")
    if len(data) < length:
        raise Truncated


class SeqTable:
    """tcpdump's per-connection table that turns seq/ack into relative numbers.

    Keyed by the connection's addresses and ports in a canonical order
    (lower port first; addresses decide only when the ports are equal), each
    entry holds the bases tcpdump subtracts: the sequence number of the
    canonical "forward" side and the acknowledgement base, taken from the
    first ACK-bearing segment seen (or the latest SYN with ACK). Only segments
    with ACK consult it; -S disables it.

    Entries are mutable two-item lists ("cells"), created empty (``None``) on
    first lookup and never replaced, so the fast path can keep a reference to
    a connection's cell per flow direction.
    """

    __slots__ = ("table",)

    def __init__(self) -> None:
        self.table: dict[tuple, list] = {}

    def cell(self, src: bytes, dst: bytes, sport: int, dport: int) -> tuple[int, list]:
        """(rev, cell) for a segment from src:sport to dst:dport."""
        rev = 1 if sport > dport or (sport == dport and src > dst) else 0
        key = (dst, src, (dport << 16) | sport) if rev else (src, dst, (sport << 16) | dport)
        cell = self.table.get(key)
        if cell is None:
            cell = self.table[key] = [None, None]
        return rev, cell

    def relative(self, src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int,
                 flags: int) -> tuple[int, int, int, int, int]:
        """(seq, ack, rev, thseq, thack) to print for an ACK-bearing segment."""
        rev, th = self.cell(src, dst, sport, dport)
        if th[0] is None or flags & 0x02:
            if rev:
                th[0], th[1] = ack - 1 & M32, seq
            else:
                th[0], th[1] = seq, ack - 1 & M32
        elif rev:
            seq = (seq - th[1]) & M32
            ack = (ack - th[0]) & M32
        else:
            seq = (seq - th[0]) & M32
            ack = (ack - th[1]) & M32
        return seq, ack, rev, th[0], th[1]


class FramePrinter:
    """Prints frames as tcpdump does; holds the state tcpdump keeps across packets."""

    def __init__(self, verbose: int = 0, absolute: bool = False,
                 seq_table: SeqTable | None = None) -> None:
        self.v = verbose
        self.absolute = absolute
        self.seqs = seq_table if seq_table is not None else SeqTable()
        self._ifnames: dict[int, str] = {}

    # ------------------------------------------------------------ top level

    def frame(self, buf: bytes, linktype: int, origlen: int) -> str:
        """The text tcpdump prints for one frame, after the timestamp, without newline."""
        cur = Cursor(buf)
        try:
            self._link(cur, linktype, origlen)
        except Truncated:
            cur.out.append(f" [|{cur.proto}]")
        return "".join(cur.out)

    def _link(self, cur: Cursor, linktype: int, length: int) -> None:
        if linktype == 1:
            self._ether(cur, 0, length)
        elif linktype in (101, 12, 14):
            self._ipn(cur, 0, length)
        elif linktype == 228:
            self._ip(cur, 0, length)
        elif linktype == 229:
            self._ip6(cur, 0, length)
        elif linktype == 113:
            self._sll(cur, length)
        elif linktype == 276:
            self._sll2(cur, length)
        elif linktype in (0, 108):
            self._null(cur, length, linktype == 108)
        elif linktype == 239:
            self._nflog(cur, length)
        elif linktype == 242:
            self._ipoib(cur, length)
        elif linktype == 258:
            self._pktap(cur, length)
        elif linktype in (9, 50):
            self._ppp(cur, 0, length)
        else:
            cur.out.append(f"unsupported link type {linktype}, length {length}")

    # ------------------------------------------------------------ link layers

    def _ether(self, cur: Cursor, p: int, length: int) -> None:
        cur.proto = "ether"
        caplen = cur.end - p
        if length < caplen:
            cur.out.append(f"[length {length} < caplen {caplen}] (invalid)")
            return
        if caplen < 14:
            cur.trunc()
            return
        etype = cur.be16(p + 12)
        p += 14
        length -= 14
        while etype in _VLAN_TYPES:
            if cur.end - p < 4 or length < 4:
                cur.proto = "vlan"
                cur.trunc()
                return
            etype = cur.be16(p + 2)
            p += 4
            length -= 4
        if etype <= 1500:
            cur.out.append(f"802.3, length {length}")
            return
        if not self._ethertype(cur, etype, p, length):
            cur.out.append(f"ethertype {_ETHERTYPE_NAMES.get(etype, 'Unknown')} "
                           f"(0x{etype:04x}), length {length + 14}")

    def _ethertype(self, cur: Cursor, etype: int, p: int, length: int) -> bool:
        if etype == 0x0800:
            self._ip(cur, p, length)
        elif etype == 0x86DD:
            self._ip6(cur, p, length)
        elif etype in (0x8847, 0x8848):
            self._mpls(cur, p, length)
        elif etype == 0x8864 or etype == 0x8863:
            self._pppoe(cur, p, length)
        elif etype == 0x0806 or etype == 0x8035:
            self._arp(cur, p, length)
        else:
            return False
        return True

    def _mpls(self, cur: Cursor, p: int, length: int) -> None:
        cur.proto = "mpls"
        out = cur.out
        out.append("MPLS")
        depth = 0
        while True:
            if length < 4:
                out.append("[|MPLS]")
                return
            entry = cur.be32(p)
            label = entry >> 12
            out.append("\n\t" if depth and self.v else " ")
            out.append(f"(label {label}")
            depth += 1
            if self.v and label < 16:
                out.append(f" ({_MPLS_LABEL_NAMES[label]})")
            out.append(f", tc {(entry >> 9) & 7}")
            if entry & 0x100:
                out.append(", [S]")
            out.append(f", ttl {entry & 0xFF})")
            p += 4
            length -= 4
            if entry & 0x100:
                break
        if label in (0, 3):
            pt = 4
        elif label == 2:
            pt = 6
        else:
            if length < 1:
                return
            first = cur.u8(p)
            pt = 4 if 0x45 <= first <= 0x4F else 6 if 0x60 <= first <= 0x6F else 0
        if pt == 0:
            out.append(f" MPLS payload, length {length}")
            return
        out.append("\n\t" if self.v else " ")
        if pt == 4:
            self._ip(cur, p, length)
        else:
            self._ip6(cur, p, length)

    def _pppoe(self, cur: Cursor, p: int, length: int) -> None:
        cur.proto = "pppoe"
        out = cur.out
        if length < 6:
            out.append(f" (length {length} < 6) (invalid)")
            return
        length -= 6
        if not cur.ttest(p, 6):
            cur.trunc()
            return
        ver_type = cur.u8(p)
        code = cur.u8(p + 1)
        sess = cur.be16(p + 2)
        plen = cur.be16(p + 4)
        if ver_type >> 4 != 1:
            out.append(f" [ver {ver_type >> 4}]")
        if ver_type & 0xF != 1:
            out.append(f" [type {ver_type & 0xF}]")
        out.append("PPPoE " + _PPPOE_CODES.get(code, f"PAD-{code:x}"))
        if code == 0x09 and plen > 1484 - 6:
            out.append(f" [len {plen}!]")
        if plen > length:
            out.append(f" [len {plen} > {length}!]")
            plen = length
        if sess:
            out.append(f" [ses 0x{sess:x}]")
        if code:
            out.append(f", length {plen}")
            return
        out.append(" ")
        self._ppp(cur, p + 6, plen)

    def _ppp(self, cur: Cursor, p: int, length: int) -> None:
        cur.proto = "ppp"
        if length < 2:
            cur.trunc()
            return
        hdr = cur.be16(p)
        if hdr in (0x00FF03 & 0xFFFF, 0x0103, 0xFF03):
            p += 2
            length -= 2
        if length < 2:
            cur.trunc()
            return
        if cur.u8(p) % 2:
            proto = cur.u8(p)
            p += 1
            length -= 1
        else:
            proto = cur.be16(p)
            p += 2
            length -= 2
        if proto in (0x0021, 0x0800):
            self._ip(cur, p, length)
        elif proto in (0x0057, 0x86DD):
            self._ip6(cur, p, length)
        elif proto in (0x0281, 0x8847):
            self._mpls(cur, p, length)
        else:
            cur.out.append(f"PPP protocol 0x{proto:04x}, length {length}")

    def _cooked_vlans(self, cur: Cursor, etype: int, p: int, length: int
                      ) -> tuple[int, int, int] | None:
        """After an SLL / SLL2 header at `p`: print the 802.1Q tags (tcpdump's sll_print
        loop) and give (ethertype, offset, length) past them, or None when the frame is
        done (802.3/802.2, or a truncated tag)."""
        while True:
            if etype <= 1500:
                cur.out.append(f"802.3/802.2 (0x{etype:04x}), length {length}")
                return None
            if etype == 0x8100:
                if cur.end - p < 4:
                    cur.proto = "vlan"
                    cur.trunc()
                    return None
                etype = cur.be16(p + 2)
                if etype <= 1500:
                    etype = 0x0004
                cur.out.append(f"ethertype {_ETHERTYPE_NAMES.get(etype, 'Unknown')}, ")
                p += 4
                length -= 4
                continue
            return etype, p, length

    def _sll(self, cur: Cursor, length: int) -> None:
        cur.proto = "sll"
        if not cur.ttest(0, 16):
            raise Truncated
        found = self._cooked_vlans(cur, cur.be16(14), 16, length - 16)
        if found is None:
            return
        etype, p, length = found
        if not self._ethertype(cur, etype, p, length):
            pkttype = cur.be16(0)
            cur.out.append(f"{_SLL_PKTTYPES.get(pkttype, '?'):>3} ethertype "
                           f"{_ETHERTYPE_NAMES.get(etype, 'Unknown')} (0x{etype:04x}), "
                           f"length {length + 16}")

    def interface_name(self, index: int) -> str:
        """The name of interface `index` on this machine (as tcpdump asks if_indextoname), or ?."""
        name = self._ifnames.get(index)
        if name is None:
            try:
                name = socket.if_indextoname(index)
            except (OSError, OverflowError):
                name = "?"
            self._ifnames[index] = name
        return name

    def _sll2(self, cur: Cursor, length: int) -> None:
        cur.proto = "sll2"
        if not cur.ttest(0, 20):
            raise Truncated
        name = self.interface_name(cur.be32(4))
        cur.out.append(f"{name:<5} {_SLL_PKTTYPES.get(cur.u8(10), '?'):<3} ")
        found = self._cooked_vlans(cur, cur.be16(0), 20, length - 20)
        if found is None:
            return
        etype, p, length = found
        if not self._ethertype(cur, etype, p, length):
            cur.out.append(f"ethertype {_ETHERTYPE_NAMES.get(etype, 'Unknown')} "
                           f"(0x{etype:04x}), length {length + 20}")

    def _null(self, cur: Cursor, length: int, loop: bool) -> None:
        cur.proto = "null"
        if cur.end < 4:
            cur.trunc()
            return
        raw = cur.take(0, 4)
        # NULL is in the capturing host's byte order, LOOP in network order; either
        # way tcpdump swaps a value whose upper 16 bits are set.
        family = int.from_bytes(raw, "big" if loop else "little")
        if family & 0xFFFF0000:
            family = int.from_bytes(family.to_bytes(4, "little"), "big")
        length -= 4
        if family == 2:
            self._ip(cur, 4, length)
        elif family in (24, 28, 30):
            self._ip6(cur, 4, length)
        else:
            cur.out.append(f"AF Unknown ({family}), length {length + 4}: ")
            hex_and_ascii(cur, 4, cur.end - 4)

    def _nflog(self, cur: Cursor, length: int) -> None:
        cur.proto = "nflog"
        if cur.end < 4:
            cur.trunc()
            return
        family = cur.u8(0)
        version = cur.u8(1)
        if version != 0:
            cur.out.append(f"version {version} (unknown)")
            return
        p = 4
        length -= 4
        while length > 0:
            if cur.end - p < 4:
                cur.trunc()
                return
            size = int.from_bytes(cur.take(p, 2), "little")
            ttype = int.from_bytes(cur.take(p + 2, 2), "little")
            if size % 4:
                size += 4 - size % 4
            if size < 4 or cur.end - p < size:
                cur.trunc()
                return
            if ttype == 9:  # NFULA_PAYLOAD
                p += 4
                length -= 4
                break
            p += size
            length -= size
        if family == 2:
            self._ip(cur, p, length)
        elif family == 10:
            self._ip6(cur, p, length)
        else:
            cur.out.append(f"NFLOG family {family}, length {length}")

    def _ipoib(self, cur: Cursor, length: int) -> None:
        # LINKTYPE_IPOIB: 20-byte destination and source hardware addresses,
        # then the 2-byte ethertype and 2 reserved bytes.
        cur.proto = "ipoib"
        if cur.end < 44:
            cur.trunc()
            return
        etype = cur.be16(40)
        if not self._ethertype(cur, etype, 44, length - 44):
            cur.out.append(f"IPoIB ethertype 0x{etype:04x}, length {length}")

    def _pktap(self, cur: Cursor, length: int) -> None:
        cur.proto = "pktap"
        if cur.end < 8:
            cur.trunc()
            return
        hdrlen = int.from_bytes(cur.take(0, 4), "little")
        dlt = int.from_bytes(cur.take(4, 4), "little")
        if hdrlen < 8 or hdrlen > length or cur.end < hdrlen:
            cur.trunc()
            return
        inner = Cursor(cur.buf[hdrlen:], cur.end - hdrlen)
        inner.out = cur.out
        try:
            self._link(inner, dlt, length - hdrlen)
        finally:
            cur.proto = inner.proto

    # ------------------------------------------------------------ IP

    def _ipn(self, cur: Cursor, p: int, length: int) -> None:
        cur.proto = "ipN"
        if length < 1:
            cur.out.append(f"truncated-ip {length}")
            return
        ver = cur.u8(p) & 0xF0
        if ver == 0x40:
            self._ip(cur, p, length)
        elif ver == 0x60:
            self._ip6(cur, p, length)
        else:
            cur.out.append(f"unknown ip {ver >> 4}")

    def _ip(self, cur: Cursor, p: int, length: int) -> None:
        cur.proto = "ip"
        out = cur.out
        vhl = cur.u8(p)
        if vhl >> 4 != 4:
            out.append("IP6, wrong link-layer encapsulation (invalid)" if vhl >> 4 == 6
                       else f"IP{vhl >> 4} (invalid)")
            return
        out.append("IP ")
        if not cur.ttest(p, 20):
            raise Truncated
        if length < 20:
            out.append(f"truncated-ip {length}")
            return
        hlen = (vhl & 0xF) * 4
        if hlen < 20:
            out.append(f"bad-hlen {hlen}")
            return
        ip_len = cur.be16(p + 2)
        if length < ip_len:
            out.append(f"truncated-ip - {ip_len - length} bytes missing! ")
        if ip_len < hlen:
            out.append(f"bad-len {ip_len}")
            return
        cur.end = min(cur.end, p + ip_len)
        payload_len = ip_len - hlen
        off = cur.be16(p + 6)
        proto = cur.u8(p + 9)
        src = bytes(cur.buf[p + 12 : p + 16])
        dst = bytes(cur.buf[p + 16 : p + 20])
        if self.v:
            tos = cur.u8(p + 1)
            out.append(f"(tos 0x{tos:x}")
            ecn = tos & 3
            if ecn:
                out.append((",ECT(1)", ",ECT(0)", ",CE")[ecn - 1])
            ttl = cur.u8(p + 8)
            if ttl >= 1:
                out.append(f", ttl {ttl}")
            fl = ", ".join(n for bit, n in ((0x2000, "+"), (0x4000, "DF"), (0x8000, "rsvd"))
                           if off & bit) or "none"
            out.append(f", id {cur.be16(p + 4)}, offset {(off & 0x1FFF) * 8}, flags [{fl}], "
                       f"proto {IPPROTO_NAMES.get(proto, 'unknown')} ({proto}), "
                       f"length {ip_len}")
            truncated = False
            if hlen > 20:
                out.append(", options (")
                if not self._ip_options(cur, p + 20, hlen - 20):
                    out.append(" [truncated-option]")
                    truncated = True
                out.append(")")
            if p + hlen <= cur.end:
                hdr = cur.buf[p : p + hlen]
                if _ones_sum(hdr) != 0xFFFF:
                    carried = cur.be16(p + 10)
                    zeroed = bytes(hdr[:10]) + b"\0\0" + bytes(hdr[12:])
                    correct = ~_ones_sum(zeroed) & 0xFFFF
                    should = in_cksum_shouldbe(carried, correct)
                    out.append(f", bad cksum {carried:x} (->{should:x})!")
            out.append(")\n    ")
            if truncated:
                out.append(f"{ip4_str(src)} > {ip4_str(dst)}: ")
                cur.trunc()
                return
        if off & 0x1FFF == 0:
            if proto not in (6, 17, 132, 33):
                out.append(f"{ip4_str(src)} > {ip4_str(dst)}: ")
            self._demux(cur, p + hlen, payload_len, proto, 4, off & 0x3FFF, p, src, dst)
        else:
            out.append(f"{ip4_str(src)} > {ip4_str(dst)}: ip-proto-{proto}")

    def _ip_options(self, cur: Cursor, p: int, length: int) -> bool:
        """tcpdump's ip_optprint; False when the options were not all captured."""
        names = {0: "EOL", 1: "NOP", 68: "timestamp", 130: "security", 7: "RR", 137: "SSRR",
                 131: "LSRR", 148: "RA", 82: "traceroute"}
        out = cur.out
        sep = ""
        while length > 0:
            out.append(sep)
            sep = ","
            if not cur.ttest(p, 1):
                return False
            code = cur.u8(p)
            out.append(names.get(code, f"unknown {code}"))
            if code in (0, 1):
                olen = 1
            else:
                if not cur.ttest(p + 1, 1):
                    return False
                olen = cur.u8(p + 1)
                if olen < 2:
                    out.append(f" [bad length {olen}]")
                    return True
            if olen > length:
                out.append(f" [bad length {olen}]")
                return True
            if not cur.ttest(p, olen):
                return False
            if code == 0:
                return True
            if code in (7, 131, 137):
                if olen < 3:
                    out.append(f" [bad length {olen}]")
                else:
                    if (olen + 1) & 3:
                        out.append(f" [bad length {olen}]")
                    ptr = cur.u8(p + 2) - 1
                    if ptr < 3 or ((ptr + 1) & 3) or ptr > olen + 1:
                        out.append(f" [bad ptr {cur.u8(p + 2)}]")
                    for i in range(3, olen, 4):
                        if not cur.ttest(p + i, 4):
                            return False
                        out.append(" " + ip4_str(cur.take(p + i, 4)))
                        if ptr > i:
                            out.append(",")
            elif code == 148:
                if olen < 4:
                    out.append(f" [bad length {olen}]")
                elif cur.be16(p + 2) != 0:
                    out.append(f" value {cur.be16(p + 2)}")
            elif code == 68:
                if not self._ip_ts_option(cur, p, olen):
                    return False
            p += olen
            length -= olen
        return True

    def _ip_ts_option(self, cur: Cursor, p: int, length: int) -> bool:
        out = cur.out
        if length < 4:
            out.append(f"[bad length {length}]")
            return True
        out.append(" TS{")
        flg = cur.u8(p + 3)
        hoplen = 4 if flg & 0xF == 0 else 8
        if (length - 4) & (hoplen - 1):
            out.append(f"[bad length {length}]")
        ptr = cur.u8(p + 2) - 1
        ln = 0
        if ptr < 4 or ((ptr - 4) & (hoplen - 1)) or ptr > length + 1:
            out.append(f"[bad ptr {cur.u8(p + 2)}]")
        kind = flg & 0xF
        if kind in (0, 1, 2, 3):
            out.append(("TSONLY", "TS+ADDR", "PRESPEC2.0", "PRESPEC")[kind])
            typ = " "
            ln = 4
            while ln < length:
                if ptr == ln:
                    typ = " ^ "
                if not cur.ttest(p + ln, hoplen):
                    return False
                addr = ip4_str(cur.take(p + ln, 4)) if hoplen == 8 else ""
                out.append(f"{typ}{cur.be32(p + ln + hoplen - 4)}@{addr}")
                typ = " "
                ln += hoplen
        else:
            out.append(f"[bad ts type {kind}]")
        out.append(" ^ " if ptr == ln else "")
        if flg >> 4:
            out.append(f" [{flg >> 4} hops not recorded]}} ")
        else:
            out.append("}")
        return True

    def _ip6(self, cur: Cursor, p: int, length: int) -> None:
        cur.proto = "ip6"
        out = cur.out
        if not cur.ttest(p, 40):
            raise Truncated
        if length < 40:
            out.append(f"truncated-ip6 {length}")
            return
        out.append("IP6 ")
        if cur.u8(p) >> 4 != 6:
            out.append(f"version error: {cur.u8(p) >> 4} != 6")
            return
        payload_len = cur.be16(p + 4)
        if payload_len:
            ln = payload_len + 40
            if length < ln:
                out.append(f"truncated-ip6 - {ln - length} bytes missing!")
        else:
            ln = length + 40
        nh = cur.u8(p + 6)
        if self.v:
            flow = cur.be32(p)
            out.append("(")
            if flow & 0x0FF00000:
                out.append(f"class 0x{(flow & 0x0FF00000) >> 20:02x}, ")
            if flow & 0x000FFFFF:
                out.append(f"flowlabel 0x{flow & 0x000FFFFF:05x}, ")
            out.append(f"hlim {cur.u8(p + 7)}, next-header {IPPROTO_NAMES.get(nh, 'unknown')} "
                       f"({nh}) payload length: {payload_len}) ")
        saved_end = cur.end
        cur.end = min(cur.end, p + ln)
        src = bytes(cur.buf[p + 8 : p + 24])
        dst = bytes(cur.buf[p + 24 : p + 40])
        cp = p
        advance = 40
        total = 0
        found_ext = False
        found_hbh = False
        jumbo_len = 0
        ph = 255  # the header before the current one; 255: the IPv6 header itself
        fragmented = 0
        while cp < cur.end and advance > 0:
            if ln < advance:
                cur.trunc()
                return
            cp += advance
            ln -= advance
            total += advance
            if cp == p + 40 and nh not in (6, 17, 33, 132):
                out.append(f"{ip6_str(src)} > {ip6_str(dst)}: ")
            if nh == 0 and found_hbh:
                out.append("[The Hop-by-Hop Options header was already found] (invalid)")
                return
            if nh == 0 and ph != 255:
                out.append("[The Hop-by-Hop Options header don't follow the IPv6 header] (invalid)")
                return
            ph = nh
            if nh in (0, 60):  # hop-by-hop, destination options
                cur.proto = "hbhopt" if nh == 0 else "dstopt"
                elen = (cur.u8(cp + 1) + 1) << 3
                if not cur.ttest(cp, elen):
                    cur.trunc()
                    return
                out.append("HBH " if nh == 0 else "DSTOPT ")
                jumbo = 0
                if nh == 0 or self.v:
                    ok, jumbo = self._ip6_opts(cur, cp + 2, elen - 2, nh == 0 and payload_len == 0)
                    if not ok:
                        cur.trunc()
                        return
                if nh == 0:
                    found_hbh = True
                    if payload_len == 0 and not jumbo:
                        out.append("[No valid Jumbo Payload Hop-by-Hop option found] (invalid)")
                        return
                    jumbo_len = jumbo
                advance = elen
                found_ext = True
                nh = cur.u8(cp)
            elif nh == 44:  # fragment
                cur.proto = "frag6"
                if not cur.ttest(cp, 8):
                    raise Truncated
                offlg = cur.be16(cp + 2) & 0xFFF8
                flen = 40 + payload_len - (cp - p) - 8
                if self.v:
                    out.append(f"frag (0x{cur.be32(cp + 4):08x}:{offlg}|{flen})")
                else:
                    out.append(f"frag ({offlg}|{flen})")
                if offlg != 0:
                    return
                out.append(" ")
                advance = 8
                if cur.end <= cp + advance:
                    return
                found_ext = True
                nh = cur.u8(cp)
                fragmented = 1
            elif nh == 43:  # routing
                cur.proto = "rt6"
                advance = self._rt6(cur, cp)
                if advance < 0:
                    return
                found_ext = True
                nh = cur.u8(cp)
            elif nh in (135, 62):
                out.append(f"mobility, length {ln}")
                return
            else:
                if jumbo_len:
                    ln = jumbo_len + 40
                    if ln < total:
                        cur.trunc()
                        return
                    if length < ln:
                        out.append(f"truncated-ip6 - {ln - length} bytes missing!")
                    cur.end = min(saved_end, p + ln)
                    ln -= total
                elif payload_len == 0:
                    if found_ext:
                        cur.trunc()
                        return
                    ln = 40
                    cur.end = min(saved_end, p + ln)
                    ln -= total
                self._demux(cur, cp, ln, nh, 6, fragmented, p, src, dst)
                return
            cur.proto = "ip6"

    def _ip6_opts(self, cur: Cursor, p: int, length: int,
                  jumbo_allowed: bool = False) -> tuple[bool, int]:
        """tcpdump's ip6_opt_process: (False if truncated, a valid Jumbo Payload length or 0)."""
        out = cur.out
        found_jumbo = False
        valid_jumbo = 0
        i = 0
        while i < length:
            t = cur.u8(p + i)
            if t == 0:
                olen = 1
            else:
                if i + 1 >= length:
                    return False, valid_jumbo
                olen = cur.u8(p + i + 1) + 2
            if i + olen > length:
                return False, valid_jumbo
            if t == 0:
                if self.v:
                    out.append("(pad1)")
            elif t == 1:
                if length - i < 2:
                    out.append("(padn: trunc)")
                    return False, valid_jumbo
                if self.v:
                    out.append("(padn)")
            elif t == 5:
                if length - i < 4:
                    out.append("(rtalert: trunc)")
                    return False, valid_jumbo
                if cur.u8(p + i + 1) != 2:
                    out.append(f"(rtalert: invalid len {cur.u8(p + i + 1)})")
                    return False, valid_jumbo
                if self.v:
                    out.append(f"(rtalert: 0x{cur.be16(p + i + 2):04x}) ")
            elif t == 0xC2:
                if length - i < 6:
                    out.append("(jumbo: trunc)")
                    return False, valid_jumbo
                if cur.u8(p + i + 1) != 4:
                    out.append(f"(jumbo: invalid len {cur.u8(p + i + 1)})")
                    return False, valid_jumbo
                jumbo = cur.be32(p + i + 2)
                if found_jumbo:
                    note = " - already seen"
                elif not jumbo_allowed:
                    note = " - payload len != 0"
                elif jumbo < 65536:
                    note = " - < 65536"
                else:
                    note = ""
                    valid_jumbo = jumbo
                found_jumbo = True
                if self.v:
                    out.append(f"(jumbo: {jumbo}{note}) ")
            else:
                if length - i < 2:
                    out.append(f"(type {t}: trunc)")
                    return False, valid_jumbo
                if self.v:
                    out.append(f"(opt_type 0x{t:02x}: len={cur.u8(p + i + 1)})")
            i += olen
        if self.v:
            out.append(" ")
        return True, valid_jumbo

    def _rt6(self, cur: Cursor, cp: int) -> int:
        out = cur.out
        if not cur.ttest(cp, 4):
            raise Truncated
        ln = cur.u8(cp + 1)
        typ = cur.u8(cp + 2)
        segleft = cur.u8(cp + 3)
        out.append(f"RT6 (len={ln}, type={typ}")
        if typ in (0, 2):
            if typ == 0:
                out.append(" [Deprecated]")
            out.append(f", segleft={segleft}")
            if self.v:
                out.append(f", rsv=0x{cur.be32(cp + 4):x}")
            if ln % 2 == 1:
                cur.trunc()
                return -1
            for i in range(ln >> 1):
                out.append(f", [{i}]{ip6_str(cur.take(cp + 8 + 16 * i, 16))}")
            out.append(") ")
            return (ln + 1) << 3
        out.append(f", segleft={segleft}) ")
        return (ln + 1) << 3

    def _demux(self, cur: Cursor, cp: int, length: int, nh: int, ver: int, fragmented: int,
               ip_off: int, src: bytes, dst: bytes) -> None:
        if nh == 6:
            self._tcp(cur, cp, length, ver, fragmented, ip_off, src, dst)
        elif nh == 17:
            self._udp(cur, cp, length, ver, src, dst)
        elif nh == 1 and ver == 4:
            self._icmp(cur, cp, length)
        elif nh == 58:
            self._icmp6(cur, cp, length)
        elif nh == 4:
            self._ip(cur, cp, length)
            if not self.v:
                cur.out.append(" (ipip-proto-4)")
        elif nh == 41:
            self._ip6(cur, cp, length)
        else:
            cur.out.append(f" ip-proto-{nh} {length}")

    def _addrs(self, ver: int, src: bytes, dst: bytes) -> tuple[str, str]:
        if ver == 4:
            return ip4_str(src), ip4_str(dst)
        return ip6_str(src), ip6_str(dst)

    def _udp(self, cur: Cursor, cp: int, length: int, ver: int, src: bytes, dst: bytes) -> None:
        cur.proto = "udp"
        s, d = self._addrs(ver, src, dst)
        if not cur.ttest(cp, 8):
            cur.out.append(f"{s} > {d}: [|udp]")
            return
        sport, dport, ulen = cur.be16(cp), cur.be16(cp + 2), cur.be16(cp + 4)
        cur.out.append(f"{s}.{sport} > {d}.{dport}: ")
        if (sport == 4789 or dport == 4789) and cur.ttest(cp + 8, 8):
            # VXLAN: tcpdump goes on with the inner Ethernet frame on a new line.
            cur.proto = "vxlan"
            vflags = cur.u8(cp + 8)
            cur.out.append(f"VXLAN, flags [{'I' if vflags & 8 else '.'}] (0x{vflags:02x}), "
                           f"vni {cur.be32(cp + 12) >> 8}\n")
            inner = Cursor(cur.buf[cp + 16 :], cur.end - cp - 16)
            inner.out = cur.out
            try:
                self._ether(inner, 0, ulen - 16)
            finally:
                cur.proto = inner.proto
            return
        cur.out.append(f"UDP, length {max(ulen - 8, 0)}")

    _ICMP_TYPES = {0: "echo reply", 3: "unreachable", 5: "redirect", 8: "echo request",
                   11: "time exceeded", 13: "time stamp request", 14: "time stamp reply"}

    def _icmp(self, cur: Cursor, cp: int, length: int) -> None:
        cur.proto = "icmp"
        t = cur.u8(cp)
        if t in (0, 8):
            cur.out.append(f"ICMP {self._ICMP_TYPES[t]}, id {cur.be16(cp + 4)}, "
                           f"seq {cur.be16(cp + 6)}, length {length}")
        else:
            cur.out.append(f"ICMP {self._ICMP_TYPES.get(t, f'type-#{t}')}, length {length}")

    def _icmp6(self, cur: Cursor, cp: int, length: int) -> None:
        cur.proto = "icmp6"
        cur.out.append(f"ICMP6, type {cur.u8(cp)}, length {length}")

    def _arp(self, cur: Cursor, p: int, length: int) -> None:
        cur.proto = "arp"
        if not cur.ttest(p, 28):
            cur.out.append(f"ARP, length {length}")
            return
        op = cur.be16(p + 6)
        spa, tpa = ip4_str(cur.take(p + 14, 4)), ip4_str(cur.take(p + 24, 4))
        if op == 1:
            cur.out.append(f"ARP, Request who-has {tpa} tell {spa}, length {length}")
        elif op == 2:
            sha = ":".join(f"{b:02x}" for b in cur.take(p + 8, 6))
            cur.out.append(f"ARP, Reply {spa} is-at {sha}, length {length}")
        else:
            cur.out.append(f"ARP, op {op}, length {length}")

    # ------------------------------------------------------------ TCP

    def _tcp(self, cur: Cursor, tp: int, length: int, ver: int, fragmented: int, ip_off: int,
             src: bytes, dst: bytes) -> None:
        cur.proto = "tcp"
        out = cur.out
        s, d = self._addrs(ver, src, dst)
        if not cur.ttest(tp + 2, 2):
            out.append(f"{s} > {d}:")
            cur.trunc()
            return
        sport = cur.be16(tp)
        dport = cur.be16(tp + 2)
        nh = cur.u8(ip_off + (6 if ver == 6 else 9))
        if nh == 6:
            out.append(f"{s}.{sport} > {d}.{dport}: ")
        else:
            out.append(f"{sport} > {dport}: ")
        if not cur.ttest(tp, 20):
            cur.trunc()
            return
        hlen = (cur.u8(tp + 12) >> 4) * 4
        if hlen < 20:
            out.append(f" tcp {(length - hlen) & M32} [bad hdr length {hlen} - too short, < 20]")
            return
        seq = cur.be32(tp + 4)
        ack = cur.be32(tp + 8)
        win = cur.be16(tp + 14)
        urp = cur.be16(tp + 18)
        flags = cur.u8(tp + 13)
        out.append(f"Flags [{FLAGS_TEXT[flags]}]")
        rev = thseq = thack = 0
        if not self.absolute and flags & 0x10:
            seq, ack, rev, thseq, thack = self.seqs.relative(src, dst, sport, dport, seq, ack,
                                                             flags)
        if hlen > length:
            out.append(f" [bad hdr length {hlen} - too long, > {length}]")
            return
        if self.v and not fragmented and cur.ttest(tp, length):
            carried = cur.be16(tp + 16)
            if ver == 4:
                pseudo = src + dst + bytes((0, 6)) + length.to_bytes(2, "big")
                pseudo_dst = self._ip4_final_dst(cur, ip_off)
                if pseudo_dst is not None:
                    pseudo = src + pseudo_dst + bytes((0, 6)) + length.to_bytes(2, "big")
            else:
                final = self._ip6_final_dst(cur, ip_off, dst)
                pseudo = src + final + length.to_bytes(4, "big") + b"\0\0\0\x06"
            seg = cur.buf[tp : tp + length]
            total = _ones_sum(pseudo + bytes(seg))
            out.append(f", cksum 0x{carried:04x}")
            if total != 0xFFFF:
                zeroed = pseudo + bytes(seg[:16]) + b"\0\0" + bytes(seg[18:])
                correct = ~_ones_sum(zeroed) & 0xFFFF
                out.append(f" (incorrect -> 0x{in_cksum_shouldbe(carried, correct):04x})")
            else:
                out.append(" (correct)")
        length -= hlen
        if self.v > 1 or length > 0 or flags & 0x07:
            out.append(f", seq {seq}")
            if length > 0:
                out.append(f":{(seq + length) & M32}")
        if flags & 0x10:
            out.append(f", ack {ack}")
        out.append(f", win {win}")
        if flags & 0x20:
            out.append(f", urg {urp}")
        if hlen > 20:
            if not print_tcp_options(cur, tp + 20, hlen - 20, flags, rev, thseq, thack,
                                     tp + hlen, length):
                return
        out.append(f", length {length}")
        if length == 0:
            return
        if not cur.ttest(tp, hlen):
            out.append(f" [remaining caplen({max(cur.end - tp, 0)}) < header length({hlen})]")
            raise Truncated
        bp = tp + hlen
        if flags & 0x04 and self.v:
            print_rst_data(cur, bp, length)
            return
        print_tcp_payload(cur, bp, length, sport, dport, self.v)

    @staticmethod
    def _ip4_final_dst(cur: Cursor, ip: int) -> bytes | None:
        """With a source route option, the pseudo-header uses the route's last hop."""
        hl = (cur.buf[ip] & 0xF) * 4
        if hl == 20:
            return None
        p, left = ip + 20, hl - 20
        while left > 0:
            if not cur.ttest(p, 1):
                return None
            t = cur.buf[p]
            if t == 0:
                break
            if t == 1:
                ln = 1
            else:
                if not cur.ttest(p + 1, 1):
                    return None
                ln = cur.buf[p + 1]
                if ln < 2:
                    break
            if left < ln or not cur.ttest(p, ln):
                return None
            if t in (131, 137) and ln >= 7:
                return bytes(cur.buf[p + ln - 4 : p + ln])
            p += ln
            left -= ln
        return None

    @staticmethod
    def _ip6_final_dst(cur: Cursor, ip: int, dst: bytes) -> bytes:
        nh = cur.buf[ip + 6]
        if nh not in (0, 60, 135, 62, 44, 43):
            return dst
        cp, advance = ip, 40
        while cp < cur.end:
            cp += advance
            if nh in (0, 60, 135, 62):
                if not cur.ttest(cp, 2):
                    return dst
                advance = (cur.buf[cp + 1] + 1) << 3
                nh = cur.buf[cp]
            elif nh == 44:
                if not cur.ttest(cp, 1):
                    return dst
                advance = 8
                nh = cur.buf[cp]
            elif nh == 43:
                if not cur.ttest(cp, 8):
                    return dst
                ln, typ = cur.buf[cp + 1], cur.buf[cp + 2]
                if typ in (0, 2) and ln % 2 == 0:
                    for i in range(ln >> 1):
                        if cur.ttest(cp + 8 + 16 * i, 16):
                            dst = bytes(cur.buf[cp + 8 + 16 * i : cp + 24 + 16 * i])
                elif typ == 4 and ln % 2 == 0 and cur.ttest(cp + 8, 16):
                    dst = bytes(cur.buf[cp + 8 : cp + 24])
                return dst
            else:
                return dst
        return dst

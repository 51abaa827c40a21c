"""The packet builder: exact frames from immutable templates, for tests.

A `Frame` is a link layer, an IP layer, a transport layer and a payload, each a
frozen dataclass with sensible defaults; `Frame.build()` returns the bytes.
Change any field with `dataclasses.replace` or the `with_*` helpers::

    SYN = Frame(Ether(), IPv4(), TCP(flags="S", seq=0xFFFF_FF00, options=(Mss(1460),)))
    data = SYN.with_tcp(flags="PA", seq=0xFFFF_FF01, options=()).with_payload(b"hi").build()

Lengths and checksums are correct by default; every one can be overridden to
build damaged frames (a wrong checksum, the TX-offload partial sum, a wrong
IP length or data offset, raw option bytes). Writing pcap files is
capture/writer.py's job; the builder only returns bytes.
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field, replace
from typing import ClassVar, Union

from . import linktypes
from .checksum import internet_checksum, partial_checksum, pseudo_header
from .options import TcpOption, options_to_bytes

__all__ = [
    "Vlan", "Mpls", "Pppoe", "Ether", "Sll", "Sll2", "Null", "Raw", "Nflog", "Ipoib", "Pktap",
    "IPv4", "IPv6", "HopByHop", "Routing", "Fragment", "DestOpts", "ExtHeader",
    "TCP", "UDP", "ICMP", "Frame", "tcp_flags", "CSUM_PARTIAL", "CSUM_PARTIAL_NO_LEN",
]

#: TCP/IP checksum overrides: None = correct, an int = that value, or one of these.
CSUM_PARTIAL = "partial"  #: TX offload: the folded pseudo-header sum (Linux CHECKSUM_PARTIAL)
CSUM_PARTIAL_NO_LEN = "partial-no-len"  #: the same with a zero length (Windows LSO)

ETH_IPV4, ETH_IPV6 = 0x0800, 0x86DD

_FLAG_LETTERS = {"F": 0x001, "S": 0x002, "R": 0x004, "P": 0x008, "A": 0x010, ".": 0x010,
                 "U": 0x020, "E": 0x040, "W": 0x080, "e": 0x100}


def tcp_flags(flags: int | str) -> int:
    """Flags as an int, from an int or tcpdump letters (``S``, ``S.``, ``PA``, ``SEWe``...).

    Letters: F S R P, A or ``.`` (ACK), U, E (ECE), W (CWR), e (AE).
    """
    if isinstance(flags, int):
        return flags
    value = 0
    for ch in flags:
        if ch not in _FLAG_LETTERS:
            raise ValueError(f"unknown TCP flag letter {ch!r} in {flags!r}")
        value |= _FLAG_LETTERS[ch]
    return value


def _addr(a: str | bytes | int, version: int) -> bytes:
    if isinstance(a, (bytes, bytearray)):
        return bytes(a)
    ip = ipaddress.ip_address(a) if not isinstance(a, int) else (
        ipaddress.IPv4Address(a) if version == 4 else ipaddress.IPv6Address(a))
    return ip.packed


# --------------------------------------------------------------------------
# Link layers
# --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Vlan:
    """An IEEE 802.1Q tag (TPID 0x8100; 0x88A8 for an 802.1ad service tag)."""

    vid: int = 1
    pcp: int = 0
    dei: int = 0
    tpid: int = 0x8100

    def to_bytes(self) -> bytes:
        return struct.pack(">HH", self.tpid, (self.pcp << 13) | (self.dei << 12) | self.vid)


@dataclass(frozen=True, slots=True)
class Mpls:
    """An MPLS label stack (RFC 3032); the last entry gets the bottom-of-stack bit."""

    labels: tuple[int, ...] = (16,)
    tc: int = 0
    ttl: int = 64

    def to_bytes(self) -> bytes:
        out = b""
        for i, label in enumerate(self.labels):
            bottom = 1 if i == len(self.labels) - 1 else 0
            out += struct.pack(">I", (label << 12) | (self.tc << 9) | (bottom << 8) | self.ttl)
        return out


@dataclass(frozen=True, slots=True)
class Pppoe:
    """A PPPoE session header (RFC 2516) and the PPP protocol field."""

    session: int = 1
    ppp_protocol: int | None = None  # default: 0x0021 IPv4 / 0x0057 IPv6

    def to_bytes(self, version: int | None, length: int) -> bytes:
        proto = self.ppp_protocol
        if proto is None:
            proto = 0x0057 if version == 6 else 0x0021
        return struct.pack(">BBHHH", 0x11, 0, self.session, length + 2, proto)


@dataclass(frozen=True, slots=True)
class Ether:
    """Ethernet II, optionally with VLAN tags, then MPLS or PPPoE."""

    src: bytes = bytes.fromhex("020000000001")
    dst: bytes = bytes.fromhex("020000000002")
    vlans: tuple[Vlan, ...] = ()
    mpls: Mpls | None = None
    pppoe: Pppoe | None = None
    ethertype: int | None = None  # default: from the encapsulation / IP version
    linktype: ClassVar[int] = linktypes.ETHERNET

    def header(self, version: int | None, inner_len: int) -> bytes:
        if self.mpls is not None:
            et, encap = 0x8847, self.mpls.to_bytes()
        elif self.pppoe is not None:
            et, encap = 0x8864, self.pppoe.to_bytes(version, inner_len)
        else:
            et, encap = (ETH_IPV6 if version == 6 else ETH_IPV4), b""
        if self.ethertype is not None:
            et = self.ethertype
        # dst, src, then each tag's TPID and TCI, then the ethertype of what follows.
        tags = b"".join(tag.to_bytes() for tag in self.vlans)
        return self.dst + self.src + tags + struct.pack(">H", et) + encap


@dataclass(frozen=True, slots=True)
class Sll:
    """Linux cooked capture v1 (16 bytes)."""

    pkttype: int = 0
    hatype: int = 1
    addr: bytes = bytes.fromhex("020000000001")
    protocol: int | None = None
    linktype: ClassVar[int] = linktypes.LINUX_SLL

    def header(self, version: int | None, inner_len: int) -> bytes:
        proto = self.protocol if self.protocol is not None else (ETH_IPV6 if version == 6 else ETH_IPV4)
        return struct.pack(">HHH8sH", self.pkttype, self.hatype, len(self.addr), self.addr[:8], proto)


@dataclass(frozen=True, slots=True)
class Sll2:
    """Linux cooked capture v2 (20 bytes)."""

    ifindex: int = 1
    pkttype: int = 0
    hatype: int = 1
    addr: bytes = bytes.fromhex("020000000001")
    protocol: int | None = None
    linktype: ClassVar[int] = linktypes.LINUX_SLL2

    def header(self, version: int | None, inner_len: int) -> bytes:
        proto = self.protocol if self.protocol is not None else (ETH_IPV6 if version == 6 else ETH_IPV4)
        return struct.pack(">HHIHBB8s", proto, 0, self.ifindex, self.hatype, self.pkttype,
                           len(self.addr), self.addr[:8])


@dataclass(frozen=True, slots=True)
class Null:
    """BSD loopback: a 4-byte address family (NULL: writer's byte order; LOOP: big-endian)."""

    family: int | None = None  # default: 2, or 30 (Darwin's AF_INET6) for IPv6
    byteorder: str = "little"
    loop: bool = False  # LINKTYPE_LOOP (108) instead of NULL (0)

    @property
    def linktype(self) -> int:
        return linktypes.LOOP if self.loop else linktypes.NULL

    def header(self, version: int | None, inner_len: int) -> bytes:
        fam = self.family if self.family is not None else (
            linktypes.AF_INET6_DARWIN if version == 6 else linktypes.AF_INET)
        return fam.to_bytes(4, self.byteorder)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Raw:
    """No link header: raw IP (101, the old 12 / 14), or LINKTYPE_IPV4 / IPV6 (228 / 229)."""

    linktype: int = linktypes.RAW

    def header(self, version: int | None, inner_len: int) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class Nflog:
    """Linux NFLOG: a 4-byte header and TLVs, the packet in NFULA_PAYLOAD (type 9)."""

    family: int | None = None  # default: 2 (AF_INET) or 10 (AF_INET6)
    resource_id: int = 0
    tlvs: tuple[tuple[int, bytes], ...] = ((1, b"\x08\x00\x01\x00"),)  # before the payload
    byteorder: str = "little"
    linktype: ClassVar[int] = linktypes.NFLOG

    def _tlv(self, type_: int, value: bytes, pad: bool = True) -> bytes:
        head = (len(value) + 4).to_bytes(2, self.byteorder) + type_.to_bytes(2, self.byteorder)  # type: ignore[arg-type]
        padding = b"\x00" * ((-len(value)) % 4) if pad else b""
        return head + value + padding

    def header(self, version: int | None, inner_len: int) -> bytes:
        fam = self.family if self.family is not None else (10 if version == 6 else 2)
        out = struct.pack(">BBH", fam, 0, self.resource_id)
        for type_, value in self.tlvs:
            out += self._tlv(type_, value)
        return out + (inner_len + 4).to_bytes(2, self.byteorder) + (9).to_bytes(2, self.byteorder)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Ipoib:
    """IP over InfiniBand as libpcap writes it: 40 address bytes, ethertype, reserved."""

    address: bytes = b"\x00" * 40
    protocol: int | None = None
    linktype: ClassVar[int] = linktypes.IPOIB

    def header(self, version: int | None, inner_len: int) -> bytes:
        proto = self.protocol if self.protocol is not None else (ETH_IPV6 if version == 6 else ETH_IPV4)
        return self.address[:40].ljust(40, b"\x00") + struct.pack(">HH", proto, 0)


@dataclass(frozen=True, slots=True)
class Pktap:
    """Apple PKTAP: a little-endian header naming the inner link type, then that link layer."""

    inner: Ether | Null | Raw = Ether()
    header_length: int = 108
    linktype: ClassVar[int] = linktypes.PKTAP

    def header(self, version: int | None, inner_len: int) -> bytes:
        dlt = self.inner.linktype
        if dlt == linktypes.RAW:
            dlt = 12  # DLT_RAW on Darwin
        head = struct.pack("<III", self.header_length, 1, dlt).ljust(self.header_length, b"\x00")
        return head + self.inner.header(version, inner_len)


LinkLayer = Union[Ether, Sll, Sll2, Null, Raw, Nflog, Ipoib, Pktap]


# --------------------------------------------------------------------------
# IP
# --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class IPv4:
    """An IPv4 header (RFC 791). Options are raw bytes, zero-padded to 4n."""

    src: str | bytes = "10.0.0.1"
    dst: str | bytes = "10.0.0.2"
    id: int = 0
    ttl: int = 64
    tos: int = 0
    df: bool = True
    mf: bool = False
    reserved_flag: bool = False
    frag_offset: int = 0  # in 8-byte units
    options: bytes = b""
    proto: int | None = None  # default: from the transport layer
    total_length: int | None = None  # override (0: TSO style)
    ihl: int | None = None  # override, in 32-bit words
    checksum: int | None = None  # override; None = correct
    version: ClassVar[int] = 4

    def src_bytes(self) -> bytes:
        return _addr(self.src, 4)

    def dst_bytes(self) -> bytes:
        return _addr(self.dst, 4)

    def final_dst(self) -> bytes:
        """The destination of the pseudo-header: the last hop of a source route (RFC 791)."""
        opts, dst, i = self.options, self.dst_bytes(), 0
        while i < len(opts):
            t = opts[i]
            if t == 0:
                break
            if t == 1:
                i += 1
                continue
            if i + 1 >= len(opts) or opts[i + 1] < 2:
                break
            olen = opts[i + 1]
            if t in (131, 137) and olen >= 7 and i + olen <= len(opts):
                dst = opts[i + olen - 4 : i + olen]
            i += olen
        return dst

    def header(self, payload_len: int, proto: int) -> bytes:
        opts = self.options + b"\x00" * ((-len(self.options)) % 4)
        ihl = self.ihl if self.ihl is not None else 5 + len(opts) // 4
        total = self.total_length if self.total_length is not None else 20 + len(opts) + payload_len
        flags = (0x8000 if self.reserved_flag else 0) | (0x4000 if self.df else 0) | (0x2000 if self.mf else 0)
        p = self.proto if self.proto is not None else proto
        h = struct.pack(">BBHHHBBH4s4s", 0x40 | (ihl & 0x0F), self.tos, total & 0xFFFF, self.id,
                        flags | (self.frag_offset & 0x1FFF), self.ttl, p, 0,
                        self.src_bytes(), self.dst_bytes()) + opts
        csum = self.checksum if self.checksum is not None else internet_checksum(h)
        return h[:10] + struct.pack(">H", csum) + h[12:]


@dataclass(frozen=True, slots=True)
class HopByHop:
    """Hop-by-hop options (RFC 8200 §4.3): raw option bytes, padded with PadN."""

    options: bytes = b""
    proto: ClassVar[int] = 0

    def to_bytes(self, next_header: int) -> bytes:
        return _ext_with_options(next_header, self.options)


@dataclass(frozen=True, slots=True)
class DestOpts:
    """Destination options (RFC 8200 §4.6)."""

    options: bytes = b""
    proto: ClassVar[int] = 60

    def to_bytes(self, next_header: int) -> bytes:
        return _ext_with_options(next_header, self.options)


def _ext_with_options(next_header: int, options: bytes) -> bytes:
    body = options
    pad = (-(len(body) + 2)) % 8
    if pad == 1:
        body += b"\x00"  # Pad1
    elif pad:
        body += bytes((1, pad - 2)) + b"\x00" * (pad - 2)  # PadN
    return bytes((next_header, (len(body) + 2) // 8 - 1)) + body


@dataclass(frozen=True, slots=True)
class Routing:
    """A routing header (RFC 8200 §4.4): type 0 / 2 (address list) or 4 (SRH, segment 0 first)."""

    type: int = 0
    segments_left: int = 0
    addresses: tuple[str | bytes, ...] = ()
    proto: ClassVar[int] = 43

    def to_bytes(self, next_header: int) -> bytes:
        addrs = b"".join(_addr(a, 6) for a in self.addresses)
        if self.type == 4:  # SRH: last entry, flags, tag
            head = struct.pack(">BBBBBBH", next_header, len(addrs) // 8, 4, self.segments_left,
                               max(len(self.addresses) - 1, 0), 0, 0)
        else:
            head = struct.pack(">BBBBI", next_header, len(addrs) // 8, self.type, self.segments_left, 0)
        return head + addrs

    def final_dst(self) -> bytes | None:
        if not self.addresses:
            return None
        return _addr(self.addresses[0] if self.type == 4 else self.addresses[-1], 6)


@dataclass(frozen=True, slots=True)
class Fragment:
    """A fragment header (RFC 8200 §4.5); offset in 8-byte units."""

    offset: int = 0
    more: bool = False
    ident: int = 0
    proto: ClassVar[int] = 44

    def to_bytes(self, next_header: int) -> bytes:
        return struct.pack(">BBHI", next_header, 0, (self.offset << 3) | int(self.more), self.ident)


ExtHeader = Union[HopByHop, DestOpts, Routing, Fragment]


@dataclass(frozen=True, slots=True)
class IPv6:
    """An IPv6 header (RFC 8200) and its extension headers, in order."""

    src: str | bytes = "fd00::1"
    dst: str | bytes = "fd00::2"
    tc: int = 0
    flow: int = 0
    hlim: int = 64
    ext: tuple[ExtHeader, ...] = ()
    next_header: int | None = None  # override of the upper protocol
    payload_length: int | None = None  # override (0: BIG TCP style)
    version: ClassVar[int] = 6

    def src_bytes(self) -> bytes:
        return _addr(self.src, 6)

    def dst_bytes(self) -> bytes:
        return _addr(self.dst, 6)

    def final_dst(self) -> bytes:
        for e in self.ext:
            final = e.final_dst() if isinstance(e, Routing) else None
            if final is not None:
                return final
        return self.dst_bytes()

    def header(self, payload_len: int, proto: int) -> bytes:
        upper = self.next_header if self.next_header is not None else proto
        chain = b""
        nexts = [e.proto for e in self.ext[1:]] + [upper]
        for e, nh in zip(self.ext, nexts):
            chain += e.to_bytes(nh)
        first = self.ext[0].proto if self.ext else upper
        plen = self.payload_length if self.payload_length is not None else len(chain) + payload_len
        vtf = (6 << 28) | (self.tc << 20) | (self.flow & 0xFFFFF)
        return struct.pack(">IHBB16s16s", vtf, plen & 0xFFFF, first, self.hlim,
                           self.src_bytes(), self.dst_bytes()) + chain


# --------------------------------------------------------------------------
# Transport
# --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TCP:
    """A TCP header (RFC 9293 §3.1). Options: typed (options.py) or raw bytes, in order."""

    sport: int = 40000
    dport: int = 80
    seq: int = 0
    ack: int = 0
    flags: int | str = "S"
    win: int = 65535
    urg: int = 0
    options: tuple[TcpOption | bytes, ...] = ()
    reserved: int = 0  # the 3 reserved bits (RFC 9293 / RFC 9768)
    data_offset: int | None = None  # override, in 32-bit words
    pad_options: bool = True  # pad the option bytes to 4n with zeros (EOL)
    checksum: int | str | None = None  # None = correct, an int, CSUM_PARTIAL, CSUM_PARTIAL_NO_LEN
    proto: ClassVar[int] = 6

    def option_bytes(self) -> bytes:
        b = options_to_bytes(self.options)
        if self.pad_options:
            b += b"\x00" * ((-len(b)) % 4)
        return b

    def segment(self, payload: bytes, src: bytes, dst: bytes) -> bytes:
        opts = self.option_bytes()
        doff = self.data_offset if self.data_offset is not None else (20 + len(opts)) // 4
        fl = tcp_flags(self.flags)
        byte12 = ((doff & 0x0F) << 4) | ((self.reserved & 0x07) << 1) | ((fl >> 8) & 1)
        seg = struct.pack(">HHIIBBHHH", self.sport, self.dport, self.seq & 0xFFFFFFFF,
                          self.ack & 0xFFFFFFFF, byte12, fl & 0xFF, self.win, 0, self.urg) + opts + payload
        csum = self.checksum
        if csum is None:
            value = internet_checksum(pseudo_header(src, dst, len(seg)) + seg)
        elif csum == CSUM_PARTIAL:
            value = partial_checksum(src, dst, len(seg))
        elif csum == CSUM_PARTIAL_NO_LEN:
            value = partial_checksum(src, dst, 0)
        else:
            value = int(csum)
        return seg[:16] + struct.pack(">H", value) + seg[18:]


@dataclass(frozen=True, slots=True)
class UDP:
    """A UDP header (RFC 768); the checksum is left 0 unless given."""

    sport: int = 5353
    dport: int = 53
    length: int | None = None
    checksum: int = 0
    proto: ClassVar[int] = 17

    def segment(self, payload: bytes, src: bytes, dst: bytes) -> bytes:
        n = self.length if self.length is not None else 8 + len(payload)
        return struct.pack(">HHHH", self.sport, self.dport, n, self.checksum) + payload


@dataclass(frozen=True, slots=True)
class ICMP:
    """An ICMP (or, over IPv6, ICMPv6) header: type, code, checksum, 4 more bytes."""

    type: int = 8
    code: int = 0
    rest: bytes = b"\x00\x00\x00\x00"
    v6: bool = False

    @property
    def proto(self) -> int:
        return 58 if self.v6 else 1

    def segment(self, payload: bytes, src: bytes, dst: bytes) -> bytes:
        msg = struct.pack(">BBH", self.type, self.code, 0) + self.rest + payload
        if self.v6:
            csum = internet_checksum(pseudo_header(src, dst, len(msg), 58) + msg)
        else:
            csum = internet_checksum(msg)
        return msg[:2] + struct.pack(">H", csum) + msg[4:]


# --------------------------------------------------------------------------
# The frame
# --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Frame:
    """A whole frame. `trailer` bytes follow the IP datagram (e.g. Ethernet padding)."""

    link: LinkLayer = field(default_factory=Ether)
    ip: IPv4 | IPv6 | None = field(default_factory=IPv4)
    l4: TCP | UDP | ICMP | None = field(default_factory=TCP)
    payload: bytes = b""
    trailer: bytes = b""

    @property
    def linktype(self) -> int:
        return self.link.linktype

    def datagram(self) -> bytes:
        """The IP datagram (or, without IP, the payload)."""
        if self.ip is None:
            return self.payload
        l4 = b""
        proto = 59  # no next header
        if self.l4 is not None:
            src = self.ip.src_bytes()
            l4 = self.l4.segment(self.payload, src, self.ip.final_dst())
            proto = self.l4.proto
        else:
            l4 = self.payload
        return self.ip.header(len(l4), proto) + l4

    def build(self) -> bytes:
        dgram = self.datagram()
        version = self.ip.version if self.ip is not None else None
        return self.link.header(version, len(dgram)) + dgram + self.trailer

    # -- template helpers ------------------------------------------------
    def with_link(self, **changes) -> Frame:
        return replace(self, link=replace(self.link, **changes))

    def with_ip(self, **changes) -> Frame:
        return replace(self, ip=replace(self.ip, **changes))

    def with_tcp(self, **changes) -> Frame:
        return replace(self, l4=replace(self.l4, **changes))

    def with_payload(self, payload: bytes) -> Frame:
        return replace(self, payload=payload)


"""Link-layer header types (the LINKTYPE_* registry of pcap and pcapng).

The numbers a capture file names in its header or interface block. The native
dissector (`_dissect.c`) understands the ones in `SUPPORTED`; any other gives a
record with KIND_UNKNOWN and REASON_UNSUPPORTED_LINKTYPE (counted, never fatal).
"""
from __future__ import annotations

from types import MappingProxyType

NULL = 0  #: BSD loopback: 4-byte address family in the writer's byte order
ETHERNET = 1  #: Ethernet II / IEEE 802.3 (VLAN, QinQ, MPLS, PPPoE inside)
RAW_OLD12 = 12  #: raw IP, the old DLT_RAW number on most systems
RAW_OLD14 = 14  #: raw IP, the old DLT_RAW number on OpenBSD
RAW = 101  #: raw IPv4 or IPv6 (version from the first nibble)
LOOP = 108  #: OpenBSD loopback: 4-byte address family in network byte order
LINUX_SLL = 113  #: Linux cooked capture v1 (tcpdump -i any)
IPV4 = 228  #: raw IPv4
IPV6 = 229  #: raw IPv6
NFLOG = 239  #: Linux netfilter NFLOG (TLVs, the packet in NFULA_PAYLOAD)
IPOIB = 242  #: IP over InfiniBand (RFC 4391)
PKTAP = 258  #: Apple PKTAP (a header naming the inner link type)
ETHERNET_MPACKET = 274  #: IEEE 802.3br mPackets (preamble, SMD, frame, mCRC)
LINUX_SLL2 = 276  #: Linux cooked capture v2 (interface index, packet type)

#: Link type number -> the name tcpdump prints ("link-type EN10MB").
NAMES = MappingProxyType(
    {
        NULL: "NULL",
        ETHERNET: "EN10MB",
        RAW_OLD12: "RAW",
        RAW_OLD14: "RAW",
        RAW: "RAW",
        LOOP: "LOOP",
        LINUX_SLL: "LINUX_SLL",
        IPV4: "IPV4",
        IPV6: "IPV6",
        NFLOG: "NFLOG",
        IPOIB: "IPOIB",
        PKTAP: "PKTAP",
        ETHERNET_MPACKET: "ETHERNET_MPACKET",
        LINUX_SLL2: "LINUX_SLL2",
    }
)

#: Link types the native dissector understands.
SUPPORTED = frozenset(NAMES)

#: Address-family values of the NULL / LOOP header, per system (either byte order is read).
AF_INET = 2
AF_INET6_LINUX = 10
AF_INET6_BSD = 24  # NetBSD, OpenBSD, BSD/OS
AF_INET6_FREEBSD = 28  # FreeBSD, DragonFly BSD
AF_INET6_DARWIN = 30  # macOS, iOS
AF_INET6_ALL = (AF_INET6_LINUX, AF_INET6_BSD, AF_INET6_FREEBSD, AF_INET6_DARWIN)


def linktype_name(linktype: int) -> str:
    """The registry name of a link type, or ``LINKTYPE_<n>`` when unknown here."""
    return NAMES.get(linktype, f"LINKTYPE_{linktype}")


def is_supported(linktype: int) -> bool:
    return linktype in SUPPORTED

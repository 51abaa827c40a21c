/*
 * record.h -- the dissected-frame record shared by the native modules.
 *
 * One `tcps_record` per captured frame: what wire/_dissect.c could parse from
 * the link, IP and TCP headers, and, where it stopped, which layer and why
 * (the "lax" result, in the manner of etherparse's LaxSlicedPacket).
 *
 * The layout is exported at run time by `_dissect.record_layout()` (name,
 * offset, C type of every field, computed with offsetof), and the numpy dtype
 * in wire/record.py is built from it: there is no second copy of this layout
 * to keep in sync. Enumerations are X-macros so their names are exported too.
 *
 * Conventions
 *   - every multi-byte field is in host byte order;
 *   - offsets are from the start of the frame's captured bytes;
 *   - OFF_NONE (0xFFFF) means "that layer was not reached";
 *   - IPv4 addresses occupy the first 4 bytes of src/dst, the rest zero.
 */
#ifndef TCPSCOPE_RECORD_H
#define TCPSCOPE_RECORD_H

#include <stdint.h>

#define TCPS_OFF_NONE 0xFFFFu

/* What the frame is, as far as dissection got. */
#define TCPS_KINDS(X)  \
    X(KIND_UNKNOWN, 0) /* nothing parsed (unsupported link type, damage) */ \
    X(KIND_NON_IP, 1)  /* a link-layer frame that does not carry IP (ARP, LLDP, ...) */ \
    X(KIND_IP, 2)      /* IP with an upper protocol we do not dissect */ \
    X(KIND_TCP, 3)     \
    X(KIND_UDP, 4)     /* sport/dport hold the UDP ports */ \
    X(KIND_ICMP, 5)    /* sport/dport hold ICMP type/code */ \
    X(KIND_ICMP6, 6)   /* sport/dport hold ICMPv6 type/code */ \
    X(KIND_FRAGMENT, 7) /* a non-first IP fragment: no transport header in it */

/* The layer at which dissection stopped (stop_layer). */
#define TCPS_LAYERS(X) \
    X(LAYER_NONE, 0)   \
    X(LAYER_LINK, 1)   \
    X(LAYER_IP, 2)     \
    X(LAYER_IP6_EXT, 3) \
    X(LAYER_TCP, 4)    \
    X(LAYER_TCP_OPTIONS, 5) \
    X(LAYER_TRANSPORT, 6) /* UDP / ICMP */

/* Why dissection stopped (stop_reason); REASON_NONE = parsed to the end.
 * Each name is also the name of a damage counter. */
#define TCPS_REASONS(X) \
    X(REASON_NONE, 0) \
    X(REASON_UNSUPPORTED_LINKTYPE, 1) \
    X(REASON_TRUNCATED_LINK, 2)        /* frame shorter than the link header */ \
    X(REASON_TRUNCATED_IP, 3)          /* captured bytes end inside the IP header */ \
    X(REASON_BAD_IP_VERSION, 4) \
    X(REASON_BAD_IP_HEADER_LENGTH, 5)  /* IHL < 5 */ \
    X(REASON_BAD_IP_TOTAL_LENGTH, 6)   /* total length < header length */ \
    X(REASON_TRUNCATED_IP6_EXT, 7) \
    X(REASON_BAD_IP6_EXT, 8)           /* extension header chain malformed / too long */ \
    X(REASON_TRUNCATED_TCP, 9)         /* captured bytes end inside the fixed TCP header */ \
    X(REASON_BAD_TCP_DATA_OFFSET, 10)  /* data offset < 5 or beyond the segment */ \
    X(REASON_TRUNCATED_TCP_OPTIONS, 11) /* captured bytes end inside the TCP options */ \
    X(REASON_TRUNCATED_TRANSPORT, 12)  /* UDP / ICMP header cut short */ \
    X(REASON_TRUNCATED_ENCAP, 13)      /* VLAN / MPLS / PPPoE header cut short */ \
    X(REASON_BAD_LINK_HEADER, 14)      /* link header malformed: NFLOG TLV, too many VLAN tags / MPLS labels, headers past 64 KiB */

/* Non-fatal oddities (warnings bitmask); names are counters too. */
#define TCPS_WARNINGS(X) \
    X(WARN_SNAPLEN_TRUNCATED, 0)  /* caplen < origlen (told apart from malformed) */ \
    X(WARN_PAYLOAD_TRUNCATED, 1)  /* TCP payload not completely captured */ \
    X(WARN_IP_LENGTH_EXCEEDS_FRAME, 2) /* IP length claims more than the frame holds */ \
    X(WARN_TRAILING_BYTES, 3)     /* bytes after the IP datagram (Ethernet padding) */ \
    X(WARN_BAD_IP_CHECKSUM, 4)    \
    X(WARN_BAD_TCP_CHECKSUM, 5)   \
    X(WARN_MALFORMED_TCP_OPTIONS, 6) /* option list overruns or has a bad length */ \
    X(WARN_IP_OPTIONS, 7)         /* IPv4 header carries options */ \
    X(WARN_SYN_FIN, 8)            /* SYN and FIN both set */ \
    X(WARN_ZERO_PORT, 9)          \
    X(WARN_IP_FRAGMENTED, 10)     /* first fragment: TCP header present, payload incomplete */ \
    X(WARN_TCP_RESERVED_BITS, 11) /* reserved header bits set */ \
    X(WARN_IP_LENGTH_FROM_FRAME, 12) /* IPv4 total length 0 / IPv6 payload length 0 without jumbo option (TSO, GSO, BIG TCP): length taken from the frame */

/* Checksum verdicts (ip_csum_status, tcp_csum_status). */
#define TCPS_CSUM(X) \
    X(CSUM_UNVERIFIED, 0) /* not enough bytes captured, or a fragment */ \
    X(CSUM_OK, 1)         \
    X(CSUM_BAD, 2)        \
    X(CSUM_OFFLOAD, 3)    /* the field holds the partial pseudo-header sum (TX offload) */

/* TCP flag bits, in header order; AE is RFC 9768's former NS bit. */
enum {
    TCPS_FIN = 0x001, TCPS_SYN = 0x002, TCPS_RST = 0x004, TCPS_PSH = 0x008,
    TCPS_ACK = 0x010, TCPS_URG = 0x020, TCPS_ECE = 0x040, TCPS_CWR = 0x080,
    TCPS_AE = 0x100,
};

/* Which TCP options were seen (opt_present bitmask). */
#define TCPS_OPTS(X) \
    X(OPT_MSS, 0) X(OPT_WSCALE, 1) X(OPT_SACK_PERM, 2) X(OPT_SACK, 3) \
    X(OPT_TIMESTAMP, 4) X(OPT_TFO, 5) X(OPT_MPTCP, 6) X(OPT_MD5, 7) \
    X(OPT_AO, 8) X(OPT_UTO, 9) X(OPT_EOL, 10) X(OPT_UNKNOWN, 11) X(OPT_EXP, 12)

#define TCPS_ENUM_VALUE(name, value) TCPS_##name = value,
#define TCPS_ENUM_BIT(name, bit) TCPS_##name = (1u << (bit)),
enum { TCPS_KINDS(TCPS_ENUM_VALUE) };
enum { TCPS_LAYERS(TCPS_ENUM_VALUE) };
enum { TCPS_REASONS(TCPS_ENUM_VALUE) TCPS_REASON_COUNT };
enum { TCPS_WARNINGS(TCPS_ENUM_BIT) };
enum { TCPS_CSUM(TCPS_ENUM_VALUE) };
enum { TCPS_OPTS(TCPS_ENUM_BIT) };

#define TCPS_MAX_SACK 4

typedef struct {
    /* ---- addresses (first: 8-byte aligned block) ---- */
    uint8_t  src[16];
    uint8_t  dst[16];
    /* ---- TCP ---- */
    uint32_t seq;
    uint32_t ack;
    uint32_t payload_len;    /* TCP payload bytes as the IP length says (tcpdump's "length") */
    uint32_t payload_cap;    /* of those, bytes actually captured */
    uint32_t ts_val;         /* TCP timestamps option (if OPT_TIMESTAMP) */
    uint32_t ts_ecr;
    uint32_t sack[2 * TCPS_MAX_SACK]; /* left, right edges of the first sack_count blocks */
    uint16_t sport;          /* or UDP port / ICMP type */
    uint16_t dport;          /* or UDP port / ICMP code */
    uint16_t tcp_flags;      /* TCPS_FIN ... TCPS_AE */
    uint16_t win;            /* raw, unscaled */
    uint16_t tcp_csum;       /* as carried */
    uint16_t tcp_csum_calc;  /* the correct value (what tcpdump prints after "->") */
    uint16_t urg;
    uint16_t mss;            /* MSS option value (if OPT_MSS) */
    uint16_t opt_present;    /* TCPS_OPT_* bits */
    uint16_t opt_off;        /* offset of the TCP options in the frame */
    uint16_t opt_len;        /* captured bytes of TCP options */
    uint8_t  tcp_hlen;       /* data offset * 4 */
    uint8_t  wscale;         /* window scale option shift, as carried (if OPT_WSCALE) */
    uint8_t  sack_count;     /* SACK blocks in the option (may exceed TCPS_MAX_SACK) */
    uint8_t  tcp_csum_status;
    /* ---- IP ---- */
    uint32_t ip_len;         /* IPv4 total length; IPv6 40 + payload length */
    uint32_t ip6_flow;       /* IPv6 flow label */
    uint32_t ip6_frag_id;    /* IPv6 fragment identification (if a fragment header) */
    uint16_t ip_id;          /* IPv4 identification */
    uint16_t ip_frag_off;    /* fragment offset in 8-byte units (v4 and v6) */
    uint16_t ip_csum;        /* IPv4 header checksum as carried */
    uint16_t ip_csum_calc;   /* the correct value */
    uint16_t ethertype;      /* the ethertype that led to IP (after VLAN tags), or 0 */
    uint16_t l3_off;         /* offset of the (outer-most) IP header, or OFF_NONE */
    uint16_t l4_off;         /* offset of the transport header, or OFF_NONE */
    uint16_t stop_off;       /* offset at which dissection stopped (if stop_reason) */
    uint16_t warnings;       /* TCPS_WARN_* bits */
    uint8_t  ip_version;     /* 0, 4 or 6 */
    uint8_t  ip_hlen;        /* IPv4 IHL*4; IPv6 40 + extension headers */
    uint8_t  ip_proto;       /* upper-layer protocol (after IPv6 extension headers) */
    uint8_t  ip_tos;         /* IPv4 TOS / IPv6 traffic class */
    uint8_t  ip_ttl;         /* TTL / hop limit */
    uint8_t  ip_flags;       /* bit 0 MF, bit 1 DF, bit 2 reserved (IPv6: MF only) */
    uint8_t  ip_csum_status;
    uint8_t  ip6_ext;        /* bitmask of IPv6 extension headers seen: 1 HBH, 2 routing, 4 fragment, 8 dest opts, 16 other */
    /* ---- link ---- */
    uint32_t ifindex;        /* SLL2 interface index */
    uint16_t sll_pkttype;    /* SLL / SLL2 packet type (0 host, 4 outgoing, ...), 0xFFFF if none */
    uint8_t  vlan_depth;     /* 802.1Q / 802.1ad tags passed */
    uint8_t  kind;           /* TCPS_KIND_* */
    /* ---- result ---- */
    uint8_t  stop_layer;     /* TCPS_LAYER_* at which dissection stopped */
    uint8_t  stop_reason;    /* TCPS_REASON_*; REASON_NONE = complete */
    uint8_t  _pad[6];
} tcps_record;

#endif

/*
 * _dissect.c -- bulk dissection of frames into tcps_record rows.
 *
 * dissect(data, offset, caplen, origlen, linktype, out, verify_checksums=True)
 * walks every frame of a batch once, link -> IP -> TCP (+ options), and fills
 * one tcps_record (record.h) per frame in `out`. No Python object is created
 * per frame and the GIL is released while the frames are walked.
 *
 * The dissector is lax (in the manner of etherparse's LaxSlicedPacket): each
 * frame gets everything that could be parsed, plus where (stop_layer,
 * stop_off) and why (stop_reason) it stopped, plus warning bits for oddities
 * that did not stop it. It never reads outside [frame, frame + caplen): every
 * read is preceded by a length check against the captured bytes, and every
 * length taken from a header is checked before it is used.
 *
 * Layout: one small static function per layer, called in order:
 *   dissect_link   -> link_ethernet / link_sll / link_null / ... (link types)
 *   dissect_ethertype (VLAN, QinQ, MPLS, PPPoE, then IP or "not IP")
 *   dissect_ip     -> dissect_ipv4 (RFC 791) / dissect_ipv6 (RFC 8200)
 *   dissect_transport -> dissect_tcp (RFC 9293) + tcp_options, udp, icmp
 *   checksums (RFC 1071 arithmetic, RFC 1624 "should be" value).
 *
 * Length: about 1,200 lines, over the project's 900, because the walk from link
 * to TCP options is the bulk path of every command: kept as static functions of
 * one translation unit, the compiler inlines the whole walk into one loop per
 * batch; split into units, each layer would become a call per frame.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "cksum.h"
#include "record.h"

/* ------------------------------------------------------------------ */
/* Bounds and constants                                                */
/* ------------------------------------------------------------------ */

#define MAX_VLAN_TAGS 8      /* 802.1Q / 802.1ad tags passed before giving up */
#define MAX_MPLS_LABELS 16   /* MPLS label stack entries (RFC 3032) */
#define MAX_IP6_EXT 8        /* IPv6 extension headers in one chain */
#define MAX_OFFSET 0xFF00u   /* record offsets are 16-bit; headers must start below this */

/* Link types (LINKTYPE_* numbers of the pcap/pcapng registry); wire/linktypes.py
 * holds the same numbers with their names. */
enum {
    LT_NULL = 0, LT_ETHERNET = 1, LT_RAW_OLD12 = 12, LT_RAW_OLD14 = 14, LT_RAW = 101,
    LT_LOOP = 108, LT_LINUX_SLL = 113, LT_IPV4 = 228, LT_IPV6 = 229, LT_NFLOG = 239,
    LT_IPOIB = 242, LT_PKTAP = 258, LT_ETHERNET_MPACKET = 274, LT_LINUX_SLL2 = 276,
};

enum {
    ET_IPV4 = 0x0800, ET_IPV6 = 0x86DD, ET_VLAN = 0x8100, ET_QINQ = 0x88A8,
    ET_QINQ_OLD1 = 0x9100, ET_QINQ_OLD2 = 0x9200, ET_MPLS_UC = 0x8847, ET_MPLS_MC = 0x8848,
    ET_PPPOE_SESSION = 0x8864,
};

enum { IPPROTO_HOPOPT_ = 0, IPPROTO_ICMP_ = 1, IPPROTO_TCP_ = 6, IPPROTO_UDP_ = 17,
       IPPROTO_ROUTING_ = 43, IPPROTO_FRAGMENT_ = 44, IPPROTO_AH_ = 51, IPPROTO_ICMPV6_ = 58,
       IPPROTO_DSTOPTS_ = 60, IPPROTO_MOBILITY_ = 135, IPPROTO_HIP_ = 139, IPPROTO_SHIM6_ = 140 };

/* ip6_ext bits (record.h) */
enum { EXT_HBH = 1, EXT_ROUTING = 2, EXT_FRAGMENT = 4, EXT_DSTOPTS = 8, EXT_OTHER = 16 };

/* ------------------------------------------------------------------ */
/* Byte access (callers have checked the bounds)                       */
/* ------------------------------------------------------------------ */

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint16_t le16(const uint8_t *p) { return (uint16_t)((p[1] << 8) | p[0]); }
static inline uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint32_t le32(const uint8_t *p)
{
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

/* ------------------------------------------------------------------ */
/* One frame being dissected                                           */
/* ------------------------------------------------------------------ */

typedef struct {
    const uint8_t *p;   /* the captured bytes */
    uint32_t cap;       /* how many were captured */
    uint32_t wire;      /* how long the frame was on the wire: max(origlen, caplen) */
    int verify;         /* verify checksums */
    tcps_record *r;
} frame;

/* Addresses that enter the TCP pseudo-header (RFC 9293 §3.1; RFC 8200 §8.1). */
typedef struct {
    const uint8_t *src;
    const uint8_t *dst;  /* the final destination (after a source route / routing header) */
    int alen;            /* 4 or 16 */
} pseudo_hdr;

static void stop(frame *f, int layer, int reason, uint32_t off)
{
    f->r->stop_layer = (uint8_t)layer;
    f->r->stop_reason = (uint8_t)reason;
    f->r->stop_off = (uint16_t)(off < TCPS_OFF_NONE ? off : TCPS_OFF_NONE - 1);
}

static inline void warn(frame *f, unsigned bit) { f->r->warnings |= (uint16_t)bit; }

/* Sum of the TCP pseudo-header (big-endian words, not folded). For IPv4 the
 * length is a 16-bit field (RFC 9293 §3.1; BIG TCP lengths are cut to 16 bits,
 * as tcpdump does); for IPv6 it is 32 bits (RFC 8200 §8.1). */
static uint32_t pseudo_sum(const pseudo_hdr *ph, uint32_t len)
{
    uint32_t s = IPPROTO_TCP_;
    for (int i = 0; i < ph->alen; i += 2)
        s += (uint32_t)be16(ph->src + i) + be16(ph->dst + i);
    if (ph->alen == 4)
        len &= 0xFFFF;
    return s + (len >> 16) + (len & 0xFFFF);
}

/* Verify the TCP checksum of a completely captured, unfragmented segment. */
static void tcp_checksum(frame *f, const uint8_t *seg, uint32_t seg_len, const pseudo_hdr *ph)
{
    tcps_record *r = f->r;
    uint32_t ps = pseudo_sum(ph, seg_len);
    uint16_t total = fold((uint64_t)ps + sum_be(seg, seg_len));
    if (total == 0xFFFF) {
        r->tcp_csum_status = TCPS_CSUM_OK;
        r->tcp_csum_calc = r->tcp_csum;
        return;
    }
    r->tcp_csum_calc = csum_should_be(r->tcp_csum, total);
    /* TX checksum offload: the stack leaves the folded pseudo-header sum in the
     * field for the NIC to finish (Linux CHECKSUM_PARTIAL: th->check =
     * ~tcp_v4_check(len, ...), i.e. the sum itself). Windows LSO uses a zero
     * length in that sum. Both complements are accepted. */
    uint16_t partial = fold(ps), partial0 = fold(pseudo_sum(ph, 0));
    uint16_t not_partial = (uint16_t)~partial, not_partial0 = (uint16_t)~partial0;
    uint16_t c = r->tcp_csum;
    if (c == partial || c == not_partial || c == partial0 || c == not_partial0) {
        r->tcp_csum_status = TCPS_CSUM_OFFLOAD;
    } else {
        r->tcp_csum_status = TCPS_CSUM_BAD;
        warn(f, TCPS_WARN_BAD_TCP_CHECKSUM);
    }
}

/* ------------------------------------------------------------------ */
/* TCP options summary (RFC 9293 §3.2)                                 */
/* ------------------------------------------------------------------ */

static void option_summary(frame *f, const uint8_t *o, uint32_t olen)
{
    tcps_record *r = f->r;
    int ok = 1;
    switch (o[0]) {
    case 2: /* MSS, RFC 9293 §3.2 */
        if ((ok = olen == 4)) {
            r->mss = be16(o + 2);
            r->opt_present |= TCPS_OPT_MSS;
        }
        break;
    case 3: /* window scale, RFC 7323 §2 */
        if ((ok = olen == 3)) {
            r->wscale = o[2];
            r->opt_present |= TCPS_OPT_WSCALE;
        }
        break;
    case 4: /* SACK permitted, RFC 2018 §2 */
        if ((ok = olen == 2))
            r->opt_present |= TCPS_OPT_SACK_PERM;
        break;
    case 5: { /* SACK, RFC 2018 §3: 8*n + 2 bytes, n >= 1 */
        uint32_t n = (olen - 2) / 8;
        if ((ok = olen >= 10 && (olen - 2) % 8 == 0)) {
            for (uint32_t i = 0; i < n; i++) {
                uint32_t k = r->sack_count;
                if (k < TCPS_MAX_SACK) {
                    r->sack[2 * k] = be32(o + 2 + 8 * i);
                    r->sack[2 * k + 1] = be32(o + 6 + 8 * i);
                }
                if (r->sack_count < 255)
                    r->sack_count++;
            }
            r->opt_present |= TCPS_OPT_SACK;
        }
        break;
    }
    case 8: /* timestamps, RFC 7323 §3 */
        if ((ok = olen == 10)) {
            r->ts_val = be32(o + 2);
            r->ts_ecr = be32(o + 6);
            r->opt_present |= TCPS_OPT_TIMESTAMP;
        }
        break;
    case 19: /* TCP MD5 signature, RFC 2385 */
        if ((ok = olen == 18))
            r->opt_present |= TCPS_OPT_MD5;
        break;
    case 28: /* user timeout, RFC 5482 */
        if ((ok = olen == 4))
            r->opt_present |= TCPS_OPT_UTO;
        break;
    case 29: /* TCP-AO, RFC 5925 §2.2: length >= 4 */
        if ((ok = olen >= 4))
            r->opt_present |= TCPS_OPT_AO;
        break;
    case 30: /* MPTCP, RFC 8684 §3: at least the subtype byte */
        if ((ok = olen >= 3))
            r->opt_present |= TCPS_OPT_MPTCP;
        break;
    case 34: /* TCP Fast Open cookie, RFC 7413 §4.1.1: empty (request) or 4..16 bytes */
        if ((ok = olen == 2 || (olen >= 6 && olen <= 18)))
            r->opt_present |= TCPS_OPT_TFO;
        break;
    case 253:
    case 254: /* experimental, RFC 6994: a 16-bit ExID follows the length */
        if ((ok = olen >= 4)) {
            r->opt_present |= TCPS_OPT_EXP;
            if (be16(o + 2) == 0xF989) /* RFC 7413 §4.1.1 experimental TFO */
                r->opt_present |= TCPS_OPT_TFO;
        }
        break;
    default:
        r->opt_present |= TCPS_OPT_UNKNOWN;
        break;
    }
    if (!ok)
        warn(f, TCPS_WARN_MALFORMED_TCP_OPTIONS);
}

/* Walk the option list: `len` bytes per the data offset, `cap` of them captured.
 * A list that breaks the rules within the header is malformed (never repaired:
 * the walk stops there); a list cut by the end of the capture is not. */
static void tcp_options(frame *f, const uint8_t *o, uint32_t len, uint32_t cap)
{
    uint32_t i = 0;
    while (i < cap) {
        uint8_t kind = o[i];
        if (kind == 0) { /* end of option list */
            f->r->opt_present |= TCPS_OPT_EOL;
            return;
        }
        if (kind == 1) { /* no-operation */
            i++;
            continue;
        }
        if (i + 1 >= len) { /* no room for the length byte */
            warn(f, TCPS_WARN_MALFORMED_TCP_OPTIONS);
            return;
        }
        if (i + 1 >= cap)
            return;
        uint32_t olen = o[i + 1];
        if (olen < 2 || i + olen > len) { /* length 0/1, or overruns the header */
            warn(f, TCPS_WARN_MALFORMED_TCP_OPTIONS);
            return;
        }
        if (i + olen > cap)
            return;
        option_summary(f, o + i, olen);
        i += olen;
    }
}

/* ------------------------------------------------------------------ */
/* Transport layer                                                     */
/* ------------------------------------------------------------------ */

/* TCP (RFC 9293 §3.1). `seg_wire` bytes per the IP length, `seg_cap` captured. */
static void dissect_tcp(frame *f, uint32_t off, uint32_t seg_wire, uint32_t seg_cap,
                        int fragmented, const pseudo_hdr *ph)
{
    tcps_record *r = f->r;
    const uint8_t *t = f->p + off;
    r->kind = TCPS_KIND_TCP;
    /* Lax: keep every field whose bytes are there, even in a cut header. */
    if (seg_cap >= 4) {
        r->sport = be16(t);
        r->dport = be16(t + 2);
        if (r->sport == 0 || r->dport == 0)
            warn(f, TCPS_WARN_ZERO_PORT);
    }
    if (seg_cap >= 8)
        r->seq = be32(t + 4);
    if (seg_cap >= 12)
        r->ack = be32(t + 8);
    if (seg_cap >= 14) {
        r->tcp_hlen = (uint8_t)((t[12] >> 4) * 4);
        r->tcp_flags = (uint16_t)(((t[12] & 0x01) << 8) | t[13]); /* AE is RFC 9768's bit */
        if (t[12] & 0x0E)
            warn(f, TCPS_WARN_TCP_RESERVED_BITS);
        if ((r->tcp_flags & (TCPS_SYN | TCPS_FIN)) == (TCPS_SYN | TCPS_FIN))
            warn(f, TCPS_WARN_SYN_FIN);
    }
    if (seg_cap >= 16)
        r->win = be16(t + 14);
    if (seg_cap >= 18)
        r->tcp_csum = be16(t + 16);
    if (seg_cap < 20) {
        stop(f, TCPS_LAYER_TCP, TCPS_REASON_TRUNCATED_TCP, off);
        return;
    }
    r->urg = be16(t + 18);
    uint32_t hlen = r->tcp_hlen;
    if (hlen < 20 || hlen > seg_wire) {
        stop(f, TCPS_LAYER_TCP, TCPS_REASON_BAD_TCP_DATA_OFFSET, off);
        return;
    }
    r->payload_len = seg_wire - hlen;
    r->payload_cap = seg_cap > hlen ? seg_cap - hlen : 0;
    if (r->payload_cap < r->payload_len)
        warn(f, TCPS_WARN_PAYLOAD_TRUNCATED);
    uint32_t opt_cap = (seg_cap < hlen ? seg_cap : hlen) - 20;
    r->opt_off = (uint16_t)(off + 20);
    r->opt_len = (uint16_t)opt_cap;
    tcp_options(f, t + 20, hlen - 20, opt_cap);
    if (seg_cap < hlen) {
        stop(f, TCPS_LAYER_TCP_OPTIONS, TCPS_REASON_TRUNCATED_TCP_OPTIONS, off + 20);
        return;
    }
    /* Verify only a whole, unfragmented segment (as tcpdump does). */
    if (f->verify && !fragmented && seg_cap >= seg_wire)
        tcp_checksum(f, t, seg_wire, ph);
}

static void dissect_udp(frame *f, uint32_t off, uint32_t seg_wire, uint32_t seg_cap)
{
    tcps_record *r = f->r;
    const uint8_t *u = f->p + off;
    r->kind = TCPS_KIND_UDP;
    if (seg_cap >= 4) {
        r->sport = be16(u);
        r->dport = be16(u + 2);
    }
    if (seg_cap < 8 || seg_wire < 8) {
        stop(f, TCPS_LAYER_TRANSPORT, TCPS_REASON_TRUNCATED_TRANSPORT, off);
        return;
    }
    /* tcpdump's "UDP, length N" comes from the UDP length field (RFC 768). */
    uint32_t ulen = be16(u + 4);
    r->payload_len = (ulen >= 8 && ulen <= seg_wire) ? ulen - 8 : seg_wire - 8;
    r->payload_cap = seg_cap - 8 < r->payload_len ? seg_cap - 8 : r->payload_len;
}

static void dissect_icmp(frame *f, int kind, uint32_t off, uint32_t seg_wire, uint32_t seg_cap)
{
    tcps_record *r = f->r;
    r->kind = (uint8_t)kind;
    if (seg_cap < 2) {
        stop(f, TCPS_LAYER_TRANSPORT, TCPS_REASON_TRUNCATED_TRANSPORT, off);
        return;
    }
    r->sport = f->p[off];     /* type */
    r->dport = f->p[off + 1]; /* code */
    r->payload_len = seg_wire; /* the whole ICMP message, as tcpdump's "length" */
    r->payload_cap = seg_cap;
}

/* The upper layer starts at `off`; the datagram ends at `wire_end` per the IP length. */
static void dissect_transport(frame *f, uint32_t off, uint32_t wire_end, int fragmented,
                              const pseudo_hdr *ph)
{
    tcps_record *r = f->r;
    r->l4_off = (uint16_t)off;
    uint32_t cap_end = f->cap < wire_end ? f->cap : wire_end;
    uint32_t seg_wire = wire_end - off;
    uint32_t seg_cap = cap_end > off ? cap_end - off : 0;
    switch (r->ip_proto) {
    case IPPROTO_TCP_:
        dissect_tcp(f, off, seg_wire, seg_cap, fragmented, ph);
        break;
    case IPPROTO_UDP_:
        dissect_udp(f, off, seg_wire, seg_cap);
        break;
    case IPPROTO_ICMP_:
        dissect_icmp(f, TCPS_KIND_ICMP, off, seg_wire, seg_cap);
        break;
    case IPPROTO_ICMPV6_:
        dissect_icmp(f, TCPS_KIND_ICMP6, off, seg_wire, seg_cap);
        break;
    default:
        r->kind = TCPS_KIND_IP;
        r->payload_len = seg_wire;
        r->payload_cap = seg_cap;
        break;
    }
}

/* A non-first fragment has no transport header: its data runs from `off` to
 * `wire_end` (per the IP length). */
static void fragment_data(frame *f, uint32_t off, uint32_t wire_end)
{
    uint32_t cap_end = f->cap < wire_end ? f->cap : wire_end;
    f->r->payload_len = wire_end - off;
    f->r->payload_cap = cap_end > off ? cap_end - off : 0;
}

/* ------------------------------------------------------------------ */
/* IPv4 (RFC 791)                                                      */
/* ------------------------------------------------------------------ */

/* The final destination of a loose / strict source route (RFC 791 §3.1,
 * options 131 and 137): the last address of the route data. It, not the
 * header's destination, enters the TCP pseudo-header (RFC 9293 §3.1). */
static const uint8_t *ipv4_final_dst(const uint8_t *h, uint32_t hlen)
{
    const uint8_t *dst = h + 16;
    uint32_t i = 20;
    while (i < hlen) {
        uint8_t type = h[i];
        if (type == 0) /* end of option list */
            break;
        if (type == 1) { /* no-operation */
            i++;
            continue;
        }
        if (i + 1 >= hlen)
            break;
        uint32_t olen = h[i + 1];
        if (olen < 2 || i + olen > hlen)
            break;
        if ((type == 131 || type == 137) && olen >= 7)
            dst = h + i + olen - 4;
        i += olen;
    }
    return dst;
}

static void dissect_ipv4(frame *f, uint32_t off)
{
    tcps_record *r = f->r;
    const uint8_t *h = f->p + off;
    uint32_t avail = f->cap - off;
    r->ip_version = 4;
    if (avail < 20) {
        stop(f, TCPS_LAYER_IP, TCPS_REASON_TRUNCATED_IP, off);
        return;
    }
    uint32_t hlen = (uint32_t)(h[0] & 0x0F) * 4;
    uint32_t total = be16(h + 2);
    uint16_t fo = be16(h + 6);
    r->ip_hlen = (uint8_t)hlen;
    r->ip_tos = h[1];
    r->ip_id = be16(h + 4);
    r->ip_flags = (uint8_t)(((fo & 0x2000) ? 1 : 0) | ((fo & 0x4000) ? 2 : 0) | ((fo & 0x8000) ? 4 : 0));
    r->ip_frag_off = fo & 0x1FFF;
    r->ip_ttl = h[8];
    r->ip_proto = h[9];
    r->ip_csum = be16(h + 10);
    memcpy(r->src, h + 12, 4);
    memcpy(r->dst, h + 16, 4);
    r->ip_len = total;
    r->kind = TCPS_KIND_IP;
    if (hlen < 20) {
        stop(f, TCPS_LAYER_IP, TCPS_REASON_BAD_IP_HEADER_LENGTH, off);
        return;
    }
    if (hlen > avail) {
        stop(f, TCPS_LAYER_IP, TCPS_REASON_TRUNCATED_IP, off);
        return;
    }
    if (f->verify) {
        uint16_t t = sum_be(h, hlen);
        if (t == 0xFFFF) {
            r->ip_csum_status = TCPS_CSUM_OK;
            r->ip_csum_calc = r->ip_csum;
        } else {
            r->ip_csum_status = TCPS_CSUM_BAD;
            r->ip_csum_calc = csum_should_be(r->ip_csum, t);
            warn(f, TCPS_WARN_BAD_IP_CHECKSUM);
        }
    }
    pseudo_hdr ph = {h + 12, h + 16, 4};
    if (hlen > 20) {
        warn(f, TCPS_WARN_IP_OPTIONS);
        ph.dst = ipv4_final_dst(h, hlen);
    }
    uint32_t wire = f->wire - off;
    if (total == 0) {
        /* TSO / GSO / BIG TCP (Linux): the length is left 0, the frame tells it. */
        total = wire;
        r->ip_len = total;
        warn(f, TCPS_WARN_IP_LENGTH_FROM_FRAME);
    } else if (total < hlen) {
        stop(f, TCPS_LAYER_IP, TCPS_REASON_BAD_IP_TOTAL_LENGTH, off);
        return;
    }
    if (total > wire)
        warn(f, TCPS_WARN_IP_LENGTH_EXCEEDS_FRAME);
    else if (total < wire)
        warn(f, TCPS_WARN_TRAILING_BYTES);
    /* Fragments (RFC 791 §2.3): only the first carries the transport header. */
    if (r->ip_frag_off != 0) {
        r->kind = TCPS_KIND_FRAGMENT;
        fragment_data(f, off + hlen, off + total);
        return;
    }
    int fragmented = (fo & 0x2000) != 0;
    if (fragmented)
        warn(f, TCPS_WARN_IP_FRAGMENTED);
    dissect_transport(f, off + hlen, off + total, fragmented, &ph);
}

/* ------------------------------------------------------------------ */
/* IPv6 (RFC 8200)                                                     */
/* ------------------------------------------------------------------ */

/* The Jumbo Payload option (RFC 2675) in a hop-by-hop header, or 0. */
static uint32_t ipv6_jumbo(const uint8_t *e, uint32_t elen)
{
    uint32_t i = 2;
    while (i < elen) {
        if (e[i] == 0) { /* Pad1 */
            i++;
            continue;
        }
        if (i + 1 >= elen)
            break;
        uint32_t olen = (uint32_t)e[i + 1] + 2;
        if (i + olen > elen)
            break;
        if (e[i] == 0xC2 && olen == 6)
            return be32(e + i + 2);
        i += olen;
    }
    return 0;
}

/* The final destination named by a routing header (RFC 8200 §8.1), or NULL:
 * the last address of a type 0 / type 2 header, segment 0 of an SRH (RFC 8754). */
static const uint8_t *ipv6_route_dst(const uint8_t *e, uint32_t elen)
{
    uint8_t type = e[2];
    if ((type == 0 || type == 2) && elen >= 8 + 16 && (e[1] % 2) == 0)
        return e + elen - 16;
    if (type == 4 && elen >= 8 + 16)
        return e + 8;
    return NULL;
}

static void dissect_ipv6(frame *f, uint32_t off)
{
    tcps_record *r = f->r;
    const uint8_t *h = f->p + off;
    uint32_t avail = f->cap - off;
    r->ip_version = 6;
    if (avail < 40) {
        stop(f, TCPS_LAYER_IP, TCPS_REASON_TRUNCATED_IP, off);
        return;
    }
    uint32_t vtf = be32(h);
    uint32_t plen = be16(h + 4);
    uint8_t nh = h[6];
    r->ip_tos = (uint8_t)((vtf >> 20) & 0xFF);
    r->ip6_flow = vtf & 0xFFFFF;
    r->ip_ttl = h[7];
    memcpy(r->src, h + 8, 16);
    memcpy(r->dst, h + 24, 16);
    r->ip_hlen = 40;
    r->ip_proto = nh;
    r->kind = TCPS_KIND_IP;
    pseudo_hdr ph = {h + 8, h + 24, 16};
    uint32_t wire = f->wire - off;
    uint32_t total = 40 + plen;
    int from_frame = 0;
    if (plen == 0) {
        /* A jumbogram (RFC 2675) names its length in the hop-by-hop header;
         * without one, BIG TCP / GSO left it 0 and the frame tells it. */
        total = wire;
        from_frame = 1;
    }
    /* The extension header chain (RFC 8200 §4), bounded. */
    uint32_t pos = off + 40;
    uint32_t end = off + total; /* provisional for a jumbogram */
    int fragmented = 0;
    r->ip_len = total;
    for (int n = 0;; n++) {
        uint32_t elen;
        int bit;
        switch (nh) {
        case IPPROTO_HOPOPT_: bit = EXT_HBH; break;
        case IPPROTO_ROUTING_: bit = EXT_ROUTING; break;
        case IPPROTO_FRAGMENT_: bit = EXT_FRAGMENT; break;
        case IPPROTO_DSTOPTS_: bit = EXT_DSTOPTS; break;
        case IPPROTO_AH_: case IPPROTO_MOBILITY_: case IPPROTO_HIP_: case IPPROTO_SHIM6_:
            bit = EXT_OTHER; break;
        default: bit = 0; break;
        }
        if (!bit)
            break;
        if (n >= MAX_IP6_EXT || pos > MAX_OFFSET) {
            r->ip_hlen = (uint8_t)(pos - off > 255 ? 255 : pos - off);
            stop(f, TCPS_LAYER_IP6_EXT, TCPS_REASON_BAD_IP6_EXT, pos);
            return;
        }
        r->ip6_ext |= (uint8_t)bit;
        if (pos + 2 > end) {
            stop(f, TCPS_LAYER_IP6_EXT, TCPS_REASON_BAD_IP6_EXT, pos);
            return;
        }
        if (pos + 2 > f->cap) {
            stop(f, TCPS_LAYER_IP6_EXT, TCPS_REASON_TRUNCATED_IP6_EXT, pos);
            return;
        }
        const uint8_t *e = f->p + pos;
        if (nh == IPPROTO_FRAGMENT_)
            elen = 8;
        else if (nh == IPPROTO_AH_)
            elen = ((uint32_t)e[1] + 2) * 4; /* RFC 4302 §2.2 */
        else
            elen = ((uint32_t)e[1] + 1) * 8;
        if (pos + elen > end) {
            stop(f, TCPS_LAYER_IP6_EXT, TCPS_REASON_BAD_IP6_EXT, pos);
            return;
        }
        if (pos + elen > f->cap) {
            stop(f, TCPS_LAYER_IP6_EXT, TCPS_REASON_TRUNCATED_IP6_EXT, pos);
            return;
        }
        if (nh == IPPROTO_HOPOPT_ && plen == 0) {
            uint32_t jumbo = ipv6_jumbo(e, elen);
            if (jumbo) {
                total = 40 + jumbo;
                end = off + total;
                r->ip_len = total;
                from_frame = 0;
                if (pos + elen > end) {
                    stop(f, TCPS_LAYER_IP6_EXT, TCPS_REASON_BAD_IP6_EXT, pos);
                    return;
                }
            }
        } else if (nh == IPPROTO_ROUTING_) {
            const uint8_t *d = ipv6_route_dst(e, elen);
            if (d)
                ph.dst = d;
        } else if (nh == IPPROTO_FRAGMENT_) {
            uint16_t offlg = be16(e + 2);
            r->ip_frag_off = offlg >> 3;
            r->ip6_frag_id = be32(e + 4);
            if (offlg & 1)
                r->ip_flags |= 1;
        }
        nh = e[0];
        pos += elen;
        r->ip_proto = nh;
        r->ip_hlen = (uint8_t)(pos - off > 255 ? 255 : pos - off);
        if (r->ip_frag_off != 0) {
            r->kind = TCPS_KIND_FRAGMENT;
            break;
        }
        if (r->ip_flags & 1)
            fragmented = 1;
    }
    if (from_frame)
        warn(f, TCPS_WARN_IP_LENGTH_FROM_FRAME);
    if (total > wire)
        warn(f, TCPS_WARN_IP_LENGTH_EXCEEDS_FRAME);
    else if (total < wire)
        warn(f, TCPS_WARN_TRAILING_BYTES);
    if (r->kind == TCPS_KIND_FRAGMENT) {
        fragment_data(f, pos, end); /* a non-first fragment (RFC 8200 §4.5) */
        return;
    }
    if (fragmented)
        warn(f, TCPS_WARN_IP_FRAGMENTED);
    if (pos > MAX_OFFSET) {
        stop(f, TCPS_LAYER_IP6_EXT, TCPS_REASON_BAD_IP6_EXT, pos);
        return;
    }
    dissect_transport(f, pos, end, fragmented, &ph);
}

/* `want` is 4 or 6 when the link layer named the version, 0 when the first
 * nibble decides (raw IP). */
static void dissect_ip(frame *f, uint32_t off, int want)
{
    tcps_record *r = f->r;
    if (off > MAX_OFFSET) {
        stop(f, TCPS_LAYER_LINK, TCPS_REASON_BAD_LINK_HEADER, off);
        return;
    }
    r->l3_off = (uint16_t)off;
    if (off >= f->cap) {
        r->ip_version = (uint8_t)want;
        stop(f, TCPS_LAYER_IP, TCPS_REASON_TRUNCATED_IP, off);
        return;
    }
    int v = f->p[off] >> 4;
    if ((want && v != want) || (v != 4 && v != 6)) {
        stop(f, TCPS_LAYER_IP, TCPS_REASON_BAD_IP_VERSION, off);
        return;
    }
    if (v == 4)
        dissect_ipv4(f, off);
    else
        dissect_ipv6(f, off);
}

/* ------------------------------------------------------------------ */
/* Ethertype dispatch: VLAN / QinQ, MPLS, PPPoE, then IP               */
/* ------------------------------------------------------------------ */

static void not_ip(frame *f, uint16_t ethertype)
{
    f->r->kind = TCPS_KIND_NON_IP;
    f->r->ethertype = ethertype;
}

static void dissect_mpls(frame *f, uint32_t off)
{
    /* RFC 3032 §2.1: 4-byte entries until the bottom-of-stack bit. */
    for (int n = 0;; n++) {
        if (n >= MAX_MPLS_LABELS) {
            stop(f, TCPS_LAYER_LINK, TCPS_REASON_BAD_LINK_HEADER, off);
            return;
        }
        if (off + 4 > f->cap) {
            stop(f, TCPS_LAYER_LINK, TCPS_REASON_TRUNCATED_ENCAP, off);
            return;
        }
        int bottom = f->p[off + 2] & 0x01;
        off += 4;
        if (bottom)
            break;
    }
    /* No protocol field: the first nibble tells IPv4 / IPv6 (RFC 4928 §2).
     * Anything else (a pseudowire control word, Ethernet over MPLS) is not
     * IP as far as we go. */
    if (off >= f->cap) {
        dissect_ip(f, off, 0); /* reports the truncation */
    } else if (f->p[off] >> 4 == 4 || f->p[off] >> 4 == 6) {
        f->r->ethertype = (f->p[off] >> 4 == 4) ? ET_IPV4 : ET_IPV6;
        dissect_ip(f, off, 0);
    } else {
        not_ip(f, ET_MPLS_UC);
    }
}

static void dissect_pppoe(frame *f, uint32_t off)
{
    /* RFC 2516 §4: ver/type, code, session id, length; then the PPP protocol
     * (RFC 1661 §2): 0x0021 IPv4, 0x0057 IPv6. */
    if (off + 8 > f->cap) {
        stop(f, TCPS_LAYER_LINK, TCPS_REASON_TRUNCATED_ENCAP, off);
        return;
    }
    uint16_t proto = be16(f->p + off + 6);
    if (proto == 0x0021) {
        f->r->ethertype = ET_IPV4;
        dissect_ip(f, off + 8, 4);
    } else if (proto == 0x0057) {
        f->r->ethertype = ET_IPV6;
        dissect_ip(f, off + 8, 6);
    } else {
        not_ip(f, ET_PPPOE_SESSION);
    }
}

static void dissect_ethertype(frame *f, uint16_t et, uint32_t off)
{
    tcps_record *r = f->r;
    for (;;) {
        switch (et) {
        case ET_VLAN: case ET_QINQ: case ET_QINQ_OLD1: case ET_QINQ_OLD2:
            /* IEEE 802.1Q tag: TCI then the next ethertype */
            if (r->vlan_depth >= MAX_VLAN_TAGS) {
                stop(f, TCPS_LAYER_LINK, TCPS_REASON_BAD_LINK_HEADER, off);
                return;
            }
            if (off + 4 > f->cap) {
                stop(f, TCPS_LAYER_LINK, TCPS_REASON_TRUNCATED_ENCAP, off);
                return;
            }
            r->vlan_depth++;
            et = be16(f->p + off + 2);
            off += 4;
            continue;
        case ET_IPV4:
            r->ethertype = et;
            dissect_ip(f, off, 4);
            return;
        case ET_IPV6:
            r->ethertype = et;
            dissect_ip(f, off, 6);
            return;
        case ET_MPLS_UC: case ET_MPLS_MC:
            dissect_mpls(f, off);
            return;
        case ET_PPPOE_SESSION:
            dissect_pppoe(f, off);
            return;
        default:
            not_ip(f, et);
            return;
        }
    }
}

/* ------------------------------------------------------------------ */
/* Link layers                                                         */
/* ------------------------------------------------------------------ */

static void link_ethernet(frame *f, uint32_t off)
{
    if (off + 14 > f->cap) {
        stop(f, TCPS_LAYER_LINK, TCPS_REASON_TRUNCATED_LINK, off);
        return;
    }
    uint16_t et = be16(f->p + off + 12);
    off += 14;
    if (et <= 1500) {
        /* IEEE 802.3 length field: only an LLC/SNAP header (RFC 1042) carries an ethertype. */
        if (off + 8 <= f->cap && f->p[off] == 0xAA && f->p[off + 1] == 0xAA && f->p[off + 2] == 0x03) {
            dissect_ethertype(f, be16(f->p + off + 6), off + 8);
            return;
        }
        not_ip(f, 0);
        return;
    }
    dissect_ethertype(f, et, off);
}

/* Linux "cooked" capture v1: 16 bytes, protocol last. */
static void link_sll(frame *f, uint32_t off)
{
    if (off + 16 > f->cap) {
        stop(f, TCPS_LAYER_LINK, TCPS_REASON_TRUNCATED_LINK, off);
        return;
    }
    f->r->sll_pkttype = be16(f->p + off);
    dissect_ethertype(f, be16(f->p + off + 14), off + 16);
}

/* Linux "cooked" capture v2: 20 bytes, protocol first, then the interface index. */
static void link_sll2(frame *f, uint32_t off)
{
    if (off + 20 > f->cap) {
        stop(f, TCPS_LAYER_LINK, TCPS_REASON_TRUNCATED_LINK, off);
        return;
    }
    const uint8_t *h = f->p + off;
    f->r->ifindex = be32(h + 4);
    f->r->sll_pkttype = h[10];
    dissect_ethertype(f, be16(h), off + 20);
}

/* Address-family values of the BSD loopback header that mean IPv4 / IPv6 on
 * some system: AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD, OpenBSD,
 * BSD/OS), 28 (FreeBSD, DragonFly), 30 (Darwin) and 10 (Linux). */
static int af_version(uint32_t af)
{
    switch (af) {
    case 2: return 4;
    case 10: case 24: case 28: case 30: return 6;
    default: return 0;
    }
}

/* NULL (host byte order of the writer) and LOOP (network byte order): a
 * 4-byte address family. Either byte order is accepted for both, since a
 * file moves between machines: the valid values are small, so the two
 * readings cannot both be valid. */
static void link_null(frame *f, uint32_t off)
{
    if (off + 4 > f->cap) {
        stop(f, TCPS_LAYER_LINK, TCPS_REASON_TRUNCATED_LINK, off);
        return;
    }
    int v = af_version(le32(f->p + off));
    if (!v)
        v = af_version(be32(f->p + off));
    if (!v) {
        not_ip(f, 0);
        return;
    }
    dissect_ip(f, off + 4, v);
}

/* NFLOG: a 4-byte header (family, version, resource id), then TLVs whose
 * length (including the 4-byte TLV header, padded to 4) and type are in the
 * writer's byte order; type 9 (NFULA_PAYLOAD) holds the packet. */
static void link_nflog(frame *f, uint32_t off)
{
    if (off + 4 > f->cap) {
        stop(f, TCPS_LAYER_LINK, TCPS_REASON_TRUNCATED_LINK, off);
        return;
    }
    int want = af_version(f->p[off]);
    uint32_t pos = off + 4;
    while (pos + 4 <= f->cap) {
        const uint8_t *t = f->p + pos;
        uint32_t len = le16(t), type = le16(t + 2);
        if (len < 4 || len > f->cap - pos || type > 0xFF) {
            /* implausible little-endian: take the big-endian reading if it is plausible */
            uint32_t blen = be16(t), btype = be16(t + 2);
            if (blen >= 4 && blen <= f->cap - pos && btype <= 0xFF) {
                len = blen;
                type = btype;
            }
        }
        if (len < 4) {
            stop(f, TCPS_LAYER_LINK, TCPS_REASON_BAD_LINK_HEADER, pos);
            return;
        }
        if (type == 9) {
            dissect_ip(f, pos + 4, want);
            return;
        }
        pos += (len + 3) & ~3u;
    }
    if (pos == f->cap)
        not_ip(f, 0); /* every TLV read, none with a packet */
    else /* a TLV cut short by the end of the capture */
        stop(f, TCPS_LAYER_LINK, TCPS_REASON_TRUNCATED_LINK, pos < f->cap ? pos : f->cap);
}

/* IP over InfiniBand (RFC 4391) as libpcap writes it: a 44-byte header whose
 * last 4 bytes are the ethertype and a reserved field. */
static void link_ipoib(frame *f, uint32_t off)
{
    if (off + 44 > f->cap) {
        stop(f, TCPS_LAYER_LINK, TCPS_REASON_TRUNCATED_LINK, off);
        return;
    }
    dissect_ethertype(f, be16(f->p + off + 40), off + 44);
}

/* IEEE 802.3br mPackets: 7 bytes of preamble and an SMD; an express frame
 * (SMD-E) or the start of a preemptable one (SMD-S0..3) holds an Ethernet
 * frame, followed by the 4-byte (m)CRC. Continuations carry no header. */
static void link_mpacket(frame *f, uint32_t off)
{
    if (off + 8 > f->cap) {
        stop(f, TCPS_LAYER_LINK, TCPS_REASON_TRUNCATED_LINK, off);
        return;
    }
    switch (f->p[off + 7]) {
    case 0xD5: case 0xE6: case 0x4C: case 0x7F: case 0xB3:
        link_ethernet(f, off + 8);
        return;
    default:
        not_ip(f, 0);
        return;
    }
}

static void dissect_link(frame *f, uint32_t linktype, uint32_t off, int nested);

/* Apple PKTAP: a little-endian header whose first field is its length and
 * whose third is the inner DLT. */
static void link_pktap(frame *f, uint32_t off)
{
    if (off + 12 > f->cap) {
        stop(f, TCPS_LAYER_LINK, TCPS_REASON_TRUNCATED_LINK, off);
        return;
    }
    uint32_t hlen = le32(f->p + off);
    uint32_t dlt = le32(f->p + off + 8);
    if (hlen < 12 || hlen > f->cap - off) {
        stop(f, TCPS_LAYER_LINK, hlen < 12 ? TCPS_REASON_BAD_LINK_HEADER : TCPS_REASON_TRUNCATED_LINK, off);
        return;
    }
    dissect_link(f, dlt, off + hlen, 1);
}

static void dissect_link(frame *f, uint32_t linktype, uint32_t off, int nested)
{
    switch (linktype) {
    case LT_ETHERNET: link_ethernet(f, off); break;
    case LT_LINUX_SLL: link_sll(f, off); break;
    case LT_LINUX_SLL2: link_sll2(f, off); break;
    case LT_NULL: case LT_LOOP: link_null(f, off); break;
    case LT_RAW: case LT_RAW_OLD12: case LT_RAW_OLD14: dissect_ip(f, off, 0); break;
    case LT_IPV4: dissect_ip(f, off, 4); break;
    case LT_IPV6: dissect_ip(f, off, 6); break;
    case LT_NFLOG: link_nflog(f, off); break;
    case LT_IPOIB: link_ipoib(f, off); break;
    case LT_ETHERNET_MPACKET: link_mpacket(f, off); break;
    case LT_PKTAP:
        if (!nested)
            link_pktap(f, off);
        else /* PKTAP inside PKTAP is not a thing */
            stop(f, TCPS_LAYER_LINK, TCPS_REASON_UNSUPPORTED_LINKTYPE, off);
        break;
    default:
        stop(f, TCPS_LAYER_LINK, TCPS_REASON_UNSUPPORTED_LINKTYPE, off);
        break;
    }
}

static void dissect_frame(const uint8_t *p, uint32_t caplen, uint32_t origlen, uint32_t linktype,
                          int verify, tcps_record *r)
{
    memset(r, 0, sizeof(*r));
    r->l3_off = r->l4_off = r->stop_off = r->opt_off = TCPS_OFF_NONE;
    r->sll_pkttype = 0xFFFF;
    frame f = {p, caplen, origlen > caplen ? origlen : caplen, verify, r};
    if (caplen < origlen)
        warn(&f, TCPS_WARN_SNAPLEN_TRUNCATED);
    dissect_link(&f, linktype, 0, 0);
}

/* ------------------------------------------------------------------ */
/* Python entry point                                                  */
/* ------------------------------------------------------------------ */

/* Get a C-contiguous buffer of integers of `itemsize` bytes; *n items are
 * expected (*n < 0: any number, stored in *n). */
static int get_array(PyObject *obj, Py_buffer *view, Py_ssize_t itemsize, Py_ssize_t *n,
                     const char *what)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    const char *fmt = view->format ? view->format : "B";
    char code = fmt[0] ? fmt[strlen(fmt) - 1] : 'B';
    if (view->itemsize != itemsize || view->len % itemsize != 0 || !strchr("bBhHiIlLqQ", code)) {
        PyErr_Format(PyExc_TypeError, "%s: expected integers of %zd bytes, got format '%s'",
                     what, itemsize, fmt);
        PyBuffer_Release(view);
        return -1;
    }
    Py_ssize_t count = view->len / itemsize;
    if (*n >= 0 && count != *n) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd items, got %zd", what, *n, count);
        PyBuffer_Release(view);
        return -1;
    }
    *n = count;
    return 0;
}

static PyObject *dissect(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"data", "offset", "caplen", "origlen", "linktype", "out",
                             "verify_checksums", NULL};
    PyObject *data_o, *off_o, *cap_o, *orig_o, *lt_o, *out_o;
    int verify = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOO|p", kwlist, &data_o, &off_o, &cap_o,
                                     &orig_o, &lt_o, &out_o, &verify))
        return NULL;

    Py_buffer data = {0}, off = {0}, cap = {0}, orig = {0}, lt = {0}, out = {0};
    PyObject *result = NULL;
    Py_ssize_t n = -1;
    long lt_scalar = -1;
    if (PyObject_GetBuffer(data_o, &data, PyBUF_SIMPLE) < 0)
        return NULL;
    if (get_array(off_o, &off, 8, &n, "offset") < 0)
        goto done;
    if (get_array(cap_o, &cap, 4, &n, "caplen") < 0)
        goto done;
    if (get_array(orig_o, &orig, 4, &n, "origlen") < 0)
        goto done;
    if (PyLong_Check(lt_o)) {
        lt_scalar = PyLong_AsLong(lt_o);
        if (lt_scalar == -1 && PyErr_Occurred())
            goto done;
        if (lt_scalar < 0 || lt_scalar > 0xFFFFFFFFL) {
            PyErr_SetString(PyExc_ValueError, "linktype out of range");
            goto done;
        }
    } else if (get_array(lt_o, &lt, 2, &n, "linktype") < 0) {
        goto done;
    }
    if (PyObject_GetBuffer(out_o, &out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        goto done;
    if (out.len != n * (Py_ssize_t)sizeof(tcps_record)) {
        PyErr_Format(PyExc_ValueError, "out: expected %zd bytes (%zd records), got %zd",
                     n * (Py_ssize_t)sizeof(tcps_record), n, out.len);
        goto done;
    }
    const int64_t *offs = off.buf;
    const uint32_t *caps = cap.buf, *origs = orig.buf;
    const uint16_t *lts = lt.buf;
    const uint8_t *base = data.buf;
    /* Validate every frame's extent before touching any of them. */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (offs[i] < 0 || (uint64_t)offs[i] + caps[i] > (uint64_t)data.len) {
            PyErr_Format(PyExc_ValueError, "frame %zd lies outside the data buffer", i);
            goto done;
        }
    }
    tcps_record *recs = out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t linktype = lts ? lts[i] : (uint32_t)lt_scalar;
        dissect_frame(base + offs[i], caps[i], origs[i], linktype, verify, &recs[i]);
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(n);
done:
    if (data.obj) PyBuffer_Release(&data);
    if (off.obj) PyBuffer_Release(&off);
    if (cap.obj) PyBuffer_Release(&cap);
    if (orig.obj) PyBuffer_Release(&orig);
    if (lt.obj) PyBuffer_Release(&lt);
    if (out.obj) PyBuffer_Release(&out);
    return result;
}

/* ------------------------------------------------------------------ */
/* Layout and enumerations, for wire/record.py                         */
/* ------------------------------------------------------------------ */

#define FIELD(name, ctype) { #name, offsetof(tcps_record, name), ctype, sizeof(((tcps_record *)0)->name) }
typedef struct { const char *name; size_t offset; const char *ctype; size_t size; } field_desc;

static const field_desc FIELDS[] = {
    FIELD(src, "(16,)u1"), FIELD(dst, "(16,)u1"),
    FIELD(seq, "u4"), FIELD(ack, "u4"), FIELD(payload_len, "u4"), FIELD(payload_cap, "u4"),
    FIELD(ts_val, "u4"), FIELD(ts_ecr, "u4"), FIELD(sack, "(8,)u4"),
    FIELD(sport, "u2"), FIELD(dport, "u2"), FIELD(tcp_flags, "u2"), FIELD(win, "u2"),
    FIELD(tcp_csum, "u2"), FIELD(tcp_csum_calc, "u2"), FIELD(urg, "u2"), FIELD(mss, "u2"),
    FIELD(opt_present, "u2"), FIELD(opt_off, "u2"), FIELD(opt_len, "u2"),
    FIELD(tcp_hlen, "u1"), FIELD(wscale, "u1"), FIELD(sack_count, "u1"), FIELD(tcp_csum_status, "u1"),
    FIELD(ip_len, "u4"), FIELD(ip6_flow, "u4"), FIELD(ip6_frag_id, "u4"),
    FIELD(ip_id, "u2"), FIELD(ip_frag_off, "u2"), FIELD(ip_csum, "u2"), FIELD(ip_csum_calc, "u2"),
    FIELD(ethertype, "u2"), FIELD(l3_off, "u2"), FIELD(l4_off, "u2"), FIELD(stop_off, "u2"),
    FIELD(warnings, "u2"),
    FIELD(ip_version, "u1"), FIELD(ip_hlen, "u1"), FIELD(ip_proto, "u1"), FIELD(ip_tos, "u1"),
    FIELD(ip_ttl, "u1"), FIELD(ip_flags, "u1"), FIELD(ip_csum_status, "u1"), FIELD(ip6_ext, "u1"),
    FIELD(ifindex, "u4"), FIELD(sll_pkttype, "u2"), FIELD(vlan_depth, "u1"), FIELD(kind, "u1"),
    FIELD(stop_layer, "u1"), FIELD(stop_reason, "u1"),
};

static PyObject *record_layout(PyObject *self, PyObject *unused)
{
    size_t n = sizeof(FIELDS) / sizeof(FIELDS[0]);
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (!list) return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *t = Py_BuildValue("(snsn)", FIELDS[i].name, (Py_ssize_t)FIELDS[i].offset,
                                    FIELDS[i].ctype, (Py_ssize_t)FIELDS[i].size);
        if (!t) { Py_DECREF(list); return NULL; }
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    return Py_BuildValue("(Nn)", list, (Py_ssize_t)sizeof(tcps_record));
}

#define NAME_PAIR(name, value) { #name, value },
typedef struct { const char *name; long value; } name_value;
static const name_value KINDS[] = { TCPS_KINDS(NAME_PAIR) };
static const name_value LAYERS[] = { TCPS_LAYERS(NAME_PAIR) };
static const name_value REASONS[] = { TCPS_REASONS(NAME_PAIR) };
static const name_value WARNINGS[] = { TCPS_WARNINGS(NAME_PAIR) };
static const name_value CSUMS[] = { TCPS_CSUM(NAME_PAIR) };
static const name_value OPTS[] = { TCPS_OPTS(NAME_PAIR) };

static PyObject *pairs_to_dict(const name_value *p, size_t n)
{
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *v = PyLong_FromLong(p[i].value);
        if (!v || PyDict_SetItemString(d, p[i].name, v) < 0) { Py_XDECREF(v); Py_DECREF(d); return NULL; }
        Py_DECREF(v);
    }
    return d;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))
static PyObject *enums(PyObject *self, PyObject *unused)
{
    /* warnings and options are bit numbers here; Python turns them into masks */
    return Py_BuildValue("{sNsNsNsNsNsN}",
        "kind", pairs_to_dict(KINDS, N(KINDS)), "layer", pairs_to_dict(LAYERS, N(LAYERS)),
        "reason", pairs_to_dict(REASONS, N(REASONS)), "warning", pairs_to_dict(WARNINGS, N(WARNINGS)),
        "csum", pairs_to_dict(CSUMS, N(CSUMS)), "option", pairs_to_dict(OPTS, N(OPTS)));
}

static PyMethodDef METHODS[] = {
    {"dissect", (PyCFunction)(void (*)(void))dissect, METH_VARARGS | METH_KEYWORDS,
     "dissect(data, offset, caplen, origlen, linktype, out, verify_checksums=True) -> n\n\n"
     "Fill `out` (a writable buffer of n tcps_record) from the frames data[offset[i]:offset[i]+caplen[i]].\n"
     "offset: int64[n]; caplen, origlen: uint32[n]; linktype: an int or uint16[n]."},
    {"record_layout", record_layout, METH_NOARGS, "(fields, itemsize) of tcps_record; fields are (name, offset, numpy format, size)."},
    {"enums", enums, METH_NOARGS, "Names and values of the record's enumerations (warning/option values are bit numbers)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_dissect", "Bulk frame dissection.", -1, METHODS,
                                     NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__dissect(void) { return PyModule_Create(&MODULE); }

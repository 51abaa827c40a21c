/*
 * _ip.c -- the network layer of tcpdump's listing: IPv4 (print-ip.c: the -v
 * header line, options, header checksum, fragments), IPv6 (print-ip6.c:
 * extension headers, hop-by-hop and destination options, routing, fragment,
 * jumbograms), and the short summaries of what is not TCP (UDP with VXLAN,
 * ICMP, ICMPv6, IP in IP), which are not part of the contract.
 */
#include "_listing.h"

#include "cksum.h"

/* tcpdump's ipproto_values (the names -v prints). */
static const char *ipproto_name(unsigned p)
{
    switch (p) {
    case 0: return "Options";
    case 1: return "ICMP";
    case 2: return "IGMP";
    case 4: return "IPIP";
    case 6: return "TCP";
    case 8: return "EGP";
    case 9: return "IGRP";
    case 17: return "UDP";
    case 33: return "DCCP";
    case 41: return "IPv6";
    case 43: return "Routing";
    case 44: return "Fragment";
    case 46: return "RSVP";
    case 47: return "GRE";
    case 50: return "ESP";
    case 51: return "AH";
    case 55: return "Mobile IP";
    case 58: return "ICMPv6";
    case 62: return "Mobile IP (old)";
    case 88: return "EIGRP";
    case 89: return "OSPF";
    case 103: return "PIM";
    case 108: return "Compressed IP";
    case 112: return "VRRP"; /* also CARP in tcpdump's table, listed after VRRP */
    case 113: return "PGM";
    case 132: return "SCTP";
    case 135: return "Mobility";
    case 240: return "pfsync";
    default: return "unknown";
    }
}

static void put_ip(frame_ctx *fx, int ver, const uint8_t *a)
{
    if (ver == 4)
        put_ip4(fx, a);
    else
        put_ip6(fx, a);
}

void put_addrs(frame_ctx *fx, int ver, const uint8_t *src, const uint8_t *dst)
{
    put_ip(fx, ver, src);
    PUTS(fx, " > ");
    put_ip(fx, ver, dst);
}

void put_endpoints(frame_ctx *fx, int ver, const uint8_t *src, unsigned sport,
                   const uint8_t *dst, unsigned dport)
{
    put_ip(fx, ver, src);
    PUTS(fx, ".");
    put_u64(fx, sport);
    PUTS(fx, " > ");
    put_ip(fx, ver, dst);
    PUTS(fx, ".");
    put_u64(fx, dport);
    PUTS(fx, ": ");
}

static void udp_print(cursor *c, int64_t cp, int ver, const uint8_t *src, const uint8_t *dst)
{
    frame_ctx *fx = c->fx;
    fx->proto = "udp";
    if (!ttest(c, cp, 8)) {
        put_addrs(fx, ver, src, dst);
        PUTS(fx, ": [|udp]");
        return;
    }
    unsigned sport = be16(c, cp), dport = be16(c, cp + 2);
    int64_t ulen = be16(c, cp + 4);
    put_endpoints(fx, ver, src, sport, dst, dport);
    if ((sport == 4789 || dport == 4789) && ttest(c, cp + 8, 8)) {
        /* VXLAN: tcpdump goes on with the inner Ethernet frame on a new line */
        fx->proto = "vxlan";
        unsigned vflags = u8(c, cp + 8);
        putf(fx, "VXLAN, flags [%c] (0x%02x), vni %u\n", vflags & 8 ? 'I' : '.', vflags,
             be32(c, cp + 12) >> 8);
        cursor inner = sub_cursor(c, cp + 16);
        ether_print(&inner, 0, ulen - 16);
        return;
    }
    putf(fx, "UDP, length %lld", (long long)(ulen - 8 > 0 ? ulen - 8 : 0));
}

static void icmp_print(cursor *c, int64_t cp, int64_t length)
{
    frame_ctx *fx = c->fx;
    fx->proto = "icmp";
    unsigned t = u8(c, cp);
    const char *name = NULL;
    switch (t) {
    case 0: name = "echo reply"; break;
    case 3: name = "unreachable"; break;
    case 5: name = "redirect"; break;
    case 8: name = "echo request"; break;
    case 11: name = "time exceeded"; break;
    case 13: name = "time stamp request"; break;
    case 14: name = "time stamp reply"; break;
    }
    if (t == 0 || t == 8)
        putf(fx, "ICMP %s, id %u, seq %u, length %lld", name, be16(c, cp + 4), be16(c, cp + 6),
             (long long)length);
    else if (name)
        putf(fx, "ICMP %s, length %lld", name, (long long)length);
    else
        putf(fx, "ICMP type-#%u, length %lld", t, (long long)length);
}

static void demux(cursor *c, int64_t cp, int64_t length, unsigned nh, int ver, int fragmented,
                  int64_t ip_off, const uint8_t *src, const uint8_t *dst)
{
    frame_ctx *fx = c->fx;
    if (nh == 6) {
        tcp_print(c, cp, length, ver, fragmented, ip_off, src, dst);
    } else if (nh == 17) {
        udp_print(c, cp, ver, src, dst);
    } else if (nh == 1 && ver == 4) {
        icmp_print(c, cp, length);
    } else if (nh == 58) {
        fx->proto = "icmp6";
        putf(fx, "ICMP6, type %u, length %lld", u8(c, cp), (long long)length);
    } else if (nh == 4) {
        ip_print(c, cp, length);
        if (!fx->v)
            PUTS(fx, " (ipip-proto-4)");
    } else if (nh == 41) {
        ip6_print(c, cp, length);
    } else {
        putf(fx, " ip-proto-%u %lld", nh, (long long)length);
    }
}

/* ------------------------------------------------------------ IPv4 */

void ipn_print(cursor *c, int64_t p, int64_t length)
{
    frame_ctx *fx = c->fx;
    fx->proto = "ipN";
    if (length < 1) {
        putf(fx, "truncated-ip %lld", (long long)length);
        return;
    }
    unsigned ver = u8(c, p) & 0xF0;
    if (ver == 0x40)
        ip_print(c, p, length);
    else if (ver == 0x60)
        ip6_print(c, p, length);
    else
        putf(fx, "unknown ip %u", ver >> 4);
}

/* The timestamp option (RFC 791), as ip_printts; 0 if not all captured. */
static int ip_ts_option(cursor *c, int64_t p, int length)
{
    frame_ctx *fx = c->fx;
    if (length < 4) {
        putf(fx, "[bad length %d]", length);
        return 1;
    }
    PUTS(fx, " TS{");
    unsigned flg = u8(c, p + 3);
    int hoplen = (flg & 0xF) == 0 ? 4 : 8;
    if ((length - 4) & (hoplen - 1))
        putf(fx, "[bad length %d]", length);
    int ptr = (int)u8(c, p + 2) - 1;
    int len = 0;
    if (ptr < 4 || ((ptr - 4) & (hoplen - 1)) || ptr > length + 1)
        putf(fx, "[bad ptr %u]", u8(c, p + 2));
    unsigned kind = flg & 0xF;
    if (kind <= 3) {
        static const char *kinds[] = {"TSONLY", "TS+ADDR", "PRESPEC2.0", "PRESPEC"};
        put_str(fx, kinds[kind]);
        const char *type = " ";
        for (len = 4; len < length; len += hoplen) {
            if (ptr == len)
                type = " ^ ";
            if (!ttest(c, p + len, hoplen))
                return 0;
            put_str(fx, type);
            put_u64(fx, be32(c, p + len + hoplen - 4));
            PUTS(fx, "@");
            if (hoplen == 8)
                put_ip4(fx, take(c, p + len, 4));
            type = " ";
        }
    } else {
        putf(fx, "[bad ts type %u]", kind);
    }
    if (ptr == len)
        PUTS(fx, " ^ ");
    if (flg >> 4)
        putf(fx, " [%u hops not recorded]} ", flg >> 4);
    else
        PUTS(fx, "}");
    return 1;
}

/* tcpdump's ip_optprint; 0 when the options were not all captured. */
static int ip_options(cursor *c, int64_t p, int length)
{
    frame_ctx *fx = c->fx;
    const char *sep = "";
    while (length > 0) {
        put_str(fx, sep);
        sep = ",";
        if (!ttest(c, p, 1))
            return 0;
        unsigned code = u8(c, p);
        switch (code) {
        case 0: PUTS(fx, "EOL"); break;
        case 1: PUTS(fx, "NOP"); break;
        case 68: PUTS(fx, "timestamp"); break;
        case 130: PUTS(fx, "security"); break;
        case 7: PUTS(fx, "RR"); break;
        case 137: PUTS(fx, "SSRR"); break;
        case 131: PUTS(fx, "LSRR"); break;
        case 148: PUTS(fx, "RA"); break;
        case 82: PUTS(fx, "traceroute"); break;
        default: putf(fx, "unknown %u", code);
        }
        int olen;
        if (code == 0 || code == 1) {
            olen = 1;
        } else {
            if (!ttest(c, p + 1, 1))
                return 0;
            olen = (int)u8(c, p + 1);
            if (olen < 2) {
                putf(fx, " [bad length %d]", olen);
                return 1;
            }
        }
        if (olen > length) {
            putf(fx, " [bad length %d]", olen);
            return 1;
        }
        if (!ttest(c, p, olen))
            return 0;
        if (code == 0)
            return 1;
        if (code == 7 || code == 131 || code == 137) {
            if (olen < 3) {
                putf(fx, " [bad length %d]", olen);
            } else {
                if ((olen + 1) & 3)
                    putf(fx, " [bad length %d]", olen);
                int ptr = (int)u8(c, p + 2) - 1;
                if (ptr < 3 || ((ptr + 1) & 3) || ptr > olen + 1)
                    putf(fx, " [bad ptr %u]", u8(c, p + 2));
                for (int i = 3; i < olen; i += 4) {
                    if (!ttest(c, p + i, 4))
                        return 0;
                    PUTS(fx, " ");
                    put_ip4(fx, take(c, p + i, 4));
                    if (ptr > i)
                        PUTS(fx, ",");
                }
            }
        } else if (code == 148) {
            if (olen < 4)
                putf(fx, " [bad length %d]", olen);
            else if (be16(c, p + 2) != 0)
                putf(fx, " value %u", be16(c, p + 2));
        } else if (code == 68) {
            if (!ip_ts_option(c, p, olen))
                return 0;
        }
        p += olen;
        length -= olen;
    }
    return 1;
}

/* With a source route option, the TCP pseudo-header holds the route's last hop
 * (tcpdump's ip_finddst); NULL: the header's own destination. */
const uint8_t *ip4_final_dst(const cursor *c, int64_t ip)
{
    int hl = (c->buf[ip] & 0xF) * 4;
    if (hl == 20)
        return NULL;
    int64_t p = ip + 20;
    int left = hl - 20;
    while (left > 0) {
        if (!ttest(c, p, 1))
            return NULL;
        unsigned t = c->buf[p];
        int ln;
        if (t == 0)
            break;
        if (t == 1) {
            ln = 1;
        } else {
            if (!ttest(c, p + 1, 1))
                return NULL;
            ln = c->buf[p + 1];
            if (ln < 2)
                break;
        }
        if (left < ln || !ttest(c, p, ln))
            return NULL;
        if ((t == 131 || t == 137) && ln >= 7)
            return c->buf + p + ln - 4;
        p += ln;
        left -= ln;
    }
    return NULL;
}

void ip_print(cursor *c, int64_t p, int64_t length)
{
    frame_ctx *fx = c->fx;
    fx->proto = "ip";
    unsigned vhl = u8(c, p);
    if (vhl >> 4 != 4) {
        if (vhl >> 4 == 6)
            PUTS(fx, "IP6, wrong link-layer encapsulation (invalid)");
        else
            putf(fx, "IP%u (invalid)", vhl >> 4);
        return;
    }
    if (!fx->e)
        PUTS(fx, "IP ");
    if (!ttest(c, p, 20))
        trunc_jump(fx);
    if (length < 20) {
        putf(fx, "truncated-ip %lld", (long long)length);
        return;
    }
    int hlen = (int)(vhl & 0xF) * 4;
    if (hlen < 20) {
        putf(fx, "bad-hlen %d", hlen);
        return;
    }
    int64_t ip_len = be16(c, p + 2);
    if (length < ip_len)
        putf(fx, "truncated-ip - %lld bytes missing! ", (long long)(ip_len - length));
    if (ip_len < hlen) {
        putf(fx, "bad-len %lld", (long long)ip_len);
        return;
    }
    if (p + ip_len < c->end)
        c->end = p + ip_len;
    int64_t payload_len = ip_len - hlen;
    unsigned off = be16(c, p + 6), proto = u8(c, p + 9);
    const uint8_t *src = c->buf + p + 12, *dst = c->buf + p + 16;
    if (fx->v) {
        /* the most common -v text: numbers written without printf */
        unsigned tos = u8(c, p + 1);
        static const char hex[] = "0123456789abcdef";
        PUTS(fx, "(tos 0x");
        if (tos >> 4)
            put(fx, &hex[tos >> 4], 1);
        put(fx, &hex[tos & 15], 1);
        static const char *ecn[] = {"", ",ECT(1)", ",ECT(0)", ",CE"};
        put_str(fx, ecn[tos & 3]);
        unsigned ttl = u8(c, p + 8);
        if (ttl >= 1) {
            PUTS(fx, ", ttl ");
            put_u64(fx, ttl);
        }
        PUTS(fx, ", id ");
        put_u64(fx, be16(c, p + 4));
        PUTS(fx, ", offset ");
        put_u64(fx, (off & 0x1FFF) * 8);
        PUTS(fx, ", flags [");
        const char *sep = "";
        if (off & 0x2000) {
            PUTS(fx, "+");
            sep = ", ";
        }
        if (off & 0x4000) {
            put_str(fx, sep);
            PUTS(fx, "DF");
            sep = ", ";
        }
        if (off & 0x8000) {
            put_str(fx, sep);
            PUTS(fx, "rsvd");
        }
        if (!(off & 0xE000))
            PUTS(fx, "none");
        PUTS(fx, "], proto ");
        put_str(fx, ipproto_name(proto));
        PUTS(fx, " (");
        put_u64(fx, proto);
        PUTS(fx, "), length ");
        put_u64(fx, (uint64_t)ip_len);
        int truncated = 0;
        if (hlen > 20) {
            PUTS(fx, ", options (");
            if (!ip_options(c, p + 20, hlen - 20)) {
                PUTS(fx, " [truncated-option]");
                truncated = 1;
            }
            PUTS(fx, ")");
        }
        if (p + hlen <= c->end) {
            uint16_t total = sum_be(c->buf + p, (uint32_t)hlen);
            if (total != 0xFFFF) {
                uint16_t carried = (uint16_t)be16(c, p + 10);
                putf(fx, ", bad cksum %x (->%x)!", carried, csum_should_be(carried, total));
            }
        }
        PUTS(fx, ")\n    ");
        if (truncated) {
            put_addrs(fx, 4, src, dst);
            PUTS(fx, ": ");
            mark_trunc(c);
            return;
        }
    }
    if ((off & 0x1FFF) == 0) {
        if (proto != 6 && proto != 17 && proto != 132 && proto != 33) {
            put_addrs(fx, 4, src, dst);
            PUTS(fx, ": ");
        }
        demux(c, p + hlen, payload_len, proto, 4, off & 0x3FFF, p, src, dst);
    } else {
        put_addrs(fx, 4, src, dst);
        putf(fx, ": ip-proto-%u", proto);
    }
}

/* ------------------------------------------------------------ IPv6 */

/* tcpdump's ip6_opt_process over hop-by-hop or destination options; 0 if
 * truncated. *jumbo: a valid Jumbo Payload length, or 0. */
static int ip6_opts(cursor *c, int64_t p, int64_t length, int jumbo_allowed, uint32_t *jumbo)
{
    frame_ctx *fx = c->fx;
    int found_jumbo = 0;
    *jumbo = 0;
    for (int64_t i = 0; i < length;) {
        unsigned t = u8(c, p + i);
        int64_t olen;
        if (t == 0) {
            olen = 1;
        } else {
            if (i + 1 >= length)
                return 0;
            olen = (int64_t)u8(c, p + i + 1) + 2;
        }
        if (i + olen > length)
            return 0;
        if (t == 0) {
            if (fx->v)
                PUTS(fx, "(pad1)");
        } else if (t == 1) {
            if (length - i < 2) {
                PUTS(fx, "(padn: trunc)");
                return 0;
            }
            if (fx->v)
                PUTS(fx, "(padn)");
        } else if (t == 5) {
            if (length - i < 4) {
                PUTS(fx, "(rtalert: trunc)");
                return 0;
            }
            if (u8(c, p + i + 1) != 2) {
                putf(fx, "(rtalert: invalid len %u)", u8(c, p + i + 1));
                return 0;
            }
            if (fx->v)
                putf(fx, "(rtalert: 0x%04x) ", be16(c, p + i + 2));
        } else if (t == 0xC2) {
            if (length - i < 6) {
                PUTS(fx, "(jumbo: trunc)");
                return 0;
            }
            if (u8(c, p + i + 1) != 4) {
                putf(fx, "(jumbo: invalid len %u)", u8(c, p + i + 1));
                return 0;
            }
            uint32_t j = be32(c, p + i + 2);
            const char *note = "";
            if (found_jumbo)
                note = " - already seen";
            else if (!jumbo_allowed)
                note = " - payload len != 0";
            else if (j < 65536)
                note = " - < 65536";
            else
                *jumbo = j;
            found_jumbo = 1;
            if (fx->v)
                putf(fx, "(jumbo: %u%s) ", j, note);
        } else {
            if (length - i < 2) {
                putf(fx, "(type %u: trunc)", t);
                return 0;
            }
            if (fx->v)
                putf(fx, "(opt_type 0x%02x: len=%u)", t, u8(c, p + i + 1));
        }
        i += olen;
    }
    if (fx->v)
        PUTS(fx, " ");
    return 1;
}

/* The routing header (print-rt6.c); the bytes it spans, or -1 when the packet ends. */
static int64_t rt6_print(cursor *c, int64_t cp)
{
    frame_ctx *fx = c->fx;
    if (!ttest(c, cp, 4))
        trunc_jump(fx);
    unsigned len = u8(c, cp + 1), type = u8(c, cp + 2), segleft = u8(c, cp + 3);
    putf(fx, "RT6 (len=%u, type=%u", len, type);
    if (type == 0 || type == 2) {
        if (type == 0)
            PUTS(fx, " [Deprecated]");
        putf(fx, ", segleft=%u", segleft);
        if (fx->v)
            putf(fx, ", rsv=0x%x", be32(c, cp + 4));
        if (len % 2 == 1) {
            mark_trunc(c);
            return -1;
        }
        for (unsigned i = 0; i < len >> 1; i++) {
            const uint8_t *a = take(c, cp + 8 + 16 * (int64_t)i, 16);
            putf(fx, ", [%u]", i);
            put_ip6(fx, a);
        }
        PUTS(fx, ") ");
        return (int64_t)(len + 1) << 3;
    }
    putf(fx, ", segleft=%u) ", segleft);
    return (int64_t)(len + 1) << 3;
}

/* The destination the TCP pseudo-header uses: a routing header's final hop. */
const uint8_t *ip6_final_dst(const cursor *c, int64_t ip, const uint8_t *dst)
{
    unsigned nh = c->buf[ip + 6];
    if (nh != 0 && nh != 60 && nh != 135 && nh != 62 && nh != 44 && nh != 43)
        return dst;
    int64_t cp = ip, advance = 40;
    while (cp < c->end) {
        cp += advance;
        if (nh == 0 || nh == 60 || nh == 135 || nh == 62) {
            if (!ttest(c, cp, 2))
                return dst;
            advance = (int64_t)(c->buf[cp + 1] + 1) << 3;
            nh = c->buf[cp];
        } else if (nh == 44) {
            if (!ttest(c, cp, 1))
                return dst;
            advance = 8;
            nh = c->buf[cp];
        } else if (nh == 43) {
            if (!ttest(c, cp, 8))
                return dst;
            unsigned len = c->buf[cp + 1], type = c->buf[cp + 2];
            if ((type == 0 || type == 2) && len % 2 == 0) {
                for (unsigned i = 0; i < len >> 1; i++)
                    if (ttest(c, cp + 8 + 16 * (int64_t)i, 16))
                        dst = c->buf + cp + 8 + 16 * i;
            } else if (type == 4 && len % 2 == 0 && ttest(c, cp + 8, 16)) {
                dst = c->buf + cp + 8;
            }
            return dst;
        } else {
            return dst;
        }
    }
    return dst;
}

void ip6_print(cursor *c, int64_t p, int64_t length)
{
    frame_ctx *fx = c->fx;
    fx->proto = "ip6";
    if (!ttest(c, p, 40))
        trunc_jump(fx);
    if (length < 40) {
        putf(fx, "truncated-ip6 %lld", (long long)length);
        return;
    }
    if (!fx->e)
        PUTS(fx, "IP6 ");
    if (u8(c, p) >> 4 != 6) {
        putf(fx, "version error: %u != 6", u8(c, p) >> 4);
        return;
    }
    int64_t payload_len = be16(c, p + 4), len;
    if (payload_len) {
        len = payload_len + 40;
        if (length < len)
            putf(fx, "truncated-ip6 - %lld bytes missing!", (long long)(len - length));
    } else {
        len = length + 40;
    }
    unsigned nh = u8(c, p + 6);
    if (fx->v) {
        uint32_t flow = be32(c, p);
        PUTS(fx, "(");
        if (flow & 0x0FF00000)
            putf(fx, "class 0x%02x, ", (flow & 0x0FF00000) >> 20);
        if (flow & 0x000FFFFF)
            putf(fx, "flowlabel 0x%05x, ", flow & 0x000FFFFF);
        putf(fx, "hlim %u, next-header %s (%u) payload length: %lld) ", u8(c, p + 7),
             ipproto_name(nh), nh, (long long)payload_len);
    }
    int64_t saved_end = c->end;
    if (p + len < c->end)
        c->end = p + len;
    const uint8_t *src = c->buf + p + 8, *dst = c->buf + p + 24;
    int64_t cp = p, advance = 40, total = 0;
    int found_ext = 0, found_hbh = 0, fragmented = 0;
    unsigned ph = 255; /* the header before the current one; 255: the IPv6 header */
    uint32_t jumbo_len = 0;
    while (cp < c->end && advance > 0) {
        if (len < advance) {
            mark_trunc(c);
            return;
        }
        cp += advance;
        len -= advance;
        total += advance;
        if (cp == p + 40 && nh != 6 && nh != 17 && nh != 33 && nh != 132) {
            put_addrs(fx, 6, src, dst);
            PUTS(fx, ": ");
        }
        if (nh == 0 && found_hbh) {
            PUTS(fx, "[The Hop-by-Hop Options header was already found] (invalid)");
            return;
        }
        if (nh == 0 && ph != 255) {
            PUTS(fx, "[The Hop-by-Hop Options header don't follow the IPv6 header] (invalid)");
            return;
        }
        ph = nh;
        if (nh == 0 || nh == 60) {
            fx->proto = nh == 0 ? "hbhopt" : "dstopt";
            int64_t elen = (int64_t)(u8(c, cp + 1) + 1) << 3;
            if (!ttest(c, cp, elen)) {
                mark_trunc(c);
                return;
            }
            put_str(fx, nh == 0 ? "HBH " : "DSTOPT ");
            uint32_t jumbo = 0;
            if (nh == 0 || fx->v) {
                if (!ip6_opts(c, cp + 2, elen - 2, nh == 0 && payload_len == 0, &jumbo)) {
                    mark_trunc(c);
                    return;
                }
            }
            if (nh == 0) {
                found_hbh = 1;
                if (payload_len == 0 && !jumbo) {
                    PUTS(fx, "[No valid Jumbo Payload Hop-by-Hop option found] (invalid)");
                    return;
                }
                jumbo_len = jumbo;
            }
            advance = elen;
            found_ext = 1;
            nh = u8(c, cp);
        } else if (nh == 44) {
            fx->proto = "frag6";
            if (!ttest(c, cp, 8))
                trunc_jump(fx);
            unsigned offlg = be16(c, cp + 2) & 0xFFF8;
            int64_t flen = 40 + payload_len - (cp - p) - 8;
            if (fx->v)
                putf(fx, "frag (0x%08x:%u|%lld)", be32(c, cp + 4), offlg, (long long)flen);
            else
                putf(fx, "frag (%u|%lld)", offlg, (long long)flen);
            if (offlg != 0)
                return;
            PUTS(fx, " ");
            advance = 8;
            if (c->end <= cp + advance)
                return;
            found_ext = 1;
            nh = u8(c, cp);
            fragmented = 1;
        } else if (nh == 43) {
            fx->proto = "rt6";
            advance = rt6_print(c, cp);
            if (advance < 0)
                return;
            found_ext = 1;
            nh = u8(c, cp);
        } else if (nh == 135 || nh == 62) {
            putf(fx, "mobility, length %lld", (long long)len);
            return;
        } else {
            if (jumbo_len) {
                len = (int64_t)jumbo_len + 40;
                if (len < total) {
                    mark_trunc(c);
                    return;
                }
                if (length < len)
                    putf(fx, "truncated-ip6 - %lld bytes missing!", (long long)(len - length));
                c->end = p + len < saved_end ? p + len : saved_end;
                len -= total;
            } else if (payload_len == 0) {
                if (found_ext) {
                    mark_trunc(c);
                    return;
                }
                len = 40;
                c->end = p + len < saved_end ? p + len : saved_end;
                len -= total;
            }
            demux(c, cp, len, nh, 6, fragmented, p, src, dst);
            return;
        }
        fx->proto = "ip6";
    }
}

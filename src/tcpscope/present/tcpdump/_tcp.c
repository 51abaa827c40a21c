/*
 * _tcp.c -- the TCP line of tcpdump's listing (print-tcp.c's tcp_print, -nn):
 *
 *   SRC.PORT > DST.PORT: Flags [S.][, cksum 0x1234 (correct)][, seq S[:E]][, ack A],
 *   win W[, urg U][, options [...]], length L[ payload]
 *
 * with tcpdump's relative numbers (the table in _listing.c), its option walk
 * and every quirk of it (print_tcp_options below), the RST text with -v, and the
 * application payload printers (in Python, called through print_payload).
 */
#include "_listing.h"

#include "cksum.h"
#include "record.h"
#include "seq.h"
#include "tcpflags.h"

enum { M_SYN = TCPS_SYN, M_ACK = TCPS_ACK };

/* tcpdump's fn_print_char: printable ASCII as is, "M-" for the high bit, "^X" for controls. */
static void put_char_escaped(frame_ctx *fx, unsigned ch)
{
    if (ch & 0x80) {
        PUTS(fx, "M-");
        ch &= 0x7F;
    }
    char s[2];
    if (ch < 0x20 || ch == 0x7F) {
        s[0] = '^';
        s[1] = (char)(ch ^ 0x40);
        put(fx, s, 2);
    } else {
        s[0] = (char)ch;
        put(fx, s, 1);
    }
}

/* A RST segment's payload with -v: " [RST text]", at most 30 bytes ("+" if more);
 * "!RST" when the payload was not completely captured. */
static void rst_data(const cursor *c, int64_t bp, int64_t length)
{
    frame_ctx *fx = c->fx;
    if (ttest(c, bp, length))
        PUTS(fx, " [RST");
    else
        PUTS(fx, " [!RST");
    int64_t n = length;
    if (n > 30) {
        n = 30;
        PUTS(fx, "+");
    }
    PUTS(fx, " ");
    for (int64_t i = bp; n && i < c->end; i++, n--)
        put_char_escaped(fx, c->buf[i]);
    PUTS(fx, "]");
}

/* ------------------------------------------------------------ options */

/* How an option list ends early (tcpdump's gotos in tcp_print). */
enum { OPT_BAD = 1, OPT_LENTRUNC = 2 };

typedef struct {
    cursor *c;
    int64_t cp;        /* the option's data */
    int64_t hlen;      /* option bytes left after this option's kind and length */
    jmp_buf *stop;
    volatile int *started; /* an option was completed: the list has a separator */
    unsigned flags;
    int rev;
    uint32_t thseq, thack;
    int64_t data_off, data_len;
} optwalk;

/* tcpdump's LENCHECK: `n` bytes of data declared (else [bad opt]) and captured. */
static void lencheck(optwalk *w, int64_t n)
{
    if (n > w->hlen)
        longjmp(*w->stop, OPT_BAD);
    if (!ttest(w->c, w->cp, n))
        longjmp(*w->stop, OPT_LENTRUNC);
}

static void fastopen(const cursor *c, int64_t cp, int64_t datalen, int exp)
{
    frame_ctx *fx = c->fx;
    if (exp)
        PUTS(fx, "tfo");
    if (datalen == 0) {
        PUTS(fx, " cookiereq");
    } else if (datalen % 2 != 0 || datalen < 4 || datalen > 16) {
        PUTS(fx, " (invalid)");
    } else {
        PUTS(fx, " cookie ");
        put_hex(fx, take(c, cp, datalen), (size_t)datalen);
    }
}

/* An MPTCP DSS data ack or sequence number: 8 bytes if `wide`, else 4; 0 if fewer are left. */
static int dss_number(const cursor *c, int64_t *p, int64_t *left, int wide)
{
    int size = wide ? 8 : 4;
    if (*left < size)
        return 0;
    put_u64(c->fx, wide ? be64(c, *p) : be32(c, *p));
    *p += size;
    *left -= size;
    return 1;
}

/* tcpdump's mptcp_print: " LEN subtype details"; 0 means [bad opt]. */
static int mptcp_print(const cursor *c, int64_t cp, int64_t ln, unsigned flags)
{
    static const char *subtypes[] = {"capable", "join", "dss", "add-addr", "rem-addr", "prio",
                                     "fail", "fast-close", "unknown"};
    frame_ctx *fx = c->fx;
    fx->proto = "mptcp";
    if (ln < 3)
        return 0;
    unsigned subtype = (u8(c, cp + 2) >> 4) & 0xF;
    if (subtype > 8)
        subtype = 8;
    putf(fx, " %lld %s", (long long)ln, subtypes[subtype]);
    switch (subtype) {
    case 0: { /* capable */
        if (!(((ln == 12 || ln == 4) && (flags & M_SYN))
              || ((ln == 20 || ln == 22) && (flags & (M_SYN | M_ACK)) == M_ACK)))
            return 0;
        unsigned version = u8(c, cp + 2) & 0xF;
        if (version > 1) {
            putf(fx, " Unknown Version (%u)", version);
            return 1;
        }
        putf(fx, " v%u", version);
        if (u8(c, cp + 3) & 0x80)
            PUTS(fx, " csum");
        if (ln == 12 || ln >= 20) {
            putf(fx, " {0x%llx", (unsigned long long)be64(c, cp + 4));
            if (ln >= 20)
                putf(fx, ",0x%llx", (unsigned long long)be64(c, cp + 12));
            PUTS(fx, "}");
        }
        return 1;
    }
    case 1: /* join */
        if (!((ln == 12 && (flags & M_SYN))
              || (ln == 16 && (flags & (M_SYN | M_ACK)) == (M_SYN | M_ACK))
              || (ln == 24 && (flags & M_ACK))))
            return 0;
        if (ln != 24) {
            if (u8(c, cp + 2) & 1)
                PUTS(fx, " backup");
            putf(fx, " id %u", u8(c, cp + 3));
        }
        if (ln == 12) {
            uint32_t token = be32(c, cp + 4), nonce = be32(c, cp + 8);
            putf(fx, " token 0x%x nonce 0x%x", token, nonce);
        } else if (ln == 16) {
            uint64_t hmac = be64(c, cp + 4);
            uint32_t nonce = be32(c, cp + 12);
            putf(fx, " hmac 0x%llx nonce 0x%x", (unsigned long long)hmac, nonce);
        } else {
            /* tcpdump reads the 20 MAC bytes without a bounds check: what was captured */
            int64_t n = c->cap - (cp + 4);
            n = n < 0 ? 0 : n > 20 ? 20 : n;
            PUTS(fx, " hmac 0x");
            put_hex(fx, c->buf + cp + 4, (size_t)n);
        }
        return 1;
    case 2: { /* dss */
        if (ln < 4 || (flags & M_SYN))
            return 0;
        unsigned dflags = u8(c, cp + 3);
        if (dflags & 0x10)
            PUTS(fx, " fin");
        int64_t p = cp + 4, left = ln - 4;
        if (dflags & 0x01) {
            PUTS(fx, " ack ");
            if (!dss_number(c, &p, &left, dflags & 0x02))
                return 0;
        }
        if (dflags & 0x04) {
            PUTS(fx, " seq ");
            if (!dss_number(c, &p, &left, dflags & 0x08))
                return 0;
            if (left < 4)
                return 0;
            putf(fx, " subseq %u", be32(c, p));
            p += 4;
            left -= 4;
            if (left < 2)
                return 0;
            putf(fx, " len %u", be16(c, p));
            p += 2;
            left -= 2;
            if (left >= 2) {
                putf(fx, " csum 0x%x", be16(c, p));
                left -= 2;
            }
        }
        return left == 0;
    }
    case 3: { /* add-addr */
        if (ln != 8 && ln != 10 && ln != 16 && ln != 18 && ln != 20 && ln != 22 && ln != 28 && ln != 30)
            return 0;
        switch (u8(c, cp + 2) & 0xF) {
        case 0x6: PUTS(fx, " v0-ip6"); break;
        case 0x4: PUTS(fx, " v0-ip4"); break;
        case 0x1: PUTS(fx, " v1-echo"); break;
        case 0x0: PUTS(fx, " v1"); break;
        default: PUTS(fx, " [bad version/echo]");
        }
        putf(fx, " id %u", u8(c, cp + 3));
        /* the address, then by length: a port (+2), an HMAC (+8), both (+10) */
        int alen = ln == 8 || ln == 10 || ln == 16 || ln == 18 ? 4 : 16;
        int64_t rest = ln - 4 - alen, q = cp + 4 + alen;
        const uint8_t *a = take(c, cp + 4, alen);
        PUTS(fx, " ");
        if (alen == 4)
            put_ip4(fx, a);
        else
            put_ip6(fx, a);
        if (rest == 2 || rest == 10) {
            putf(fx, ":%u", be16(c, q));
            q += 2;
        }
        if (rest >= 8)
            putf(fx, " hmac 0x%llx", (unsigned long long)be64(c, q));
        return 1;
    }
    case 4: /* rem-addr */
        if (ln < 4)
            return 0;
        PUTS(fx, " id");
        for (int64_t i = 0; i < ln - 3; i++)
            putf(fx, " %u", u8(c, cp + 3 + i));
        return 1;
    case 5: /* prio */
        if (ln != 3 && ln != 4)
            return 0;
        put_str(fx, u8(c, cp + 2) & 1 ? " backup" : " non-backup");
        if (ln == 4)
            putf(fx, " id %u", u8(c, cp + 3));
        return 1;
    case 6: /* fail */
        if (ln != 12)
            return 0;
        putf(fx, " seq %llu", (unsigned long long)be64(c, cp + 4));
        return 1;
    case 7: /* fast-close */
        if (ln != 12)
            return 0;
        putf(fx, " key 0x%llx", (unsigned long long)be64(c, cp + 4));
        return 1;
    default:
        return 1;
    }
}

/* tcpdump's tcp_option_values: the name printed before an option's data. */
static const char *option_name(unsigned kind)
{
    switch (kind) {
    case 0: return "eol";
    case 1: return "nop";
    case 2: return "mss";
    case 3: return "wscale";
    case 4: return "sackOK";
    case 5: return "sack";
    case 6: return "echo";
    case 7: return "echoreply";
    case 8: return "TS";
    case 11: return "cc";
    case 12: return "ccnew";
    case 13: return "";
    case 19: return "md5";
    case 20: return "scps";
    case 28: return "uto";
    case 29: return "tcp-ao";
    case 30: return "mptcp";
    case 34: return "tfo";
    case 254: return "exp";
    default: return NULL;
    }
}

/* The walk of tcp_options below, option by option; ends by longjmp on a bad or
 * truncated option. */
static void walk_options(optwalk *w, int64_t cp, int64_t hlen)
{
    cursor *c = w->c;
    frame_ctx *fx = c->fx;
    unsigned flags = w->flags;
    while (hlen > 0) {
        if (*w->started)
            PUTS(fx, ",");
        unsigned opt = u8(c, cp++);
        int64_t ln;
        if (opt == 0 || opt == 1) {
            ln = 1;
        } else {
            ln = u8(c, cp++);
            if (ln < 2 || ln > hlen)
                longjmp(*w->stop, OPT_BAD);
            hlen--;
        }
        hlen--;
        w->cp = cp;
        w->hlen = hlen;
        int64_t datalen = 0;
        const char *name = option_name(opt);
        if (name)
            put_str(fx, name);
        else
            putf(fx, "unknown-%u", opt);
        switch (opt) {
        case 2: /* mss */
            datalen = 2;
            lencheck(w, 2);
            putf(fx, " %u", be16(c, cp));
            break;
        case 3: /* wscale */
            datalen = 1;
            lencheck(w, 1);
            putf(fx, " %u", u8(c, cp));
            break;
        case 5: /* sack */
            datalen = ln - 2;
            if (datalen % 8 != 0) {
                PUTS(fx, " invalid sack");
            } else {
                putf(fx, " %lld ", (long long)(datalen / 8));
                uint32_t base = w->rev ? w->thseq : w->thack;
                for (int64_t i = 0; i < datalen; i += 8) {
                    lencheck(w, i + 4);
                    uint32_t s = be32(c, cp + i);
                    lencheck(w, i + 8);
                    uint32_t e = be32(c, cp + i + 4);
                    PUTS(fx, "{");
                    put_u64(fx, (uint32_t)sdiff(s, base));
                    PUTS(fx, ":");
                    put_u64(fx, (uint32_t)sdiff(e, base));
                    PUTS(fx, "}");
                }
            }
            break;
        case 11: case 12: case 13: case 6: case 7: /* cc, ccnew, ccecho, echo, echoreply */
            datalen = 4;
            lencheck(w, 4);
            PUTS(fx, " ");
            put_u64(fx, be32(c, cp));
            break;
        case 8: /* timestamps */
            datalen = 8;
            lencheck(w, 8);
            PUTS(fx, " val ");
            put_u64(fx, be32(c, cp));
            PUTS(fx, " ecr ");
            put_u64(fx, be32(c, cp + 4));
            break;
        case 19: /* md5: tcpdump built with libcrypto and given no secret cannot check it */
            datalen = 16;
            lencheck(w, 16);
            put_str(fx, w->data_off + w->data_len > c->end ? " snaplen too short, "
                                                     : " shared secret not supplied with -M, ");
            PUTS(fx, "can't check - ");
            put_hex(fx, take(c, cp, 16), 16);
            break;
        case 20: /* scps */
            datalen = 2;
            lencheck(w, 2);
            putf(fx, " cap %02x id %u", u8(c, cp), u8(c, cp + 1));
            break;
        case 29: /* tcp-ao */
            datalen = ln - 2;
            if (datalen < 2) {
                PUTS(fx, " (invalid)");
            } else {
                lencheck(w, 1);
                putf(fx, " keyid %u", u8(c, cp));
                lencheck(w, 2);
                putf(fx, " rnextkeyid %u", u8(c, cp + 1));
                if (datalen > 2) {
                    PUTS(fx, " mac 0x");
                    for (int64_t i = 2; i < datalen; i++) {
                        lencheck(w, i + 1);
                        put_hex(fx, c->buf + cp + i, 1);
                    }
                }
            }
            break;
        case 0: case 1: case 4:
            break;
        case 28: { /* user timeout */
            datalen = 2;
            lencheck(w, 2);
            unsigned uto = be16(c, cp);
            putf(fx, " 0x%x %u", uto, uto & 1 ? (uto >> 1) * 60 : uto >> 1);
            break;
        }
        case 30: { /* mptcp, read within the option */
            datalen = ln - 2;
            lencheck(w, datalen);
            int64_t saved_end = c->end;
            if (cp - 2 + ln < c->end)
                c->end = cp - 2 + ln;
            int ok = mptcp_print(c, cp - 2, ln, flags);
            c->end = saved_end;
            if (!ok)
                longjmp(*w->stop, OPT_BAD);
            break;
        }
        case 34: /* tfo */
            datalen = ln - 2;
            lencheck(w, datalen);
            PUTS(fx, " ");
            fastopen(c, cp, datalen, 0);
            break;
        case 254: { /* experimental (RFC 6994): the ExID, or TFO's */
            datalen = ln - 2;
            lencheck(w, datalen);
            if (datalen < 2)
                longjmp(*w->stop, OPT_BAD);
            unsigned magic = be16(c, cp);
            PUTS(fx, "-");
            if (magic == 0xF989)
                fastopen(c, cp + 2, datalen - 2, 1);
            else
                putf(fx, "%04x", magic);
            break;
        }
        default:
            datalen = ln - 2;
            if (datalen)
                PUTS(fx, " 0x");
            for (int64_t i = 0; i < datalen; i++) {
                lencheck(w, i + 1);
                put_hex(fx, c->buf + cp + i, 1);
            }
        }
        cp += datalen;
        hlen -= datalen;
        datalen += opt == 0 || opt == 1 ? 1 : 2;
        if (datalen != ln)
            putf(fx, "[len %lld]", (long long)ln);
        *w->started = 1;
        if (opt == 0)
            break;
    }
}

/*
 * ", options [...]" for the `hlen` option bytes at `cp`, with tcpdump's quirks:
 * a bad length stops the list with "[bad opt]" (and "]" after the first option);
 * an option whose declared data was not captured stops with " [|tcp]" (and ">"
 * after the first option: tcpdump closes what it opened with '>'); a read of a
 * kind or length past the capture is a plain truncation of the packet;
 * "[len N]" follows an option whose length differs from its kind's; eol ends
 * the walk. SACK edges are relative to the bases of tcpdump's table (th_seq for
 * a segment against the table's order, th_ack otherwise; zero: absolute).
 * Returns 0 when the packet's line ends after the options.
 */
static int tcp_options(cursor *c, int64_t cp, int64_t hlen, unsigned flags, int rev,
                       uint32_t thseq, uint32_t thack, int64_t data_off, int64_t data_len)
{
    frame_ctx *fx = c->fx;
    jmp_buf stop;
    volatile int started = 0;
    optwalk w = {c, 0, 0, &stop, &started, flags, rev, thseq, thack, data_off, data_len};
    PUTS(fx, ", options [");
    int why = setjmp(stop);
    if (why == 0) {
        walk_options(&w, cp, hlen);
        PUTS(fx, "]");
        return 1;
    }
    if (why == OPT_BAD) {
        PUTS(fx, "[bad opt]");
        if (started)
            PUTS(fx, "]");
    } else {
        mark_trunc(c);
        if (started)
            PUTS(fx, ">");
    }
    return 0;
}

/* ------------------------------------------------------------ the segment */

void tcp_print(cursor *c, int64_t tp, int64_t length, int ver, int fragmented, int64_t ip_off,
               const uint8_t *src, const uint8_t *dst)
{
    frame_ctx *fx = c->fx;
    int alen = ver == 4 ? 4 : 16;
    fx->proto = "tcp";
    if (!ttest(c, tp + 2, 2)) {
        put_addrs(fx, ver, src, dst);
        PUTS(fx, ":");
        mark_trunc(c);
        return;
    }
    unsigned sport = be16(c, tp), dport = be16(c, tp + 2);
    if (u8(c, ip_off + (ver == 6 ? 6 : 9)) == 6) {
        put_endpoints(fx, ver, src, sport, dst, dport);
    } else {
        putf(fx, "%u > %u: ", sport, dport);
    }
    if (!ttest(c, tp, 20)) {
        mark_trunc(c);
        return;
    }
    int64_t hlen = (int64_t)(u8(c, tp + 12) >> 4) * 4;
    if (hlen < 20) {
        putf(fx, " tcp %u [bad hdr length %lld - too short, < 20]", (uint32_t)(length - hlen),
             (long long)hlen);
        return;
    }
    if (fx->q) {
        putf(fx, "tcp %u", (uint32_t)(length - hlen));
        if (hlen > length)
            putf(fx, " [bad hdr length %lld - too long, > %lld]", (long long)hlen,
                 (long long)length);
        return;
    }
    uint32_t seq = be32(c, tp + 4), ack = be32(c, tp + 8);
    unsigned win = be16(c, tp + 14), urp = be16(c, tp + 18), flags = u8(c, tp + 13);
    char letters[10];
    PUTS(fx, "Flags [");
    put(fx, letters, (size_t)tcps_flags_text((uint16_t)flags, letters));
    PUTS(fx, "]");
    int rev = 0;
    uint32_t thseq = 0, thack = 0;
    if (!fx->absolute && (flags & TCPS_ACK))
        relative_seq(fx, alen, src, dst, sport, dport, flags, &seq, &ack, &rev, &thseq, &thack);
    if (hlen > length) {
        putf(fx, " [bad hdr length %lld - too long, > %lld]", (long long)hlen, (long long)length);
        return;
    }
    if (fx->v && !fragmented && ttest(c, tp, length)) {
        /* the checksum over the pseudo-header and the whole segment */
        uint16_t carried = (uint16_t)be16(c, tp + 16);
        const uint8_t *pdst = dst;
        uint64_t acc;
        if (ver == 4) {
            const uint8_t *final = ip4_final_dst(c, ip_off);
            if (final)
                pdst = final;
            acc = 6 + (uint64_t)(length & 0xFFFF);
        } else {
            pdst = ip6_final_dst(c, ip_off, dst);
            acc = 6 + (uint64_t)(length >> 16 & 0xFFFF) + (uint64_t)(length & 0xFFFF);
        }
        acc += sum_be(src, (uint32_t)alen) + sum_be(pdst, (uint32_t)alen);
        uint16_t total = fold(acc + sum_be(c->buf + tp, (uint32_t)length));
        putf(fx, ", cksum 0x%04x", carried);
        if (total != 0xFFFF)
            putf(fx, " (incorrect -> 0x%04x)", csum_should_be(carried, total));
        else
            PUTS(fx, " (correct)");
    }
    length -= hlen;
    if (fx->v > 1 || length > 0 || (flags & (TCPS_SYN | TCPS_FIN | TCPS_RST))) {
        PUTS(fx, ", seq ");
        put_u64(fx, seq);
        if (length > 0) {
            PUTS(fx, ":");
            put_u64(fx, (uint32_t)(seq + (uint32_t)length));
        }
    }
    if (flags & TCPS_ACK) {
        PUTS(fx, ", ack ");
        put_u64(fx, ack);
    }
    PUTS(fx, ", win ");
    put_u64(fx, win);
    if (flags & TCPS_URG) {
        PUTS(fx, ", urg ");
        put_u64(fx, urp);
    }
    if (hlen > 20 && !tcp_options(c, tp + 20, hlen - 20, flags, rev, thseq, thack, tp + hlen, length))
        return;
    PUTS(fx, ", length ");
    put_u64(fx, (uint64_t)length);
    if (length == 0)
        return;
    if (!ttest(c, tp, hlen)) {
        int64_t left = c->end - tp;
        putf(fx, " [remaining caplen(%lld) < header length(%lld)]", (long long)(left > 0 ? left : 0),
             (long long)hlen);
        trunc_jump(fx);
    }
    if ((flags & TCPS_RST) && fx->v)
        rst_data(c, tp + hlen, length);
    else if (payload_port(fx, sport, dport))
        print_payload(c, tp + hlen, length, sport, dport);
}

/*
 * _link.c -- the link layers of tcpdump's listing. Without -e the link header
 * itself prints nothing, except what tcpdump prints without -e: the SLL2
 * interface and direction, MPLS labels, PPPoE session, VLANs in cooked captures;
 * with -e (fx->e) the addresses, types and lengths tcpdump prints for Ethernet
 * (and its VLAN tags), Linux cooked v1/v2, BSD loopback, raw IP, NFLOG and IPoIB.
 * Each printer notes the link header's length (fx->hdrlen) for -x/-X/-A. The
 * dumps themselves (hex_words, hex_and_ascii, ascii_text) are tcpdump's
 * print-ascii.c.
 *
 * Each function follows the tcpdump 4.99 printer it is named after
 * (print-ether.c, print-sll.c, print-mpls.c, print-pppoe.c, print-ppp.c,
 * print-null.c, print-nflog.c, print-ipoib.c, print-pktap.c, print-arp.c).
 */
#include "_listing.h"

static const char *ethertype_name(unsigned etype)
{
    switch (etype) {
    case 0x0800: return "IPv4";
    case 0x0806: return "ARP";
    case 0x86DD: return "IPv6";
    case 0x8100: return "802.1Q";
    case 0x88A8: return "802.1Q-QinQ";
    case 0x9100: return "802.1Q-9100";
    case 0x8847: return "MPLS unicast";
    case 0x8848: return "MPLS multicast";
    case 0x8863: return "PPPoE D";
    case 0x8864: return "PPPoE S";
    case 0x8035: return "Reverse ARP";
    case 0x88CC: return "LLDP";
    default: return "Unknown";
    }
}

static const char *sll_pkttype(unsigned t)
{
    static const char *names[] = {"In", "B", "M", "P", "Out"};
    return t < 5 ? names[t] : "?";
}

static int is_vlan_type(unsigned etype)
{
    return etype == 0x8100 || etype == 0x88A8 || etype == 0x9100 || etype == 0x9200;
}

/* tcpdump's default print of bytes no printer decodes: 16 a line, hex words, then ASCII. */
void hex_and_ascii(cursor *c, int64_t p, int64_t length)
{
    frame_ctx *fx = c->fx;
    int64_t avail = c->end - p < length ? c->end - p : length;
    if (avail < 0)
        avail = 0;
    const uint8_t *data = c->buf + p;
    for (int64_t off = 0; off < avail; off += 16) {
        int64_t k = avail - off < 16 ? avail - off : 16;
        char words[48];
        int w = 0;
        for (int64_t i = 0; i < k; i += 2) {
            if (i + 1 < k)
                w += snprintf(words + w, sizeof words - (size_t)w, " %02x%02x", data[off + i], data[off + i + 1]);
            else
                w += snprintf(words + w, sizeof words - (size_t)w, " %02x", data[off + i]);
        }
        char text[17];
        for (int64_t i = 0; i < k; i++) {
            uint8_t ch = data[off + i];
            text[i] = ch >= 0x21 && ch <= 0x7E ? (char)ch : '.';
        }
        text[k] = 0;
        putf(fx, "\n\t0x%04x: %-40s  %s", (unsigned)off, words, text);
    }
    if (avail < length)
        trunc_jump(fx);
}

void hex_words(cursor *c, int64_t p, int64_t length)
{
    frame_ctx *fx = c->fx;
    int64_t avail = c->end - p < length ? c->end - p : length;
    const uint8_t *data = c->buf + p;
    for (int64_t off = 0; off < avail; off += 2) {
        if (off % 16 == 0)
            putf(fx, "\n\t0x%04x: ", (unsigned)off);
        if (off + 1 < avail)
            putf(fx, " %02x%02x", data[off], data[off + 1]);
        else
            putf(fx, " %02x", data[off]);
    }
}

void ascii_text(cursor *c, int64_t p, int64_t length)
{
    frame_ctx *fx = c->fx;
    int64_t avail = c->end - p < length ? c->end - p : length;
    const uint8_t *data = c->buf + p;
    PUTS(fx, "\n");
    for (int64_t i = 0; i < avail; i++) {
        uint8_t ch = data[i];
        int64_t left = avail - i - 1;
        if (ch == '\r') {
            /* tcpdump drops a CR before a newline (and at the very end) */
            if (left > 1 && data[i + 1] != '\n')
                PUTS(fx, ".");
        } else if ((ch >= 0x21 && ch <= 0x7E) || ch == '\t' || ch == ' ' || ch == '\n') {
            put(fx, (const char *)&ch, 1);
        } else {
            PUTS(fx, ".");
        }
    }
}

static void put_mac(frame_ctx *fx, const uint8_t *m)
{
    putf(fx, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

/* -e: an Ethernet type as tcpdump's ether_type_print writes it (shorter with -q). */
static void put_ether_type(frame_ctx *fx, unsigned etype)
{
    if (!fx->q)
        putf(fx, "ethertype %s (0x%04x)", ethertype_name(etype), etype);
    else if (strcmp(ethertype_name(etype), "Unknown"))
        put_str(fx, ethertype_name(etype));
    else
        putf(fx, "Unknown Ethertype (0x%04x)", etype);
}

/* -e: a type of an Ethernet header, the first followed by the frame's length */
static void ether_type_e(frame_ctx *fx, unsigned etype, int first, int64_t orig)
{
    put_ether_type(fx, etype);
    if (first)
        putf(fx, ", length %lld: ", (long long)orig);
    else
        PUTS(fx, ", ");
}

/* -e: an 802.1Q tag's TCI */
static void put_tci(frame_ctx *fx, unsigned tci)
{
    putf(fx, "vlan %u, p %u%s, ", tci & 0xFFF, tci >> 13, tci & 0x1000 ? ", DEI" : "");
}

static void arp_print(cursor *c, int64_t p, int64_t length)
{
    frame_ctx *fx = c->fx;
    fx->proto = "arp";
    if (!ttest(c, p, 28)) {
        putf(fx, "ARP, length %lld", (long long)length);
        return;
    }
    unsigned op = be16(c, p + 6);
    const uint8_t *spa = take(c, p + 14, 4), *tpa = take(c, p + 24, 4);
    if (op == 1) {
        PUTS(fx, "ARP, Request who-has ");
        put_ip4(fx, tpa);
        PUTS(fx, " tell ");
        put_ip4(fx, spa);
    } else if (op == 2) {
        const uint8_t *sha = take(c, p + 8, 6);
        PUTS(fx, "ARP, Reply ");
        put_ip4(fx, spa);
        putf(fx, " is-at %02x:%02x:%02x:%02x:%02x:%02x", sha[0], sha[1], sha[2], sha[3], sha[4], sha[5]);
    } else {
        putf(fx, "ARP, op %u", op);
    }
    putf(fx, ", length %lld", (long long)length);
}

static void mpls_print(cursor *c, int64_t p, int64_t length);
static void pppoe_print(cursor *c, int64_t p, int64_t length);

/* The protocol an Ethernet type names; 0 if tcpdump has no printer for it here. */
int ethertype_print(cursor *c, unsigned etype, int64_t p, int64_t length)
{
    switch (etype) {
    case 0x0800: ip_print(c, p, length); return 1;
    case 0x86DD: ip6_print(c, p, length); return 1;
    case 0x8847: case 0x8848: mpls_print(c, p, length); return 1;
    case 0x8863: case 0x8864: pppoe_print(c, p, length); return 1;
    case 0x0806: case 0x8035: arp_print(c, p, length); return 1;
    default: return 0;
    }
}

void ether_print(cursor *c, int64_t p, int64_t length)
{
    frame_ctx *fx = c->fx;
    fx->proto = "ether";
    int64_t caplen = c->end - p;
    int64_t orig = length;
    if (length < caplen) {
        putf(fx, "[length %lld < caplen %lld] (invalid)", (long long)length, (long long)caplen);
        return;
    }
    if (caplen < 14) {
        mark_trunc(c);
        return;
    }
    if (fx->e) {
        put_mac(fx, c->buf + p + 6);
        PUTS(fx, " > ");
        put_mac(fx, c->buf + p);
        PUTS(fx, ", ");
    }
    unsigned etype = be16(c, p + 12);
    p += 14;
    length -= 14;
    fx->hdrlen = p;
    int first = 1;
    while (is_vlan_type(etype)) {
        if (c->end - p < 4 || length < 4) {
            fx->proto = "vlan";
            mark_trunc(c);
            return;
        }
        if (fx->e) {
            ether_type_e(fx, etype, first, orig);
            put_tci(fx, be16(c, p));
            first = 0;
        }
        etype = be16(c, p + 2);
        p += 4;
        length -= 4;
        fx->hdrlen = p;
    }
    if (etype <= 1500) {
        putf(fx, "802.3, length %lld", (long long)length);
        return;
    }
    if (fx->e)
        ether_type_e(fx, etype, first, orig);
    if (!ethertype_print(c, etype, p, length) && !fx->e)
        putf(fx, "ethertype %s (0x%04x), length %lld", ethertype_name(etype), etype,
             (long long)length + 14);
}

static void mpls_print(cursor *c, int64_t p, int64_t length)
{
    static const char *label_names[16] = {
        "IPv4 explicit NULL", "router alert", "IPv6 explicit NULL", "implicit NULL", "rsvd",
        "rsvd", "rsvd", "entropy label indicator", "rsvd", "rsvd", "rsvd", "rsvd", "rsvd",
        "rsvd", "rsvd", "rsvd"};
    frame_ctx *fx = c->fx;
    fx->proto = "mpls";
    PUTS(fx, "MPLS");
    int depth = 0;
    uint32_t entry, label;
    for (;;) {
        if (length < 4) {
            PUTS(fx, "[|MPLS]");
            return;
        }
        entry = be32(c, p);
        label = entry >> 12;
        if (depth && fx->v)
            PUTS(fx, "\n\t");
        else
            PUTS(fx, " ");
        putf(fx, "(label %u", label);
        depth++;
        if (fx->v && label < 16)
            putf(fx, " (%s)", label_names[label]);
        putf(fx, ", tc %u", (entry >> 9) & 7);
        if (entry & 0x100)
            PUTS(fx, ", [S]");
        putf(fx, ", ttl %u)", entry & 0xFF);
        p += 4;
        length -= 4;
        if (entry & 0x100)
            break;
    }
    int pt;
    if (label == 0 || label == 3) {
        pt = 4;
    } else if (label == 2) {
        pt = 6;
    } else {
        if (length < 1)
            return;
        unsigned first = u8(c, p);
        pt = first >= 0x45 && first <= 0x4F ? 4 : first >= 0x60 && first <= 0x6F ? 6 : 0;
    }
    if (pt == 0) {
        putf(fx, " MPLS payload, length %lld", (long long)length);
        return;
    }
    if (fx->v)
        PUTS(fx, "\n\t");
    else
        PUTS(fx, " ");
    if (pt == 4)
        ip_print(c, p, length);
    else
        ip6_print(c, p, length);
}

static void ppp_print(cursor *c, int64_t p, int64_t length)
{
    frame_ctx *fx = c->fx;
    fx->proto = "ppp";
    if (length < 2) {
        mark_trunc(c);
        return;
    }
    unsigned hdr = be16(c, p);
    if (hdr == 0xFF03 || hdr == 0x0103) {
        p += 2;
        length -= 2;
    }
    if (length < 2) {
        mark_trunc(c);
        return;
    }
    unsigned proto;
    int64_t olen = length;
    if (u8(c, p) % 2) {
        proto = u8(c, p);
        p += 1;
        length -= 1;
    } else {
        proto = be16(c, p);
        p += 2;
        length -= 2;
    }
    if (fx->e) {
        const char *name = proto == 0x0021 ? "IP" : proto == 0x0057 ? "IPV6"
                         : proto == 0x0281 ? "MPLS" : "unknown";
        putf(fx, "%s (0x%04x), length %lld: ", name, proto, (long long)olen);
    }
    if (proto == 0x0021 || proto == 0x0800)
        ip_print(c, p, length);
    else if (proto == 0x0057 || proto == 0x86DD)
        ip6_print(c, p, length);
    else if (proto == 0x0281 || proto == 0x8847)
        mpls_print(c, p, length);
    else
        putf(fx, "PPP protocol 0x%04x, length %lld", proto, (long long)length);
}

static void pppoe_print(cursor *c, int64_t p, int64_t length)
{
    frame_ctx *fx = c->fx;
    fx->proto = "pppoe";
    if (length < 6) {
        putf(fx, " (length %lld < 6) (invalid)", (long long)length);
        return;
    }
    length -= 6;
    if (!ttest(c, p, 6)) {
        mark_trunc(c);
        return;
    }
    unsigned ver_type = u8(c, p), code = u8(c, p + 1), sess = be16(c, p + 2);
    int64_t plen = be16(c, p + 4);
    if (ver_type >> 4 != 1)
        putf(fx, " [ver %u]", ver_type >> 4);
    if ((ver_type & 0xF) != 1)
        putf(fx, " [type %u]", ver_type & 0xF);
    switch (code) {
    case 0x00: PUTS(fx, "PPPoE "); break;
    case 0x09: PUTS(fx, "PPPoE PADI"); break;
    case 0x07: PUTS(fx, "PPPoE PADO"); break;
    case 0x19: PUTS(fx, "PPPoE PADR"); break;
    case 0x65: PUTS(fx, "PPPoE PADS"); break;
    case 0xA7: PUTS(fx, "PPPoE PADT"); break;
    default: putf(fx, "PPPoE PAD-%x", code);
    }
    if (code == 0x09 && plen > 1484 - 6)
        putf(fx, " [len %lld!]", (long long)plen);
    if (plen > length) {
        putf(fx, " [len %lld > %lld!]", (long long)plen, (long long)length);
        plen = length;
    }
    if (sess)
        putf(fx, " [ses 0x%x]", sess);
    if (code) {
        putf(fx, ", length %lld", (long long)plen);
        return;
    }
    PUTS(fx, " ");
    ppp_print(c, p + 6, plen);
}

/* After a cooked (SLL / SLL2) header: tcpdump's sll_print loop over 802.1Q tags.
 * Returns 0 when the frame is done (802.3/802.2, or a truncated tag). */
static int cooked_vlans(cursor *c, unsigned *etype, int64_t *p, int64_t *length)
{
    frame_ctx *fx = c->fx;
    for (;;) {
        if (*etype <= 1500) {
            putf(fx, "802.3/802.2 (0x%04x), length %lld", *etype, (long long)*length);
            return 0;
        }
        if (*etype != 0x8100)
            return 1;
        if (c->end - *p < 4) {
            fx->proto = "vlan";
            mark_trunc(c);
            return 0;
        }
        if (fx->e)
            put_tci(fx, be16(c, *p));
        *etype = be16(c, *p + 2);
        if (*etype <= 1500)
            *etype = 0x0004;
        if (!fx->q)
            putf(fx, "ethertype %s, ", ethertype_name(*etype));
        *p += 4;
        *length -= 4;
        fx->hdrlen = *p;
    }
}

/* -e: the protocol of a cooked header and the frame's length (nothing with -q) */
static void cooked_type(frame_ctx *fx, unsigned etype, int64_t length)
{
    if (fx->q)
        return;
    if (etype == 0x0001)
        PUTS(fx, "802.3");
    else if (etype == 0x0004)
        PUTS(fx, "802.2");
    else if (etype <= 1500)
        putf(fx, "ethertype Unknown (0x%04x)", etype);
    else
        putf(fx, "ethertype %s (0x%04x)", ethertype_name(etype), etype);
    putf(fx, ", length %lld: ", (long long)length);
}

static void sll_print(cursor *c, int64_t length)
{
    frame_ctx *fx = c->fx;
    fx->proto = "sll";
    if (!ttest(c, 0, 16))
        trunc_jump(fx);
    unsigned etype = be16(c, 14);
    if (fx->e) {
        putf(fx, "%3s ", sll_pkttype(be16(c, 0)));
        if (be16(c, 4) == 6) {
            put_mac(fx, take(c, 6, 6));
            PUTS(fx, " ");
        }
        cooked_type(fx, etype, length);
    }
    int64_t p = 16;
    fx->hdrlen = p;
    length -= 16;
    if (!cooked_vlans(c, &etype, &p, &length))
        return;
    if (!ethertype_print(c, etype, p, length) && !fx->e)
        putf(fx, "%3s ethertype %s (0x%04x), length %lld", sll_pkttype(be16(c, 0)),
             ethertype_name(etype), etype, (long long)length + 16);
}

static void sll2_print(cursor *c, int64_t length)
{
    frame_ctx *fx = c->fx;
    fx->proto = "sll2";
    if (!ttest(c, 0, 20))
        trunc_jump(fx);
    putf(fx, "%-5s %-3s ", interface_name(fx, be32(c, 4)), sll_pkttype(u8(c, 10)));
    unsigned etype = be16(c, 0);
    if (fx->e) {
        putf(fx, "ifindex %u ", be32(c, 4));
        if (u8(c, 11) == 6) {
            put_mac(fx, take(c, 12, 6));
            PUTS(fx, " ");
        }
        cooked_type(fx, etype, length);
    }
    int64_t p = 20;
    fx->hdrlen = p;
    length -= 20;
    if (!cooked_vlans(c, &etype, &p, &length))
        return;
    if (!ethertype_print(c, etype, p, length) && !fx->e)
        putf(fx, "ethertype %s (0x%04x), length %lld", ethertype_name(etype), etype,
             (long long)length + 20);
}

static uint32_t bswap32(uint32_t x)
{
    return x >> 24 | (x >> 8 & 0xFF00) | (x << 8 & 0xFF0000) | x << 24;
}

static uint32_t le32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* BSD loopback: the address family in the capturing host's byte order (NULL) or in
 * network order (LOOP); either way tcpdump swaps a value whose upper 16 bits are set. */
static void null_print(cursor *c, int64_t length, int loop)
{
    frame_ctx *fx = c->fx;
    fx->proto = "null";
    if (c->end < 4) {
        mark_trunc(c);
        return;
    }
    const uint8_t *raw = take(c, 0, 4);
    uint32_t family = loop ? bswap32(le32(raw)) : le32(raw);
    if (family & 0xFFFF0000)
        family = bswap32(family);
    fx->hdrlen = 4;
    if (fx->e) {
        const char *name = family == 2 ? "IPv4" : (family == 24 || family == 28 || family == 30)
                           ? "IPv6" : "Unknown";
        if (fx->q)
            put_str(fx, name);
        else
            putf(fx, "AF %s (%u)", name, family);
        putf(fx, ", length %lld: ", (long long)length);
    }
    length -= 4;
    if (family == 2)
        ip_print(c, 4, length);
    else if (family == 24 || family == 28 || family == 30)
        ip6_print(c, 4, length);
    else {
        putf(fx, "AF Unknown (%u), length %lld: ", family, (long long)length + 4);
        hex_and_ascii(c, 4, c->end - 4);
    }
}

static void nflog_print(cursor *c, int64_t length)
{
    frame_ctx *fx = c->fx;
    fx->proto = "nflog";
    if (c->end < 4) {
        mark_trunc(c);
        return;
    }
    unsigned family = u8(c, 0), version = u8(c, 1);
    if (version != 0) {
        putf(fx, "version %u (unknown)", version);
        return;
    }
    if (fx->e) {
        const char *name = family == 2 ? "IPv4" : family == 10 ? "IPv6" : "Unknown";
        putf(fx, "version %u, resource ID %u, ", version, be16(c, 2));
        if (fx->q)
            put_str(fx, name);
        else
            putf(fx, "family %s (%u)", name, family);
        putf(fx, ", length %lld: ", (long long)length);
    }
    int64_t p = 4;
    length -= 4;
    while (length > 0) {
        if (c->end - p < 4) {
            mark_trunc(c);
            return;
        }
        const uint8_t *tlv = take(c, p, 4);
        int64_t size = tlv[0] | tlv[1] << 8;
        unsigned ttype = tlv[2] | tlv[3] << 8;
        if (size % 4)
            size += 4 - size % 4;
        if (size < 4 || c->end - p < size) {
            mark_trunc(c);
            return;
        }
        if (ttype == 9) { /* NFULA_PAYLOAD */
            p += 4;
            length -= 4;
            fx->hdrlen = p;
            break;
        }
        p += size;
        length -= size;
    }
    if (family == 2)
        ip_print(c, p, length);
    else if (family == 10)
        ip6_print(c, p, length);
    else
        putf(fx, "NFLOG family %u, length %lld", family, (long long)length);
}

/* LINKTYPE_IPOIB: 20-byte destination and source hardware addresses, the ethertype,
 * 2 reserved bytes. */
static void ipoib_print(cursor *c, int64_t length)
{
    frame_ctx *fx = c->fx;
    fx->proto = "ipoib";
    if (c->end < 44) {
        mark_trunc(c);
        return;
    }
    unsigned etype = be16(c, 40);
    fx->hdrlen = 44;
    if (fx->e) {
        PUTS(fx, "IPOIB, ");
        if (fx->q)
            putf(fx, "ethertype %s", ethertype_name(etype));
        else
            put_ether_type(fx, etype);
        putf(fx, ", length %lld: ", (long long)length);
    }
    if (!ethertype_print(c, etype, 44, length - 44))
        putf(fx, "IPoIB ethertype 0x%04x, length %lld", etype, (long long)length);
}

static void pktap_print(cursor *c, int64_t length)
{
    frame_ctx *fx = c->fx;
    fx->proto = "pktap";
    if (c->end < 8) {
        mark_trunc(c);
        return;
    }
    int64_t hdrlen = le32(take(c, 0, 4));
    unsigned dlt = le32(take(c, 4, 4));
    if (hdrlen < 8 || hdrlen > length || c->end < hdrlen) {
        mark_trunc(c);
        return;
    }
    cursor inner = sub_cursor(c, hdrlen);
    link_print(&inner, dlt, length - hdrlen);
    fx->hdrlen += hdrlen;
}

void link_print(cursor *c, unsigned linktype, int64_t length)
{
    switch (linktype) {
    case 1: ether_print(c, 0, length); break;
    case 101: case 12: case 14: case 228: case 229:
        if (c->fx->e)
            PUTS(c->fx, "ip: ");
        if (linktype == 228)
            ip_print(c, 0, length);
        else if (linktype == 229)
            ip6_print(c, 0, length);
        else
            ipn_print(c, 0, length);
        break;
    case 113: sll_print(c, length); break;
    case 276: sll2_print(c, length); break;
    case 0: null_print(c, length, 0); break;
    case 108: null_print(c, length, 1); break;
    case 239: nflog_print(c, length); break;
    case 242: ipoib_print(c, length); break;
    case 258: pktap_print(c, length); break;
    case 9: case 50: ppp_print(c, 0, length); break;
    default: putf(c->fx, "unsupported link type %u, length %lld", linktype, (long long)length);
    }
}

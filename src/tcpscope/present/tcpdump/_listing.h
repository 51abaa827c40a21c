/*
 * _listing.h -- what the C units of `tcpscope read` share.
 *
 * The listing walks each frame's captured bytes the way tcpdump 4.99's
 * printers do (link layer -> IP -> TCP and its options) and writes the text
 * tcpdump prints with -nn. The units:
 *
 *   _listing.c   the Python type (`Printer`), the batch loop, timestamps,
 *                frame numbers, tcpdump's relative-sequence table, the call
 *                into Python for application payloads
 *   _link.c      link layers: Ethernet (VLAN, MPLS, PPPoE, PPP), Linux cooked
 *                v1/v2, BSD loopback, raw IP, NFLOG, IP over InfiniBand, PKTAP
 *   _ip.c        IPv4 (-v header line, options, checksum), IPv6 (extension
 *                headers), the short summaries of UDP (VXLAN), ICMP, ARP
 *   _tcp.c       the TCP line: header, checksum, options (MPTCP, TFO, ...),
 *                RST text, then the payload printers
 *
 * Two lengths are kept apart, as tcpdump keeps them: what headers claim (the
 * `length` arguments) and what was captured (a cursor's `end`, tcpdump's
 * "snapend", lowered by the IP layer to the datagram's end). A read past `end`
 * is tcpdump's longjmp on a truncated packet: `trunc_jump` returns to the
 * frame loop, which prints " [|proto]" and ends the line. Every read of a
 * captured byte is bounds-checked: by the accessors below, or after a ttest.
 */
#ifndef TCPSCOPE_LISTING_H
#define TCPSCOPE_LISTING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

/* Why a frame's walk ended early (the value given to longjmp). */
enum { JUMP_TRUNCATED = 1, JUMP_ERROR = 2 };

typedef struct listing listing;

/* One frame on its way to text: the output buffer and tcpdump's truncation state. */
typedef struct {
    char *buf;
    size_t len, cap;
    jmp_buf jmp;
    const char *proto;      /* the name in " [|proto]" */
    int v;                  /* -v count */
    int absolute;           /* -S */
    int e;                  /* -e: the link-level header */
    int q;                  /* -q: quick (less protocol information) */
    int64_t hdrlen;         /* the link header's length (where -x/-X/-A dumps start) */
    int truncated_payload;  /* a payload printer ran out of captured bytes */
    listing *ls;
} frame_ctx;

/* A view of captured bytes: `buf[0 .. end)` may be read; `cap` bytes exist
 * (a few tcpdump reads are not bounded by `end`, only by the capture). */
typedef struct {
    const uint8_t *buf;
    int64_t cap;
    int64_t end;
    frame_ctx *fx;
} cursor;

/* ------------------------------------------------------------ output */

void out_grow(frame_ctx *fx, size_t more);
void putf(frame_ctx *fx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void put_u64(frame_ctx *fx, uint64_t v);
void put_ip4(frame_ctx *fx, const uint8_t *a);
void put_ip6(frame_ctx *fx, const uint8_t *a);
void put_hex(frame_ctx *fx, const uint8_t *p, size_t n);

static inline void put(frame_ctx *fx, const char *s, size_t n)
{
    if (fx->len + n > fx->cap)
        out_grow(fx, n);
    memcpy(fx->buf + fx->len, s, n);
    fx->len += n;
}

static inline void put_str(frame_ctx *fx, const char *s) { put(fx, s, strlen(s)); }

#define PUTS(fx, lit) put((fx), (lit), sizeof(lit) - 1)

/* ------------------------------------------------------------ reads */

_Noreturn void trunc_jump(frame_ctx *fx);

static inline int ttest(const cursor *c, int64_t off, int64_t n)
{
    return off >= 0 && n >= 0 && off + n <= c->end;
}

static inline unsigned u8(const cursor *c, int64_t off)
{
    if (off < 0 || off >= c->end)
        trunc_jump(c->fx);
    return c->buf[off];
}

static inline unsigned be16(const cursor *c, int64_t off)
{
    if (off < 0 || off + 2 > c->end)
        trunc_jump(c->fx);
    return (unsigned)c->buf[off] << 8 | c->buf[off + 1];
}

static inline uint32_t be32(const cursor *c, int64_t off)
{
    if (off < 0 || off + 4 > c->end)
        trunc_jump(c->fx);
    const uint8_t *p = c->buf + off;
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t be64(const cursor *c, int64_t off)
{
    return (uint64_t)be32(c, off) << 32 | be32(c, off + 4);
}

/* The bytes [off, off + n) after checking they were captured. */
static inline const uint8_t *take(const cursor *c, int64_t off, int64_t n)
{
    if (!ttest(c, off, n))
        trunc_jump(c->fx);
    return c->buf + off;
}

/* tcpdump's nd_print_trunc: " [|proto]", and the packet goes on. */
static inline void mark_trunc(const cursor *c)
{
    PUTS(c->fx, " [|");
    put_str(c->fx, c->fx->proto);
    PUTS(c->fx, "]");
}

/* A cursor over the bytes from `off` on (an encapsulated frame). */
static inline cursor sub_cursor(const cursor *c, int64_t off)
{
    cursor in = {c->buf + off, c->cap - off, c->end - off, c->fx};
    return in;
}

/* ------------------------------------------------------------ the units */

/* _listing.c: the state kept across frames */
const char *interface_name(frame_ctx *fx, uint32_t index);
/* tcpdump's relative numbers: for an ACK-bearing segment, replace *seq and *ack
 * and give the connection's bases (th_seq, th_ack) and direction (rev). */
void relative_seq(frame_ctx *fx, int alen, const uint8_t *src, const uint8_t *dst,
                  unsigned sport, unsigned dport, unsigned flags, uint32_t *seq, uint32_t *ack,
                  int *rev, uint32_t *thseq, uint32_t *thack);
/* Does tcpdump hand the payload of a segment between these ports to a printer? */
int payload_port(const frame_ctx *fx, unsigned sport, unsigned dport);
/* The payload printers (Python): append their text; the frame ends after it. */
void print_payload(const cursor *c, int64_t bp, int64_t length, unsigned sport, unsigned dport);

/* _link.c */
void link_print(cursor *c, unsigned linktype, int64_t length);
/* tcpdump's hex_and_ascii_print: "\n\t0xOOOO: " lines of 8 hex words and their ASCII */
void hex_and_ascii(cursor *c, int64_t p, int64_t length);
/* tcpdump's hex_print (-x): the same lines without the ASCII */
void hex_words(cursor *c, int64_t p, int64_t length);
/* tcpdump's ascii_print (-A) */
void ascii_text(cursor *c, int64_t p, int64_t length);
int ethertype_print(cursor *c, unsigned etype, int64_t p, int64_t length);
void ether_print(cursor *c, int64_t p, int64_t length);

/* _ip.c */
/* "a > b", and "a.sport > b.dport: ", for IP version `ver` */
void put_addrs(frame_ctx *fx, int ver, const uint8_t *src, const uint8_t *dst);
void put_endpoints(frame_ctx *fx, int ver, const uint8_t *src, unsigned sport,
                   const uint8_t *dst, unsigned dport);
void ip_print(cursor *c, int64_t p, int64_t length);
void ip6_print(cursor *c, int64_t p, int64_t length);
void ipn_print(cursor *c, int64_t p, int64_t length);
const uint8_t *ip4_final_dst(const cursor *c, int64_t ip);
const uint8_t *ip6_final_dst(const cursor *c, int64_t ip, const uint8_t *dst);

/* _tcp.c */
void tcp_print(cursor *c, int64_t tp, int64_t length, int ver, int fragmented, int64_t ip_off,
               const uint8_t *src, const uint8_t *dst);

#endif

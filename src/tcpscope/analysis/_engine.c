/*
 * _engine.c -- connection tracking and Wireshark-compatible TCP analysis.
 *
 * A sans-IO engine: an `Engine` object holds every connection's state across
 * calls; `feed()` takes a batch of dissected records (record.h) with their
 * capture timestamps and frame numbers, and returns one tcps_annotation
 * (annotation.h) per record. Time comes only from the timestamps passed in.
 *
 * "wireshark" mode reproduces what tshark 4.0 prints for tcp.stream,
 * tcp.seq/ack, tcp.window_size and tcp.analysis.* in one pass, as read from
 * epan/dissectors/packet-tcp.c (dissect_tcp and tcp_analyze_sequence_number)
 * and checked against tshark 4.0.17 on crafted captures. The step numbers in
 * the comments (WS-1 ... WS-15) are those of SEMANTICS.md §1.1; where
 * tshark 4.0.17 differs from that (4.4-era) text, the comment says so.
 *
 * Sequence numbers are compared in 32-bit serial arithmetic (RFC 1982 as TCP
 * uses it, RFC 9293 §3.4): never with a raw `<` unless Wireshark itself does.
 * Relative numbers are reported in 64 bits, unwrapped per direction.
 *
 * Memory: one conversation per active 4-tuple (a hash table with open
 * addressing), each direction with its list of unacknowledged segments
 * (bounded like Wireshark's, 10000), freed as soon as it empties. A compact
 * summary per stream is kept for connections(). Per-frame output is written
 * into the caller's batch, never accumulated.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "annotation.h"

/* ------------------------------------------------------------------ */
/* Constants                                                           */
/* ------------------------------------------------------------------ */

#define MODE_WIRESHARK 0
#define MODE_IMPROVED 1

#define MAX_UNACKED_SEGMENTS 10000u   /* packet-tcp.h TCP_MAX_UNACKED_SEGMENTS */
#define MAX_SACK_STORED 3             /* Wireshark keeps blocks while count < 4 */
#define FAST_RETX_WINDOW_NS 20000000ull /* 20 ms after the last dup ACK */
#define OOO_DEFAULT_NS 3000000ull     /* 3 ms when the handshake RTT is unknown */
#define BIF_MAX 2000000000u           /* bytes in flight shown only below this */
#define SPAN_FAST 0x40000000u         /* 2^30: beyond, segment lists use exact scans */
#define SB_MAX 8                      /* improved mode: SACK scoreboard blocks kept per direction */
#define DUP_WINDOW_NS 2000000ll       /* improved mode: a copy within 2 ms is a capture duplicate */

/* ------------------------------------------------------------------ */
/* Serial-number arithmetic (RFC 1982; Wireshark's GT_SEQ & co.)       */
/* ------------------------------------------------------------------ */

static inline int32_t sdiff(uint32_t a, uint32_t b) { return (int32_t)(a - b); }
static inline int gt_seq(uint32_t a, uint32_t b) { return sdiff(a, b) > 0; }
static inline int lt_seq(uint32_t a, uint32_t b) { return sdiff(a, b) < 0; }
static inline int ge_seq(uint32_t a, uint32_t b) { return sdiff(a, b) >= 0; }
static inline int le_seq(uint32_t a, uint32_t b) { return sdiff(a, b) <= 0; }

/* ------------------------------------------------------------------ */
/* Unacknowledged segments of one direction                            */
/* ------------------------------------------------------------------ */

typedef struct {
    uint32_t seq;      /* may be trimmed forward by partial ACKs */
    uint32_t nextseq;  /* seq + len (+1 for SYN/FIN) */
    int64_t frame;
    int64_t ts;
} seg_t;

/* Wireshark keeps a linked list, newest first, and scans all of it on every
 * ACK. Every decision made from that list is independent of the list order
 * except ties, which it breaks in favour of the oldest segment; we break them
 * by the smallest frame number instead, which is the same thing. So the list
 * can be kept sorted by nextseq, which lets the usual ACK (one that removes
 * the oldest segments) cost what it removes, not the whole window.
 * `sorted` holds while every segment lies within SPAN_FAST of the others;
 * otherwise (odd captures) the list is scanned whole, exactly as Wireshark. */
typedef struct {
    seg_t *v;
    uint32_t n, cap;
    uint32_t max_len;  /* largest nextseq - seq ever stored (bound for the trims) */
    uint8_t sorted;
} seglist_t;

/* ------------------------------------------------------------------ */
/* One direction of a conversation: Wireshark's tcp_flow_t             */
/* ------------------------------------------------------------------ */

typedef struct {
    uint32_t base_seq;        /* relative numbers start here (ISN, or first seq - 1) */
    uint32_t window;          /* last raw (unscaled) window; 0xFFFFFFFF before any */
    uint32_t lastack;         /* last raw ack this direction sent (ACK bit or not) */
    uint32_t dupacknum;       /* unsigned, as in Wireshark: 0xFFFFFFFF marks "ACKed unseen reported" */
    uint32_t nextseq;         /* highest seq + len seen (+1 SYN/FIN); 0 = none yet */
    uint32_t maxseqtobeacked; /* end of the contiguous data from the start */
    uint32_t lastsegmentflags;/* analysis flags of this direction's previous segment */
    uint32_t push_bytes_sent;
    int64_t lastacktime;      /* time of this direction's previous segment */
    int64_t lastnondupack;    /* frame where this direction's ack last changed */
    int64_t nextseqframe;     /* frame that last advanced nextseq */
    int64_t nextseqtime;
    int64_t last_frame;       /* this direction's previous frame (evidence) */
    int64_t first_frame;      /* this direction's first frame (evidence) */
    uint32_t sack_le[MAX_SACK_STORED], sack_re[MAX_SACK_STORED];
    int16_t win_scale;        /* -1 unknown, -2 no scaling, else the shift (<= 14) */
    uint8_t base_set;
    uint8_t valid_bif;
    uint8_t push_set_last;
    uint8_t is_first_ack;     /* between a SYN and this direction's first non-SYN ACK */
    uint8_t num_sack;         /* SACK blocks of this direction's last segment (<= 3) */
    uint8_t ref_set;
    /* 64-bit relative numbers: an anchor to unwrap 32-bit values around */
    uint32_t ref_raw;
    int64_t ref_ext;
    int64_t base_ext;
    seglist_t segs;
    /* improved mode only */
    uint32_t sig_seq, sig_ack, sig_len;  /* this direction's previous segment, for capture duplicates */
    uint16_t sig_flags, sig_win, sig_ipid, sig_iface;
    int64_t sig_ts, sig_frame;
    uint8_t sig_set;
    uint8_t acked_seen;       /* this direction has sent an ACK */
    uint8_t sb_n;             /* SACK scoreboard: blocks this direction reported, above its ack */
    int64_t report_ts;        /* when this direction began reporting a hole (dup ACK / SACK); 0 = none now */
    uint16_t last_ipid;       /* IPv4 identification of this direction's previous segment */
    uint16_t nextseq_ipid;    /* ... of the segment that last advanced nextseq */
    uint32_t ipid_steps;      /* small forward steps between consecutive IP IDs */
    uint32_t ipid_other;      /* any other change (random, zero, backwards) */
    uint8_t last_frame_seen_ipid;
    uint32_t sb_le[SB_MAX], sb_re[SB_MAX];
    /* any mode: does this direction count its IPv4 IDs up by one per segment? (ip_id_gap) */
    uint16_t idc_last;        /* its last non-zero IPv4 ID */
    uint8_t idc_state;        /* IDC_* */
} flow_t;

/* idc_state: no non-zero ID seen yet; one seen; a step of exactly one seen, and no step
 * that is neither one nor a small gap; anything else (random, global, merged segments). */
enum { IDC_NONE, IDC_ONE, IDC_COUNTER, IDC_NOT };
#define IPID_GAP_MAX 16

/* ------------------------------------------------------------------ */
/* Conversations and their summaries                                   */
/* ------------------------------------------------------------------ */

typedef struct {
    uint8_t a[16], b[16];     /* flow 0 goes a:pa -> b:pb */
    uint16_t pa, pb;
    uint8_t version;
} conv_key_t;

typedef struct {
    int64_t stream;
    int64_t first_ts, last_ts, first_frame, last_frame;
    int64_t irtt_ns, syn_frame, prev_stream;
    uint64_t pkts[2], bytes[2];     /* per flow index */
    uint32_t isn[2];
    uint32_t flag_counts[16];
    uint32_t side_flags[2];
    uint16_t mss[2];
    int8_t wscale[2];
    uint8_t isn_known[2];
    uint8_t client;           /* flow index of the client */
    uint8_t role_guessed;
    uint8_t ecn_setup;
    uint8_t reused_ports;
    uint16_t iface;
    conv_key_t key;
    struct entry *ent;        /* the table entry while this is its 4-tuple's newest stream */
} summary_t;

/* The analysis state of a conversation: Wireshark's struct tcp_analysis. */
typedef struct {
    flow_t flow[2];
    int64_t ts_mru_syn;       /* time of the most recent pure SYN; 0 = none (nstime_is_zero) */
    int64_t mru_syn_frame;
    int64_t ts_first_rtt;     /* handshake RTT; 0 = none */
    int64_t min_ack_rtt;      /* improved mode: smallest ACK RTT seen; 0 = none */
} conv_t;

/* What the table keeps for a 4-tuple: its newest stream, and, while the
 * connection may still matter, its analysis state. A closed connection idle
 * for `close_timeout` (or the oldest, beyond `max_closed` of them) keeps only
 * this light entry: enough for port-reuse detection and relative numbers. */
typedef struct entry {
    conv_key_t key;
    uint64_t hash;
    int64_t stream;
    int64_t last_ts;
    uint32_t base_seq[2];
    uint8_t base_set[2];
    uint8_t queued;           /* in the closed queue */
    conv_t *conv;             /* NULL once evicted */
} entry_t;

typedef struct {
    uint64_t hash;            /* 0 = empty slot */
    entry_t *ent;
} slot_t;

#define SUM_BLOCK 4096        /* summaries are allocated in blocks, never moved */

/* Any mode: the last non-zero IPv4 ID each source address used on any captured
 * packet, and which packet that was (ip_id_gap: a host that numbers all its
 * packets from one counter, as Windows does, spends IDs on its other packets,
 * and those are not missing). */
typedef struct {
    uint32_t addr;            /* network byte order as read; 0 = empty slot */
    uint16_t last_id;
    int64_t owner;            /* stream * 2 + flow index of that packet; -1: not TCP */
} host_t;
#define MAX_HOSTS (1u << 20)  /* beyond it new addresses are not tracked (no gap is claimed) */

typedef struct {
    PyObject_HEAD
    int mode;
    slot_t *table;
    size_t table_cap, table_used;
    summary_t **sum_blocks;
    size_t n_streams, n_blocks, blocks_cap;
    entry_t *last;            /* one-entry cache: consecutive frames of one flow */
    /* closed connections, oldest first (stream numbers), for eviction */
    int64_t *closed;
    size_t closed_head, closed_n, closed_cap;
    int64_t close_timeout_ns;
    size_t max_closed;
    int64_t now;              /* the latest timestamp seen */
    uint64_t evicted, resurrected;
    size_t active_convs;
    size_t seg_bytes;         /* bytes allocated for segment lists */
    size_t peak_seg_bytes;
    uint64_t frames_seen, tcp_seen;
    uint64_t evidence_dropped;
    host_t *hosts;            /* open addressing, see host_get */
    size_t hosts_cap, hosts_used;
    int busy;                 /* feed() runs without the GIL: one caller at a time */
} Engine;

/* ------------------------------------------------------------------ */
/* Segment list                                                        */
/* ------------------------------------------------------------------ */

static int seglist_reserve(Engine *e, seglist_t *l, uint32_t need)
{
    if (need <= l->cap)
        return 0;
    uint32_t cap = l->cap ? l->cap : 4;
    while (cap < need)
        cap = cap > MAX_UNACKED_SEGMENTS / 2 ? MAX_UNACKED_SEGMENTS : cap * 2;
    seg_t *v = realloc(l->v, (size_t)cap * sizeof(seg_t));
    if (!v)
        return -1;
    e->seg_bytes += (size_t)(cap - l->cap) * sizeof(seg_t);
    if (e->seg_bytes > e->peak_seg_bytes)
        e->peak_seg_bytes = e->seg_bytes;
    l->v = v;
    l->cap = cap;
    return 0;
}

static void seglist_free(Engine *e, seglist_t *l)
{
    e->seg_bytes -= (size_t)l->cap * sizeof(seg_t);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
    l->sorted = 1;
    l->max_len = 0;
}

/* Free the heavy state as soon as nothing is outstanding. */
static void seglist_maybe_release(Engine *e, seglist_t *l)
{
    if (l->n == 0 && l->cap > 0)
        seglist_free(e, l);
}

/* Append one segment (WS-13). Returns -1 on allocation failure. */
static int seglist_add(Engine *e, seglist_t *l, uint32_t seq, uint32_t nextseq, int64_t frame, int64_t ts)
{
    if (seglist_reserve(e, l, l->n + 1) < 0)
        return -1;
    uint32_t len = nextseq - seq;
    if (len > l->max_len)
        l->max_len = len;
    seg_t s = {seq, nextseq, frame, ts};
    if (l->n == 0) {
        l->v[0] = s;
        l->n = 1;
        l->sorted = 1;
        return 0;
    }
    if (l->sorted) {
        /* Stay in the fast representation only while the whole list fits in
         * a window where serial comparisons are plain integer comparisons. */
        uint32_t lo = l->v[0].nextseq - l->max_len, hi = l->v[l->n - 1].nextseq;
        int64_t d_lo = sdiff(seq, lo), d_hi = sdiff(nextseq, hi);
        if (len >= SPAN_FAST || d_lo < -(int64_t)SPAN_FAST || d_lo > (int64_t)SPAN_FAST ||
            d_hi < -(int64_t)SPAN_FAST || d_hi > (int64_t)SPAN_FAST) {
            l->sorted = 0;
        } else {
            if (d_lo < 0)
                lo = seq;
            if (d_hi > 0)
                hi = nextseq;
            if (hi - lo >= SPAN_FAST)
                l->sorted = 0;
        }
    }
    if (!l->sorted) {
        l->v[l->n++] = s;
        return 0;
    }
    /* Insert after every segment whose nextseq <= this one (ties keep arrival order). */
    uint32_t i = l->n;
    while (i > 0 && gt_seq(l->v[i - 1].nextseq, nextseq))
        i--;
    if (i < l->n)
        memmove(&l->v[i + 1], &l->v[i], (size_t)(l->n - i) * sizeof(seg_t));
    l->v[i] = s;
    l->n++;
    return 0;
}

/* Result of applying one ACK to the other direction's list (WS-14). */
typedef struct {
    int64_t acked_frame;  /* oldest segment whose end equals the ack; 0 none */
    int64_t acked_ts;
} ackres_t;

/* Wireshark's loop, for every segment: end == ack: matched, removed;
 * seq < ack < end: trimmed to start at ack; end > ack: kept; else removed. */
static void seglist_ack_exact(seglist_t *l, uint32_t ack, ackres_t *res)
{
    uint32_t w = 0;
    int sorted = 1;
    for (uint32_t i = 0; i < l->n; i++) {
        seg_t *s = &l->v[i];
        if (ack == s->nextseq) {
            if (res->acked_frame == 0 || s->frame < res->acked_frame) {
                res->acked_frame = s->frame;
                res->acked_ts = s->ts;
            }
            continue;
        }
        if (gt_seq(ack, s->seq) && le_seq(ack, s->nextseq))
            s->seq = ack;
        else if (!gt_seq(s->nextseq, ack))
            continue;
        if (w > 0 && lt_seq(s->nextseq, l->v[w - 1].nextseq))
            sorted = 0;
        l->v[w++] = *s;
    }
    l->n = w;
    if (l->sorted == 0 && sorted && w > 0) {
        /* Back to the fast representation if everything lies within 2^29 of
         * the first end (so within 2^30 of each other). */
        uint32_t ref = l->v[0].nextseq, max_len = 0;
        int ok = 1;
        for (uint32_t i = 0; i < w && ok; i++) {
            int64_t a = sdiff(l->v[i].seq, ref), b = sdiff(l->v[i].nextseq, ref);
            ok = a > -(int64_t)(SPAN_FAST / 2) && b < (int64_t)(SPAN_FAST / 2);
            if (l->v[i].nextseq - l->v[i].seq > max_len)
                max_len = l->v[i].nextseq - l->v[i].seq;
        }
        if (ok) {
            l->sorted = 1;
            l->max_len = max_len;
        }
    } else if (w == 0) {
        l->sorted = 1;
    }
}

static void seglist_ack(seglist_t *l, uint32_t ack, ackres_t *res)
{
    res->acked_frame = 0;
    res->acked_ts = 0;
    if (l->n == 0)
        return;
    int64_t dist = (int64_t)sdiff(ack, l->v[0].nextseq);
    if (!l->sorted || dist < -(int64_t)SPAN_FAST || dist > (int64_t)SPAN_FAST) {
        /* Odd list, or an ack far from it (a SYN's zero ack): exact scan. */
        seglist_ack_exact(l, ack, res);
        return;
    }
    /* Sorted by nextseq, all within 2^30 of each other and of the ack: the
     * removed segments (end <= ack) are a prefix; the first of them ending
     * exactly at ack is the oldest such (ties are in arrival order). */
    uint32_t k = 0;
    while (k < l->n && !gt_seq(l->v[k].nextseq, ack)) {
        if (l->v[k].nextseq == ack && res->acked_frame == 0) {
            res->acked_frame = l->v[k].frame;
            res->acked_ts = l->v[k].ts;
        }
        k++;
    }
    /* Partial ACKs: a kept segment starting before ack must end before ack + max_len. */
    for (uint32_t i = k; i < l->n && (l->v[i].nextseq - ack) < l->max_len; i++) {
        if (gt_seq(ack, l->v[i].seq))
            l->v[i].seq = ack;
    }
    if (k > 0) {
        memmove(&l->v[0], &l->v[k], (size_t)(l->n - k) * sizeof(seg_t));
        l->n -= k;
    }
}

/* Bytes in flight, Wireshark's default (payload-based) method (WS-15):
 * max(end) - min(start) over the list, both relative to the base as 32-bit
 * unsigned values. Sets *ok = 0 when the list is empty. */
static uint32_t seglist_span(const seglist_t *l, uint32_t base)
{
    const seg_t *v = l->v;
    uint32_t n = l->n;
    if (l->sorted) {
        /* The largest end is the last one; the smallest start is among the
         * segments ending before the first end + max_len. Valid when no
         * relative value is "negative" (before the base). */
        uint32_t lo = v[0].seq;
        for (uint32_t i = 1; i < n && (v[i].nextseq - v[0].nextseq) < l->max_len; i++)
            if (lt_seq(v[i].seq, lo))
                lo = v[i].seq;
        /* Every value lies between lo and the last end (within 2^30); if
         * both are at or after the base, unsigned and serial orders agree. */
        uint32_t first = lo - base, last = v[n - 1].nextseq - base;
        if ((int32_t)first >= 0 && (int32_t)last >= 0)
            return last - first;
    }
    uint32_t first = v[0].seq - base, last = v[0].nextseq - base;
    for (uint32_t i = 1; i < n; i++) {
        uint32_t s = v[i].seq - base, x = v[i].nextseq - base;
        if (x > last)
            last = x;
        if (s < first)
            first = s;
    }
    return last - first;
}

/* The oldest unacked segment: Wireshark's RTO reference (its list's tail). */
static const seg_t *seglist_oldest(const seglist_t *l)
{
    const seg_t *best = NULL;
    for (uint32_t i = 0; i < l->n; i++)
        if (!best || l->v[i].frame < best->frame)
            best = &l->v[i];
    return best;
}

/* The first frame that carried some of [seq, end) and is still unacked. */
static int64_t seglist_first_carrier(const seglist_t *l, uint32_t seq, uint32_t end)
{
    int64_t best = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        const seg_t *s = &l->v[i];
        if (lt_seq(s->seq, end) && gt_seq(s->nextseq, seq) && (best == 0 || s->frame < best))
            best = s->frame;
    }
    return best;
}

/* ------------------------------------------------------------------ */
/* Relative numbers in 64 bits                                         */
/* ------------------------------------------------------------------ */

/* The 64-bit value nearest the direction's anchor whose low 32 bits are raw. */
static inline int64_t unwrap(flow_t *f, uint32_t raw)
{
    if (!f->ref_set) {
        f->ref_set = 1;
        f->ref_raw = raw;
        f->ref_ext = (int64_t)raw;
        return f->ref_ext;
    }
    return f->ref_ext + (int64_t)sdiff(raw, f->ref_raw);
}

/* Move the anchor forward (never back) so long transfers keep unwrapping. */
static inline void advance_anchor(flow_t *f, uint32_t raw)
{
    if (!f->ref_set) {
        unwrap(f, raw);
        return;
    }
    if (sdiff(raw, f->ref_raw) > 0 && (uint32_t)sdiff(raw, f->ref_raw) < SPAN_FAST) {
        f->ref_ext += sdiff(raw, f->ref_raw);
        f->ref_raw = raw;
    }
}

static inline void set_base(flow_t *f, uint32_t base)
{
    f->base_seq = base;
    f->base_set = 1;
    if (!f->ref_set) {
        f->ref_set = 1;
        f->ref_raw = base;
        f->ref_ext = (int64_t)base;
    }
    f->base_ext = unwrap(f, base);
}

/* A new base (a SYN-ACK with a new ISN): restart the unwrapping there. */
static inline void reset_base(flow_t *f, uint32_t base)
{
    f->ref_set = 1;
    f->ref_raw = base;
    f->ref_ext = (int64_t)base;
    f->base_seq = base;
    f->base_set = 1;
    f->base_ext = (int64_t)base;
}

/* ------------------------------------------------------------------ */
/* Hashing and the conversation table                                  */
/* ------------------------------------------------------------------ */

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint64_t key_hash(const conv_key_t *k)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)k->pa << 16 | k->pb) ^ ((uint64_t)k->version << 40);
    h = mix64(h ^ load64(k->a));
    h = mix64(h ^ load64(k->b));
    if (k->version == 6) {
        h = mix64(h ^ load64(k->a + 8));
        h = mix64(h ^ load64(k->b + 8));
    }
    return h | 1; /* 0 marks an empty slot */
}

static inline int key_eq(const conv_key_t *x, const conv_key_t *y)
{
    return x->pa == y->pa && x->pb == y->pb && x->version == y->version &&
           memcmp(x->a, y->a, 16) == 0 && memcmp(x->b, y->b, 16) == 0;
}

static int table_grow(Engine *e)
{
    size_t cap = e->table_cap ? e->table_cap * 2 : 1024;
    slot_t *t = calloc(cap, sizeof(slot_t));
    if (!t)
        return -1;
    for (size_t i = 0; i < e->table_cap; i++) {
        slot_t s = e->table[i];
        if (!s.hash)
            continue;
        size_t j = (size_t)s.hash & (cap - 1);
        while (t[j].hash)
            j = (j + 1) & (cap - 1);
        t[j] = s;
    }
    free(e->table);
    e->table = t;
    e->table_cap = cap;
    return 0;
}

/* The slot of a key: its conversation, or the empty slot where it would go. */
static slot_t *table_find(Engine *e, const conv_key_t *k, uint64_t h)
{
    size_t mask = e->table_cap - 1, j = (size_t)h & mask;
    for (;;) {
        slot_t *s = &e->table[j];
        if (!s->hash || (s->hash == h && key_eq(&s->ent->key, k)))
            return s;
        j = (j + 1) & mask;
    }
}

/* ------------------------------------------------------------------ */
/* Per-packet view                                                     */
/* ------------------------------------------------------------------ */

typedef struct {
    const tcps_record *r;
    int64_t ts, frame;
    uint16_t iface;
    uint32_t seq, ack, seglen, window;
    uint16_t flags;
    tcps_annotation *out;
    /* Wireshark's per-packet "ta" (struct tcp_acked) */
    uint32_t ta_flags;
    int has_ta;
    uint32_t dupack_num;
    int64_t dupack_frame;
    int64_t acked_frame, ack_rtt;
    int64_t rto_ns, rto_frame;
    uint32_t bif;             /* 0 = none (Wireshark mode) */
    int bif_set;              /* improved mode: bif is meaningful even when 0 */
    uint32_t push_bytes;
} pkt_t;

static void note(Engine *e, pkt_t *p, int flagbit, int rule, int64_t ev1, int64_t ev2)
{
    tcps_annotation *o = p->out;
    p->ta_flags |= 1u << flagbit;
    p->has_ta = 1;
    o->rule[flagbit] = (uint8_t)rule;
    int64_t ev[2] = {ev1, ev2};
    for (int i = 0; i < 2; i++) {
        if (ev[i] <= 0)
            continue;
        if (o->n_evidence >= TCPS_MAX_EVIDENCE) {
            e->evidence_dropped++;
            continue;
        }
        o->evidence_flag[o->n_evidence] = (uint8_t)flagbit;
        o->evidence_frame[o->n_evidence] = ev[i];
        o->n_evidence++;
    }
}

#define NOTE(flag, rule, ev1, ev2) note(e, p, TCPS_AFB_##flag, (rule), (ev1), (ev2))

/* ------------------------------------------------------------------ */
/* tcp_analyze_sequence_number, step by step                           */
/* ------------------------------------------------------------------ */

#define NOT_SFR(fl) (((fl) & (TCPS_SYN | TCPS_FIN | TCPS_RST)) == 0)

/* WS-1: one byte at the next expected seq into a closed window. A probe never
 * advances nextseq. */
static int is_zero_window_probe(const pkt_t *p, const flow_t *fwd, const flow_t *rev)
{
    return p->seglen == 1 && p->seq == fwd->nextseq && rev->window == 0;
}

/* WS-2 */
static int is_zero_window(const pkt_t *p) { return p->window == 0 && NOT_SFR(p->flags); }

/* WS-3: beyond the highest seq seen: something in between was not captured. */
static int is_lost_segment(const pkt_t *p, const flow_t *fwd)
{
    return fwd->nextseq && gt_seq(p->seq, fwd->nextseq) && !(p->flags & TCPS_RST);
}

/* WS-4 (RFC 9293 §3.8.4 / RFC 1122 4.2.3.6: a keep-alive repeats the last byte) */
static int is_keep_alive(const pkt_t *p, const flow_t *fwd)
{
    return (p->seglen == 0 || p->seglen == 1) && p->seq == fwd->nextseq - 1 && NOT_SFR(p->flags);
}

/* WS-5 */
static int is_window_update(const pkt_t *p, const flow_t *fwd)
{
    return p->seglen == 0 && p->window && p->window != fwd->window && p->seq == fwd->nextseq &&
           p->ack == fwd->lastack && NOT_SFR(p->flags);
}

/* WS-6: ends exactly at the right edge of the peer's advertised window. The
 * peer's window is scaled unless its scale is unknown/absent or it has not
 * yet sent its first non-SYN ACK (Wireshark issue 14690). 32-bit arithmetic. */
static int is_window_full(const pkt_t *p, const flow_t *rev)
{
    if (p->seglen == 0 || rev->win_scale == -1 || !NOT_SFR(p->flags))
        return 0;
    int shift = rev->is_first_ack ? 0 : (rev->win_scale == -2 ? 0 : rev->win_scale);
    uint32_t edge = rev->lastack + (uint32_t)(rev->window << shift);
    return p->seq + p->seglen == edge;
}

/* WS-7 */
static int is_keep_alive_ack(const pkt_t *p, const flow_t *fwd, const flow_t *rev)
{
    return p->seglen == 0 && p->window && p->window == fwd->window && p->seq == fwd->nextseq &&
           p->ack == fwd->lastack && (rev->lastsegmentflags & TCPS_AF_KEEP_ALIVE) && NOT_SFR(p->flags);
}

/* WS-8 (tshark 4.0: the ack must repeat exactly; the lastack+1 variant is 4.2+) */
static int is_zero_window_probe_ack(const pkt_t *p, const flow_t *fwd, const flow_t *rev)
{
    return p->seglen == 0 && p->window == 0 && p->window == fwd->window && p->seq == fwd->nextseq &&
           p->ack == fwd->lastack && (rev->lastsegmentflags & TCPS_AF_ZERO_WINDOW_PROBE) &&
           NOT_SFR(p->flags);
}

/* WS-9 */
static int is_duplicate_ack(const pkt_t *p, const flow_t *fwd)
{
    return p->seglen == 0 && p->window && p->window == fwd->window && p->seq == fwd->nextseq &&
           p->ack == fwd->lastack && NOT_SFR(p->flags);
}

/* ---- improved mode helpers ---------------------------------------- */

/* Are the bytes [seq, end) all carried by unacked segments (or already acked)? */
static int bytes_seen_before(const flow_t *fwd, const flow_t *rev, uint32_t seq, uint32_t end)
{
    uint32_t cur = seq;
    if (rev->acked_seen && gt_seq(rev->lastack, cur))
        cur = rev->lastack;
    for (uint32_t pass = 0; lt_seq(cur, end) && pass <= fwd->segs.n; pass++) {
        int moved = 0;
        for (uint32_t i = 0; i < fwd->segs.n; i++) {
            const seg_t *g = &fwd->segs.v[i];
            if (le_seq(g->seq, cur) && gt_seq(g->nextseq, cur)) {
                cur = g->nextseq;
                moved = 1;
            }
        }
        if (!moved)
            break;
    }
    return !lt_seq(cur, end);
}

/* Merge a SACK block into a direction's scoreboard (RFC 6675 §3), dropping
 * what its ack now covers; at most SB_MAX blocks (the highest kept). */
static void scoreboard_add(flow_t *f, uint32_t le, uint32_t re, uint32_t ack)
{
    if (!gt_seq(re, le) || !gt_seq(re, ack))
        return;
    if (lt_seq(le, ack))
        le = ack;
    uint32_t nle[SB_MAX + 1], nre[SB_MAX + 1];
    int n = 0;
    for (int i = 0; i < f->sb_n; i++) {
        uint32_t a = f->sb_le[i], b = f->sb_re[i];
        if (!gt_seq(b, ack))
            continue;                      /* acked since */
        if (le_seq(a, re) && ge_seq(b, le)) { /* overlaps or touches: merge */
            if (lt_seq(a, le))
                le = a;
            if (gt_seq(b, re))
                re = b;
            continue;
        }
        nle[n] = a;
        nre[n] = b;
        n++;
    }
    /* insert sorted by left edge */
    int k = n;
    while (k > 0 && gt_seq(nle[k - 1], le)) {
        nle[k] = nle[k - 1];
        nre[k] = nre[k - 1];
        k--;
    }
    nle[k] = le;
    nre[k] = re;
    n++;
    int drop = n > SB_MAX ? n - SB_MAX : 0;
    f->sb_n = (uint8_t)(n - drop);
    for (int i = 0; i < f->sb_n; i++) {
        f->sb_le[i] = nle[i + drop];
        f->sb_re[i] = nre[i + drop];
    }
}

static void scoreboard_prune(flow_t *f, uint32_t ack)
{
    int w = 0;
    for (int i = 0; i < f->sb_n; i++) {
        if (!gt_seq(f->sb_re[i], ack))
            continue;
        f->sb_le[w] = lt_seq(f->sb_le[i], ack) ? ack : f->sb_le[i];
        f->sb_re[w] = f->sb_re[i];
        w++;
    }
    f->sb_n = (uint8_t)w;
}

/* SACKed bytes of [from, to) in a scoreboard. */
static uint32_t scoreboard_bytes(const flow_t *f, uint32_t from, uint32_t to)
{
    uint32_t total = 0;
    for (int i = 0; i < f->sb_n; i++) {
        uint32_t a = f->sb_le[i], b = f->sb_re[i];
        if (lt_seq(a, from))
            a = from;
        if (gt_seq(b, to))
            b = to;
        if (gt_seq(b, a))
            total += b - a;
    }
    return total;
}

/* WS-11, as tshark 4.0.17 behaves (checked on crafted captures): an ACK past
 * the end of the peer's contiguous data. If the peer has data beyond a hole
 * the mark moves to its highest seq and the ACK is flagged; otherwise only the
 * first such ACK is flagged, until this side's ack changes or the peer skips
 * ahead again (the mark is kept in the peer's dupacknum, as Wireshark does). */
static void ack_lost_segment(Engine *e, pkt_t *p, flow_t *fwd, flow_t *rev)
{
    if (!(rev->maxseqtobeacked && gt_seq(p->ack, rev->maxseqtobeacked) && (p->flags & TCPS_ACK)))
        return;
    p->has_ta = 1;
    if (e->mode == MODE_IMPROVED && p->ack == fwd->lastack + 1 && p->seq == fwd->nextseq &&
        (rev->lastsegmentflags & TCPS_AF_ZERO_WINDOW_PROBE)) {
        /* The receiver took the probe's byte (Wireshark 4.2+ does the same). */
        rev->nextseq = rev->maxseqtobeacked = p->ack;
        NOTE(WINDOW_UPDATE, TCPS_RULE_26, rev->last_frame, 0);
        return;
    }
    if (lt_seq(rev->maxseqtobeacked, rev->nextseq)) {
        rev->maxseqtobeacked = rev->nextseq;
        NOTE(ACK_LOST_SEGMENT, TCPS_RULE_9, rev->nextseqframe, 0);
    } else {
        if (rev->dupacknum == 0)
            NOTE(ACK_LOST_SEGMENT, TCPS_RULE_10, rev->nextseqframe, 0);
        rev->dupacknum = 0xFFFFFFFFu;
    }
}

/* Improved mode: does this direction number its IPv4 packets one by one
 * (Linux does, per socket)? Trusted after 8 steps with few exceptions. */
static int ipid_sequential(const pkt_t *p, const flow_t *fwd)
{
    return p->r->ip_version == 4 && p->r->ip_id != 0 && fwd->ipid_steps >= 8 &&
           fwd->ipid_other * 8 <= fwd->ipid_steps;
}

/* Improved mode, after the spurious test: what was seen, not a timer.
 * Bytes sent before in this flow are resent. The first copy seen of bytes in
 * a hole is a late original (out of order) unless the peer began reporting
 * holes (duplicate ACKs, SACK blocks) at least a round trip earlier: only then
 * can it be the sender's answer. Either is a fast retransmission when it starts
 * where the peer's duplicate ACKs point (RFC 5681 §3.2), within two RTTs. */
static void improved_retransmission(Engine *e, pkt_t *p, conv_t *c, flow_t *fwd, flow_t *rev, int seq_not_advanced)
{
    if (!seq_not_advanced)
        return;
    uint64_t rtt = c->ts_first_rtt > 0 ? (uint64_t)c->ts_first_rtt
                   : c->min_ack_rtt > 0 ? (uint64_t)c->min_ack_rtt : OOO_DEFAULT_NS;
    uint32_t end = p->seq + (p->seglen ? p->seglen : 1);
    int64_t first = seglist_first_carrier(&fwd->segs, p->seq, end);
    int rule;
    int64_t ev;
    if (bytes_seen_before(fwd, rev, p->seq, end)) {
        rule = TCPS_RULE_23;
        ev = first ? first : fwd->nextseqframe;
    } else if (ipid_sequential(p, fwd)) {
        /* This sender counts its IPv4 IDs up per packet: a newer ID than the
         * data past the hole was sent after it (a resend), an older one
         * before it (a late original). Serial in 16 bits (RFC 6864 §4). */
        if ((int16_t)(p->r->ip_id - fwd->nextseq_ipid) > 0) {
            rule = TCPS_RULE_27;
            ev = fwd->nextseqframe;
        } else {
            NOTE(OUT_OF_ORDER, TCPS_RULE_28, fwd->nextseqframe, 0);
            return;
        }
    } else if (rev->report_ts && !gt_seq(rev->lastack, p->seq) && (uint64_t)(p->ts - rev->report_ts) >= rtt) {
        rule = TCPS_RULE_25;
        ev = rev->lastnondupack;
    } else {
        NOTE(OUT_OF_ORDER, TCPS_RULE_21, fwd->nextseqframe, 0);
        return;
    }
    uint64_t t = (uint64_t)(p->ts - rev->lastacktime);
    uint64_t window = 2 * rtt > FAST_RETX_WINDOW_NS ? 2 * rtt : FAST_RETX_WINDOW_NS;
    if (rev->dupacknum >= 2 && rev->dupacknum != 0xFFFFFFFFu && rev->lastack == p->seq && t < window) {
        NOTE(FAST_RETRANSMISSION, TCPS_RULE_4, rev->lastnondupack, rev->last_frame);
        NOTE(RETRANSMISSION, TCPS_RULE_2, 0, 0);
    } else {
        NOTE(RETRANSMISSION, rule, ev, 0);
    }
    const seg_t *old = seglist_oldest(&fwd->segs);
    p->rto_ns = p->ts - (old ? old->ts : fwd->nextseqtime);
    p->rto_frame = old ? old->frame : fwd->nextseqframe;
}

/* WS-12: the retransmission family, tshark 4.0 order: spurious first, then
 * fast retransmission, then out-of-order, else a plain retransmission. */
static void retransmission_family(Engine *e, pkt_t *p, conv_t *c, flow_t *fwd, flow_t *rev)
{
    if (!(p->seglen > 0 || (p->flags & (TCPS_SYN | TCPS_FIN))))
        return;
    int seq_not_advanced = fwd->nextseq && lt_seq(p->seq, fwd->nextseq);
    if (p->ta_flags & TCPS_AF_KEEP_ALIVE)
        return; /* a keep-alive is never a retransmission */
    if (e->mode == MODE_IMPROVED && (p->ta_flags & TCPS_AF_ZERO_WINDOW_PROBE))
        return; /* nor is a zero-window probe (improved mode) */
    /* More than one byte starting one before nextseq: new data after a
     * possible zero-window probe byte, not a retransmission. */
    if (p->seglen > 1 && fwd->nextseq - 1 == p->seq)
        seq_not_advanced = 0;

    /* Spurious: every byte is at or below what the peer already ACKed. */
    if (p->seglen > 0 && rev->lastack && le_seq(p->seq + p->seglen, rev->lastack)) {
        NOTE(SPURIOUS_RETRANSMISSION, TCPS_RULE_5, rev->lastnondupack, 0);
        NOTE(RETRANSMISSION, TCPS_RULE_3, 0, 0);
        return;
    }
    if (e->mode == MODE_IMPROVED) {
        improved_retransmission(e, p, c, fwd, rev, seq_not_advanced);
        return;
    }
    /* Fast retransmission (RFC 5681 §3.2): the seq the peer's duplicate ACKs
     * ask for, within 20 ms of the last of them. */
    uint64_t t = (uint64_t)(p->ts - rev->lastacktime);
    if (seq_not_advanced && rev->dupacknum >= 2 && rev->lastack == p->seq && t < FAST_RETX_WINDOW_NS) {
        NOTE(FAST_RETRANSMISSION, TCPS_RULE_4, rev->lastnondupack, rev->last_frame);
        NOTE(RETRANSMISSION, TCPS_RULE_2, 0, 0);
        return;
    }
    /* Out-of-order: soon after the segment that advanced nextseq (sooner
     * than the handshake RTT, or 3 ms), and not simply ending there. */
    t = (uint64_t)(p->ts - fwd->nextseqtime);
    uint64_t thres = c->ts_first_rtt ? (uint64_t)c->ts_first_rtt : OOO_DEFAULT_NS;
    uint32_t end = p->seq + p->seglen + ((p->flags & (TCPS_SYN | TCPS_FIN)) ? 1 : 0);
    if (seq_not_advanced && t < thres && fwd->nextseq != end) {
        NOTE(OUT_OF_ORDER, c->ts_first_rtt ? TCPS_RULE_6 : TCPS_RULE_7, fwd->nextseqframe, 0);
        return;
    }
    if (seq_not_advanced) {
        int64_t first = seglist_first_carrier(&fwd->segs, p->seq, p->seq + (p->seglen ? p->seglen : 1));
        NOTE(RETRANSMISSION, TCPS_RULE_1, first ? first : fwd->nextseqframe, 0);
        /* tcp.analysis.rto: from the oldest unacked segment, else from the
         * frame that advanced nextseq. */
        const seg_t *old = seglist_oldest(&fwd->segs);
        p->rto_ns = p->ts - (old ? old->ts : fwd->nextseqtime);
        p->rto_frame = old ? old->frame : fwd->nextseqframe;
    }
}

/* WS-0 .. WS-15 for one segment. */
static int analyze_sequence_number(Engine *e, pkt_t *p, conv_t *c, flow_t *fwd, flow_t *rev)
{
    /* Base sequence numbers (relative seq 1 is the first byte of data). */
    if (!fwd->base_set) {
        set_base(fwd, (p->flags & TCPS_SYN) ? p->seq : p->seq - 1);
    }
    /* The peer's base from the first ACK-bearing segment: ack - 1. */
    if (!rev->base_set && (p->flags & TCPS_ACK))
        set_base(rev, p->ack - 1);

    /* WS-0 */
    if (p->flags & TCPS_ACK)
        rev->valid_bif = 1;

    if (e->mode == MODE_IMPROVED && fwd->nextseq && rev->window == 0 && is_keep_alive(p, fwd)) {
        NOTE(ZERO_WINDOW_PROBE, TCPS_RULE_24, rev->last_frame, 0);
        goto finished_fwd;
    }
    if (is_zero_window_probe(p, fwd, rev)) {
        NOTE(ZERO_WINDOW_PROBE, TCPS_RULE_13, rev->last_frame, 0);
        goto finished_fwd;
    }
    if (is_zero_window(p))
        NOTE(ZERO_WINDOW, TCPS_RULE_12, 0, 0);
    if (is_lost_segment(p, fwd)) {
        NOTE(LOST_SEGMENT, TCPS_RULE_8, fwd->last_frame, 0);
        fwd->valid_bif = 0; /* until the peer ACKs again */
    }
    if (is_keep_alive(p, fwd))
        NOTE(KEEP_ALIVE, TCPS_RULE_17, fwd->nextseqframe, 0);
    if (is_window_update(p, fwd))
        NOTE(WINDOW_UPDATE, TCPS_RULE_16, fwd->last_frame, 0);
    if (is_window_full(p, rev))
        NOTE(WINDOW_FULL, TCPS_RULE_15, rev->last_frame, 0);
    if (is_keep_alive_ack(p, fwd, rev)) {
        NOTE(KEEP_ALIVE_ACK, TCPS_RULE_18, rev->last_frame, 0);
        goto finished_fwd;
    }
    if (is_zero_window_probe_ack(p, fwd, rev)) {
        NOTE(ZERO_WINDOW_PROBE_ACK, TCPS_RULE_14, rev->last_frame, 0);
        goto finished_fwd;
    }
    if (is_duplicate_ack(p, fwd)) {
        /* (Wireshark skips this for MPTCP option changes; we do not see MPTCP subtypes.) */
        fwd->dupacknum = fwd->dupacknum == 0xFFFFFFFFu ? 1 : fwd->dupacknum + 1;
        p->dupack_num = fwd->dupacknum;
        p->dupack_frame = fwd->lastnondupack;
        NOTE(DUPLICATE_ACK, TCPS_RULE_11, fwd->lastnondupack, 0);
    }

finished_fwd:
    /* WS-10: a new ack value resets the duplicate-ACK count. */
    if (p->ack != fwd->lastack) {
        fwd->lastnondupack = p->frame;
        fwd->dupacknum = 0;
    }
    ack_lost_segment(e, p, fwd, rev);
    retransmission_family(e, p, c, fwd, rev);

    /* WS-13: bookkeeping. */
    uint32_t nextseq = p->seq + p->seglen;
    if ((p->seglen || (p->flags & (TCPS_SYN | TCPS_FIN))) && fwd->segs.n < MAX_UNACKED_SEGMENTS) {
        if (p->flags & (TCPS_SYN | TCPS_FIN))
            nextseq += 1;
        if (seglist_add(e, &fwd->segs, p->seq, nextseq, p->frame, p->ts) < 0)
            return -1;
    }
    int zwp = (p->ta_flags & TCPS_AF_ZERO_WINDOW_PROBE) != 0;
    if (gt_seq(nextseq, fwd->nextseq) || !fwd->nextseq) {
        if (!zwp) {
            fwd->nextseq = nextseq;
            fwd->nextseqframe = p->frame;
            fwd->nextseqtime = p->ts;
        }
    }
    if (p->seq == fwd->maxseqtobeacked || !fwd->maxseqtobeacked) {
        if (!zwp)
            fwd->maxseqtobeacked = fwd->nextseq;
    }
    fwd->window = p->window;
    fwd->lastack = p->ack;
    fwd->lastacktime = p->ts;
    fwd->lastsegmentflags = p->ta_flags;

    /* WS-14: what this ack acknowledges in the other direction (raw ack,
     * whether or not the ACK bit is set, as Wireshark does). */
    ackres_t res;
    seglist_ack(&rev->segs, p->ack, &res);
    if (res.acked_frame) {
        p->has_ta = 1;
        p->acked_frame = res.acked_frame;
        p->ack_rtt = p->ts - res.acked_ts;
        if (p->ack_rtt > 0 && (c->min_ack_rtt == 0 || p->ack_rtt < c->min_ack_rtt))
            c->min_ack_rtt = p->ack_rtt;
    }
    seglist_maybe_release(e, &rev->segs);

    if (p->flags & TCPS_ACK)
        fwd->acked_seen = 1;
    if (e->mode == MODE_IMPROVED && p->seglen != 0 && rev->acked_seen) {
        /* Improved: sequence-based (RFC 6675 "pipe"): everything sent and not
         * acked, less what the peer's SACK scoreboard holds. */
        int32_t out = sdiff(fwd->nextseq, rev->lastack);
        if (out < 0)
            out = 0;
        uint32_t sacked = scoreboard_bytes(rev, rev->lastack, fwd->nextseq);
        p->bif = (uint32_t)out > sacked ? (uint32_t)out - sacked : 0;
        p->bif_set = 1;
        p->has_ta = 1;
    }
    /* WS-15: bytes in flight and push bytes (payload-based method). */
    if (p->seglen != 0 && fwd->segs.n > 0 && fwd->valid_bif) {
        uint32_t in_flight = seglist_span(&fwd->segs, fwd->base_seq);
        if (rev->num_sack > 0) {
            uint32_t delivered = 0;
            for (int i = 0; i < rev->num_sack; i++)
                delivered += rev->sack_re[i] - rev->sack_le[i];
            in_flight -= delivered;
        }
        if (in_flight > 0 && in_flight < BIF_MAX && !p->bif_set) {
            p->bif = in_flight;
            if (p->flags & (TCPS_SYN | TCPS_FIN))
                p->bif -= 1;
        }
        if (p->flags & TCPS_PSH) {
            fwd->push_bytes_sent = fwd->push_set_last ? p->seglen : fwd->push_bytes_sent + p->seglen;
            fwd->push_set_last = 1;
        } else if (fwd->push_set_last) {
            fwd->push_bytes_sent = p->seglen;
            fwd->push_set_last = 0;
        } else {
            fwd->push_bytes_sent += p->seglen;
        }
        p->push_bytes = fwd->push_bytes_sent;
        p->has_ta = 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Conversations                                                       */
/* ------------------------------------------------------------------ */

static void flow_init(flow_t *f)
{
    memset(f, 0, sizeof(*f));
    f->window = 0xFFFFFFFFu;
    f->win_scale = -1;
    f->valid_bif = 1;
    f->segs.sorted = 1;
}

static inline summary_t *SUM(Engine *e, int64_t stream)
{
    return &e->sum_blocks[stream / SUM_BLOCK][stream % SUM_BLOCK];
}

static summary_t *summary_new(Engine *e)
{
    if (e->n_streams == e->n_blocks * SUM_BLOCK) {
        if (e->n_blocks == e->blocks_cap) {
            size_t cap = e->blocks_cap ? e->blocks_cap * 2 : 16;
            summary_t **b = realloc(e->sum_blocks, cap * sizeof(summary_t *));
            if (!b)
                return NULL;
            e->sum_blocks = b;
            e->blocks_cap = cap;
        }
        summary_t *blk = malloc(SUM_BLOCK * sizeof(summary_t));
        if (!blk)
            return NULL;
        e->sum_blocks[e->n_blocks++] = blk;
    }
    summary_t *s = SUM(e, (int64_t)e->n_streams);
    memset(s, 0, sizeof(*s));
    s->stream = (int64_t)e->n_streams;
    s->irtt_ns = -1;
    s->prev_stream = -1;
    s->wscale[0] = s->wscale[1] = -1;
    e->n_streams++;
    return s;
}

static conv_t *conv_alloc(Engine *e)
{
    conv_t *c = calloc(1, sizeof(conv_t));
    if (!c)
        return NULL;
    flow_init(&c->flow[0]);
    flow_init(&c->flow[1]);
    e->active_convs++;
    return c;
}

static void conv_free(Engine *e, conv_t *c)
{
    for (int i = 0; i < 2; i++)
        seglist_free(e, &c->flow[i].segs);
    free(c);
    e->active_convs--;
}

/* Keep only the light entry: the bases (for reuse detection and relative
 * numbers), the stream, the summary. */
static void entry_evict(Engine *e, entry_t *ent)
{
    conv_t *c = ent->conv;
    if (!c)
        return;
    for (int i = 0; i < 2; i++) {
        ent->base_seq[i] = c->flow[i].base_seq;
        ent->base_set[i] = c->flow[i].base_set;
    }
    conv_free(e, c);
    ent->conv = NULL;
    e->evicted++;
}

/* A frame for an evicted connection: fresh analysis state on the same bases. */
static conv_t *entry_resurrect(Engine *e, entry_t *ent)
{
    conv_t *c = conv_alloc(e);
    if (!c)
        return NULL;
    for (int i = 0; i < 2; i++)
        if (ent->base_set[i])
            reset_base(&c->flow[i], ent->base_seq[i]);
    ent->conv = c;
    e->resurrected++;
    return c;
}

static void entry_free(Engine *e, entry_t *ent)
{
    if (ent->conv)
        conv_free(e, ent->conv);
    SUM(e, ent->stream)->ent = NULL;
    if (e->last == ent)
        e->last = NULL;
    free(ent);
}

/* A new conversation for this 4-tuple (tcp.stream = the next index). The
 * previous one on the same slot, if any, is freed: Wireshark's one-pass
 * lookup only ever finds the newest. */
static entry_t *entry_new(Engine *e, slot_t *slot, const conv_key_t *k, uint64_t h, const pkt_t *p, int dir)
{
    entry_t *ent = calloc(1, sizeof(entry_t));
    if (!ent)
        return NULL;
    conv_t *c = conv_alloc(e);
    summary_t *s = c ? summary_new(e) : NULL;
    if (!s) {
        if (c)
            conv_free(e, c);
        free(ent);
        return NULL;
    }
    ent->key = *k;
    ent->hash = h;
    ent->stream = s->stream;
    ent->conv = c;
    s->ent = ent;
    s->key = *k;
    s->first_ts = p->ts;
    s->first_frame = p->frame;
    s->iface = p->iface;
    /* Roles: the SYN sender is the client; a SYN-ACK's receiver is; without
     * either, the first sender, marked as a guess. */
    if ((p->flags & (TCPS_SYN | TCPS_ACK)) == (TCPS_SYN | TCPS_ACK))
        s->client = (uint8_t)(dir ^ 1);
    else
        s->client = (uint8_t)dir;
    s->role_guessed = !(p->flags & TCPS_SYN);
    if (slot->hash) {
        s->prev_stream = slot->ent->stream;
        entry_free(e, slot->ent);
    } else {
        e->table_used++;
    }
    slot->hash = h;
    slot->ent = ent;
    return ent;
}

/* Closed connections (RST, or FIN both ways) wait in a queue; the oldest is
 * evicted once idle for close_timeout of capture time, or at once when more
 * than max_closed are waiting. */
static int closed_push(Engine *e, int64_t stream)
{
    if (e->closed_n == e->closed_cap) {
        size_t cap = e->closed_cap ? e->closed_cap * 2 : 1024;
        int64_t *q = malloc(cap * sizeof(int64_t));
        if (!q)
            return -1;
        for (size_t i = 0; i < e->closed_n; i++)
            q[i] = e->closed[(e->closed_head + i) % e->closed_cap];
        free(e->closed);
        e->closed = q;
        e->closed_cap = cap;
        e->closed_head = 0;
    }
    e->closed[(e->closed_head + e->closed_n) % e->closed_cap] = stream;
    e->closed_n++;
    return 0;
}

static void closed_sweep(Engine *e)
{
    while (e->closed_n > 0) {
        int64_t stream = e->closed[e->closed_head];
        entry_t *ent = SUM(e, stream)->ent;
        /* In closing order: stop at the first one still within its timeout
         * (a late frame may hold the queue a little; that only delays). */
        if (ent && ent->conv && e->closed_n <= e->max_closed && e->now - ent->last_ts < e->close_timeout_ns)
            break;
        e->closed_head = (e->closed_head + 1) % e->closed_cap;
        e->closed_n--;
        if (ent) {
            ent->queued = 0;
            entry_evict(e, ent);
        }
    }
}

/* ------------------------------------------------------------------ */
/* dissect_tcp's part: conversation, reuse, then the analysis          */
/* ------------------------------------------------------------------ */

/* Which direction a packet goes: Wireshark's flow1 is the one whose source
 * address compares greater (cmp_address), or, for equal addresses, whose
 * source port is greater; everything else is flow2. */
static void make_key(const tcps_record *r, conv_key_t *k, int *dir)
{
    int alen = r->ip_version == 6 ? 16 : 4;
    int c = memcmp(r->src, r->dst, (size_t)alen);
    int flow1 = c > 0 || (c == 0 && r->sport > r->dport);
    memset(k, 0, sizeof(*k));
    k->version = r->ip_version;
    if (flow1) {
        memcpy(k->a, r->src, (size_t)alen);
        memcpy(k->b, r->dst, (size_t)alen);
        k->pa = r->sport;
        k->pb = r->dport;
        *dir = 0;
    } else {
        memcpy(k->a, r->dst, (size_t)alen);
        memcpy(k->b, r->src, (size_t)alen);
        k->pa = r->dport;
        k->pb = r->sport;
        *dir = 1;
    }
}

static void update_summary(Engine *e, summary_t *s, conv_t *c, const pkt_t *p, int dir)
{
    const tcps_record *r = p->r;
    s->last_ts = p->ts;
    s->last_frame = p->frame;
    s->pkts[dir]++;
    s->bytes[dir] += p->seglen;
    uint32_t *sf = &s->side_flags[dir];
    if (p->seglen)
        *sf |= TCPS_SIDE_SAW_DATA;
    if (p->flags & TCPS_FIN)
        *sf |= TCPS_SIDE_SAW_FIN;
    if (p->flags & TCPS_RST)
        *sf |= TCPS_SIDE_SAW_RST;
    if (p->flags & TCPS_SYN) {
        int synack = (p->flags & TCPS_ACK) != 0;
        *sf |= synack ? TCPS_SIDE_SAW_SYNACK : TCPS_SIDE_SAW_SYN;
        s->isn[dir] = p->seq;
        s->isn_known[dir] = 1;
        if (r->opt_present & TCPS_OPT_MSS) {
            s->mss[dir] = r->mss;
            *sf |= TCPS_SIDE_MSS_SEEN;
        }
        if (r->opt_present & TCPS_OPT_WSCALE) {
            s->wscale[dir] = (int8_t)(r->wscale > 14 ? 14 : r->wscale);
            *sf |= TCPS_SIDE_WSCALE_SEEN;
        }
        if (r->opt_present & TCPS_OPT_SACK_PERM)
            *sf |= TCPS_SIDE_SACK_PERM;
        if (r->opt_present & TCPS_OPT_TIMESTAMP)
            *sf |= TCPS_SIDE_TIMESTAMPS;
        if (r->opt_present & TCPS_OPT_TFO)
            *sf |= TCPS_SIDE_TFO;
        /* ECN setup, RFC 3168 §6.1.1: SYN with ECE+CWR, SYN-ACK with ECE only. */
        if (!synack && (p->flags & (TCPS_ECE | TCPS_CWR)) == (TCPS_ECE | TCPS_CWR)) {
            s->ecn_setup |= 1;
            *sf |= TCPS_SIDE_ECN_SETUP;
        }
        if (synack && (p->flags & (TCPS_ECE | TCPS_CWR)) == TCPS_ECE) {
            s->ecn_setup |= 2;
            *sf |= TCPS_SIDE_ECN_SETUP;
        }
        /* Roles from the handshake once it appears. */
        if (s->role_guessed) {
            s->client = (uint8_t)(synack ? dir ^ 1 : dir);
            s->role_guessed = 0;
        }
    }
    if (!s->isn_known[dir] && s->pkts[dir] == 1) {
        s->isn[dir] = c->flow[dir].base_set ? c->flow[dir].base_seq : p->seq - 1;
    }
    for (int b = 0; b < TCPS_AF_COUNT; b++)
        if (p->ta_flags & (1u << b))
            s->flag_counts[b]++;
    if (c->ts_first_rtt)
        s->irtt_ns = c->ts_first_rtt;
    if (c->mru_syn_frame)
        s->syn_frame = c->mru_syn_frame;
    (void)e;
}

/* Improved mode: identical to this direction's previous segment, IP ID
 * included (IPv4, non-zero), within 2 ms; or seen on another interface. */
static int is_capture_duplicate(const pkt_t *p, const flow_t *fwd)
{
    const tcps_record *r = p->r;
    if (!fwd->sig_set || p->seq != fwd->sig_seq || p->ack != fwd->sig_ack || p->seglen != fwd->sig_len ||
        p->flags != fwd->sig_flags || p->window != fwd->sig_win)
        return 0;
    if (p->iface != fwd->sig_iface)
        return 1;
    return r->ip_version == 4 && r->ip_id != 0 && r->ip_id == fwd->sig_ipid &&
           (uint64_t)(p->ts - fwd->sig_ts) < (uint64_t)DUP_WINDOW_NS;
}

static void track_ip_id(const pkt_t *p, flow_t *fwd)
{
    if (p->r->ip_version != 4)
        return;
    uint16_t id = p->r->ip_id;
    if (fwd->last_frame_seen_ipid) {
        uint16_t step = (uint16_t)(id - fwd->last_ipid);
        if (id != 0 && step >= 1 && step <= 64)
            fwd->ipid_steps++;
        else
            fwd->ipid_other++;
    }
    fwd->last_frame_seen_ipid = 1;
    fwd->last_ipid = id;
    if (fwd->nextseqframe == p->frame)
        fwd->nextseq_ipid = id;
}

static uint32_t ipv4_src(const tcps_record *r)
{
    uint32_t a;
    memcpy(&a, r->src, 4);
    return a;
}

/* The host entry of an IPv4 source address, made if new; NULL for 0.0.0.0, when
 * MAX_HOSTS are tracked already, or without memory. */
static host_t *host_get(Engine *e, uint32_t addr)
{
    if (!addr)
        return NULL;
    if ((e->hosts_used + 1) * 2 > e->hosts_cap && e->hosts_used < MAX_HOSTS) {
        size_t cap = e->hosts_cap ? e->hosts_cap * 2 : 256;
        host_t *t = calloc(cap, sizeof(host_t));
        if (t) {
            for (size_t i = 0; i < e->hosts_cap; i++) {
                if (!e->hosts[i].addr)
                    continue;
                size_t j = (e->hosts[i].addr * 2654435761u) & (cap - 1);
                while (t[j].addr)
                    j = (j + 1) & (cap - 1);
                t[j] = e->hosts[i];
            }
            free(e->hosts);
            e->hosts = t;
            e->hosts_cap = cap;
        }
    }
    if (!e->hosts_cap)
        return NULL;
    size_t j = (addr * 2654435761u) & (e->hosts_cap - 1);
    while (e->hosts[j].addr && e->hosts[j].addr != addr)
        j = (j + 1) & (e->hosts_cap - 1);
    if (!e->hosts[j].addr) {
        if (e->hosts_used >= MAX_HOSTS || (e->hosts_used + 1) * 2 > e->hosts_cap)
            return NULL;
        e->hosts[j].addr = addr;
        e->hosts[j].owner = -1;
        e->hosts_used++;
    }
    return &e->hosts[j];
}

/* An IPv4 packet that is not a TCP segment of a conversation spends its host's ID. */
static void host_note(Engine *e, const tcps_record *r)
{
    if (r->ip_version != 4 || r->ip_id == 0)
        return;
    host_t *h = host_get(e, ipv4_src(r));
    if (h) {
        h->last_id = r->ip_id;
        h->owner = -1;
    }
}

/* Any mode: how many IPv4 IDs this direction skipped just before this segment,
 * while its IDs otherwise go up by exactly one per segment -- a per-connection
 * counter, as Linux keeps for a connected socket (RFC 6864 §4 allows it): the
 * skipped values are packets it sent that the capture did not see. ID 0 is left
 * out (Linux sends its SYN-ACKs and TIME-WAIT ACKs with ID 0; a counter passing
 * 0 costs one step, counted). A segment with more payload than the peer's MSS
 * (1460 if unknown) is several packets merged by TSO or GRO: the IDs of such a
 * capture are not one per packet, and are not trusted after it. */
static uint8_t ip_id_gap(Engine *e, const pkt_t *p, flow_t *fwd, uint16_t peer_mss, int64_t owner)
{
    const tcps_record *r = p->r;
    uint16_t id = r->ip_id;
    if (r->ip_version != 4 || id == 0) {
        if (r->ip_version == 4 && p->seglen > (peer_mss ? peer_mss : 1460))
            fwd->idc_state = IDC_NOT;
        return 0;
    }
    host_t *h = host_get(e, ipv4_src(r));
    uint8_t gap = 0;
    if (fwd->idc_state == IDC_NONE) {
        fwd->idc_state = IDC_ONE;
    } else if (fwd->idc_state != IDC_NOT) {
        uint16_t step = (uint16_t)(id - fwd->idc_last);
        if (id < fwd->idc_last && step > 1)
            step--;              /* wrapped: the counter's own 0 is not a packet we skipped */
        if (step == 1) {
            fwd->idc_state = IDC_COUNTER;
        } else if (fwd->idc_state == IDC_COUNTER && step >= 2 && step <= 1 + IPID_GAP_MAX) {
            /* Skipped, unless the host's latest other packet in the capture took one of
             * those IDs: then it numbers all its packets from one counter. */
            uint16_t other = h ? (uint16_t)(h->last_id - fwd->idc_last) : 0;
            if (!h || (h->owner != owner && other >= 1 && other < step))
                fwd->idc_state = IDC_NOT;
            else
                gap = (uint8_t)(step - 1);
        } else {
            fwd->idc_state = IDC_NOT;
        }
    }
    fwd->idc_last = id;
    if (p->seglen > (peer_mss ? peer_mss : 1460)) {
        fwd->idc_state = IDC_NOT;
        gap = 0;
    }
    if (h) {
        h->last_id = id;
        h->owner = owner;
    }
    return gap;
}

static void remember_signature(const pkt_t *p, flow_t *fwd)
{
    fwd->sig_set = 1;
    fwd->sig_seq = p->seq;
    fwd->sig_ack = p->ack;
    fwd->sig_len = p->seglen;
    fwd->sig_flags = p->flags;
    fwd->sig_win = (uint16_t)p->window;
    fwd->sig_ipid = p->r->ip_id;
    fwd->sig_iface = p->iface;
    fwd->sig_ts = p->ts;
    fwd->sig_frame = p->frame;
}

/* A capture duplicate: reported with the numbers of its original, and left
 * out of every analysis state. */
static int capture_duplicate(Engine *e, pkt_t *p, entry_t *ent, conv_t *c, flow_t *fwd, flow_t *rev, int dir)
{
    tcps_annotation *o = p->out;
    summary_t *s = SUM(e, ent->stream);
    ent->last_ts = p->ts;
    o->stream = ent->stream;
    o->kind = TCPS_ANN_ANALYSED;
    o->win_scale = (int8_t)fwd->win_scale;
    o->rel_seq = fwd->base_set ? unwrap(fwd, p->seq) - fwd->base_ext : 1;
    o->rel_ack = (p->flags & TCPS_ACK) && rev->base_set ? unwrap(rev, p->ack) - rev->base_ext : (int64_t)p->ack;
    o->next_rel_seq = o->rel_seq + p->seglen + ((p->flags & (TCPS_SYN | TCPS_FIN)) ? 1 : 0);
    o->win_scaled = (!(p->flags & TCPS_SYN) && fwd->win_scale >= 0) ? (int64_t)((uint32_t)p->window << fwd->win_scale)
                                                                    : (int64_t)p->window;
    NOTE(CAPTURE_DUPLICATE, TCPS_RULE_22, fwd->sig_frame, 0);
    o->flags = p->ta_flags;
    o->has_analysis = 1;
    o->bytes_in_flight = o->push_bytes_sent = o->ack_rtt_ns = o->rto_ns = -1;
    o->irtt_ns = c->ts_first_rtt ? c->ts_first_rtt : -1;
    s->last_ts = p->ts;
    s->last_frame = p->frame;
    s->pkts[dir]++;
    s->flag_counts[TCPS_AFB_CAPTURE_DUPLICATE]++;
    o->from_server = (uint8_t)(dir != s->client);
    o->role_guessed = s->role_guessed;
    return 0;
}

static int process_tcp(Engine *e, pkt_t *p)
{
    const tcps_record *r = p->r;
    tcps_annotation *o = p->out;
    conv_key_t k;
    int dir;
    make_key(r, &k, &dir);

    entry_t *ent = e->last;
    if (!ent || !key_eq(&ent->key, &k)) {
        uint64_t h = key_hash(&k);
        if ((e->table_used + 1) * 2 > e->table_cap && table_grow(e) < 0)
            return -1;
        slot_t *slot = table_find(e, &k, h);
        if (!slot->hash) {
            ent = entry_new(e, slot, &k, h, p, dir);
            if (!ent)
                return -1;
        } else {
            ent = slot->ent;
        }
        e->last = ent;
    }
    conv_t *c = ent->conv;
    if (!c && !(c = entry_resurrect(e, ent)))
        return -1;
    flow_t *fwd = &c->flow[dir], *rev = &c->flow[dir ^ 1];

    /* Improved mode: the same packet captured twice (two interfaces, a SPAN
     * port that copies both ways, host and bridge) is not analysed again. */
    if (e->mode == MODE_IMPROVED && is_capture_duplicate(p, fwd))
        return capture_duplicate(e, p, ent, c, fwd, rev, dir);

    /* Reused ports: a pure SYN whose seq differs from the base of its
     * direction starts a new conversation (and stream) on the same 4-tuple.
     * (tshark 4.0.17: a SYN with the same ISN is a retransmission, even after
     * FIN or RST.) */
    int reused = 0;
    int64_t reuse_evidence = 0;
    if ((p->flags & (TCPS_SYN | TCPS_ACK)) == TCPS_SYN && fwd->base_set && p->seq != fwd->base_seq) {
        reuse_evidence = SUM(e, ent->stream)->last_frame;
        uint64_t h = ent->hash;
        slot_t *slot = table_find(e, &k, h);
        ent = entry_new(e, slot, &k, h, p, dir);
        if (!ent)
            return -1;
        e->last = ent;
        c = ent->conv;
        fwd = &c->flow[dir];
        rev = &c->flow[dir ^ 1];
        SUM(e, ent->stream)->reused_ports = 1;
        reused = 1;
    }
    /* A SYN-ACK with a new ISN: same conversation, new base (Wireshark issue 16944). */
    if ((p->flags & (TCPS_SYN | TCPS_ACK)) == (TCPS_SYN | TCPS_ACK) && fwd->base_set && p->seq != fwd->base_seq) {
        reuse_evidence = fwd->first_frame;
        reset_base(fwd, p->seq);
        reused = 2;
    }
    if (reused)
        NOTE(REUSED_PORTS, reused == 1 ? TCPS_RULE_19 : TCPS_RULE_20, reuse_evidence, 0);

    summary_t *s = SUM(e, ent->stream);
    o->stream = ent->stream;
    ent->last_ts = p->ts;
    /* Each segment starts without SACK blocks; its own options set them later. */
    fwd->num_sack = 0;

    /* Segment length known (the header fits the segment): analyse. */
    int analysed = r->stop_reason != TCPS_REASON_BAD_TCP_DATA_OFFSET &&
                   r->stop_reason != TCPS_REASON_TRUNCATED_TCP;
    o->kind = analysed ? TCPS_ANN_ANALYSED : TCPS_ANN_NO_SEGLEN;
    o->win_scale = (int8_t)fwd->win_scale;
    if (analysed) {
        if (analyze_sequence_number(e, p, c, fwd, rev) < 0)
            return -1;
        o->rel_seq = unwrap(fwd, p->seq) - fwd->base_ext;
        o->rel_ack = (p->flags & TCPS_ACK) ? unwrap(rev, p->ack) - rev->base_ext : (int64_t)p->ack;
        advance_anchor(fwd, fwd->nextseq);
        if (p->flags & TCPS_ACK)
            advance_anchor(rev, p->ack);
        /* Window scaling (RFC 7323 §2.3): never on SYNs; -1/-2 leave it raw. */
        o->win_scaled = p->window;
        if (!(p->flags & TCPS_SYN) && fwd->win_scale >= 0)
            o->win_scaled = (int64_t)((uint32_t)p->window << fwd->win_scale);
    } else {
        o->rel_seq = p->seq;
        o->rel_ack = p->ack;
        o->win_scaled = p->window;
    }
    o->next_rel_seq = o->rel_seq + p->seglen + ((p->flags & (TCPS_SYN | TCPS_FIN)) ? 1 : 0);

    /* Handshake bookkeeping (dissect_tcp after the analysis). */
    if (p->flags & TCPS_SYN) {
        if (!(p->flags & TCPS_ACK)) {
            c->ts_mru_syn = p->ts;
            c->mru_syn_frame = p->frame;
        }
        fwd->is_first_ack = 1;
    }
    /* iRTT: most recent pure SYN to the first later ACK without SYN. */
    if ((p->flags & (TCPS_SYN | TCPS_ACK)) == TCPS_ACK && c->ts_mru_syn != 0 && c->ts_first_rtt == 0)
        c->ts_first_rtt = p->ts - c->ts_mru_syn;
    if ((p->flags & (TCPS_SYN | TCPS_ACK)) == TCPS_ACK)
        fwd->is_first_ack = 0;

    /* Options, parsed after the analysis: window scale (any segment, as
     * Wireshark; RFC 7323 §2.3 caps the shift at 14) and SACK blocks (the
     * first three are kept for bytes in flight). */
    if (analysed) {
        if (r->opt_present & TCPS_OPT_WSCALE)
            fwd->win_scale = r->wscale > 14 ? 14 : r->wscale;
        if (r->opt_present & TCPS_OPT_SACK) {
            int n = r->sack_count < MAX_SACK_STORED ? r->sack_count : MAX_SACK_STORED;
            for (int i = 0; i < n; i++) {
                fwd->sack_le[i] = r->sack[2 * i];
                fwd->sack_re[i] = r->sack[2 * i + 1];
            }
            fwd->num_sack = (uint8_t)n;
        }
        if (e->mode == MODE_IMPROVED && (p->flags & TCPS_ACK)) {
            scoreboard_prune(fwd, p->ack);
            if (r->opt_present & TCPS_OPT_SACK) {
                int n = r->sack_count < TCPS_MAX_SACK ? r->sack_count : TCPS_MAX_SACK;
                for (int i = 0; i < n; i++)
                    scoreboard_add(fwd, r->sack[2 * i], r->sack[2 * i + 1], p->ack);
            }
            /* A hole is being reported from the first duplicate ACK or SACK
             * block until the ack passes everything SACKed. */
            int reporting = fwd->sb_n > 0 || (fwd->dupacknum >= 1 && fwd->dupacknum != 0xFFFFFFFFu);
            if (!reporting)
                fwd->report_ts = 0;
            else if (!fwd->report_ts)
                fwd->report_ts = p->ts;
        }
    }

    /* What Wireshark prints from the analysis ("SEQ/ACK analysis" tree). It
     * is printed after the options: options cut by the capture end the
     * dissection before it and before the window scale check below. (So does
     * a SACK option shorter than one block when Wireshark reads a D-SACK
     * block past it; the record does not say which option was malformed, so
     * that case is a listed difference.) */
    int printable = r->stop_reason != TCPS_REASON_TRUNCATED_TCP_OPTIONS;
    if (!printable) {
        p->has_ta = 0;
        p->ta_flags = 0;
        memset(o->rule, 0, sizeof(o->rule));
        o->n_evidence = 0;
        memset(o->evidence_flag, 0xFF, sizeof(o->evidence_flag));
    }
    o->flags = p->ta_flags;
    o->has_analysis = (uint8_t)p->has_ta;
    o->bytes_in_flight = -1;
    o->push_bytes_sent = -1;
    o->ack_rtt_ns = -1;
    o->irtt_ns = -1;
    o->rto_ns = -1;
    if (p->has_ta) {
        if (p->acked_frame) {
            o->acked_frame = p->acked_frame;
            if (p->ack_rtt != 0)
                o->ack_rtt_ns = p->ack_rtt;
        }
        if (c->ts_first_rtt != 0)
            o->irtt_ns = c->ts_first_rtt;
        if (p->bif || p->bif_set) {
            o->bytes_in_flight = p->bif;
            o->push_bytes_sent = p->push_bytes;
        }
        if (p->dupack_num) {
            o->dup_ack_num = p->dupack_num;
            o->dup_ack_frame = p->dupack_frame;
        }
        if ((p->ta_flags & TCPS_AF_RETRANSMISSION) && p->rto_frame && p->rto_ns != 0) {
            o->rto_ns = p->rto_ns;
            o->rto_frame = p->rto_frame;
        }
    }

    /* Window scaling is settled by the handshake (verify_tcp_window_scaling):
     * a SYN without the option means neither side scales; a SYN-ACK with it
     * after a SYN without it does not scale either. */
    if ((p->flags & TCPS_SYN) && printable) {
        if (fwd->win_scale == -1) {
            fwd->win_scale = -2;
            rev->win_scale = -2;
        } else if ((p->flags & TCPS_ACK) && rev->win_scale == -2) {
            fwd->win_scale = -2;
        }
    }

    update_summary(e, s, c, p, dir);
    /* Closed (RST, or FIN each way): queue for eviction of the heavy state. */
    if (!ent->queued && ((s->side_flags[0] | s->side_flags[1]) & TCPS_SIDE_SAW_RST ||
                         (s->side_flags[0] & s->side_flags[1] & TCPS_SIDE_SAW_FIN))) {
        if (closed_push(e, ent->stream) < 0)
            return -1;
        ent->queued = 1;
    }
    o->from_server = (uint8_t)(dir != s->client);
    o->role_guessed = s->role_guessed;
    o->ip_id_gap = ip_id_gap(e, p, fwd, s->mss[dir ^ 1], ent->stream * 2 + dir);
    if (!fwd->first_frame)
        fwd->first_frame = p->frame;
    fwd->last_frame = p->frame;
    if (e->mode == MODE_IMPROVED) {
        remember_signature(p, fwd);
        track_ip_id(p, fwd);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Python type                                                         */
/* ------------------------------------------------------------------ */

static int get_buffer(PyObject *obj, Py_buffer *view, const char *what, Py_ssize_t itemsize)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (itemsize && view->itemsize != itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: items of %zd bytes expected, got %zd", what, itemsize,
                     view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *Engine_feed(Engine *e, PyObject *args)
{
    PyObject *rec_obj, *ts_obj, *frame_obj, *iface_obj;
    if (!PyArg_ParseTuple(args, "OOOO", &rec_obj, &ts_obj, &frame_obj, &iface_obj))
        return NULL;
    Py_buffer rb, tb, fb, ib;
    if (get_buffer(rec_obj, &rb, "records", 0) < 0)
        return NULL;
    if (rb.len % (Py_ssize_t)sizeof(tcps_record)) {
        PyBuffer_Release(&rb);
        return PyErr_Format(PyExc_ValueError, "records: not a whole number of %zu-byte records",
                            sizeof(tcps_record));
    }
    Py_ssize_t n = rb.len / (Py_ssize_t)sizeof(tcps_record);
    if (get_buffer(ts_obj, &tb, "ts_ns", 8) < 0) {
        PyBuffer_Release(&rb);
        return NULL;
    }
    if (get_buffer(frame_obj, &fb, "frames", 8) < 0) {
        PyBuffer_Release(&rb);
        PyBuffer_Release(&tb);
        return NULL;
    }
    if (get_buffer(iface_obj, &ib, "iface", 2) < 0) {
        PyBuffer_Release(&rb);
        PyBuffer_Release(&tb);
        PyBuffer_Release(&fb);
        return NULL;
    }
    PyObject *result = NULL;
    if (e->busy) {
        PyErr_SetString(PyExc_RuntimeError, "this Engine is already feeding in another thread");
        goto done;
    }
    if (tb.len / 8 != n || fb.len / 8 != n || ib.len / 2 != n) {
        PyErr_SetString(PyExc_ValueError, "records, ts_ns, frames and iface must have the same length");
        goto done;
    }
    result = PyByteArray_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(tcps_annotation));
    if (!result)
        goto done;
    tcps_annotation *out = (tcps_annotation *)PyByteArray_AS_STRING(result);
    const tcps_record *recs = (const tcps_record *)rb.buf;
    const int64_t *ts = (const int64_t *)tb.buf, *frames = (const int64_t *)fb.buf;
    const uint16_t *ifc = (const uint16_t *)ib.buf;
    int failed = 0;
    e->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        tcps_annotation *o = &out[i];
        const tcps_record *r = &recs[i];
        memset(o, 0, sizeof(*o));
        o->frame = frames[i];
        o->stream = -1;
        o->bytes_in_flight = o->push_bytes_sent = o->ack_rtt_ns = o->irtt_ns = o->rto_ns = -1;
        o->win_scale = -1;
        o->tcp_csum_status = r->tcp_csum_status;
        memset(o->evidence_flag, 0xFF, sizeof(o->evidence_flag));
        e->frames_seen++;
        if (ts[i] > e->now)
            e->now = ts[i];
        /* TCP with at least the fixed header's first 16 bytes (ports,
         * numbers, flags and window): Wireshark finds the conversation. */
        if (r->kind != TCPS_KIND_TCP || (r->ip_version != 4 && r->ip_version != 6)) {
            host_note(e, r);
            continue;
        }
        if (r->stop_reason == TCPS_REASON_TRUNCATED_TCP && r->stop_layer == TCPS_LAYER_TCP) {
            host_note(e, r);
            continue;
        }
        e->tcp_seen++;
        pkt_t p;
        memset(&p, 0, sizeof(p));
        p.r = r;
        p.ts = ts[i];
        p.frame = frames[i];
        p.iface = ifc[i];
        p.seq = r->seq;
        p.ack = r->ack;
        p.seglen = r->payload_len;
        /* An IP length beyond the frame: Wireshark's segment ends with the
         * frame (the reported length), not where the IP header says. */
        if ((r->warnings & TCPS_WARN_IP_LENGTH_EXCEEDS_FRAME) && !(r->warnings & TCPS_WARN_SNAPLEN_TRUNCATED))
            p.seglen = r->payload_cap;
        p.window = r->win;
        p.flags = r->tcp_flags;
        p.out = o;
        if (process_tcp(e, &p) < 0) {
            failed = 1;
            break;
        }
        if ((e->tcp_seen & 0xFFFF) == 0)
            closed_sweep(e);
    }
    if (!failed)
        closed_sweep(e);
    Py_END_ALLOW_THREADS
    e->busy = 0;
    if (failed) {
        Py_CLEAR(result);
        PyErr_NoMemory();
    }
done:
    PyBuffer_Release(&rb);
    PyBuffer_Release(&tb);
    PyBuffer_Release(&fb);
    PyBuffer_Release(&ib);
    return result;
}

static void export_conn(const summary_t *s, tcps_conn *c)
{
    memset(c, 0, sizeof(*c));
    int cl = s->client, sv = cl ^ 1;
    c->stream = s->stream;
    c->first_ts = s->first_ts;
    c->last_ts = s->last_ts;
    c->first_frame = s->first_frame;
    c->last_frame = s->last_frame;
    c->irtt_ns = s->irtt_ns;
    c->syn_frame = s->syn_frame;
    c->prev_stream = s->prev_stream;
    int idx[2] = {cl, sv};
    for (int i = 0; i < 2; i++) {
        int d = idx[i];
        c->pkts[i] = s->pkts[d];
        c->bytes[i] = s->bytes[d];
        c->isn[i] = s->isn[d];
        c->isn_known[i] = s->isn_known[d];
        c->side_flags[i] = s->side_flags[d];
        c->mss[i] = s->mss[d];
        c->wscale[i] = s->wscale[d];
    }
    memcpy(c->flag_counts, s->flag_counts, sizeof(c->flag_counts));
    /* flow 0 is a -> b: the client is a when flow 0 is the client's. */
    memcpy(c->client_addr, cl == 0 ? s->key.a : s->key.b, 16);
    memcpy(c->server_addr, cl == 0 ? s->key.b : s->key.a, 16);
    c->client_port = cl == 0 ? s->key.pa : s->key.pb;
    c->server_port = cl == 0 ? s->key.pb : s->key.pa;
    c->iface = s->iface;
    c->ip_version = s->key.version;
    c->role_guessed = s->role_guessed;
    c->ecn_setup = s->ecn_setup;
    c->reused_ports = s->reused_ports;
}

static PyObject *Engine_connections(Engine *e, PyObject *args)
{
    Py_ssize_t start = 0;
    if (!PyArg_ParseTuple(args, "|n", &start))
        return NULL;
    if (e->busy) {
        PyErr_SetString(PyExc_RuntimeError, "this Engine is feeding in another thread");
        return NULL;
    }
    if (start < 0 || (size_t)start > e->n_streams)
        start = (Py_ssize_t)e->n_streams;
    Py_ssize_t n = (Py_ssize_t)e->n_streams - start;
    PyObject *result = PyByteArray_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(tcps_conn));
    if (!result)
        return NULL;
    tcps_conn *out = (tcps_conn *)PyByteArray_AS_STRING(result);
    for (Py_ssize_t i = 0; i < n; i++)
        export_conn(SUM(e, start + i), &out[i]);
    return result;
}

static PyObject *Engine_stats(Engine *e, PyObject *unused)
{
    size_t conv_bytes = e->active_convs * sizeof(conv_t) + e->table_used * sizeof(entry_t) +
                        e->table_cap * sizeof(slot_t) + e->closed_cap * sizeof(int64_t);
    return Py_BuildValue("{s:K,s:K,s:n,s:n,s:n,s:n,s:n,s:n,s:K,s:K,s:K,s:n}",
                         "frames", (unsigned long long)e->frames_seen,
                         "tcp_frames", (unsigned long long)e->tcp_seen,
                         "streams", (Py_ssize_t)e->n_streams,
                         "active_conversations", (Py_ssize_t)e->active_convs,
                         "state_bytes", (Py_ssize_t)(conv_bytes + e->seg_bytes),
                         "summary_bytes", (Py_ssize_t)(e->n_blocks * SUM_BLOCK * sizeof(summary_t)),
                         "segment_bytes", (Py_ssize_t)e->seg_bytes,
                         "peak_segment_bytes", (Py_ssize_t)e->peak_seg_bytes,
                         "evidence_dropped", (unsigned long long)e->evidence_dropped,
                         "evicted", (unsigned long long)e->evicted,
                         "resurrected", (unsigned long long)e->resurrected,
                         "closed_waiting", (Py_ssize_t)e->closed_n);
}

static int Engine_init(Engine *e, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"mode", "close_timeout_ns", "max_closed", NULL};
    int mode = MODE_WIRESHARK;
    long long close_timeout = 60LL * 1000000000LL;
    Py_ssize_t max_closed = 10000;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|iLn", kwlist, &mode, &close_timeout, &max_closed))
        return -1;
    if (close_timeout < 0 || max_closed < 0) {
        PyErr_SetString(PyExc_ValueError, "close_timeout_ns and max_closed must be >= 0");
        return -1;
    }
    e->close_timeout_ns = close_timeout;
    e->max_closed = (size_t)max_closed;
    e->now = INT64_MIN;
    if (mode != MODE_WIRESHARK && mode != MODE_IMPROVED) {
        PyErr_SetString(PyExc_ValueError, "mode must be 0 (wireshark) or 1 (improved)");
        return -1;
    }
    e->mode = mode;
    return 0;
}

static void Engine_clear(Engine *e)
{
    for (size_t i = 0; i < e->table_cap; i++)
        if (e->table[i].hash)
            entry_free(e, e->table[i].ent);
    for (size_t i = 0; i < e->n_blocks; i++)
        free(e->sum_blocks[i]);
    free(e->sum_blocks);
    free(e->table);
    free(e->closed);
    free(e->hosts);
    e->table = NULL;
    e->sum_blocks = NULL;
    e->closed = NULL;
    e->hosts = NULL;
    e->hosts_cap = e->hosts_used = 0;
    e->table_cap = e->table_used = e->n_streams = e->n_blocks = e->blocks_cap = 0;
    e->closed_n = e->closed_cap = e->closed_head = 0;
    e->last = NULL;
}

static void Engine_dealloc(Engine *e)
{
    Engine_clear(e);
    Py_TYPE(e)->tp_free((PyObject *)e);
}

static PyMethodDef Engine_methods[] = {
    {"feed", (PyCFunction)Engine_feed, METH_VARARGS,
     "feed(records, ts_ns, frames, iface) -> bytearray of tcps_annotation, one per record."},
    {"connections", (PyCFunction)Engine_connections, METH_VARARGS,
     "connections([start]) -> bytearray of tcps_conn for streams start.. (all by default)."},
    {"stats", (PyCFunction)Engine_stats, METH_NOARGS, "Counters and memory in use."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EngineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tcpscope.analysis._engine.Engine",
    .tp_basicsize = sizeof(Engine),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Connection tracking and TCP analysis state; see analysis/engine.py.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Engine_init,
    .tp_dealloc = (destructor)Engine_dealloc,
    .tp_methods = Engine_methods,
};

/* ------------------------------------------------------------------ */
/* Layout export                                                       */
/* ------------------------------------------------------------------ */

typedef struct { const char *name; size_t offset; const char *ctype; } field_desc;

#define AFIELD(name, ctype) { #name, offsetof(tcps_annotation, name), ctype }
static const field_desc ANN_FIELDS[] = {
    AFIELD(frame, "i8"), AFIELD(stream, "i8"), AFIELD(rel_seq, "i8"), AFIELD(rel_ack, "i8"),
    AFIELD(next_rel_seq, "i8"), AFIELD(win_scaled, "i8"), AFIELD(bytes_in_flight, "i8"),
    AFIELD(push_bytes_sent, "i8"), AFIELD(ack_rtt_ns, "i8"), AFIELD(acked_frame, "i8"),
    AFIELD(irtt_ns, "i8"), AFIELD(dup_ack_frame, "i8"), AFIELD(rto_ns, "i8"), AFIELD(rto_frame, "i8"),
    AFIELD(evidence_frame, "(6,)i8"), AFIELD(flags, "u4"), AFIELD(dup_ack_num, "u4"),
    AFIELD(rule, "(16,)u1"), AFIELD(evidence_flag, "(6,)u1"), AFIELD(n_evidence, "u1"),
    AFIELD(win_scale, "i1"), AFIELD(kind, "u1"), AFIELD(from_server, "u1"),
    AFIELD(role_guessed, "u1"), AFIELD(has_analysis, "u1"), AFIELD(tcp_csum_status, "u1"),
    AFIELD(ip_id_gap, "u1"),
};

#define CFIELD(name, ctype) { #name, offsetof(tcps_conn, name), ctype }
static const field_desc CONN_FIELDS[] = {
    CFIELD(stream, "i8"), CFIELD(first_ts, "i8"), CFIELD(last_ts, "i8"), CFIELD(first_frame, "i8"),
    CFIELD(last_frame, "i8"), CFIELD(irtt_ns, "i8"), CFIELD(syn_frame, "i8"), CFIELD(prev_stream, "i8"),
    CFIELD(pkts, "(2,)u8"), CFIELD(bytes, "(2,)u8"), CFIELD(isn, "(2,)u4"),
    CFIELD(flag_counts, "(16,)u4"), CFIELD(side_flags, "(2,)u4"), CFIELD(mss, "(2,)u2"),
    CFIELD(wscale, "(2,)i1"), CFIELD(client_addr, "(16,)u1"), CFIELD(server_addr, "(16,)u1"),
    CFIELD(client_port, "u2"), CFIELD(server_port, "u2"), CFIELD(iface, "u2"),
    CFIELD(ip_version, "u1"), CFIELD(role_guessed, "u1"), CFIELD(isn_known, "(2,)u1"),
    CFIELD(ecn_setup, "u1"), CFIELD(reused_ports, "u1"),
};

static PyObject *fields_list(const field_desc *f, size_t n, size_t itemsize)
{
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (!list)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *t = Py_BuildValue("(sns)", f[i].name, (Py_ssize_t)f[i].offset, f[i].ctype);
        if (!t) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    return Py_BuildValue("(Nn)", list, (Py_ssize_t)itemsize);
}

static PyObject *layout(PyObject *self, PyObject *unused)
{
    return Py_BuildValue(
        "{s:N,s:N}",
        "annotation", fields_list(ANN_FIELDS, sizeof(ANN_FIELDS) / sizeof(ANN_FIELDS[0]), sizeof(tcps_annotation)),
        "conn", fields_list(CONN_FIELDS, sizeof(CONN_FIELDS) / sizeof(CONN_FIELDS[0]), sizeof(tcps_conn)));
}

static int add_pair(PyObject *d, const char *name, long value)
{
    PyObject *v = PyLong_FromLong(value);
    if (!v)
        return -1;
    int rc = PyDict_SetItemString(d, name, v);
    Py_DECREF(v);
    return rc;
}

static PyObject *enums(PyObject *self, PyObject *unused)
{
    PyObject *flags = PyDict_New(), *sides = PyDict_New(), *kinds = PyDict_New(), *rules = PyList_New(0);
    if (!flags || !sides || !kinds || !rules)
        goto fail;
#define ADD_FLAG(name, bit) if (add_pair(flags, #name, bit) < 0) goto fail;
    TCPS_AFLAGS(ADD_FLAG)
#define ADD_SIDE(name, bit) if (add_pair(sides, #name, bit) < 0) goto fail;
    TCPS_SIDE_FLAGS(ADD_SIDE)
#define ADD_KIND(name, value) if (add_pair(kinds, #name, value) < 0) goto fail;
    TCPS_ANN_KINDS(ADD_KIND)
#define ADD_RULE(code, flag, id) { \
        PyObject *t = Py_BuildValue("(iis)", code, TCPS_AFB_##flag, id); \
        if (!t || PyList_Append(rules, t) < 0) { Py_XDECREF(t); goto fail; } \
        Py_DECREF(t); }
    TCPS_RULES(ADD_RULE)
    return Py_BuildValue("{s:N,s:N,s:N,s:N,s:i}", "flag", flags, "side", sides, "kind", kinds,
                         "rules", rules, "max_evidence", TCPS_MAX_EVIDENCE);
fail:
    Py_XDECREF(flags);
    Py_XDECREF(sides);
    Py_XDECREF(kinds);
    Py_XDECREF(rules);
    return NULL;
}

/* _format.c: the per-packet text of `tcpscope packets` (present/packets.py). */
void format_init(void);
PyObject *format_packets(PyObject *self, PyObject *args);

static PyMethodDef module_methods[] = {
    {"format_packets", format_packets, METH_VARARGS,
     "format_packets(records, annotations, ts_ns, csv=False, header=False) -> bytes: one JSON line "
     "(or CSV row) per TCP row."},
    {"layout", layout, METH_NOARGS, "{'annotation': (fields, itemsize), 'conn': (fields, itemsize)}; fields are (name, offset, numpy format)."},
    {"enums", enums, METH_NOARGS, "Names and values of the analysis flags, side flags, annotation kinds, and the rules (code, flag bit, id)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_engine",
    "Native connection tracking and TCP analysis (see analysis/engine.py).", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__engine(void)
{
    if (PyType_Ready(&EngineType) < 0)
        return NULL;
    format_init();
    PyObject *m = PyModule_Create(&moduledef);
    if (!m)
        return NULL;
    Py_INCREF(&EngineType);
    if (PyModule_AddObject(m, "Engine", (PyObject *)&EngineType) < 0) {
        Py_DECREF(&EngineType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "MODE_WIRESHARK", MODE_WIRESHARK) < 0 ||
        PyModule_AddIntConstant(m, "MODE_IMPROVED", MODE_IMPROVED) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/*
 * seglist.c -- the unacknowledged segments of one direction (Wireshark's
 * tcp_unacked list): appended by WS-13, trimmed and matched by each ACK
 * (WS-14), measured for bytes in flight (WS-15) and searched for the first
 * carrier of resent bytes and the oldest unacked segment (retransmissions).
 *
 *   seglist_add            append (kept sorted by end while that is exact)
 *   seglist_ack            apply an ACK: remove, trim, find the frame it acknowledges
 *   seglist_span           bytes in flight, Wireshark's payload-based method
 *   seglist_oldest, seglist_first_carrier   evidence for retransmissions
 *   seglist_free, seglist_maybe_release     memory (freed as soon as empty)
 */
#include "engine.h"

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

void seglist_free(Engine *e, seglist_t *l)
{
    e->seg_bytes -= (size_t)l->cap * sizeof(seg_t);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
    l->sorted = 1;
    l->max_len = 0;
}

/* Free the heavy state as soon as nothing is outstanding. */
void seglist_maybe_release(Engine *e, seglist_t *l)
{
    if (l->n == 0 && l->cap > 0)
        seglist_free(e, l);
}

/* Append one segment (WS-13). Returns -1 on allocation failure. */
int seglist_add(Engine *e, seglist_t *l, uint32_t seq, uint32_t nextseq, int64_t frame, int64_t ts)
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

void seglist_ack(seglist_t *l, uint32_t ack, ackres_t *res)
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
uint32_t seglist_span(const seglist_t *l, uint32_t base)
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
const seg_t *seglist_oldest(const seglist_t *l)
{
    const seg_t *best = NULL;
    for (uint32_t i = 0; i < l->n; i++)
        if (!best || l->v[i].frame < best->frame)
            best = &l->v[i];
    return best;
}

/* The first frame that carried some of [seq, end) and is still unacked. */
int64_t seglist_first_carrier(const seglist_t *l, uint32_t seq, uint32_t end)
{
    int64_t best = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        const seg_t *s = &l->v[i];
        if (lt_seq(s->seq, end) && gt_seq(s->nextseq, seq) && (best == 0 || s->frame < best))
            best = s->frame;
    }
    return best;
}

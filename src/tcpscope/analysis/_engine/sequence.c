/*
 * sequence.c -- tcp_analyze_sequence_number, step by step: the tcp.analysis.*
 * verdicts of one segment, as tshark 4.0 gives them.
 *
 * Read from epan/dissectors/packet-tcp.c and checked against tshark 4.0.17 on
 * crafted captures. The step numbers (WS-0 ... WS-15) are those of
 * SEMANTICS.md §1.1; where tshark 4.0.17 differs from that (4.4-era) text,
 * the comment says so. Each step is a small predicate with its RFC:
 *
 *   WS-1 .. WS-9   zero-window probe, zero window, lost segment, keep-alive,
 *                  window update, window full, keep-alive ACK, zero-window-probe
 *                  ACK, duplicate ACK (is_* below)
 *   WS-10, WS-11   a new ack resets the dup-ACK count; ACKed unseen segment
 *   WS-12          the retransmission family (spurious, fast, out-of-order, plain);
 *                  improved mode decides it in improved.c
 *   WS-13 .. WS-15 bookkeeping, what this ACK acknowledges (seglist.c), bytes in
 *                  flight and push bytes
 *
 * analyze_sequence_number runs them in Wireshark's order; improved mode hooks
 * in where it judges differently (improved.c).
 */
#include "engine.h"

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
int analyze_sequence_number(Engine *e, pkt_t *p, conv_t *c, flow_t *fwd, flow_t *rev)
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

    /* Bytes the capture shows for the first time (any mode; conns' unique bytes). */
    if (!(p->ta_flags & TCPS_AF_ZERO_WINDOW_PROBE))
        p->out->new_bytes = new_payload_bytes(p, fwd, rev);
    p->ack_repeated = fwd->acked_seen && p->ack == fwd->lastack;

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
    if (e->mode == MODE_IMPROVED && p->seglen != 0 && rev->acked_seen)
        improved_bytes_in_flight(p, fwd, rev);
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

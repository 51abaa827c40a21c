/*
 * improved.c -- improved mode's own verdicts (docs/differences.md), where it
 * judges from what was seen rather than from Wireshark's timers.
 *
 *   improved_retransmission   resent or reordered: bytes seen before, the
 *                             sender's IPv4-ID order (track_ip_id), or the
 *                             peer's reports of a hole a round trip earlier
 *   scoreboard_update, improved_bytes_in_flight   the peer's SACK scoreboard
 *                             (RFC 6675) and the "pipe" it leaves in flight
 *   is_capture_duplicate, capture_duplicate, remember_signature
 *                             the same packet captured twice, reported with
 *                             its original's numbers and analysed once
 *   new_payload_bytes         the bytes a segment shows for the first time (any
 *                             mode: unique bytes)
 *   improved_signals          what a segment signals (annotation.h TCPS_NOTES)
 */
#include "engine.h"

/* ---- retransmission or reordering ----------------------------------- */

/* How far from seq the bytes were sent before without a break: acknowledged by
 * the peer, or carried by unacked segments (stops at end or at the first byte
 * never seen). */
static uint32_t seen_until(const flow_t *fwd, const flow_t *rev, uint32_t seq, uint32_t end)
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
    return cur;
}

/* Are the bytes [seq, end) all carried by unacked segments (or already acked)? */
static int bytes_seen_before(const flow_t *fwd, const flow_t *rev, uint32_t seq, uint32_t end)
{
    return !lt_seq(seen_until(fwd, rev, seq, end), end);
}

/* Improved mode: does this direction number its IPv4 packets one by one
 * (Linux does, per socket)? Trusted after 8 steps with few exceptions. */
static int ipid_sequential(const pkt_t *p, const flow_t *fwd)
{
    return p->r->ip_version == 4 && p->r->ip_id != 0 && fwd->ipid_steps >= 8 &&
           fwd->ipid_other * 8 <= fwd->ipid_steps;
}

/* Count this direction's IPv4-ID steps (for ipid_sequential), and remember the
 * ID of the segment that last advanced nextseq. */
void track_ip_id(const pkt_t *p, flow_t *fwd)
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

/* Improved mode, after the spurious test: what was seen, not a timer.
 * Bytes sent before in this flow are resent. The first copy seen of bytes in
 * a hole is a late original (out of order) unless the peer began reporting
 * holes (duplicate ACKs, SACK blocks) at least a round trip earlier: only then
 * can it be the sender's answer. Either is a fast retransmission when it starts
 * where the peer's duplicate ACKs point (RFC 5681 §3.2), within two RTTs. */
void improved_retransmission(Engine *e, pkt_t *p, conv_t *c, flow_t *fwd, flow_t *rev, int seq_not_advanced)
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

/* ---- the SACK scoreboard (RFC 6675 §3) -------------------------------- */

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
uint32_t scoreboard_bytes(const flow_t *f, uint32_t from, uint32_t to)
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

/* Bytes in flight, sequence-based (RFC 6675 "pipe"): everything sent and not
 * acked, less what the peer's SACK scoreboard holds. */
void improved_bytes_in_flight(pkt_t *p, const flow_t *fwd, const flow_t *rev)
{
    int32_t out = sdiff(fwd->nextseq, rev->lastack);
    if (out < 0)
        out = 0;
    uint32_t sacked = scoreboard_bytes(rev, rev->lastack, fwd->nextseq);
    p->bif = (uint32_t)out > sacked ? (uint32_t)out - sacked : 0;
    p->bif_set = 1;
    p->has_ta = 1;
}

/* After the options of an ACK: its SACK blocks into this direction's
 * scoreboard. A hole is being reported from the first duplicate ACK or SACK
 * block until the ack passes everything SACKed. */
void scoreboard_update(const pkt_t *p, flow_t *fwd)
{
    const tcps_record *r = p->r;
    scoreboard_prune(fwd, p->ack);
    if (r->opt_present & TCPS_OPT_SACK) {
        int n = r->sack_count < TCPS_MAX_SACK ? r->sack_count : TCPS_MAX_SACK;
        for (int i = 0; i < n; i++)
            scoreboard_add(fwd, r->sack[2 * i], r->sack[2 * i + 1], p->ack);
    }
    int reporting = fwd->sb_n > 0 || (fwd->dupacknum >= 1 && fwd->dupacknum != 0xFFFFFFFFu);
    if (!reporting)
        fwd->report_ts = 0;
    else if (!fwd->report_ts)
        fwd->report_ts = p->ts;
}

/* ---- capture duplicates ------------------------------------------------ */

/* Improved mode: identical to this direction's previous segment within 2 ms,
 * IP ID included (IPv4, non-zero); or seen on another interface. Without an ID
 * to compare (IPv4 ID 0 with DF, IPv6), the same TCP timestamps and nothing
 * from the peer in between: no resend can be that prompt (a timeout takes
 * 200 ms at least, a fast retransmission needs the peer's duplicate ACKs). */
int is_capture_duplicate(const pkt_t *p, const flow_t *fwd, const flow_t *rev)
{
    const tcps_record *r = p->r;
    if (!fwd->sig_set || p->seq != fwd->sig_seq || p->ack != fwd->sig_ack || p->seglen != fwd->sig_len ||
        p->flags != fwd->sig_flags || p->window != fwd->sig_win)
        return 0;
    if (p->iface != fwd->sig_iface)
        return 1;
    if ((uint64_t)(p->ts - fwd->sig_ts) >= (uint64_t)DUP_WINDOW_NS)
        return 0;
    if (r->ip_version == 4 && r->ip_id != 0)
        return r->ip_id == fwd->sig_ipid;
    return fwd->sig_has_ts && (r->opt_present & TCPS_OPT_TIMESTAMP) && r->ts_val == fwd->sig_tsval &&
           r->ts_ecr == fwd->sig_tsecr && rev->last_frame < fwd->sig_frame;
}

void remember_signature(const pkt_t *p, flow_t *fwd)
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
    fwd->sig_has_ts = (p->r->opt_present & TCPS_OPT_TIMESTAMP) != 0;
    fwd->sig_tsval = p->r->ts_val;
    fwd->sig_tsecr = p->r->ts_ecr;
}

/* A capture duplicate: reported with the numbers of its original, and left
 * out of every analysis state. */
int capture_duplicate(Engine *e, pkt_t *p, entry_t *ent, conv_t *c, flow_t *fwd, flow_t *rev, int dir)
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

/* ---- unique bytes and the signals of a segment -------------------------- */

/* Payload bytes of this segment the capture shows for the first time (before
 * the bookkeeping of this segment): everything beyond the highest sequence
 * number so far, plus, below it, what follows the bytes already sent (those
 * still unacknowledged, or acknowledged by the peer). A hole's first copy is
 * new; a resend of sent bytes is not. */
uint32_t new_payload_bytes(const pkt_t *p, const flow_t *fwd, const flow_t *rev)
{
    if (!p->seglen)
        return 0;
    uint32_t seq = p->seq, end = p->seq + p->seglen;
    if (!fwd->nextseq || ge_seq(seq, fwd->nextseq))
        return p->seglen;
    uint32_t lim = lt_seq(end, fwd->nextseq) ? end : fwd->nextseq;
    uint32_t cur = seen_until(fwd, rev, seq, lim);
    return (end - lim) + (lt_seq(cur, lim) ? lim - cur : 0);
}

/* D-SACK (RFC 2883 §4): the first block lies below the cumulative ack, or
 * within the second block. */
static int has_dsack(const pkt_t *p)
{
    const tcps_record *r = p->r;
    if (!(r->opt_present & TCPS_OPT_SACK) || r->sack_count == 0 || !(p->flags & TCPS_ACK))
        return 0;
    uint32_t le = r->sack[0], re = r->sack[1];
    if (le_seq(re, p->ack))
        return 1;
    return r->sack_count >= 2 && TCPS_MAX_SACK >= 2 && ge_seq(le, r->sack[2]) && le_seq(re, r->sack[3]);
}

/* Improved mode: what the segment itself signals (annotation.h TCPS_NOTES),
 * counted per side in the stream's summary. After the sequence analysis. */
void improved_signals(const pkt_t *p, summary_t *s, const flow_t *fwd, const flow_t *rev, int dir)
{
    const tcps_record *r = p->r;
    /* Most segments signal nothing: one test for all of it first. */
    if ((r->ip_tos & 3) != 3 && !(p->flags & (TCPS_SYN | TCPS_RST | TCPS_URG | TCPS_ECE | TCPS_CWR)) &&
        !(r->opt_present & TCPS_OPT_SACK) && (p->seglen || !p->ack_repeated) &&
        (!s->mss[dir ^ 1] || p->seglen <= s->mss[dir ^ 1]))
        return;
    if ((p->flags & (TCPS_SYN | TCPS_AE | TCPS_CWR | TCPS_ECE)) == (TCPS_SYN | TCPS_AE | TCPS_CWR | TCPS_ECE))
        s->side_flags[dir] |= TCPS_SIDE_ACCECN;
    uint32_t n = 0;
    int syn = (p->flags & TCPS_SYN) != 0;
    if ((r->ip_tos & 3) == 3)
        n |= TCPS_NOTE_ECN_CE;
    /* Under AccECN (its SYN sets AE, CWR and ECE) those bits count CE marks instead. */
    int classic = !(s->side_flags[0] & TCPS_SIDE_ACCECN) && !(s->side_flags[1] & TCPS_SIDE_ACCECN);
    if (!syn && classic && (p->flags & TCPS_ECE))
        n |= TCPS_NOTE_ECN_ECE;
    if (!syn && classic && (p->flags & TCPS_CWR))
        n |= TCPS_NOTE_ECN_CWR;
    if (p->flags & TCPS_URG)
        n |= TCPS_NOTE_URGENT;
    if (s->mss[dir ^ 1] && p->seglen > s->mss[dir ^ 1])
        n |= TCPS_NOTE_ABOVE_MSS;
    if (has_dsack(p))
        n |= TCPS_NOTE_DSACK;
    /* A challenge ACK: a pure ACK that repeats this side's ack right after the
     * peer's RST, or its SYN once this side has acknowledged the peer's SYN. */
    int pure_ack = p->seglen == 0 && (p->flags & (TCPS_SYN | TCPS_FIN | TCPS_RST | TCPS_ACK)) == TCPS_ACK;
    if (pure_ack && p->ack_repeated && rev->sig_set && rev->sig_frame > fwd->last_frame &&
        (rev->sig_flags & (TCPS_RST | TCPS_SYN)))
        n |= TCPS_NOTE_CHALLENGE_ACK;
    if ((p->flags & (TCPS_RST | TCPS_ACK)) == TCPS_RST && (s->side_flags[dir ^ 1] & TCPS_SIDE_SAW_DATA))
        n |= TCPS_NOTE_RST_NO_ACK;
    p->out->notes = n;
    if (!n)
        return;
    s->n_ce[dir] += (n & TCPS_NOTE_ECN_CE) != 0;
    s->n_ece[dir] += (n & TCPS_NOTE_ECN_ECE) != 0;
    s->n_cwr[dir] += (n & TCPS_NOTE_ECN_CWR) != 0;
    s->n_urg[dir] += (n & TCPS_NOTE_URGENT) != 0;
    s->n_above_mss[dir] += (n & TCPS_NOTE_ABOVE_MSS) != 0;
    s->n_dsack[dir] += (n & TCPS_NOTE_DSACK) != 0;
    s->n_challenge[dir] += (n & TCPS_NOTE_CHALLENGE_ACK) != 0;
}

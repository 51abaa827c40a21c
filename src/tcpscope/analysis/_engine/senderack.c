/*
 * senderack.c -- the sender model's ACK side: an ACK as the sender processes it
 * (Linux tcp_ack), where the capture is beside the sender or away from it
 * (improved mode; docs/congestion.md).
 *
 *   snd_on_ack        this packet as an ACK for the other direction's sender: what
 *                     it acknowledges and SACKs, its window, timestamps, ECN echo,
 *                     D-SACK; applied at once beside the sender, else queued
 *   snd_release       a capture away from the sender sees ACKs before the sender
 *                     does: they wait in a ring until the sender's next segment shows
 *                     it had them (its TSecr, RFC 7323 §4.3) or the path delay has passed
 *   snd_apply_ack     what was delivered, D-SACK and Eifel undo, a tail loss probe's
 *                     answer, the ECN echo, the end of a reduction, then PRR (RFC 6937)
 *                     or growth (ccfamily.c), the round trips
 *   evaluate_burst    the window the sender filled between two ACKs: the capture
 *                     holds the estimate to it, and the first one after a reduction
 *                     shows the back-off (the family's evidence)
 */
#include "sender.h"

/* ---- reductions: how they begin, end and are undone ------------------------- */

static void episode_end(sender_t *m, uint8_t how)
{
    m->ev_end = how;
    m->end_start = m->ep_start;
    m->end_lost = m->ep_lost;
    m->end_retx = m->ep_retx;
    m->end_trigger = m->trigger;
}

/* The window a reduction leaves (Linux tcp_current_ssthresh). */
uint32_t snd_current_ssthresh(const sender_t *m)
{
    if (m->ca_state == CA_CWR || m->ca_state == CA_RECOVERY)
        return m->ssthresh;
    uint32_t three_q = (m->cwnd >> 1) + (m->cwnd >> 2);
    return m->ssthresh > three_q ? m->ssthresh : three_q;
}

/* Linux tcp_init_cwnd_reduction: the recovery point, the decrease, PRR's counters. */
void snd_init_reduction(sender_t *m)
{
    m->high_seq = m->nxt;
    m->tlp_high_seq = 0;
    m->cwnd_cnt = 0;
    m->prior_cwnd = m->cwnd;
    m->prr_delivered = m->prr_out = 0;
    m->ssthresh = cc_ssthresh(m);
}

void snd_begin_episode(sender_t *m, summary_t *s, int dir, int64_t frame, uint8_t trigger)
{
    m->ep_start = frame;
    m->ep_lost = m->ep_retx = 0;
    m->trigger = trigger;
    if (s->cc_loss_episodes[dir] < UINT16_MAX)
        s->cc_loss_episodes[dir]++;
}

/* Undo a reduction shown to be needless (Linux tcp_undo_cwnd_reduction). */
static void undo(sender_t *m)
{
    if (m->prior_ssthresh) {
        if (m->prior_cwnd > m->cwnd)
            m->cwnd = m->prior_cwnd;
        if (m->prior_ssthresh > m->ssthresh)
            m->ssthresh = m->prior_ssthresh;
    }
    m->undo_marker = 0;
    m->after_episode = 0;
    episode_end(m, TCPS_EVENT_UNDO);
}

/* The window when a reduction ends (Linux tcp_end_cwnd_reduction): ssthresh;
 * BBR instead goes back to the window it had (bbr_set_cwnd_to_recover_or_restore). */
static void end_cwnd(sender_t *m)
{
    if (m->family == TCPS_FAMILY_BBR)
        m->cwnd = m->cwnd > m->prior_cwnd ? m->cwnd : m->prior_cwnd;
    else
        m->cwnd = m->ssthresh;
}

/* BBR in a recovery: packet conservation, what is in flight plus what was
 * delivered, less what was newly lost (bbr_set_cwnd_to_recover_or_restore). */
static void bbr_recovery(sender_t *m, const flow_t *acker, uint32_t delivered, uint32_t newly_lost)
{
    uint32_t cwnd = m->cwnd > newly_lost ? m->cwnd - newly_lost : 1;
    uint32_t conserve = snd_segs(m, snd_pipe(m, acker)) + delivered;
    m->cwnd = cwnd > conserve ? cwnd : conserve;
}

/* PRR (RFC 6937; Linux tcp_cwnd_reduction): during a reduction the window is
 * what is in flight plus what may be sent for what was delivered. */
void snd_prr(sender_t *m, const flow_t *acker, uint32_t delivered, int advanced, int newly_lost)
{
    if (!delivered || !m->prior_cwnd)
        return;
    m->prr_delivered += delivered;
    uint32_t pipe = snd_segs(m, snd_pipe(m, acker));
    int64_t delta = (int64_t)m->ssthresh - pipe, sndcnt;
    if (delta < 0) {
        uint64_t d = (uint64_t)m->ssthresh * m->prr_delivered + m->prior_cwnd - 1;
        sndcnt = (int64_t)(d / m->prior_cwnd) - m->prr_out;
    } else {
        sndcnt = (int64_t)m->prr_delivered - m->prr_out;
        if (sndcnt < delivered)
            sndcnt = delivered;
        if (advanced && !newly_lost)
            sndcnt++;
        if (sndcnt > delta)
            sndcnt = delta;
    }
    if (sndcnt < (m->prr_out ? 0 : 1))
        sndcnt = m->prr_out ? 0 : 1;
    int64_t cwnd = (int64_t)pipe + sndcnt;
    m->cwnd = cwnd > 1 ? (uint32_t)cwnd : 1;
}

/* ---- an ACK reaches the sender ---------------------------------------------- */

/* Run the family the evidence names, once it names one with some confidence
 * (BBR's threshold is infinite until its bandwidth stops growing); the guess. */
static uint8_t adopt_family(sender_t *m, uint8_t *conf)
{
    uint8_t fam = cc_guess(m, conf);
    if (fam != TCPS_FAMILY_UNKNOWN && *conf >= 30 && fam != m->family) {
        if (fam == TCPS_FAMILY_BBR && !m->bbr_full)
            m->ssthresh = INF_SSTHRESH;
        m->family = fam;
    }
    return fam;
}

/* The burst sent between two ACKs shows the window the sender filled; 1 if it
 * was the first after a reduction, a vote on the family. */
static int evaluate_burst(sender_t *m)
{
    if (m->family == TCPS_FAMILY_BBR || m->ca_state > CA_DISORDER || !m->burst_segs ||
        m->burst_short)
        return 0;
    int voted = m->after_episode;
    if (m->after_episode) {
        cc_vote_backoff(m, m->prior_cwnd, m->burst_pipe);
        uint8_t conf;
        adopt_family(m, &conf);
        if (m->burst_pipe + 1 < m->ssthresh || m->burst_pipe > m->ssthresh + 1)
            m->ssthresh = m->burst_pipe > 2 ? m->burst_pipe : 2;
        m->after_episode = 0;
    }
    if (m->burst_pipe < m->cwnd) {
        if (++m->short_bursts >= 2) {
            m->cwnd = m->burst_pipe > 1 ? m->burst_pipe : 1;
            m->is_cwnd_limited = 1;
            m->short_bursts = 0;
        }
    } else {
        m->short_bursts = 0;
    }
    return voted;
}

void snd_apply_ack(sender_t *m, const ackev_t *ev, const flow_t *acker, summary_t *s, int dir,
                   uint32_t rtt_us)
{
    uint32_t w = ev->win;
    if (acker->win_scale >= 0)
        w <<= acker->win_scale;
    uint32_t edge = ev->ack + w; /* the right edge of the receiver's window */
    int voted = evaluate_burst(m);
    m->burst_segs = 0;
    snd_account(m, s, dir, snd_classify(m, acker), m->last_event, ev->t);
    m->last_event = ev->t;
    int advanced = gt_seq(ev->ack, m->una);
    int64_t delivered = (int64_t)(ev->ack - m->una) + ev->sacked - m->sacked;
    if (!advanced)
        delivered = (int64_t)ev->sacked - m->sacked;
    uint32_t lost_before = snd_lost(m, acker);
    if (advanced) {
        m->una = ev->ack;
        m->backoff = 0;
        m->timer_start = ev->t; /* new data acknowledged: the timer starts over (RFC 6298 §5.3) */
        if (gt_seq(m->una, m->nxt))
            m->nxt = m->una; /* acknowledges data the capture did not see */
    }
    m->sacked = ev->sacked;
    m->high_sack = gt_seq(ev->high_sack, m->una) ? ev->high_sack : m->una;
    m->edge = edge;
    uint32_t dseg = 0;
    if (delivered > 0) {
        m->delivered += (uint64_t)delivered;
        uint64_t total = (uint64_t)delivered + m->deliv_rem;
        dseg = (uint32_t)(total / m->mss);
        m->deliv_rem = (uint32_t)(total % m->mss);
    }
    if (rtt_us)
        snd_rtt_sample(m, rtt_us, ev->t);

    if (ev->dsack && !m->undo_marker)
        m->reordering = 1; /* a duplicate nothing resent: the path reorders or copies */
    /* D-SACK: a retransmission was needless; all of them -> undo (RFC 2883, 3708) */
    if (ev->dsack && m->undo_marker) {
        m->undo_retrans -= ev->dsack;
        if (m->end_lost && m->ev_end)
            m->end_lost--;
        else if (m->ep_lost)
            m->ep_lost--;
        if (m->undo_retrans <= 0 && m->ca_state != CA_LOSS) {
            undo(m);
            if (m->ca_state == CA_RECOVERY)
                m->ca_state = CA_OPEN;
        }
    }
    /* a tail loss probe answered without D-SACK repaired a loss (Linux tcp_process_tlp_ack) */
    if (m->tlp_high_seq && !lt_seq(m->una, m->tlp_high_seq)) {
        if (!ev->dsack && m->ca_state <= CA_DISORDER) {
            snd_init_reduction(m);
            end_cwnd(m);
            m->ep_lost = m->ep_retx = 1;
            m->undo_marker = 0;
            episode_end(m, TCPS_EVENT_RECOVERY_END);
            m->after_episode = 1;
        }
        m->tlp_high_seq = 0;
    }
    /* an ECN echo: reduce once per window (RFC 3168 §6.1.2; Linux tcp_enter_cwr) */
    if ((ev->flags & EV_ECE) && m->ecn_ok && m->ca_state <= CA_DISORDER) {
        m->prior_ssthresh = 0;
        m->undo_marker = 0;
        snd_init_reduction(m);
        m->ca_state = CA_CWR;
        m->trigger = TCPS_TRIGGER_ECE;
        m->ev_start = TCPS_EVENT_CWR;
        m->ep_start = 0; /* the segment that carries the event begins it */
        m->ep_lost = m->ep_retx = 0;
    }
    /* the ACK echoes a timestamp older than the first retransmission: what it
     * acknowledges is the original, delayed, not lost (Eifel, RFC 3522; Linux
     * tcp_packet_delayed) */
    int delayed = m->undo_marker && (ev->flags & EV_TS) && m->retx_tsval && ev->t > m->retx_t &&
                  lt_seq(ev->tsecr, m->retx_tsval);
    /* ... on a partial ACK, the recovery is undone at once (tcp_try_undo_partial) */
    if (m->ca_state == CA_RECOVERY && advanced && lt_seq(m->una, m->high_seq) && delayed) {
        undo(m);
        m->ca_state = CA_OPEN;
    }
    /* the end of a reduction: the recovery point is acknowledged */
    if (m->ca_state == CA_RECOVERY && !lt_seq(m->una, m->high_seq)) {
        int spurious = delayed;
        if (spurious) {
            undo(m);
        } else {
            end_cwnd(m);
            episode_end(m, TCPS_EVENT_RECOVERY_END);
            m->after_episode = 1;
        }
        m->ca_state = CA_OPEN;
    } else if (m->ca_state == CA_CWR && gt_seq(m->una, m->high_seq)) {
        end_cwnd(m);
        episode_end(m, TCPS_EVENT_RECOVERY_END);
        m->after_episode = 1;
        m->ca_state = CA_OPEN;
    } else if (m->ca_state == CA_LOSS) {
        /* Eifel (RFC 3522) and F-RTO (RFC 5682): the timeout was spurious */
        int eifel = advanced && delayed;
        int orig = gt_seq(m->una, m->high_rxt) || gt_seq(m->high_sack, m->high_rxt);
        if (eifel || (m->frto && advanced && orig && m->ep_retx <= 1)) {
            undo(m);
            m->ca_state = CA_OPEN;
        } else {
            if (m->frto) {
                if (gt_seq(m->nxt, m->high_seq)) {
                    if (m->sacked || !advanced)
                        m->frto = 0;
                } else if (advanced && lt_seq(m->una, m->high_seq)) {
                    m->high_seq = m->nxt;
                }
            }
            if (!lt_seq(m->una, m->high_seq)) {
                m->ca_state = CA_OPEN;
                episode_end(m, TCPS_EVENT_RECOVERY_END);
            }
        }
    }
    if (m->ca_state == CA_OPEN && (m->sacked || !advanced) && gt_seq(m->nxt, m->una) && m->sacked)
        m->ca_state = CA_DISORDER;
    else if (m->ca_state == CA_DISORDER && !m->sacked)
        m->ca_state = CA_OPEN;

    /* the window: PRR during a reduction, else growth on new data acknowledged */
    uint32_t lost_now = snd_lost(m, acker);
    if (m->family == TCPS_FAMILY_BBR && m->ca_state == CA_RECOVERY)
        bbr_recovery(m, acker, dseg, lost_now > lost_before ? snd_segs(m, lost_now - lost_before) : 0);
    else if (m->ca_state == CA_RECOVERY || m->ca_state == CA_CWR)
        snd_prr(m, acker, dseg, advanced, lost_now > lost_before);
    else if (advanced && dseg)
        cc_cong_avoid(m, dseg, ev->t);
    if (m->cwnd < 1)
        m->cwnd = 1;

    /* a round trip ends when the ACK covers the first segment sent after it
     * began (what BBR counts as a round, bbr_update_round_start) */
    if (!m->round_pending && !lt_seq(m->una, m->round_end)) {
        m->rounds++;
        cc_bbr_round(m, ev->t);
        m->round_pending = 1;
        /* the evidence may name the family by now */
        uint8_t conf, fam = adopt_family(m, &conf);
        s->cc_guess[dir] = fam;
        s->cc_confidence[dir] = conf;
    } else if (voted) {
        s->cc_guess[dir] = cc_guess(m, &s->cc_confidence[dir]);
    }
    m->last_ack = ev->t;
    if (m->cwnd > s->cc_max_cwnd[dir])
        s->cc_max_cwnd[dir] = m->cwnd;
}

/* ACKs a remote capture saw that the sender has had by now: a segment echoing
 * TSval X (TSecr) was sent after the sender processed the ACKs up to the first
 * one stamped X; without timestamps, those older than the path delay. */
void snd_release(sender_t *m, const pkt_t *p, const flow_t *acker, summary_t *s, int dir)
{
    const tcps_record *r = p->r;
    int ts = (r->opt_present & TCPS_OPT_TIMESTAMP) != 0;
    int64_t shift = (int64_t)m->shift_us * 1000;
    while (m->ring_n) {
        ackev_t *ev = &m->ring[m->ring_head];
        int due;
        if (ts && (ev->flags & EV_TS))
            due = lt_seq(ev->tsval, r->ts_ecr) || (ev->tsval == r->ts_ecr && p->ts - ev->t >= shift / 2);
        else
            due = p->ts - ev->t >= shift;
        if (!due)
            break;
        if (ts && (ev->flags & EV_TS) && ev->tsval == r->ts_ecr) {
            /* the turnaround ACK -> sender -> capture: the path's delay, and an RTT */
            uint32_t turn = (uint32_t)((p->ts - ev->t) / 1000);
            if (!m->shift_us || turn < m->shift_us)
                m->shift_us = turn;
        }
        ackev_t copy = *ev;
        m->ring_head = (uint8_t)((m->ring_head + 1) % ACK_RING);
        m->ring_n--;
        uint32_t rtt = 0;
        if (ts && (copy.flags & EV_TS) && copy.tsval == r->ts_ecr)
            rtt = (uint32_t)((p->ts - copy.t) / 1000);
        snd_apply_ack(m, &copy, acker, s, dir, rtt);
    }
}

/* Queue an ACK for a remote sender; when the ring is full, merge the two
 * closest in time (their effect reaches the sender together). */
static void enqueue(sender_t *m, const ackev_t *ev)
{
    if (m->ring_n == ACK_RING) {
        int best = 0;
        int64_t gap = INT64_MAX;
        for (int i = 0; i + 1 < ACK_RING; i++) {
            const ackev_t *a = &m->ring[(m->ring_head + i) % ACK_RING];
            const ackev_t *b = &m->ring[(m->ring_head + i + 1) % ACK_RING];
            if (b->t - a->t < gap) {
                gap = b->t - a->t;
                best = i;
            }
        }
        ackev_t *a = &m->ring[(m->ring_head + best) % ACK_RING];
        const ackev_t *b = &m->ring[(m->ring_head + best + 1) % ACK_RING];
        uint8_t fl = a->flags | b->flags;
        uint32_t dsack = (uint32_t)a->dsack + b->dsack;
        *a = *b;
        a->flags = fl;
        a->dsack = (uint8_t)(dsack > 255 ? 255 : dsack);
        for (int i = best + 1; i + 1 < ACK_RING; i++)
            m->ring[(m->ring_head + i) % ACK_RING] = m->ring[(m->ring_head + i + 1) % ACK_RING];
        m->ring_n--;
    }
    m->ring[(m->ring_head + m->ring_n) % ACK_RING] = *ev;
    m->ring_n++;
}

/* This packet as an ACK for the other direction's sender `m`. */
int snd_on_ack(Engine *e, const pkt_t *p, sender_t *m, const flow_t *acker, summary_t *s, int sdir)
{
    const tcps_record *r = p->r;
    ackev_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.t = p->ts;
    ev.ack = p->ack;
    ev.win = (uint16_t)p->window;
    uint32_t top = gt_seq(m->nxt, p->ack) ? m->nxt : p->ack;
    ev.sacked = scoreboard_bytes(acker, p->ack, top);
    ev.high_sack = p->ack;
    for (int i = 0; i < acker->sb_n; i++)
        if (gt_seq(acker->sb_re[i], ev.high_sack))
            ev.high_sack = acker->sb_re[i];
    if (r->opt_present & TCPS_OPT_TIMESTAMP) {
        ev.flags |= EV_TS;
        ev.tsval = r->ts_val;
        ev.tsecr = r->ts_ecr;
    }
    if (p->flags & TCPS_ECE)
        ev.flags |= EV_ECE;
    if ((r->opt_present & TCPS_OPT_SACK) && r->sack_count >= 1) {
        uint32_t le = r->sack[0], re = r->sack[1];
        int inside = r->sack_count >= 2 && !lt_seq(le, r->sack[2]) && !gt_seq(re, r->sack[3]);
        if (gt_seq(re, le) && (!gt_seq(re, p->ack) || inside))
            ev.dsack = (uint8_t)(snd_segs(m, re - le) > 255 ? 255 : snd_segs(m, re - le));
    }
    if (m->pos == POS_SENDER) {
        /* the sender's RTT sample: the ACK of a segment sent once (Karn) */
        uint32_t rtt = p->acked_frame && p->ack_rtt > 0 && !(m->ca_state >= CA_RECOVERY)
                           ? (uint32_t)(p->ack_rtt / 1000) : 0;
        snd_apply_ack(m, &ev, acker, s, sdir, rtt);
        return 0;
    }
    if (!m->ring) {
        m->ring = malloc(ACK_RING * sizeof(ackev_t));
        if (!m->ring)
            return -1;
        e->sender_bytes += ACK_RING * sizeof(ackev_t);
    }
    enqueue(m, &ev);
    return 0;
}

/*
 * sender.c -- the sender model: what each data sender's TCP holds, inferred
 * from the segments and ACKs at the capture point, held to what the capture
 * shows (improved mode; every rule and its source in docs/congestion.md).
 *
 * Sans-IO and per segment, after the sequence analysis: every packet is an ACK
 * for the other direction's sender (if that one sends data; senderack.c) and a
 * segment of its own direction's sender (from its first payload byte on; here).
 *
 *   sender_packet    the hook process_tcp calls; the annotation of the segment
 *   on_segment, on_retransmission   new data, restart after idle, what began a
 *                    recovery (duplicate ACKs, SACK, RACK, a tail loss probe, the
 *                    retransmission timer); the window the capture shows in flight
 *   rto_firings, enter_loss   the retransmission timer, seen or inferred from silence
 *   snd_pipe         bytes in flight as the sender counts them: RFC 6675's pipe,
 *                    Linux's packets_out - sacked_out - lost_out + retrans_out
 *   snd_classify     what held the sender back (cwnd, rwnd, app)
 *   sender_view      the model as it stands at an instant, worked out on a copy
 *
 * The estimate is held to the capture: a sender cannot have more in flight than
 * its window, so the window is at least what is in flight after each segment;
 * and a sender clocked by ACKs fills its window, so two bursts in a row that
 * stop short of the estimate (full-sized, not at the receiver's window edge)
 * bring it down to what they filled (senderack.c).
 *
 * Memory: one pointer per direction in flow_t; a sender_t (400 bytes) only for
 * a direction that sends data, plus, where the capture is not beside the sender,
 * a ring of ACK_RING pending ACKs (512 bytes). Freed with the conversation.
 */
#include "sender.h"

#define PROMPT_NS 500000       /* a segment within 0.5 ms of an ACK at the sender was sent on it */
#define MIN_MSS 64


/* ---- bytes in flight ------------------------------------------------------- */

/* SACKed bytes of [lo, hi): the receiver's scoreboard (improved.c) where the
 * capture is beside the sender; spread evenly over the SACKed range elsewhere
 * (the scoreboard there is ahead of the sender's). */
static uint32_t sacked_in(const sender_t *m, const flow_t *acker, uint32_t lo, uint32_t hi)
{
    if (!gt_seq(hi, lo))
        return 0;
    if (m->pos == POS_SENDER && acker)
        return scoreboard_bytes(acker, lo, hi);
    if (!m->sacked || !gt_seq(m->high_sack, m->una))
        return 0;
    uint32_t a = lt_seq(lo, m->una) ? m->una : lo, b = gt_seq(hi, m->high_sack) ? m->high_sack : hi;
    if (!gt_seq(b, a))
        return 0;
    return (uint32_t)((uint64_t)(b - a) * m->sacked / (m->high_sack - m->una));
}

/* Below this the sender has marked every unSACKed byte lost: in recovery, the
 * holes below the highest SACK (RACK with no reordering window in recovery,
 * RFC 8985 §6.2; RFC 6675 IsLost); after an RTO, all it had sent (Linux
 * tcp_timeout_mark_lost). */
static uint32_t loss_edge(const sender_t *m)
{
    uint32_t edge = m->una;
    if (m->ca_state == CA_RECOVERY)
        edge = m->high_sack;
    else if (m->ca_state == CA_LOSS)
        edge = gt_seq(m->high_sack, m->loss_high) ? m->high_sack : m->loss_high;
    return gt_seq(edge, m->nxt) ? m->nxt : edge;
}

uint32_t snd_lost(const sender_t *m, const flow_t *acker)
{
    uint32_t edge = loss_edge(m);
    return gt_seq(edge, m->una) ? (edge - m->una) - sacked_in(m, acker, m->una, edge) : 0;
}

uint32_t snd_pipe(const sender_t *m, const flow_t *acker)
{
    if (!gt_seq(m->nxt, m->una))
        return 0;
    int64_t pipe = (int64_t)(m->nxt - m->una) - m->sacked;
    uint32_t edge = loss_edge(m);
    if (gt_seq(edge, m->una)) {
        pipe -= (edge - m->una) - sacked_in(m, acker, m->una, edge);
        uint32_t r = gt_seq(m->high_rxt, edge) ? edge : m->high_rxt;
        if (gt_seq(r, m->una))
            pipe += (r - m->una) - sacked_in(m, acker, m->una, r);
    }
    return pipe > 0 ? (uint32_t)pipe : 0;
}

/* ---- timers ----------------------------------------------------------------- */

/* RFC 6298 with Linux's floor: SRTT + max(4 RTTVAR, 200 ms); 1 s before any sample. */
static int64_t rto_ns(const sender_t *m)
{
    if (!m->srtt_us)
        return (int64_t)RTO_INIT_US * 1000;
    uint32_t var = 4 * m->rttvar_us > RTO_MIN_US ? 4 * m->rttvar_us : RTO_MIN_US;
    return ((int64_t)m->srtt_us + var) * 1000;
}

void snd_rtt_sample(sender_t *m, uint32_t us, int64_t now)
{
    if (!us)
        us = 1;
    if (!m->srtt_us) {
        m->srtt_us = us;
        m->rttvar_us = us / 2;
    } else {
        uint32_t d = us > m->srtt_us ? us - m->srtt_us : m->srtt_us - us;
        m->rttvar_us = (3 * m->rttvar_us + d) / 4;
        m->srtt_us = (7 * m->srtt_us + us) / 8;
    }
    if (!m->min_rtt_us || us < m->min_rtt_us)
        m->min_rtt_us = us;
    cc_on_rtt(m, us, now);
}

/* ---- what held the sender back -------------------------------------------- */

/* Before the window edge check, Linux's tcp_write_xmit stops on the congestion
 * window; BBR's pacing holds it back as much (both are Linux's "busy" time). */
uint8_t snd_classify(const sender_t *m, const flow_t *acker)
{
    /* away from the sender the estimate is rougher: within an eighth is full */
    uint32_t full = m->pos == POS_REMOTE ? m->cwnd - (m->cwnd >= 16 ? m->cwnd / 8 : 1) : m->cwnd;
    if (snd_segs(m, snd_pipe(m, acker)) >= full)
        return TCPS_LIMIT_CWND;
    if (sdiff(m->edge, m->nxt) < (int32_t)m->mss)
        return TCPS_LIMIT_RWND;
    if (m->family == TCPS_FAMILY_BBR && gt_seq(m->nxt, m->una))
        return TCPS_LIMIT_CWND;
    return TCPS_LIMIT_APP;
}

/* The wait that ends now had class `cls`: its time goes to that class. */
void snd_account(sender_t *m, summary_t *s, int dir, uint8_t cls, int64_t since, int64_t now)
{
    if (cls >= TCPS_LIMIT_CWND && since && now > since) {
        int b = cls - TCPS_LIMIT_CWND;
        uint64_t ns = (uint64_t)(now - since) + m->limit_rem_ns[b];
        s->cc_limited_ms[dir][b] += (uint32_t)(ns / 1000000);
        m->limit_rem_ns[b] = (uint32_t)(ns % 1000000);
    }
    m->limit = cls;
}

/* ---- the sender sends ----------------------------------------------------- */

/* Linux tcp_cwnd_validate: is the window used (it may grow), or not (RFC 7661's
 * idea, Linux's RFC 2861 halving after an RTO of not using it). */
static void cwnd_validate(sender_t *m, int limited, uint32_t packets_out, int64_t now)
{
    if (!lt_seq(m->una, m->cwnd_usage_seq) || limited ||
        (!m->is_cwnd_limited && packets_out > m->max_packets_out)) {
        m->is_cwnd_limited = (uint8_t)limited;
        m->max_packets_out = packets_out;
        m->cwnd_usage_seq = m->nxt;
    }
    int cwnd_limited = m->is_cwnd_limited || (m->cwnd < m->ssthresh && m->cwnd < 2 * m->max_packets_out);
    if (cwnd_limited || m->family == TCPS_FAMILY_BBR) {
        m->cwnd_used = 0;
        m->cwnd_stamp = now;
        return;
    }
    if (packets_out > m->cwnd_used)
        m->cwnd_used = packets_out;
    if (now - m->cwnd_stamp >= rto_ns(m)) {
        /* only a sender short of data: one held at the receiver's window has a
         * full send buffer (Linux: not while SOCK_NOSPACE) */
        int backlog = m->limit == TCPS_LIMIT_RWND || sdiff(m->edge, m->nxt) < (int32_t)m->mss;
        if (m->ca_state == CA_OPEN && !backlog) {
            uint32_t used = m->cwnd_used > INIT_CWND ? m->cwnd_used : INIT_CWND;
            if (used < m->cwnd) {
                m->ssthresh = snd_current_ssthresh(m);
                m->cwnd = (m->cwnd + used) >> 1;
            }
            m->cwnd_used = 0;
        }
        m->cwnd_stamp = now;
    }
}

/* RFC 5681 §4.1 / RFC 7661, as Linux does it (tcp_cwnd_restart): after an idle
 * longer than the RTO, halve the window per RTO idle, down to the initial one. */
static void restart(sender_t *m, int64_t idle)
{
    int64_t rto = rto_ns(m);
    uint32_t restart_cwnd = m->cwnd < INIT_CWND ? m->cwnd : INIT_CWND, cwnd = m->cwnd;
    m->ssthresh = snd_current_ssthresh(m);
    while ((idle -= rto) > 0 && cwnd > restart_cwnd)
        cwnd >>= 1;
    m->cwnd = cwnd > restart_cwnd ? cwnd : restart_cwnd;
    m->cwnd_used = 0;
    m->after_episode = 0; /* the back-off is no longer to be seen */
    m->ev_start = TCPS_EVENT_RESTART;
}

static uint8_t recovery_trigger(const sender_t *m, const flow_t *acker)
{
    if (m->tlp_high_seq)
        return TCPS_TRIGGER_TLP;
    if (m->sacked) {
        return snd_segs(m, m->sacked) >= 3 ? TCPS_TRIGGER_SACK : TCPS_TRIGGER_RACK;
    }
    return acker->dupacknum >= 3 && acker->dupacknum != 0xFFFFFFFFu ? TCPS_TRIGGER_DUPACKS
                                                                      : TCPS_TRIGGER_RACK;
}

/* How many times the retransmission timer has fired by `now` with nothing
 * heard from the receiver: each firing doubles the next wait (RFC 6298 §5.5).
 * A capture away from the sender may see none of the retransmissions it sent
 * (a blackhole): the silence itself says the timer fired. Not while the
 * receiver's window is closed: then it is the persist timer. */
static int rto_firings(const sender_t *m, int64_t now, int slack_pct, int unseen)
{
    int64_t quiet = now - m->timer_start;
    if (quiet < (int64_t)RTO_MIN_US * (100 - slack_pct) * 10) /* no RTO is shorter */
        return 0;
    if ((!gt_seq(m->nxt, m->una) && !unseen) || sdiff(m->edge, m->una) < (int32_t)m->mss)
        return 0;
    if (m->pos == POS_REMOTE)
        quiet -= (int64_t)m->shift_us * 1000;
    int64_t wait = rto_ns(m) << (m->backoff > 6 ? 6 : m->backoff), at = wait - wait * slack_pct / 100;
    int n = 0;
    while (quiet >= at && n < 15) {
        n++;
        wait = wait < ((int64_t)1 << 40) ? wait * 2 : wait;
        at += wait;
    }
    return n;
}

/* A first timeout that is a tail loss probe, not the retransmission timer
 * (RFC 8985 §7; Linux tcp_schedule_loss_probe): with SACK on, in the open
 * state, no probe out yet, the timer not backed off, a resend of the last
 * segment sent. Its probe timeout (2 SRTT + the delayed-ACK allowance for one
 * segment in flight) is about the minimum RTO on a short path, so the timing
 * alone does not tell them apart; after it the RTO restarts at its base. */
static int tail_probe_first(const sender_t *m, const summary_t *s, uint32_t end, int firings)
{
    int sack = (s->side_flags[0] & s->side_flags[1] & TCPS_SIDE_SACK_PERM) != 0;
    return firings == 1 && sack && !m->backoff && (m->ca_state == CA_OPEN || m->ca_state == CA_DISORDER) &&
           !m->tlp_high_seq && end == m->nxt && !m->sacked;
}

/* The retransmission timer fired `n` times (RFC 6298 §5.4-5.6, RFC 5681 §3.1:
 * ssthresh from the flight, cwnd 1; Linux tcp_enter_loss, with F-RTO armed). */
static void enter_loss(sender_t *m, summary_t *s, int dir, int64_t frame, int64_t now, int n)
{
    int fresh = m->ca_state < CA_RECOVERY;
    if (m->ca_state <= CA_DISORDER || !gt_seq(m->high_seq, m->una) ||
        (m->ca_state == CA_LOSS && !m->backoff)) {
        m->prior_ssthresh = snd_current_ssthresh(m);
        m->prior_cwnd = m->cwnd;
        m->ssthresh = cc_ssthresh(m);
        m->undo_marker = m->una ? m->una : 1;
        m->undo_retrans = 0;
        m->retx_tsval = 0;
    }
    if (fresh)
        snd_begin_episode(m, s, dir, frame, TCPS_TRIGGER_RTO);
    else
        m->trigger = TCPS_TRIGGER_RTO;
    m->cwnd = 1;
    m->cwnd_cnt = 0;
    m->frto = (uint8_t)(fresh || m->backoff);
    m->ca_state = CA_LOSS;
    m->high_seq = m->loss_high = m->nxt;
    m->tlp_high_seq = 0;
    m->high_rxt = m->una;
    m->backoff = (uint8_t)(m->backoff + n > 15 ? 15 : m->backoff + n);
    m->timer_start = now;
    if (m->family == TCPS_FAMILY_CUBIC)
        cc_on_loss_state(m);
    uint32_t count = (uint32_t)s->cc_rto_count[dir] + (uint32_t)n;
    s->cc_rto_count[dir] = (uint16_t)(count > UINT16_MAX ? UINT16_MAX : count);
    m->ev_start = TCPS_EVENT_RTO;
    m->ev_trigger = TCPS_TRIGGER_RTO;
}

static void begin_recovery(sender_t *m, const flow_t *acker, summary_t *s, int dir, int64_t frame,
                           uint8_t trigger);

/* A retransmission outside a recovery: a tail loss probe, or the fast
 * retransmission that begins one. */
static void on_retransmission(sender_t *m, const pkt_t *p, const flow_t *acker, summary_t *s, int dir,
                              uint32_t end)
{
    if (m->ca_state == CA_RECOVERY || m->ca_state == CA_LOSS)
        return;
    int64_t quiet = p->ts - m->last_ack;
    if (m->pos == POS_REMOTE)
        quiet -= (int64_t)m->shift_us * 1000;
    int tail = end == m->nxt && !m->sacked && quiet > (int64_t)m->srtt_us * 1500;
    if (tail && m->ca_state != CA_CWR) {
        /* a tail loss probe (RFC 8985 §7): no reduction unless it repairs a loss */
        m->tlp_high_seq = m->nxt;
        m->timer_start = p->ts; /* the RTO is re-armed at its base after a probe */
        s->n_tlp[dir]++;
        m->ev_start = TCPS_EVENT_TLP;
        m->ev_trigger = TCPS_TRIGGER_TLP;
        m->ep_start = p->frame;
        return;
    }
    begin_recovery(m, acker, s, dir, p->frame, recovery_trigger(m, acker));
}

/* A recovery begins (RFC 6675 §5, RFC 8985; Linux tcp_enter_recovery). */
static void begin_recovery(sender_t *m, const flow_t *acker, summary_t *s, int dir, int64_t frame,
                           uint8_t trigger)
{
    m->prior_ssthresh = 0;
    m->undo_marker = m->una ? m->una : 1;
    m->undo_retrans = 0;
    m->retx_tsval = 0;
    if (m->ca_state != CA_CWR) {
        m->prior_ssthresh = snd_current_ssthresh(m);
        snd_init_reduction(m);
    }
    m->ca_state = CA_RECOVERY;
    m->high_rxt = m->una;
    snd_begin_episode(m, s, dir, frame, trigger);
    m->ev_start = TCPS_EVENT_FAST_RECOVERY;
    m->ev_trigger = trigger;
    /* the ACK that began it is PRR's first (the retransmission it forces) */
    snd_prr(m, acker, 1, 0, 1);
}

static void on_segment(sender_t *m, pkt_t *p, const flow_t *acker, summary_t *s, int dir, int ipid_skipped)
{
    int64_t now = p->ts;
    uint32_t len = p->seglen;
    if (!len || (p->flags & TCPS_RST))
        return;
    if (len > m->mss && len < 65536)
        m->mss = (uint16_t)len;
    uint32_t end = p->seq + len;
    int retx = (p->ta_flags & TCPS_AF_RETRANSMISSION) != 0;
    if (p->ta_flags & TCPS_AF_OUT_OF_ORDER)
        m->reordering = 1; /* the path reorders: RACK waits a quarter RTT before calling a loss */
    int prompt = now - m->last_ack <= PROMPT_NS;
    int own = m->pos == POS_SENDER ? !prompt : 0; /* sent on its own clock, not on an ACK */
    uint32_t pipe_before = own ? snd_segs(m, snd_pipe(m, acker)) : 0;
    if (own && pipe_before < m->cwnd)
        m->after_episode = 0; /* the application, not the window, decides this burst */
    if (own && now - m->last_event > PROMPT_NS) {
        snd_account(m, s, dir, pipe_before >= m->cwnd ? TCPS_LIMIT_CWND : snd_classify(m, acker), m->last_event, now);
    } else if (m->last_event && now > m->last_event) {
        snd_account(m, s, dir, m->limit, m->last_event, now);
    }
    m->last_event = now;
    /* a retransmission seen, or data after a silence: the timer fired (an RTO
     * is at least 200 ms, the estimate a little rough: 20% slack) */
    /* Away from the sender, segments it sent may never have come by: a gap in
     * the sequence or in its IPv4 IDs shows data was outstanding all along. */
    int unseen = m->pos == POS_REMOTE && (ipid_skipped || gt_seq(p->seq, m->nxt));
    int firings = rto_firings(m, now, 20, unseen);
    if (firings && retx && tail_probe_first(m, s, end, firings))
        firings = 0;
    if (firings)
        enter_loss(m, s, dir, p->frame, now, firings);
    if (retx) {
        on_retransmission(m, p, acker, s, dir, end);
        if (gt_seq(end, m->high_rxt) && m->ca_state >= CA_RECOVERY)
            m->high_rxt = end;
        uint32_t n = snd_segs(m, len);
        m->ep_retx = (uint16_t)(m->ep_retx + n);
        m->ep_lost = (uint16_t)(m->ep_lost + n);
        if (m->undo_marker) {
            if (!m->retx_tsval && (p->r->opt_present & TCPS_OPT_TIMESTAMP)) {
                /* an ACK sent before this passed the capture cannot speak of it */
                m->retx_tsval = p->r->ts_val;
                m->retx_t = now;
            }
            m->undo_retrans += (int32_t)n;
        }
    } else {
        if (!gt_seq(m->nxt, m->una))
            m->timer_start = now; /* the first segment outstanding arms the timer (RFC 6298 §5.1) */
        if (!gt_seq(m->nxt, m->una) && m->last_send) {
            /* sending after everything was acknowledged (CA_EVENT_TX_START) */
            int64_t idle = now - m->last_send;
            cc_on_tx_start(m, now);
            if (m->family != TCPS_FAMILY_BBR && idle > rto_ns(m) && m->ca_state == CA_OPEN)
                restart(m, idle);
        }
        if (gt_seq(end, m->nxt))
            m->nxt = end;
        if (len >= m->mss && m->pos == POS_SENDER && gt_seq(m->nxt, m->una))
            cc_vote_pacing(m, own);
    }
    if (m->ca_state == CA_RECOVERY || m->ca_state == CA_CWR)
        m->prr_out += snd_segs(m, len);
    m->pipe = snd_pipe(m, acker);
    uint32_t pipe = snd_segs(m, m->pipe);
    int probe = m->ev_start == TCPS_EVENT_TLP;
    if (pipe > m->cwnd && !probe)
        m->cwnd = pipe; /* it cannot have more in flight than its window */
    if (m->round_pending) {
        m->round_end = end;
        m->round_pending = 0;
    }
    if (!retx) {
        m->burst_segs++;
        m->burst_short = len < m->mss || sdiff(m->edge, m->nxt) < (int32_t)m->mss;
        m->burst_pipe = pipe;
    }
    uint32_t out = snd_segs(m, gt_seq(m->nxt, m->una) ? m->nxt - m->una : 0);
    cwnd_validate(m, pipe >= m->cwnd, out, now);
    m->last_send = now;
    if (m->cwnd > s->cc_max_cwnd[dir])
        s->cc_max_cwnd[dir] = m->cwnd;
}

/* ---- the hook ---------------------------------------------------------------- */

static sender_t *sender_new(const conv_t *c, const summary_t *s, int dir, const pkt_t *p)
{
    sender_t *m = calloc(1, sizeof(sender_t));
    if (!m)
        return NULL;
    uint32_t mss = s->mss[dir ^ 1] ? s->mss[dir ^ 1] : 1460;
    if (s->side_flags[dir] & TCPS_SIDE_TIMESTAMPS)
        mss -= 12;
    m->mss = (uint16_t)(mss < MIN_MSS ? MIN_MSS : mss);
    m->cwnd = INIT_CWND;
    m->ssthresh = INF_SSTHRESH;
    m->family = TCPS_FAMILY_CUBIC;
    m->una = m->nxt = m->hs_end_seq = p->seq;
    m->round_end = p->seq + p->seglen;
    m->edge = p->seq + 65535;
    m->hs_curr_rtt = UINT32_MAX;
    m->ecn_ok = s->ecn_setup == 3;
    m->limit = TCPS_LIMIT_UNKNOWN;
    m->last_ack = m->timer_start = p->ts; /* the retransmission timer starts with the first segment */
    /* Where is the capture? The handshake tells: beside the client the SYN-ACK
     * comes a whole RTT after the SYN, beside the server at once. */
    m->pos = POS_SENDER;
    if (c->ts_mru_syn && c->ts_synack > c->ts_mru_syn && c->ts_first_rtt > 0) {
        double f = (double)(c->ts_synack - c->ts_mru_syn) / (double)c->ts_first_rtt;
        if (f > 1)
            f = 1;
        double near = dir == s->client ? f : 1 - f;
        if (near < 0.8) {
            m->pos = POS_REMOTE;
            m->shift_us = (uint32_t)((1 - near) * (double)c->ts_first_rtt / 1000);
        }
        m->srtt_us = (uint32_t)(c->ts_first_rtt / 1000);
        m->rttvar_us = m->srtt_us / 2;
        m->min_rtt_us = m->srtt_us;
    }
    return m;
}

void sender_free(Engine *e, flow_t *f)
{
    if (f->snd) {
        e->sender_bytes -= sizeof(sender_t) + (f->snd->ring ? ACK_RING * sizeof(ackev_t) : 0);
        free(f->snd->ring);
        free(f->snd);
        f->snd = NULL;
    }
}

static uint8_t phase_of(const sender_t *m)
{
    switch (m->ca_state) {
    case CA_CWR:
        return TCPS_PHASE_CWR;
    case CA_RECOVERY:
        return TCPS_PHASE_FAST_RECOVERY;
    case CA_LOSS:
        return TCPS_PHASE_RTO_RECOVERY;
    default:
        return m->cwnd < m->ssthresh ? TCPS_PHASE_SLOW_START : TCPS_PHASE_CONGESTION_AVOIDANCE;
    }
}

/* The model of one side (0 client, 1 server) of a stream as it stands at
 * capture time `now` (0: as of the last packet); 0 if there is none (the side
 * sent no data, or its state was evicted). Time that passed since the last
 * packet is worked out on a copy, so asking changes nothing: the ACKs a remote
 * capture saw that have reached the sender by `now` (half the turnaround
 * later), and the retransmission timer if it has fired since. */
int sender_view(Engine *e, int64_t stream, int side, int64_t now, sender_view_t *v)
{
    if (stream < 0 || (size_t)stream >= e->n_streams)
        return 0;
    summary_t *s = SUM(e, stream);
    if (!s->ent || !s->ent->conv || s->ent->stream != stream)
        return 0;
    int dir = side ? s->client ^ 1 : s->client;
    conv_t *c = s->ent->conv;
    if (!c->flow[dir].snd)
        return 0;
    sender_t copy = *c->flow[dir].snd, *m = &copy;
    summary_t scratch = *s;
    ackev_t ring[ACK_RING];
    const flow_t *acker = &c->flow[dir ^ 1];
    if (m->ring) {
        memcpy(ring, m->ring, sizeof(ring));
        m->ring = ring;
    }
    if (now > 0) {
        /* what held the sender back at the last segment the capture saw: a
         * sender filling its window with full segments kept filling it (the
         * capture sees those segments only later, if ever) */
        int backlogged = m->limit == TCPS_LIMIT_CWND && !m->burst_short;
        int64_t half = (int64_t)m->shift_us * 500;
        while (m->ring_n && m->ring[m->ring_head].t <= now - half) {
            ackev_t ev = m->ring[m->ring_head];
            m->ring_head = (uint8_t)((m->ring_head + 1) % ACK_RING);
            m->ring_n--;
            snd_apply_ack(m, &ev, acker, &scratch, dir, 0);
        }
        if (m->pos == POS_REMOTE && backlogged) {
            uint64_t full = (uint64_t)m->cwnd * m->mss;
            uint32_t top = m->una + (uint32_t)(full > INT32_MAX ? INT32_MAX : full);
            if (gt_seq(top, m->edge))
                top = m->edge;
            if (gt_seq(top, m->nxt))
                m->nxt = top;
        }
        int firings = rto_firings(m, now, 0, 0);
        if (firings)
            enter_loss(m, &scratch, dir, 0, now, firings);
        /* three segments SACKed above a hole: the sender is recovering by now
         * (RFC 6675 DupThresh; RACK with no reordering window) */
        else if (m->ca_state <= CA_DISORDER && snd_segs(m, m->sacked) >= 3 && !m->reordering)
            begin_recovery(m, acker, &scratch, dir, 0, TCPS_TRIGGER_SACK);
    }
    v->cwnd = m->cwnd;
    v->ssthresh = m->ssthresh;
    v->in_flight = snd_pipe(m, acker);
    v->rounds = m->rounds;
    v->srtt_us = m->srtt_us;
    v->min_rtt_us = m->min_rtt_us;
    v->phase = phase_of(m);
    v->limited_by = snd_classify(m, acker);
    v->family = cc_guess(m, &v->confidence);
    v->remote = m->pos == POS_REMOTE;
    return 1;
}

int sender_packet(Engine *e, pkt_t *p, conv_t *c, summary_t *s, flow_t *fwd, flow_t *rev, int dir)
{
    if ((p->flags & TCPS_ACK) && rev->snd && !(p->flags & TCPS_SYN))
        if (snd_on_ack(e, p, rev->snd, fwd, s, dir ^ 1) < 0)
            return -1;
    if (!fwd->snd) {
        if (!p->seglen || (p->flags & (TCPS_RST | TCPS_SYN)))
            return 0;
        fwd->snd = sender_new(c, s, dir, p);
        if (!fwd->snd)
            return -1;
        e->sender_bytes += sizeof(sender_t);
    }
    sender_t *m = fwd->snd;
    if (m->ring && m->ring_n)
        snd_release(m, p, rev, s, dir);
    m->ev_start = 0;
    m->ev_trigger = 0;
    /* IPv4 IDs this sender spent on packets the capture did not see, once its
     * IDs have shown a counter that goes up by one per packet (Linux keeps one
     * per connection; ipid.c tells gaps of a few, this any gap) */
    int skipped = 0;
    if (p->r->ip_version == 4 && p->r->ip_id) {
        uint16_t step = (uint16_t)(p->r->ip_id - m->last_ipid);
        if (step == 1 && m->ipid_ones < 255)
            m->ipid_ones++;
        else if (step != 1 && m->ipid_ones >= 16)
            skipped = step >= 2 && step < 4096;
        else if (step != 1)
            m->ipid_ones = 0;
        m->last_ipid = p->r->ip_id;
    }
    int data = p->seglen && !(p->flags & (TCPS_SYN | TCPS_RST));
    if (data)
        on_segment(m, p, rev, s, dir, skipped);
    tcps_annotation *o = p->out;
    o->cwnd_est = (int32_t)m->cwnd;
    o->ssthresh_est = m->ssthresh >= INF_SSTHRESH ? -1 : (int32_t)m->ssthresh;
    uint32_t pipe = data ? m->pipe : snd_pipe(m, rev);
    o->in_flight = pipe > INT32_MAX ? INT32_MAX : (int32_t)pipe;
    o->cc_phase = phase_of(m);
    o->limited_by = m->limit;
    o->cc_round = m->rounds;
    if (m->ev_start) {
        o->cc_event = m->ev_start;
        o->cc_trigger = m->ev_start == TCPS_EVENT_CWR ? TCPS_TRIGGER_ECE : m->ev_trigger;
        if (m->ev_start == TCPS_EVENT_CWR)
            m->ep_start = p->frame;
    }
    if (m->ev_end) {
        o->cc_episode_end = m->ev_end;
        o->cc_episode_start = m->end_start;
        o->cc_episode_lost = m->end_lost;
        o->cc_episode_retx = m->end_retx;
        o->cc_episode_trigger = m->end_trigger;
        m->ev_end = 0;
    }
    return 0;
}

/*
 * ccfamily.c -- the window arithmetic of each congestion control the sender
 * model knows, and the guess of which one a sender runs (docs/congestion.md).
 *
 *   cc_ssthresh      the multiplicative decrease: Reno ½ (RFC 5681 §3.1, Linux
 *                    tcp_reno_ssthresh), CUBIC 0.7 with fast convergence (RFC 9438
 *                    §4.6-4.7, Linux cubictcp_recalc_ssthresh); BBR keeps its own
 *   cc_cong_avoid    slow start with appropriate byte counting (RFC 3465; Linux
 *                    tcp_slow_start: +1 per segment delivered, up to ssthresh), then
 *                    Reno's +1 per window (tcp_cong_avoid_ai) or CUBIC's curve in
 *                    time since the last reduction with its Reno-friendly region
 *                    (bictcp_update), or BBR's 2 x BDP (bbr_set_cwnd)
 *   cc_on_rtt        HyStart's exits from slow start (ACK train, delay increase;
 *                    Linux hystart_update)
 *   cc_bbr_round     BBR's max-bandwidth filter and full-bandwidth detection, once
 *                    per round trip (bbr_update_bw, bbr_check_full_bw_reached)
 *   cc_vote_*, cc_guess   the evidence: how far a sender backed off after a
 *                    reduction (½, 0.7 or not at all), and whether it paces
 *
 * The model runs CUBIC until the evidence names another family (Linux's
 * default). This is the arithmetic only; sender.c decides when it applies.
 */
#include "sender.h"

#include <math.h>

#define CUBIC_C 0.4                /* RFC 9438 §5 (Linux bic_scale 41 -> 0.4) */
#define CUBIC_BETA 717u            /* /1024, RFC 9438 §4.6 (Linux beta) */
#define CUBIC_RENO_SCALE 15u       /* Linux beta_scale: 8 (1 + b) / 3 / (1 - b) */
#define HYSTART_LOW_WINDOW 16u     /* Linux hystart_low_window */
#define HYSTART_ACK_DELTA_US 2000u /* Linux hystart_ack_delta_us */
#define HYSTART_ACK_DELAY_US 1000u /* Linux hystart_ack_delay: at most 1 ms */
#define HYSTART_MIN_SAMPLES 8u
#define HYSTART_DELAY_MIN_US 4000u
#define HYSTART_DELAY_MAX_US 16000u
#define BBR_ROUNDS 10u             /* Linux bbr_bw_rtts: the bandwidth filter's window */
#define BBR_QUANTA 6u              /* 3 x the TSO goal of 2 segments (bbr_quantization_budget) */

static uint32_t max_u32(uint32_t a, uint32_t b) { return a > b ? a : b; }

/* ---- multiplicative decrease ------------------------------------------ */

static uint32_t bbr_bdp(const sender_t *m, uint32_t gain_pct)
{
    uint32_t bw = max_u32(max_u32(m->bbr_bw[0], m->bbr_bw[1]), m->bbr_bw[2]);
    if (!bw || !m->min_rtt_us || !m->mss)
        return m->cwnd;
    uint64_t bytes = (uint64_t)bw * m->min_rtt_us / 1000u * gain_pct / 100u;
    uint32_t segs = (uint32_t)((bytes + m->mss - 1) / m->mss) + BBR_QUANTA;
    return (segs + 1) & ~1u;
}

uint32_t cc_ssthresh(sender_t *m)
{
    uint32_t cwnd = m->cwnd;
    if (m->family == TCPS_FAMILY_BBR)
        return m->ssthresh; /* bbr_ssthresh: BBR leaves it; bbr_save_cwnd keeps the window */
    if (m->family == TCPS_FAMILY_RENO)
        return max_u32(cwnd >> 1, 2);
    /* CUBIC: the epoch ends; W_max is this window, or less with fast convergence */
    m->cu_epoch = 0;
    if (cwnd < m->cu_wmax)
        m->cu_wmax = (uint32_t)((uint64_t)cwnd * (1024u + CUBIC_BETA) / 2048u);
    else
        m->cu_wmax = cwnd;
    return max_u32((uint32_t)((uint64_t)cwnd * CUBIC_BETA / 1024u), 2);
}

/* An RTO: Linux resets CUBIC's state (cubictcp_state on TCP_CA_Loss). */
void cc_on_loss_state(sender_t *m)
{
    m->cu_wmax = m->cu_origin = m->cu_cnt = m->cu_ack_cnt = m->cu_tcp_cwnd = m->cu_last_cwnd = 0;
    m->cu_delay_min = 0;
    m->cu_epoch = m->cu_last_time = 0;
    m->cu_k = 0;
    m->hs_found = 0;
    m->hs_round_start = m->hs_last_ack = 0;
    m->hs_end_seq = m->nxt;
    m->hs_curr_rtt = UINT32_MAX;
    m->hs_samples = 0;
}

/* Sending again after idle: CUBIC moves its epoch by the idle time so the
 * curve does not jump (cubictcp_cwnd_event, CA_EVENT_TX_START). */
void cc_on_tx_start(sender_t *m, int64_t now)
{
    if (m->cu_epoch && m->last_send && now > m->last_send) {
        m->cu_epoch += now - m->last_send;
        if (m->cu_epoch > now)
            m->cu_epoch = now;
    }
}

/* ---- growth ------------------------------------------------------------ */

/* RFC 5681 §3.1 / RFC 3465: +1 per segment delivered, up to ssthresh; what is
 * left over continues in congestion avoidance (Linux tcp_slow_start). */
static uint32_t slow_start(sender_t *m, uint32_t acked)
{
    uint32_t cwnd = m->cwnd + acked;
    if (cwnd > m->ssthresh)
        cwnd = m->ssthresh > m->cwnd ? m->ssthresh : m->cwnd;
    acked -= cwnd - m->cwnd;
    m->cwnd = cwnd;
    return acked;
}

/* +1 segment for every w segments delivered (Linux tcp_cong_avoid_ai). */
static void cong_avoid_ai(sender_t *m, uint32_t w, uint32_t acked)
{
    if (!w)
        w = 1;
    if (m->cwnd_cnt >= w) {
        m->cwnd_cnt = 0;
        m->cwnd++;
    }
    m->cwnd_cnt += acked;
    if (m->cwnd_cnt >= w) {
        uint32_t delta = m->cwnd_cnt / w;
        m->cwnd_cnt -= delta * w;
        m->cwnd += delta;
    }
}

/* CUBIC's per-ACK step: how many segments must be delivered for +1 (RFC 9438
 * §4.2-4.3 in Linux's bictcp_update: the target W(t + delay_min), at most +1 per
 * 2 segments, no slower than the Reno estimate; recomputed at most every
 * 1/32 s while the window is unchanged). */
static void cubic_update(sender_t *m, uint32_t acked, int64_t now)
{
    uint32_t cwnd = m->cwnd;
    m->cu_ack_cnt += acked;
    if (m->cu_last_cwnd == cwnd && now - m->cu_last_time <= 31250000)
        return;
    if (!(m->cu_epoch && now == m->cu_last_time)) {
        m->cu_last_cwnd = cwnd;
        m->cu_last_time = now;
        if (!m->cu_epoch) {
            m->cu_epoch = now;
            m->cu_ack_cnt = acked;
            m->cu_tcp_cwnd = cwnd;
            if (m->cu_wmax <= cwnd) {
                m->cu_k = 0;
                m->cu_origin = cwnd;
            } else {
                m->cu_k = cbrt((double)(m->cu_wmax - cwnd) / CUBIC_C);
                m->cu_origin = m->cu_wmax;
            }
        }
        double t = (double)(now - m->cu_epoch) / 1e9 + (double)m->cu_delay_min / 1e6 - m->cu_k;
        double target = (double)m->cu_origin + CUBIC_C * t * t * t;
        if (target < 1)
            target = 1;
        uint32_t tgt = (uint32_t)target;
        m->cu_cnt = tgt > cwnd ? cwnd / (tgt - cwnd) : 100 * cwnd;
        if (m->cu_wmax == 0 && m->cu_cnt > 20)
            m->cu_cnt = 20; /* the initial growth when nothing is known: 5% per RTT */
    }
    /* The Reno-friendly region (RFC 9438 §4.3). */
    uint32_t delta = (cwnd * CUBIC_RENO_SCALE) >> 3;
    if (delta)
        while (m->cu_ack_cnt > delta) {
            m->cu_ack_cnt -= delta;
            m->cu_tcp_cwnd++;
        }
    if (m->cu_tcp_cwnd > cwnd) {
        uint32_t max_cnt = cwnd / (m->cu_tcp_cwnd - cwnd);
        if (m->cu_cnt > max_cnt)
            m->cu_cnt = max_cnt;
    }
    if (m->cu_cnt < 2)
        m->cu_cnt = 2;
}

/* BBR sets the window itself: growing by what is delivered while it probes for
 * bandwidth at startup, then capped at twice the estimated BDP (bbr_set_cwnd;
 * cwnd_gain 2, plus its quantization budget). */
static void bbr_cong_control(sender_t *m, uint32_t acked)
{
    uint32_t target = bbr_bdp(m, m->bbr_full ? 200 : 289);
    if (m->bbr_full)
        m->cwnd = m->cwnd + acked < target ? m->cwnd + acked : target;
    else if (m->cwnd < target || m->delivered < (uint64_t)INIT_CWND * m->mss)
        m->cwnd += acked;
    if (m->cwnd < 4)
        m->cwnd = 4;
}

void cc_cong_avoid(sender_t *m, uint32_t acked, int64_t now)
{
    if (m->family == TCPS_FAMILY_BBR) {
        bbr_cong_control(m, acked);
        return;
    }
    /* Linux grows only a window the sender fills (tcp_is_cwnd_limited) */
    int limited = m->is_cwnd_limited || (m->cwnd < m->ssthresh && m->cwnd < 2 * m->max_packets_out);
    if (!limited)
        return;
    if (m->cwnd < m->ssthresh) {
        acked = slow_start(m, acked);
        if (!acked)
            return;
    }
    if (m->family == TCPS_FAMILY_RENO) {
        cong_avoid_ai(m, m->cwnd, acked);
    } else {
        cubic_update(m, acked, now);
        cong_avoid_ai(m, m->cu_cnt, acked);
    }
}

/* ---- HyStart (CUBIC's way out of slow start without a loss) ------------- */

void cc_on_rtt(sender_t *m, uint32_t rtt_us, int64_t now)
{
    if (!rtt_us)
        rtt_us = 1;
    if (m->family == TCPS_FAMILY_RENO || m->family == TCPS_FAMILY_BBR)
        return;
    /* no delay samples for a second after a reduction (cubictcp_acked) */
    if (m->cu_epoch && now - m->cu_epoch < 1000000000)
        return;
    if (!m->cu_delay_min || m->cu_delay_min > rtt_us)
        m->cu_delay_min = rtt_us;
    if (m->hs_found || m->cwnd >= m->ssthresh)
        return;
    if (!m->hs_round_start || gt_seq(m->una, m->hs_end_seq)) {
        m->hs_round_start = m->hs_last_ack = now;
        m->hs_end_seq = m->nxt;
        m->hs_curr_rtt = UINT32_MAX;
        m->hs_samples = 0;
    }
    if (m->cwnd < HYSTART_LOW_WINDOW)
        return;
    /* ACK train: ACKs close together for longer than half the minimum delay */
    if (now - m->hs_last_ack <= (int64_t)HYSTART_ACK_DELTA_US * 1000) {
        m->hs_last_ack = now;
        uint32_t threshold = (m->cu_delay_min + HYSTART_ACK_DELAY_US) >> 1;
        if (now - m->hs_round_start > (int64_t)threshold * 1000) {
            m->hs_found = 1;
            m->ssthresh = m->cwnd;
            return;
        }
    }
    /* delay increase: the round's minimum RTT grew by an eighth (4..16 ms) */
    if (m->hs_curr_rtt > rtt_us)
        m->hs_curr_rtt = rtt_us;
    if (m->hs_samples < HYSTART_MIN_SAMPLES) {
        m->hs_samples++;
    } else {
        uint32_t th = m->cu_delay_min >> 3;
        th = th < HYSTART_DELAY_MIN_US ? HYSTART_DELAY_MIN_US : th > HYSTART_DELAY_MAX_US ? HYSTART_DELAY_MAX_US : th;
        if (m->hs_curr_rtt > m->cu_delay_min + th) {
            m->hs_found = 1;
            m->ssthresh = m->cwnd;
        }
    }
}

/* ---- BBR's filters, once per round trip -------------------------------- */

void cc_bbr_round(sender_t *m, int64_t now)
{
    int64_t dt = now - m->round_start;
    if (m->round_start && dt > 0 && m->delivered > m->round_delivered) {
        uint64_t rate = (m->delivered - m->round_delivered) * 1000000u / (uint64_t)dt; /* bytes/ms */
        uint32_t bw = rate > UINT32_MAX ? UINT32_MAX : (uint32_t)rate;
        /* a three-sample windowed max over BBR_ROUNDS rounds (Linux minmax) */
        uint32_t r = m->rounds;
        if (bw >= m->bbr_bw[0] || r - m->bbr_bw_round[2] > BBR_ROUNDS) {
            m->bbr_bw[0] = m->bbr_bw[1] = m->bbr_bw[2] = bw;
            m->bbr_bw_round[0] = m->bbr_bw_round[1] = m->bbr_bw_round[2] = r;
        } else {
            if (bw >= m->bbr_bw[1]) {
                m->bbr_bw[1] = m->bbr_bw[2] = bw;
                m->bbr_bw_round[1] = m->bbr_bw_round[2] = r;
            } else if (bw >= m->bbr_bw[2]) {
                m->bbr_bw[2] = bw;
                m->bbr_bw_round[2] = r;
            }
            if (r - m->bbr_bw_round[0] > BBR_ROUNDS) {
                m->bbr_bw[0] = m->bbr_bw[1];
                m->bbr_bw_round[0] = m->bbr_bw_round[1];
                m->bbr_bw[1] = m->bbr_bw[2];
                m->bbr_bw_round[1] = m->bbr_bw_round[2];
            }
        }
        /* full bandwidth: three rounds without 25% growth (bbr_check_full_bw_reached) */
        if (!m->bbr_full) {
            uint32_t best = m->bbr_bw[0];
            if ((uint64_t)best * 4 >= (uint64_t)m->bbr_full_bw * 5) {
                m->bbr_full_bw = best;
                m->bbr_full_cnt = 0;
            } else if (++m->bbr_full_cnt >= 3) {
                m->bbr_full = 1;
                if (m->family == TCPS_FAMILY_BBR)
                    m->ssthresh = bbr_bdp(m, 100); /* bbr_check_drain */
            }
        }
    }
    m->round_start = now;
    m->round_delivered = m->delivered;
}

/* ---- which family --------------------------------------------------------- */

/* After a reduction, the window the sender settled at (`seen`) against the
 * window it had (`prior`): Reno halves, CUBIC keeps 0.7, BBR keeps it all. A
 * back-off counts for the families it fits, weighted by how far apart their
 * predictions are (small windows tell Reno and CUBIC apart poorly). */
void cc_vote_backoff(sender_t *m, uint32_t prior, uint32_t seen)
{
    if (prior < 4 || !seen)
        return;
    uint32_t reno = max_u32(prior >> 1, 2), cubic = max_u32(prior * CUBIC_BETA / 1024u, 2);
    uint32_t spread = cubic - reno;
    int32_t dr = (int32_t)seen - (int32_t)reno, dc = (int32_t)seen - (int32_t)cubic;
    dr = dr < 0 ? -dr : dr;
    dc = dc < 0 ? -dc : dc;
    if (seen * 10 >= prior * 9) {
        m->votes[TCPS_FAMILY_BBR] += 2;
        return;
    }
    if (!spread || dr == dc)
        return;
    uint16_t w = spread > 4 ? 4 : (uint16_t)spread;
    m->votes[dr < dc ? TCPS_FAMILY_RENO : TCPS_FAMILY_CUBIC] += w;
}

void cc_vote_pacing(sender_t *m, int paced)
{
    if (m->clocked + m->paced >= 60000)
        return;
    if (paced)
        m->paced++;
    else
        m->clocked++;
}

/* The family and a confidence (0..100) from the votes and the pacing. */
uint8_t cc_guess(const sender_t *m, uint8_t *confidence)
{
    uint32_t sends = (uint32_t)m->clocked + m->paced;
    *confidence = 0;
    if (m->pos == POS_SENDER && sends >= 50 && m->paced * 2 > sends) {
        uint32_t c = 50 + 50 * (m->paced * 2 - sends) / sends;
        *confidence = (uint8_t)(c > 95 ? 95 : c);
        return TCPS_FAMILY_BBR;
    }
    uint32_t total = 0, best = 0;
    uint8_t fam = TCPS_FAMILY_UNKNOWN;
    for (int f = 1; f < 4; f++) {
        total += m->votes[f];
        if (m->votes[f] > best) {
            best = m->votes[f];
            fam = (uint8_t)f;
        }
    }
    if (!best)
        return TCPS_FAMILY_UNKNOWN;
    /* agreement among the votes, discounted while there are few */
    uint32_t c = 100 * best / total;
    c = c * (total >= 8 ? 8 : total) / 8;
    *confidence = (uint8_t)(c > 99 ? 99 : c);
    return fam;
}

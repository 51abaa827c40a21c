/*
 * sender.h -- the sender model's state (internal to sender.c and ccfamily.c).
 *
 * Three units share it: sender.c (segments, the hook), senderack.c (ACKs) and
 * ccfamily.c (the congestion controls' arithmetic). One `sender_t` per direction that sends data (allocated at its first payload
 * byte, freed with its conversation): what that direction's TCP holds, as far
 * as the capture shows it. Units are Linux's: the congestion window and the
 * slow-start threshold count segments; sequence numbers are raw and compared in
 * serial arithmetic; times are capture nanoseconds (RTTs in microseconds).
 * docs/congestion.md states every rule with its RFC and kernel source.
 */
#ifndef TCPSCOPE_SENDER_H
#define TCPSCOPE_SENDER_H

#include "engine.h"

#define INIT_CWND 10u              /* RFC 6928; Linux TCP_INIT_CWND */
#define INF_SSTHRESH 0x7fffffffu   /* Linux TCP_INFINITE_SSTHRESH */
#define RTO_MIN_US 200000u         /* Linux TCP_RTO_MIN */
#define RTO_INIT_US 1000000u       /* RFC 6298 §2.1, Linux TCP_TIMEOUT_INIT */
#define ACK_RING 16               /* ACKs waiting to reach a remote sender */

/* The states of Linux's loss recovery (tcp_ca_state). */
enum { CA_OPEN, CA_DISORDER, CA_CWR, CA_RECOVERY, CA_LOSS };

/* Where the capture sits on the path: beside the sender (its ACKs apply at
 * once), or not (an ACK reaches the sender a while after the capture saw it). */
enum { POS_SENDER, POS_REMOTE };

/* An ACK as the sender will process it. */
enum { EV_ECE = 1, EV_DSACK = 2, EV_TS = 4, EV_ADVANCE = 8 };
typedef struct {
    int64_t t;                /* capture time (of the last ACK merged into it) */
    uint32_t ack, sacked;     /* cumulative ack; bytes SACKed above it */
    uint32_t high_sack;       /* highest SACKed byte + 1 (= ack when none) */
    uint32_t tsval, tsecr;    /* the ACK's timestamps (EV_TS) */
    uint16_t win;             /* the window field as sent (scaled by the receiver's shift) */
    uint8_t dsack;            /* segments a D-SACK block reports received twice */
    uint8_t flags;            /* EV_* */
} ackev_t;

typedef struct sender {
    /* the sender's sequence space, as the model has applied the ACKs */
    uint32_t una, nxt;        /* SND.UNA, SND.NXT */
    uint32_t sacked, high_sack, edge;
    uint32_t pipe;            /* bytes in flight after the last segment sent */
    uint32_t high_seq;        /* end of the window when a reduction began (recovery point) */
    uint32_t high_rxt;        /* end of the highest retransmission of this episode (RFC 6675 HighRxt) */
    uint32_t loss_high;       /* SND.NXT when the RTO fired: all below it was marked lost */
    uint32_t tlp_high_seq;    /* a tail loss probe is out for data up to here; 0 none */
    uint32_t cwnd_usage_seq;  /* Linux tcp_cwnd_validate: the window being measured */
    uint32_t round_end;       /* a round trip ends when the ACK passes this */
    uint32_t undo_marker;     /* SND.UNA when the reduction began; 0: nothing to undo */
    uint32_t retx_tsval;      /* TSval of the episode's first retransmission (Eifel, RFC 3522) */
    /* the congestion state (segments) */
    uint32_t cwnd, ssthresh, cwnd_cnt;
    uint32_t prior_cwnd, prior_ssthresh;
    uint32_t prr_delivered, prr_out;
    uint32_t max_packets_out, cwnd_used;
    int32_t undo_retrans;     /* retransmissions not yet reported by D-SACK */
    uint32_t deliv_rem;       /* delivered bytes not yet a whole segment */
    uint32_t rounds;
    uint16_t mss, last_ipid;
    uint8_t ca_state, family, pos, backoff;
    uint8_t is_cwnd_limited, frto, ecn_ok, burst_short, reordering, ipid_ones, round_pending;
    uint8_t limit;            /* TCPS_LIMIT_* of the wait that ended last */
    uint8_t trigger;          /* TCPS_TRIGGER_* of the episode under way */
    uint8_t ev_start, ev_trigger; /* an event (and its trigger) for the sender's next segment */
    uint8_t ev_end, end_trigger;  /* an episode that ended, for the sender's next segment */
    uint8_t after_episode;    /* 1: the first window after a reduction is still to be seen */
    uint8_t ring_head, ring_n;
    /* times (capture ns) and RTTs (us) */
    int64_t last_send, last_ack, last_event, timer_start, cwnd_stamp, round_start, retx_t;
    int64_t ep_start, end_start; /* the frames that began the episode under way / the one that ended */
    uint32_t srtt_us, rttvar_us, min_rtt_us, shift_us;
    uint16_t ep_lost, ep_retx, end_lost, end_retx;
    /* the observation: the window at the end of each burst of sends */
    uint32_t burst_pipe;      /* segments in flight after the burst's last segment */
    uint16_t burst_segs;      /* new full-sized segments sent since the last ACK */
    uint16_t short_bursts;    /* consecutive bursts that ended below the estimate */
    /* CUBIC (RFC 9438, Linux tcp_cubic.c) and HyStart */
    uint32_t cu_wmax, cu_origin, cu_cnt, cu_ack_cnt, cu_tcp_cwnd, cu_last_cwnd, cu_delay_min;
    int64_t cu_epoch, cu_last_time;
    double cu_k;              /* seconds */
    int64_t hs_round_start, hs_last_ack;
    uint32_t hs_end_seq, hs_curr_rtt;
    uint8_t hs_samples, hs_found;
    /* BBR's view (bbr.c in Linux): bandwidth filter, full-bandwidth detection */
    uint8_t bbr_full, bbr_full_cnt;
    uint32_t bbr_bw[3];       /* windowed max of the delivery rate, bytes/ms, by round */
    uint32_t bbr_bw_round[3];
    uint32_t bbr_full_bw;
    uint64_t delivered;       /* bytes delivered so far */
    uint64_t round_delivered; /* ... when this round began */
    /* the family evidence */
    uint16_t votes[4];        /* per TCPS_FAMILY_*, weighted by how well a back-off told them apart */
    uint16_t clocked, paced;  /* new segments sent at once on an ACK / on a timer of their own */
    /* accounting for the connection row: what is not yet a whole ms of each limit */
    uint32_t limit_rem_ns[TCPS_CC_LIMIT_COUNT];
    ackev_t *ring;            /* ACKs not yet at the sender (POS_REMOTE) */
} sender_t;

/* Segments of `bytes` (a partial one counts: Linux counts packets). */
static inline uint32_t snd_segs(const sender_t *m, uint32_t bytes)
{
    return (bytes + m->mss - 1) / m->mss;
}

/* sender.c: bytes in flight, timers, limits, the segments a sender sends, the hook. */
uint32_t snd_pipe(const sender_t *m, const flow_t *acker);
uint32_t snd_lost(const sender_t *m, const flow_t *acker);
void snd_rtt_sample(sender_t *m, uint32_t us, int64_t now);
uint8_t snd_classify(const sender_t *m, const flow_t *acker);
void snd_account(sender_t *m, summary_t *s, int dir, uint8_t cls, int64_t since, int64_t now);

/* senderack.c: the ACKs a sender gets, and the reductions they begin or end. */
uint32_t snd_current_ssthresh(const sender_t *m);
void snd_init_reduction(sender_t *m);
void snd_begin_episode(sender_t *m, summary_t *s, int dir, int64_t frame, uint8_t trigger);
void snd_prr(sender_t *m, const flow_t *acker, uint32_t delivered, int advanced, int newly_lost);
void snd_apply_ack(sender_t *m, const ackev_t *ev, const flow_t *acker, summary_t *s, int dir,
                   uint32_t rtt_us);
void snd_release(sender_t *m, const pkt_t *p, const flow_t *acker, summary_t *s, int dir);
int snd_on_ack(Engine *e, const pkt_t *p, sender_t *m, const flow_t *acker, summary_t *s, int sdir);

/* ccfamily.c: the window arithmetic of each congestion control, and the guess. */
uint32_t cc_ssthresh(sender_t *m);                    /* the multiplicative decrease */
void cc_cong_avoid(sender_t *m, uint32_t acked, int64_t now); /* slow start and growth */
void cc_on_rtt(sender_t *m, uint32_t rtt_us, int64_t now);    /* HyStart and delay_min */
void cc_on_loss_state(sender_t *m);                   /* CUBIC forgets W_max on an RTO */
void cc_on_tx_start(sender_t *m, int64_t now);        /* CUBIC shifts its epoch after idle */
void cc_bbr_round(sender_t *m, int64_t now);          /* a round trip ended: BBR's filters */
void cc_vote_backoff(sender_t *m, uint32_t prior, uint32_t seen);
void cc_vote_pacing(sender_t *m, int paced);
uint8_t cc_guess(const sender_t *m, uint8_t *confidence);

#endif

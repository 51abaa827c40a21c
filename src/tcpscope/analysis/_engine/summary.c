/*
 * summary.c -- one compact summary per stream, kept for connections(): roles,
 * first and last frames, packets and bytes per side, ISNs, handshake options
 * (MSS, window scale, SACK, timestamps, TFO, ECN setup), the iRTT, how
 * often each analysis flag was set, unique and retransmitted bytes and the
 * signals improved mode counts (improved.c); and its export as a tcps_conn row
 * (annotation.h). Summaries live in blocks that never move, so a stream's
 * summary stays where it is while the engine runs; a final stream's summary
 * is drained (handed out once) and a block whose summaries were all drained
 * is freed.
 */
#include "engine.h"

/* A new stream's summary (tcp.stream = the next index); NULL without memory. */
summary_t *summary_new(Engine *e)
{
    if (e->n_streams == e->n_blocks * SUM_BLOCK) {
        summary_t *blk = malloc(SUM_BLOCK * sizeof(summary_t));
        if (!blk)
            return NULL;
        if (e->n_blocks == e->blocks_cap) {
            size_t cap = e->blocks_cap ? e->blocks_cap * 2 : 16;
            summary_t **b = realloc(e->sum_blocks, cap * sizeof(summary_t *));
            uint16_t *d = b ? realloc(e->blk_drained, cap * sizeof(uint16_t)) : NULL;
            if (b)
                e->sum_blocks = b;
            if (!d) {
                free(blk);
                return NULL;
            }
            e->blk_drained = d;
            e->blocks_cap = cap;
        }
        e->blk_drained[e->n_blocks] = 0;
        e->sum_blocks[e->n_blocks++] = blk;
        e->live_blocks++;
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

/* What this segment adds to its stream's summary. */
void update_summary(summary_t *s, conv_t *c, const pkt_t *p, int dir)
{
    const tcps_record *r = p->r;
    s->last_ts = p->ts;
    s->last_frame = p->frame;
    s->pkts[dir]++;
    s->bytes[dir] += p->seglen;
    s->uniq_bytes[dir] += p->out->new_bytes;
    if (p->ta_flags & TCPS_AF_RETRANSMISSION)
        s->retx_bytes[dir] += p->seglen;
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
}

/* The connection row of a stream: index 0 = client, 1 = server. */
void export_conn(const summary_t *s, tcps_conn *c)
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
        c->max_cwnd_est[i] = s->cc_max_cwnd[d];
        c->loss_episodes[i] = s->cc_loss_episodes[d];
        c->rto_count[i] = s->cc_rto_count[d];
        memcpy(c->time_limited_ms[i], s->cc_limited_ms[d], sizeof(c->time_limited_ms[i]));
        c->cc_guess[i] = s->cc_guess[d];
        c->cc_confidence[i] = s->cc_confidence[d];
        c->unique_bytes[i] = s->uniq_bytes[d];
        c->retrans_bytes[i] = s->retx_bytes[d];
        c->ecn_ce[i] = s->n_ce[d];
        c->ecn_ece[i] = s->n_ece[d];
        c->ecn_cwr[i] = s->n_cwr[d];
        c->urgent[i] = s->n_urg[d];
        c->above_mss[i] = s->n_above_mss[d];
        c->dsack[i] = s->n_dsack[d];
        c->challenge_acks[i] = s->n_challenge[d];
        c->tlp_count[i] = s->n_tlp[d];
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

/* The summary of a stream, or NULL once it was drained (or never existed). */
summary_t *summary_live(Engine *e, int64_t stream)
{
    if (stream < 0 || (size_t)stream >= e->n_streams || !e->sum_blocks[stream / SUM_BLOCK])
        return NULL;
    summary_t *s = SUM(e, stream);
    return s->final == 2 ? NULL : s;
}

/* No frame can reach this stream any more: it waits for drain(). -1 without memory. */
int summary_final(Engine *e, summary_t *s)
{
    if (e->final_n == e->final_cap) {
        size_t cap = e->final_cap ? e->final_cap * 2 : 1024;
        int64_t *q = realloc(e->final, cap * sizeof(int64_t));
        if (!q)
            return -1;
        e->final = q;
        e->final_cap = cap;
    }
    s->final = 1;
    e->final[e->final_n++] = s->stream;
    return 0;
}

/* The stream's row was handed out: its summary is gone, and its block once all of
 * the block's summaries are. */
void summary_drained(Engine *e, int64_t stream)
{
    size_t b = (size_t)stream / SUM_BLOCK;
    SUM(e, stream)->final = 2;
    if (++e->blk_drained[b] == SUM_BLOCK) {
        free(e->sum_blocks[b]);
        e->sum_blocks[b] = NULL;
        e->live_blocks--;
    }
}

void summaries_free(Engine *e)
{
    for (size_t i = 0; i < e->n_blocks; i++)
        free(e->sum_blocks[i]);
    free(e->sum_blocks);
    free(e->blk_drained);
    free(e->final);
    e->sum_blocks = NULL;
    e->blk_drained = NULL;
    e->final = NULL;
    e->n_streams = e->n_blocks = e->blocks_cap = e->live_blocks = 0;
    e->final_n = e->final_cap = 0;
}

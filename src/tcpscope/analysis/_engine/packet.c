/*
 * packet.c -- one TCP segment through the engine: dissect_tcp's part
 * (packet-tcp.c), in its order.
 *
 *   process_tcp   find the conversation and the direction (table.c); capture
 *                 duplicates (improved.c); port reuse and a SYN-ACK's new ISN;
 *                 tcp_analyze_sequence_number (sequence.c); relative numbers
 *                 and the scaled window; handshake bookkeeping (iRTT, window
 *                 scaling); the options (SACK blocks); the annotation; the
 *                 stream's summary (summary.c) and IPv4-ID gap (ipid.c)
 *   engine_feed   the batch loop: one annotation per record
 */
#include "engine.h"

/* One TCP segment: its conversation, port reuse, the analysis, the annotation. */
static int process_tcp(Engine *e, pkt_t *p)
{
    const tcps_record *r = p->r;
    tcps_annotation *o = p->out;
    conv_key_t k;
    int dir;
    make_key(r, &k, &dir);

    entry_t *ent = table_lookup(e, &k, p, dir);
    if (!ent)
        return -1;
    conv_t *c = ent->conv;
    flow_t *fwd = &c->flow[dir], *rev = &c->flow[dir ^ 1];

    /* Improved mode: the same packet captured twice (two interfaces, a SPAN
     * port that copies both ways, host and bridge) is not analysed again. */
    if (e->mode == MODE_IMPROVED && is_capture_duplicate(p, fwd, rev))
        return capture_duplicate(e, p, ent, c, fwd, rev, dir);

    /* Reused ports: a pure SYN whose seq differs from the base of its
     * direction starts a new conversation (and stream) on the same 4-tuple.
     * (tshark 4.0.17: a SYN with the same ISN is a retransmission, even after
     * FIN or RST.) */
    int reused = 0;
    int64_t reuse_evidence = 0;
    if ((p->flags & (TCPS_SYN | TCPS_ACK)) == TCPS_SYN && fwd->base_set && p->seq != fwd->base_seq) {
        reuse_evidence = SUM(e, ent->stream)->last_frame;
        ent = table_restart(e, ent, p, dir);
        if (!ent)
            return -1;
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
    if ((p->flags & (TCPS_SYN | TCPS_ACK)) == (TCPS_SYN | TCPS_ACK) && !c->ts_synack)
        c->ts_synack = p->ts;
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
        if (e->mode == MODE_IMPROVED && (p->flags & TCPS_ACK))
            scoreboard_update(p, fwd);
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

    update_summary(s, c, p, dir);
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
    /* Improved mode: the sender model (in flight, cwnd, phase, limits, episodes). */
    if (e->mode == MODE_IMPROVED && analysed && printable && sender_packet(e, p, c, s, fwd, rev, dir) < 0)
        return -1;
    if (e->mode == MODE_IMPROVED && analysed)
        improved_signals(p, s, fwd, rev, dir);
    if (!fwd->first_frame)
        fwd->first_frame = p->frame;
    fwd->last_frame = p->frame;
    if (e->mode == MODE_IMPROVED) {
        remember_signature(p, fwd);
        track_ip_id(p, fwd);
    }
    return 0;
}

/* The batch loop: one annotation per record (stream -1 for what is not TCP).
 * Closed conversations are swept every 65536 TCP frames and at the end. */
int engine_feed(Engine *e, const tcps_record *recs, const int64_t *ts, const int64_t *frames,
                const uint16_t *ifc, tcps_annotation *out, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        tcps_annotation *o = &out[i];
        const tcps_record *r = &recs[i];
        memset(o, 0, sizeof(*o));
        o->frame = frames[i];
        o->stream = -1;
        o->bytes_in_flight = o->push_bytes_sent = o->ack_rtt_ns = o->irtt_ns = o->rto_ns = -1;
        o->win_scale = -1;
        o->cwnd_est = o->ssthresh_est = o->in_flight = -1;
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
        if (process_tcp(e, &p) < 0)
            return -1;
        if ((e->tcp_seen & 0xFFFF) == 0)
            closed_sweep(e);
    }
    closed_sweep(e);
    return 0;
}

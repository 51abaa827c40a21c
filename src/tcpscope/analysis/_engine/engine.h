/*
 * engine.h -- the analysis engine's shared types (internal to _engine/).
 *
 * The engine is a sans-IO object: an `Engine` holds every connection's state
 * across calls; `feed()` takes a batch of dissected records (record.h) with
 * their capture timestamps and frame numbers, and writes one tcps_annotation
 * (annotation.h) per record. Time comes only from the timestamps passed in.
 *
 * "wireshark" mode reproduces what tshark 4.0 prints for tcp.stream,
 * tcp.seq/ack, tcp.window_size and tcp.analysis.* in one pass, as read from
 * epan/dissectors/packet-tcp.c (dissect_tcp and tcp_analyze_sequence_number)
 * and checked against tshark 4.0.17 on crafted captures; "improved" mode adds
 * tcpscope's own verdicts (docs/differences.md).
 *
 * Sequence numbers are compared in 32-bit serial arithmetic (seq.h; RFC 1982
 * as TCP uses it, RFC 9293 §3.4): never with a raw `<` unless Wireshark itself
 * does. Relative numbers are reported in 64 bits, unwrapped per direction.
 *
 * Memory: one conversation per active 4-tuple (a hash table with open
 * addressing), each direction with its list of unacknowledged segments
 * (bounded like Wireshark's, 10000), freed as soon as it empties. Closed
 * conversations and unanswered attempts give up their analysis state
 * (table.c); beyond max_evicted such light entries the oldest leave the table
 * and their streams are final. A compact summary per stream is kept for
 * connections() until drain() hands the final ones out and frees them (in
 * blocks). Per-frame output is written into the caller's batch, never
 * accumulated.
 *
 * The units, one job each (this header declares what they share):
 *   packet.c    one TCP segment through the engine (dissect_tcp's part), the batch loop
 *   table.c     the conversation table: 4-tuple -> stream, port reuse, eviction of
 *               closed conversations
 *   seglist.c   the unacknowledged segments of one direction
 *   sequence.c  tcp_analyze_sequence_number, step by step (WS-0 ... WS-15)
 *   improved.c  improved-mode verdicts: retransmission vs. reordering, the SACK
 *               scoreboard, IPv4-ID order, capture duplicates, unique bytes and the
 *               signals of a segment (ECN, URG, D-SACK, challenge ACK, ...)
 *   summary.c   per-stream summaries and the connection rows (tcps_conn)
 *   sender.c    improved mode: the sender model (in flight, cwnd, phase, limits, episodes)
 *   senderack.c ... the ACKs its sender gets: delivery, undo, PRR, the ends of reductions
 *   ccfamily.c  ... its congestion-control arithmetic (Reno, CUBIC, BBR) and family guess
 *   ipid.c      IPv4-ID counters per host and direction (ip_id_gap, any mode)
 *   module.c    the Python module: the Engine type, layout() and enums()
 */
#ifndef TCPSCOPE_ENGINE_H
#define TCPSCOPE_ENGINE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "annotation.h"
#include "seq.h"

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
    uint32_t sig_tsval, sig_tsecr;
    uint8_t sig_has_ts;
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
    /* improved mode: the sender model of this direction, once it sends data (sender.c) */
    struct sender *snd;
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
    uint8_t final;            /* 1: no frame can reach it any more (its entry is gone);
                                 2: drained, handed out by drain() */
    uint16_t iface;
    /* the sender model's facts, per flow index (sender.c) */
    uint32_t cc_max_cwnd[2];
    uint32_t cc_limited_ms[2][TCPS_CC_LIMIT_COUNT];
    uint16_t cc_loss_episodes[2], cc_rto_count[2];
    uint8_t cc_guess[2], cc_confidence[2];
    /* bytes and signals, per flow index (improved.c, summary.c) */
    uint64_t uniq_bytes[2], retx_bytes[2];
    uint32_t n_ce[2], n_ece[2], n_cwr[2], n_urg[2], n_above_mss[2], n_dsack[2], n_challenge[2];
    uint32_t n_tlp[2];
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
    int64_t ts_synack;        /* time of the first SYN-ACK; 0 = none (where the capture sits) */
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
    uint8_t list;             /* which of the engine's lists holds it (LIST_*) */
    conv_t *conv;             /* NULL once evicted */
    struct entry *lprev, *lnext;  /* its neighbours in that list, oldest first */
} entry_t;

/* The table's entries are on one list each, oldest activity first:
 *   LIST_ATTEMPT  with analysis state, only one side has sent (a SYN nobody answered,
 *                 a lone RST): evicted after attempt_timeout, or the oldest beyond
 *                 max_attempts of them
 *   LIST_OPEN     with analysis state, both sides have sent (closed ones also wait in
 *                 the closed queue)
 *   LIST_EVICTED  the light entry only: retired (taken out of the table, its stream
 *                 final) the oldest first beyond max_evicted of them */
enum { LIST_ATTEMPT, LIST_OPEN, LIST_EVICTED, LIST_COUNT };

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
    /* the lists of entries (LIST_*), and their bounds */
    entry_t *lhead[LIST_COUNT], *ltail[LIST_COUNT];
    size_t lcount[LIST_COUNT];
    int64_t attempt_timeout_ns;
    size_t max_attempts, max_evicted;
    uint64_t retired;
    /* final streams not yet drained (drain()), in the order they became final */
    int64_t *final;
    size_t final_n, final_cap;
    /* per summary block: how many of its summaries were drained (all: the block is freed) */
    uint16_t *blk_drained;
    size_t live_blocks;
    size_t active_convs;
    size_t seg_bytes;         /* bytes allocated for segment lists */
    size_t peak_seg_bytes;
    size_t sender_bytes;      /* bytes allocated for sender models (sender.c) */
    uint64_t frames_seen, tcp_seen;
    uint64_t evidence_dropped;
    host_t *hosts;            /* open addressing, see host_get */
    size_t hosts_cap, hosts_used;
    int busy;                 /* feed() runs without the GIL: one caller at a time */
} Engine;

/* Result of applying one ACK to the other direction's list (WS-14). */
typedef struct {
    int64_t acked_frame;  /* oldest segment whose end equals the ack; 0 none */
    int64_t acked_ts;
} ackres_t;

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
    uint8_t ack_repeated;     /* this direction had acknowledged before, and this ack is the same */
} pkt_t;

/* ------------------------------------------------------------------ */
/* Helpers every unit uses                                             */
/* ------------------------------------------------------------------ */

/* The summary of a stream (summary.c allocates them). */
static inline summary_t *SUM(Engine *e, int64_t stream)
{
    return &e->sum_blocks[stream / SUM_BLOCK][stream % SUM_BLOCK];
}

/* Relative numbers in 64 bits: each direction unwraps its 32-bit numbers
 * around an anchor that follows the data. */

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

/* Set an analysis flag on this packet, with the rule that set it and up to two
 * evidence frames (0 = none). */
static inline void note(Engine *e, pkt_t *p, int flagbit, int rule, int64_t ev1, int64_t ev2)
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
/* What the units export                                               */
/* ------------------------------------------------------------------ */

/* packet.c: analyse n records into out (one annotation each); -1 without memory. */
int engine_feed(Engine *e, const tcps_record *recs, const int64_t *ts, const int64_t *frames,
                const uint16_t *ifc, tcps_annotation *out, Py_ssize_t n);

/* table.c */
void make_key(const tcps_record *r, conv_key_t *k, int *dir);
entry_t *table_lookup(Engine *e, const conv_key_t *k, const pkt_t *p, int dir);
entry_t *table_restart(Engine *e, entry_t *ent, const pkt_t *p, int dir);
int closed_push(Engine *e, int64_t stream);
void closed_sweep(Engine *e);
void attempts_sweep(Engine *e);
void table_free(Engine *e);

/* seglist.c */
int seglist_add(Engine *e, seglist_t *l, uint32_t seq, uint32_t nextseq, int64_t frame, int64_t ts);
void seglist_ack(seglist_t *l, uint32_t ack, ackres_t *res);
void seglist_free(Engine *e, seglist_t *l);
void seglist_maybe_release(Engine *e, seglist_t *l);
uint32_t seglist_span(const seglist_t *l, uint32_t base);
const seg_t *seglist_oldest(const seglist_t *l);
int64_t seglist_first_carrier(const seglist_t *l, uint32_t seq, uint32_t end);

/* sequence.c */
int analyze_sequence_number(Engine *e, pkt_t *p, conv_t *c, flow_t *fwd, flow_t *rev);

/* improved.c */
void improved_retransmission(Engine *e, pkt_t *p, conv_t *c, flow_t *fwd, flow_t *rev,
                             int seq_not_advanced);
void improved_bytes_in_flight(pkt_t *p, const flow_t *fwd, const flow_t *rev);
void scoreboard_update(const pkt_t *p, flow_t *fwd);
uint32_t scoreboard_bytes(const flow_t *f, uint32_t from, uint32_t to);
int is_capture_duplicate(const pkt_t *p, const flow_t *fwd, const flow_t *rev);
int capture_duplicate(Engine *e, pkt_t *p, entry_t *ent, conv_t *c, flow_t *fwd, flow_t *rev, int dir);
void remember_signature(const pkt_t *p, flow_t *fwd);
void track_ip_id(const pkt_t *p, flow_t *fwd);
uint32_t new_payload_bytes(const pkt_t *p, const flow_t *fwd, const flow_t *rev);
void improved_signals(const pkt_t *p, summary_t *s, const flow_t *fwd, const flow_t *rev, int dir);

/* summary.c */
summary_t *summary_new(Engine *e);
void update_summary(summary_t *s, conv_t *c, const pkt_t *p, int dir);
void export_conn(const summary_t *s, tcps_conn *c);
summary_t *summary_live(Engine *e, int64_t stream);
int summary_final(Engine *e, summary_t *s);
void summary_drained(Engine *e, int64_t stream);
void summaries_free(Engine *e);

/* sender.c (improved mode) */
typedef struct {
    uint32_t cwnd, ssthresh, in_flight, rounds, srtt_us, min_rtt_us;
    uint8_t phase, limited_by, family, confidence, remote;
} sender_view_t;
int sender_packet(Engine *e, pkt_t *p, conv_t *c, summary_t *s, flow_t *fwd, flow_t *rev, int dir);
int sender_view(Engine *e, int64_t stream, int side, int64_t now, sender_view_t *v);
void sender_free(Engine *e, flow_t *f);

/* ipid.c */
void host_note(Engine *e, const tcps_record *r);
uint8_t ip_id_gap(Engine *e, const pkt_t *p, flow_t *fwd, uint16_t peer_mss, int64_t owner);
void hosts_free(Engine *e);

#endif

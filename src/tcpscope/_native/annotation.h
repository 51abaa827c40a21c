/*
 * annotation.h -- what the analysis engine (analysis/_engine/) says about
 * each frame, and about each connection.
 *
 * One `tcps_annotation` per input record (non-TCP rows have stream = -1), and
 * one `tcps_conn` per connection (Wireshark's tcp.stream). Both layouts are
 * exported at run time by `_engine.layout()` (name, offset, numpy type of
 * every field, computed with offsetof) and the numpy dtypes in
 * analysis/annotation.py are built from them: this header is the only copy.
 *
 * Analysis flags, the rules that set them, and the option/side bits are
 * X-macros so that their names are exported too. The English sentence of each
 * rule lives in analysis/rules.py; a test checks the two lists agree.
 *
 * Conventions
 *   - times are integer nanoseconds from the capture's timestamps;
 *   - frames are the 1-based frame numbers the caller passed in; 0 = none;
 *   - -1 in a signed "value" field means "absent" (Wireshark shows no field).
 */
#ifndef TCPSCOPE_ANNOTATION_H
#define TCPSCOPE_ANNOTATION_H

#include <stdint.h>

/* Wireshark's tcp.analysis.* flags, one bit each (flags field), in the order
 * of Wireshark's TCP_A_* constants where they exist. The name, lower-cased,
 * is the Wireshark field name after "tcp.analysis.". */
#define TCPS_AFLAGS(X) \
    X(RETRANSMISSION, 0) \
    X(LOST_SEGMENT, 1) \
    X(ACK_LOST_SEGMENT, 2) \
    X(KEEP_ALIVE, 3) \
    X(DUPLICATE_ACK, 4) \
    X(ZERO_WINDOW, 5) \
    X(ZERO_WINDOW_PROBE, 6) \
    X(ZERO_WINDOW_PROBE_ACK, 7) \
    X(KEEP_ALIVE_ACK, 8) \
    X(OUT_OF_ORDER, 9) \
    X(FAST_RETRANSMISSION, 10) \
    X(WINDOW_UPDATE, 11) \
    X(WINDOW_FULL, 12) \
    X(REUSED_PORTS, 13) \
    X(SPURIOUS_RETRANSMISSION, 14) \
    X(CAPTURE_DUPLICATE, 15) /* improved mode only: the same packet captured twice */

#define TCPS_AF_COUNT 16

/* The rules: (code, flag, stable identifier). Code 0 is "no rule". The
 * identifier is what users and docs/differences.md refer to; never reuse one
 * for a different meaning. W: Wireshark mode; I: improved mode only. */
#define TCPS_RULES(X) \
    X(1,  RETRANSMISSION, "retx.seq_below_next")            /* W: data/SYN/FIN below the flow's next expected seq */ \
    X(2,  RETRANSMISSION, "retx.implied_by_fast")           /* W: a fast retransmission is also a retransmission */ \
    X(3,  RETRANSMISSION, "retx.implied_by_spurious")       /* W: a spurious retransmission is also a retransmission */ \
    X(4,  FAST_RETRANSMISSION, "fast_retx.dupacks")         /* W: >= 2 dup ACKs for this seq, within 20 ms */ \
    X(5,  SPURIOUS_RETRANSMISSION, "spurious.already_acked") /* W: every byte already ACKed by the peer */ \
    X(6,  OUT_OF_ORDER, "ooo.within_irtt")                  /* W: below next seq, sooner than the handshake RTT */ \
    X(7,  OUT_OF_ORDER, "ooo.within_3ms")                   /* W: below next seq, within 3 ms (no handshake RTT) */ \
    X(8,  LOST_SEGMENT, "lost.seq_above_next")              /* W: seq beyond the flow's next expected seq */ \
    X(9,  ACK_LOST_SEGMENT, "acklost.beyond_hole")          /* W: ACKs past a hole the peer's data left */ \
    X(10, ACK_LOST_SEGMENT, "acklost.beyond_seen")          /* W: ACKs data never seen (first time) */ \
    X(11, DUPLICATE_ACK, "dupack.same_ack_same_win")        /* W: no data, same seq/ack/window as before */ \
    X(12, ZERO_WINDOW, "zwin.window_zero")                  /* W: window 0, not SYN/FIN/RST */ \
    X(13, ZERO_WINDOW_PROBE, "zwp.one_byte_into_closed")    /* W: 1 byte at next seq while the peer's window is 0 */ \
    X(14, ZERO_WINDOW_PROBE_ACK, "zwpack.repeat_after_probe") /* W: same ack, window still 0, after a probe */ \
    X(15, WINDOW_FULL, "wfull.reaches_window_edge")         /* W: the segment ends exactly at the peer's window edge */ \
    X(16, WINDOW_UPDATE, "wupdate.window_changed")          /* W: no data, same seq/ack, new window */ \
    X(17, KEEP_ALIVE, "keepalive.seq_next_minus_one")       /* W: 0 or 1 byte at next seq - 1 */ \
    X(18, KEEP_ALIVE_ACK, "keepalive_ack.repeat_after_keepalive") /* W: same ack and window, after a keep-alive */ \
    X(19, REUSED_PORTS, "reuse.syn_new_isn")                /* W: SYN with a new ISN on a known 4-tuple: new stream */ \
    X(20, REUSED_PORTS, "reuse.synack_new_isn")             /* W: SYN-ACK with a new ISN on a known 4-tuple */ \
    X(21, OUT_OF_ORDER, "ooo.sack_hole_fill")      /* I: first copy of bytes in a hole the peer has not reported */ \
    X(22, CAPTURE_DUPLICATE, "retx.capture_duplicate")       /* I: identical segment and IP ID, again within 2 ms or on another interface */ \
    X(23, RETRANSMISSION, "retx.bytes_seen_before")         /* I: every byte already sent in this flow (whatever the timing) */ \
    X(24, ZERO_WINDOW_PROBE, "zwp.keepalive_while_closed")  /* I: a keep-alive-style probe (seq next - 1) into a zero window */ \
    X(25, RETRANSMISSION, "retx.hole_reported_by_peer")     /* I: first copy seen of bytes the peer already reported missing */ \
    X(26, WINDOW_UPDATE, "wupdate.probe_byte_acked")        /* I: the ACK takes the zero-window probe's byte and reopens */ \
    X(27, RETRANSMISSION, "retx.ip_id_sent_after")          /* I: first copy of hole bytes, but its IP ID is newer than the data past it */ \
    X(28, OUT_OF_ORDER, "ooo.ip_id_sent_before")            /* I: first copy of hole bytes, IP ID older than the data past it: a late original */

#define TCPS_RULE_COUNT 28

/* Per-side bits of tcps_conn.side_flags[]. */
#define TCPS_SIDE_FLAGS(X) \
    X(SAW_SYN, 0) X(SAW_SYNACK, 1) X(SAW_FIN, 2) X(SAW_RST, 3) \
    X(SACK_PERM, 4) X(TIMESTAMPS, 5) X(TFO, 6) X(ECN_SETUP, 7) \
    X(SAW_DATA, 8) X(MSS_SEEN, 9) X(WSCALE_SEEN, 10) \
    X(ACCECN, 11) /* improved mode: its SYN asked for AccECN (AE, CWR and ECE set) */

#define TCPS_AF_ENUM(name, bit) TCPS_AF_##name = (1u << (bit)), TCPS_AFB_##name = (bit),
enum { TCPS_AFLAGS(TCPS_AF_ENUM) };
#define TCPS_SIDE_ENUM(name, bit) TCPS_SIDE_##name = (1u << (bit)),
enum { TCPS_SIDE_FLAGS(TCPS_SIDE_ENUM) };
#define TCPS_RULE_ENUM(code, flag, id) TCPS_RULE_##code = (code),
enum { TCPS_RULES(TCPS_RULE_ENUM) };

/* At most this many evidence entries per frame (more are dropped, counted). */
#define TCPS_MAX_EVIDENCE 6

/* Annotation kinds (what the engine did with the row). */
#define TCPS_ANN_KINDS(X) \
    X(ANN_NOT_TCP, 0)      /* not a TCP segment: no stream */ \
    X(ANN_ANALYSED, 1)     /* tracked and analysed */ \
    X(ANN_NO_SEGLEN, 2)    /* tracked (stream) but not analysed: header length beyond the segment */
#define TCPS_ANN_ENUM(name, value) TCPS_##name = value,
enum { TCPS_ANN_KINDS(TCPS_ANN_ENUM) };

/* The sender model (analysis/_engine/sender.c, docs/congestion.md): the phase
 * after a segment, what limits its sender, the congestion events, what
 * triggered a recovery, and the congestion-control family of a connection. */
#define TCPS_CC_PHASES(X) \
    X(NONE, 0) X(SLOW_START, 1) X(CONGESTION_AVOIDANCE, 2) X(FAST_RECOVERY, 3) \
    X(RTO_RECOVERY, 4) X(CWR, 5)
#define TCPS_CC_LIMITS(X) X(NONE, 0) X(CWND, 1) X(RWND, 2) X(APP, 3) X(UNKNOWN, 4)
#define TCPS_CC_EVENTS(X) \
    X(NONE, 0) \
    X(FAST_RECOVERY, 1)  /* a fast retransmission began a recovery (cc_trigger says why) */ \
    X(RTO, 2)            /* the retransmission timer fired (again, when backing off) */ \
    X(TLP, 3)            /* a tail loss probe (RFC 8985 §7) */ \
    X(CWR, 4)            /* an ECN echo began a window reduction (RFC 3168 §6.1.2) */ \
    X(RECOVERY_END, 5)   /* the recovery (or reduction) ended; episode fields set */ \
    X(UNDO, 6)           /* it ended as spurious: the reduction undone; episode fields set */ \
    X(RESTART, 7)        /* cwnd restarted after idle (RFC 5681 §4.1, RFC 7661) */
#define TCPS_CC_TRIGGERS(X) \
    X(NONE, 0) X(DUPACKS, 1) X(SACK, 2) X(RACK, 3) X(TLP, 4) X(RTO, 5) X(ECE, 6)
#define TCPS_CC_FAMILIES(X) X(UNKNOWN, 0) X(RENO, 1) X(CUBIC, 2) X(BBR, 3)
#define TCPS_CC_ENUM(prefix, name, value) TCPS_##prefix##_##name = value,
#define TCPS_PHASE_ENUM(name, value) TCPS_CC_ENUM(PHASE, name, value)
#define TCPS_LIMIT_ENUM(name, value) TCPS_CC_ENUM(LIMIT, name, value)
#define TCPS_EVENT_ENUM(name, value) TCPS_CC_ENUM(EVENT, name, value)
#define TCPS_TRIGGER_ENUM(name, value) TCPS_CC_ENUM(TRIGGER, name, value)
#define TCPS_FAMILY_ENUM(name, value) TCPS_CC_ENUM(FAMILY, name, value)
enum { TCPS_CC_PHASES(TCPS_PHASE_ENUM) };
enum { TCPS_CC_LIMITS(TCPS_LIMIT_ENUM) };
enum { TCPS_CC_EVENTS(TCPS_EVENT_ENUM) };
enum { TCPS_CC_TRIGGERS(TCPS_TRIGGER_ENUM) };
enum { TCPS_CC_FAMILIES(TCPS_FAMILY_ENUM) };
#define TCPS_CC_LIMIT_COUNT 4  /* cwnd, rwnd, app, unknown: the buckets of time_limited_ms */

/* Improved mode's signals on a frame (tcps_annotation.notes), one bit each: what
 * the segment itself shows beyond the analysis flags (docs/analysis.md "Signals"). */
#define TCPS_NOTES(X) \
    X(ECN_CE, 0)        /* the IP header carries Congestion Experienced (RFC 3168 §5) */ \
    X(ECN_ECE, 1)       /* ECE on a segment after the handshake: the receiver echoes a CE */ \
    X(ECN_CWR, 2)       /* CWR after the handshake: the sender reduced its window */ \
    X(URGENT, 3)        /* URG set: urgent data up to the urgent pointer (RFC 9293 §3.8.5) */ \
    X(ABOVE_MSS, 4)     /* more payload than the peer's MSS: captured before TSO/GSO split it,
                           or after GRO merged segments */ \
    X(DSACK, 5)         /* the first SACK block reports bytes received twice (RFC 2883) */ \
    X(CHALLENGE_ACK, 6) /* an ACK repeating its ack right after the peer's RST or SYN on a
                           synchronized connection (RFC 5961 §3, §4) */ \
    X(RST_NO_ACK, 7)    /* a RST without ACK after the handshake: its sender has no TCB (RFC 9293
                           §3.10.7.1) */
#define TCPS_NOTE_ENUM(name, bit) TCPS_NOTE_##name = (1u << (bit)),
enum { TCPS_NOTES(TCPS_NOTE_ENUM) };

/* Endpoint states (RFC 9293 §3.3.2, plus the observer's UNKNOWN = 0), as
 * analysis/states.py's State enum numbers them; _format.c prints these names
 * for the per-row state arrays of analysis/lifecycle.py (a test checks the two
 * lists agree). */
#define TCPS_STATES(X) \
    X(UNKNOWN, 0) X(CLOSED, 1) X(LISTEN, 2) X(SYN_SENT, 3) X(SYN_RECEIVED, 4) \
    X(ESTABLISHED, 5) X(FIN_WAIT_1, 6) X(FIN_WAIT_2, 7) X(CLOSE_WAIT, 8) X(CLOSING, 9) \
    X(LAST_ACK, 10) X(TIME_WAIT, 11)
#define TCPS_STATE_COUNT 12

typedef struct {
    int64_t frame;            /* as passed in */
    int64_t stream;           /* tcp.stream; -1 if not TCP */
    int64_t rel_seq;          /* tcp.seq: relative to this direction's base, 64-bit (no 2^32 wrap) */
    int64_t rel_ack;          /* tcp.ack: relative to the other direction's base; raw ack if no ACK bit */
    int64_t next_rel_seq;     /* tcp.nxtseq: rel_seq + len (+1 for SYN/FIN) */
    int64_t win_scaled;       /* tcp.window_size: the window as Wireshark scales it */
    int64_t bytes_in_flight;  /* tcp.analysis.bytes_in_flight, -1 if absent */
    int64_t push_bytes_sent;  /* tcp.analysis.push_bytes_sent, -1 if absent */
    int64_t ack_rtt_ns;       /* tcp.analysis.ack_rtt, -1 if absent */
    int64_t acked_frame;      /* tcp.analysis.acks_frame, 0 if absent */
    int64_t irtt_ns;          /* tcp.analysis.initial_rtt, -1 if absent */
    int64_t dup_ack_frame;    /* tcp.analysis.duplicate_ack_frame, 0 if absent */
    int64_t rto_ns;           /* tcp.analysis.rto, -1 if absent */
    int64_t rto_frame;        /* tcp.analysis.rto_frame, 0 if absent */
    int64_t evidence_frame[TCPS_MAX_EVIDENCE]; /* frames that are the evidence of ... */
    uint32_t flags;           /* TCPS_AF_* bits */
    uint32_t dup_ack_num;     /* tcp.analysis.duplicate_ack_num, 0 if absent */
    uint8_t  rule[16];        /* per flag bit: the TCPS_RULE code that set it (0 = none) */
    uint8_t  evidence_flag[TCPS_MAX_EVIDENCE]; /* ... the flag (bit number) of each entry; 0xFF = unused */
    uint8_t  n_evidence;
    int8_t   win_scale;       /* this direction's shift when the packet was seen: -1 unknown, -2 none */
    uint8_t  kind;            /* TCPS_ANN_* */
    uint8_t  from_server;     /* 0: client -> server, 1: server -> client */
    uint8_t  role_guessed;    /* the roles are a guess (no SYN / SYN-ACK seen yet) */
    uint8_t  has_analysis;    /* Wireshark would show a SEQ/ACK analysis tree for this frame */
    uint8_t  tcp_csum_status; /* copied from the record (TCPS_CSUM_*) */
    uint8_t  ip_id_gap;       /* IPv4 IDs this direction skipped just before this segment, while
                                 they otherwise go up by one per segment (a per-connection
                                 counter, as Linux keeps): its packets the capture missed. 0: no
                                 gap, or the IDs show no such counter (any mode) */
    /* The sender model (improved mode; docs/congestion.md), on the segments of a
     * direction that sends data (from its first payload byte); -1 / 0 elsewhere. */
    int64_t  cc_episode_start; /* with cc_episode_end: the frame that began that episode */
    int32_t  cwnd_est;        /* congestion window estimate, segments; -1 absent */
    int32_t  ssthresh_est;    /* slow-start threshold estimate, segments; -1 unknown or infinite */
    int32_t  in_flight;       /* bytes in flight as the sender counts them (RFC 6675 pipe); -1 absent */
    uint32_t cc_round;        /* round trips of this sender so far */
    uint16_t cc_episode_lost; /* with cc_episode_end: segments lost in that episode */
    uint16_t cc_episode_retx; /* ... and segments retransmitted */
    uint8_t  cc_phase;        /* TCPS_PHASE_* after this segment */
    uint8_t  limited_by;      /* TCPS_LIMIT_*: what held the sender back before this segment */
    uint8_t  cc_event;        /* TCPS_EVENT_* that began here: FAST_RECOVERY, RTO, TLP, CWR, RESTART */
    uint8_t  cc_trigger;      /* TCPS_TRIGGER_* of that event */
    uint8_t  cc_episode_end;  /* TCPS_EVENT_RECOVERY_END or _UNDO: an episode ended before this segment */
    uint8_t  cc_episode_trigger; /* ... and what had begun it */
    uint32_t notes;           /* TCPS_NOTE_* bits (improved mode; 0 elsewhere) */
    uint32_t new_bytes;       /* payload bytes the capture shows for the first time (any mode) */
} tcps_annotation;

typedef struct {
    int64_t stream;
    int64_t first_ts;         /* ns */
    int64_t last_ts;
    int64_t first_frame;
    int64_t last_frame;
    int64_t irtt_ns;          /* -1 if no handshake RTT */
    int64_t syn_frame;        /* most recent pure SYN (0 none) */
    int64_t prev_stream;      /* the stream this one replaced on the same 4-tuple (ports reused), -1 */
    uint64_t pkts[2];         /* [0] client -> server, [1] server -> client */
    uint64_t bytes[2];        /* TCP payload bytes */
    uint32_t isn[2];          /* initial sequence number of each side (valid if ISN_KNOWN) */
    uint32_t flag_counts[16]; /* frames carrying each analysis flag */
    uint32_t side_flags[2];   /* TCPS_SIDE_* bits per side */
    uint16_t mss[2];          /* MSS option of each side's SYN (0 none) */
    int8_t   wscale[2];       /* window scale shift offered on each side's SYN (-1 none) */
    uint8_t  client_addr[16];
    uint8_t  server_addr[16];
    uint16_t client_port;
    uint16_t server_port;
    uint16_t iface;           /* interface of the first frame */
    uint8_t  ip_version;
    uint8_t  role_guessed;    /* no SYN seen: client = the side that sent first */
    uint8_t  isn_known[2];    /* the ISN came from a SYN (1) or was guessed from the first seq (0) */
    uint8_t  ecn_setup;       /* bit 0: SYN had ECE+CWR; bit 1: SYN-ACK had ECE (RFC 3168 6.1.1) */
    uint8_t  reused_ports;    /* this stream began with a reused 4-tuple */
    uint8_t  _pad[2];
    /* The sender model, per side (improved mode; docs/congestion.md) */
    uint32_t max_cwnd_est[2]; /* largest cwnd estimate, segments (0: the side sent no data) */
    uint32_t loss_episodes[2];/* fast recoveries, RTO episodes and tail losses the side repaired */
    uint32_t rto_count[2];    /* retransmission timeouts, backoffs included */
    uint32_t time_limited_ms[2][TCPS_CC_LIMIT_COUNT]; /* ms the side waited on cwnd, rwnd, app, unknown */
    uint8_t  cc_guess[2];     /* TCPS_FAMILY_* */
    uint8_t  cc_confidence[2];/* 0..100 */
    uint8_t  _pad2[4];
    /* Bytes and signals, per side (index 0 the client) */
    uint64_t unique_bytes[2]; /* payload bytes, each sequence byte counted once (what the
                                 application wrote, as far as the capture shows it) */
    uint64_t retrans_bytes[2];/* payload bytes of the segments flagged retransmission */
    uint32_t ecn_ce[2];       /* frames marked CE (improved mode, as all of these) */
    uint32_t ecn_ece[2];      /* non-SYN segments with ECE */
    uint32_t ecn_cwr[2];      /* non-SYN segments with CWR */
    uint32_t urgent[2];       /* segments with URG */
    uint32_t above_mss[2];    /* segments larger than the peer's MSS (TSO / GRO at the capture point) */
    uint32_t dsack[2];        /* ACKs carrying a D-SACK block */
    uint32_t challenge_acks[2];
    uint32_t tlp_count[2];    /* tail loss probes (the sender model's TLP events) */
} tcps_conn;

#endif

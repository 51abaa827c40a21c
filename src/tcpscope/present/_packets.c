/*
 * _packets.c -- the bulk path of `tcpscope packets`: JSON Lines / CSV text for
 * a batch of (record, annotation) rows, built in C so that writing the
 * per-packet records keeps up with the analysis (millions of rows a second).
 *
 * Presentation only: everything it prints is already decided by the dissector
 * (record.h), the engine (annotation.h) and the lifecycle layer (the state and
 * event columns passed in); this file spells it out. present/packets.py calls
 * it; the schema is DESIGN.md's "Per-packet record", documented in
 * docs/analysis.md. Flag letters come from tcpflags.h, addresses are written
 * as inet_ntop writes them (wire/text.py's rule).
 *
 *   format_packets   the module's one function: buffers in, bytes out
 *   row_jsonl, row_csv   one row, field by field, into a growable buffer
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "record.h"
#include "annotation.h"
#include "tcpflags.h"

/* ------------------------------------------------------------------ */
/* A growable output buffer                                            */
/* ------------------------------------------------------------------ */

typedef struct {
    char *p;
    size_t n, cap;
    int failed;
} buf_t;

static int buf_need(buf_t *b, size_t extra)
{
    if (b->n + extra <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->n + extra)
        cap *= 2;
    char *q = PyMem_RawRealloc(b->p, cap);
    if (!q) {
        b->failed = 1;
        return 0;
    }
    b->p = q;
    b->cap = cap;
    return 1;
}

static inline void put(buf_t *b, const char *s, size_t len)
{
    if (!buf_need(b, len))
        return;
    memcpy(b->p + b->n, s, len);
    b->n += len;
}

#define PUTS(b, lit) put((b), (lit), sizeof(lit) - 1)

static inline void put_str(buf_t *b, const char *s) { put(b, s, strlen(s)); }

static inline void put_u64(buf_t *b, uint64_t v)
{
    char tmp[24];
    int i = 24;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(b, tmp + i, (size_t)(24 - i));
}

static inline void put_i64(buf_t *b, int64_t v)
{
    if (v < 0) {
        PUTS(b, "-");
        put_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        put_u64(b, (uint64_t)v);
    }
}

/* Nanoseconds as seconds with nine decimals (a JSON number). */
static void put_secs(buf_t *b, int64_t ns)
{
    uint64_t a = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    if (ns < 0)
        PUTS(b, "-");
    put_u64(b, a / 1000000000u);
    char frac[10];
    uint64_t f = a % 1000000000u;
    frac[0] = '.';
    for (int i = 9; i >= 1; i--) {
        frac[i] = (char)('0' + f % 10);
        f /= 10;
    }
    put(b, frac, 10);
}

/* ------------------------------------------------------------------ */
/* Names                                                               */
/* ------------------------------------------------------------------ */

static char flag_name[16][32];        /* lower-case Wireshark field names by bit */
static const char *rule_id[256];

#define SET_FLAG_NAME(name, bit) { \
        const char *s = #name; size_t i = 0; \
        for (; s[i] && i < 31; i++) flag_name[bit][i] = (char)tolower((unsigned char)s[i]); \
        flag_name[bit][i] = 0; }
#define SET_RULE_ID(code, flag, id) rule_id[code] = id;

/* The sender model's names (annotation.h), lower case. */
static char phase_name[8][32], limit_name[8][32], event_name[8][32];

#define LOWER_INTO(table, name, value) { \
        const char *s = #name; size_t i = 0; \
        for (; s[i] && i < 31; i++) table[value][i] = (char)tolower((unsigned char)s[i]); \
        table[value][i] = 0; }
#define SET_PHASE(name, value) LOWER_INTO(phase_name, name, value)
#define SET_LIMIT(name, value) LOWER_INTO(limit_name, name, value)
#define SET_EVENT(name, value) LOWER_INTO(event_name, name, value)


static void format_init(void)
{
    TCPS_AFLAGS(SET_FLAG_NAME)
    TCPS_RULES(SET_RULE_ID)
    TCPS_CC_PHASES(SET_PHASE)
    TCPS_CC_LIMITS(SET_LIMIT)
    TCPS_CC_EVENTS(SET_EVENT)
}

/* Wireshark's display order of the flags (as analysis/annotation.py). */
static const int display_order[TCPS_AF_COUNT] = {
    TCPS_AFB_REUSED_PORTS, TCPS_AFB_RETRANSMISSION, TCPS_AFB_FAST_RETRANSMISSION,
    TCPS_AFB_SPURIOUS_RETRANSMISSION, TCPS_AFB_OUT_OF_ORDER, TCPS_AFB_LOST_SEGMENT,
    TCPS_AFB_ACK_LOST_SEGMENT, TCPS_AFB_WINDOW_UPDATE, TCPS_AFB_WINDOW_FULL, TCPS_AFB_KEEP_ALIVE,
    TCPS_AFB_KEEP_ALIVE_ACK, TCPS_AFB_DUPLICATE_ACK, TCPS_AFB_ZERO_WINDOW_PROBE,
    TCPS_AFB_ZERO_WINDOW, TCPS_AFB_ZERO_WINDOW_PROBE_ACK, TCPS_AFB_CAPTURE_DUPLICATE,
};

/* Endpoint state names (annotation.h TCPS_STATES = analysis/states.py State). */
#define STATE_NAME(name, value) [value] = #name,
static const char *const state_name[TCPS_STATE_COUNT] = { TCPS_STATES(STATE_NAME) };

/* The lifecycle columns of a slice (analysis/lifecycle.py): each endpoint's
 * state after every row, and a sparse list of the rows that caused events
 * (rows ascending; the names of row ev_rows[k] are blob[off[k]:off[k+1]],
 * separated by commas). All optional: without them state and events are null / []. */
typedef struct {
    const uint8_t *cstate, *sstate;
    const int64_t *ev_rows, *ev_off;
    const char *blob;
    Py_ssize_t ev_n, k;
} life_t;

static void put_state(buf_t *b, const uint8_t *st, Py_ssize_t i, int json)
{
    if (st && st[i] < TCPS_STATE_COUNT) {
        if (json)
            PUTS(b, "\"");
        put_str(b, state_name[st[i]]);
        if (json)
            PUTS(b, "\"");
    } else if (json) {
        PUTS(b, "null");
    }
}

/* The events of row i: JSON strings ("a","b") or CSV a;b. */
static void put_events(buf_t *b, life_t *L, Py_ssize_t i, int json)
{
    while (L->k < L->ev_n && L->ev_rows[L->k] < i)
        L->k++;
    if (L->k >= L->ev_n || L->ev_rows[L->k] != i)
        return;
    const char *p = L->blob + L->ev_off[L->k], *end = L->blob + L->ev_off[L->k + 1];
    if (p == end)
        return;
    if (json)
        PUTS(b, "\"");
    const char *run = p;
    for (; p < end; p++) {
        if (*p != ',')
            continue;
        put(b, run, (size_t)(p - run));
        if (json)
            PUTS(b, "\",\"");
        else
            PUTS(b, ";");
        run = p + 1;
    }
    put(b, run, (size_t)(end - run));
    if (json)
        PUTS(b, "\"");
}

/* The sender model's columns: the five estimates, then the events (an episode
 * that ended, then one that began). Null (empty in CSV) where there is none. */
static void put_cc(buf_t *b, const tcps_annotation *a, int json)
{
    const char *sep = json ? ",\"" : ",";
    int have = a->cwnd_est > 0;
    if (!have) {  /* not a data sender's segment (every row in wireshark mode): one copy */
        if (json)
            PUTS(b, ",\"cwnd_est\":null,\"ssthresh_est\":null,\"in_flight\":null,"
                    "\"cc_phase\":null,\"limited_by\":null,\"cc_events\":[]");
        else
            PUTS(b, ",,,,,,");
        return;
    }
#define KEY(k) do { put_str(b, sep); if (json) { PUTS(b, k); PUTS(b, "\":"); } } while (0)
#define NUM(k, v) do { KEY(k); if (have && (v) >= 0) put_i64(b, (v)); else if (json) PUTS(b, "null"); } while (0)
#define NAME(k, table, v) do { KEY(k); \
        if (have && (v) && (v) < 8) { if (json) PUTS(b, "\""); put_str(b, table[v]); if (json) PUTS(b, "\""); } \
        else if (json) PUTS(b, "null"); } while (0)
    NUM("cwnd_est", a->cwnd_est);
    NUM("ssthresh_est", a->ssthresh_est);
    NUM("in_flight", a->in_flight);
    NAME("cc_phase", phase_name, a->cc_phase);
    NAME("limited_by", limit_name, a->limited_by);
    KEY("cc_events");
    if (json)
        PUTS(b, "[");
    int n = 0;
    uint8_t evs[2] = {a->cc_episode_end, a->cc_event};
    for (int i = 0; i < 2; i++) {
        if (!evs[i] || evs[i] >= 8)
            continue;
        if (n++)
            put(b, json ? "," : ";", 1);
        if (json)
            PUTS(b, "\"");
        put_str(b, event_name[evs[i]]);
        if (json)
            PUTS(b, "\"");
    }
    if (json)
        PUTS(b, "]");
#undef NAME
#undef NUM
#undef KEY
}

static const char *csum_name(uint8_t s)
{
    switch (s) {
    case TCPS_CSUM_OK: return "ok";
    case TCPS_CSUM_BAD: return "bad";
    case TCPS_CSUM_OFFLOAD: return "offload";
    default: return "unverified";
    }
}

/* tcpdump's flag letters (tcpflags.h). */
static void put_tcp_flags(buf_t *b, uint16_t fl)
{
    char s[10];
    put(b, s, (size_t)tcps_flags_text(fl, s));
}

/* Addresses as inet_ntop writes them, with a two-entry cache (both directions). */
typedef struct {
    uint8_t key[17];
    char text[INET6_ADDRSTRLEN];
    size_t len;
} addr_cache_t;

static void put_addr(buf_t *b, const uint8_t *a, uint8_t version, addr_cache_t cache[2], int *next)
{
    for (int i = 0; i < 2; i++)
        if (cache[i].key[16] == version && memcmp(cache[i].key, a, 16) == 0) {
            put(b, cache[i].text, cache[i].len);
            return;
        }
    addr_cache_t *c = &cache[*next];
    *next ^= 1;
    memcpy(c->key, a, 16);
    c->key[16] = version;
    if (!inet_ntop(version == 6 ? AF_INET6 : AF_INET, a, c->text, sizeof(c->text)))
        strcpy(c->text, "?");
    c->len = strlen(c->text);
    put(b, c->text, c->len);
}

/* The options summary as short strings (the record keeps a summary, not the list). */
static void put_options(buf_t *b, const tcps_record *r, int json, char sep)
{
    int first = 1;
#define OPT(...) do { \
        if (!first) { if (json) PUTS(b, ","); else put(b, &sep, 1); } \
        first = 0; if (json) PUTS(b, "\""); __VA_ARGS__; if (json) PUTS(b, "\""); } while (0)
    uint16_t o = r->opt_present;
    if (o & TCPS_OPT_MSS) OPT(PUTS(b, "mss "); put_u64(b, r->mss));
    if (o & TCPS_OPT_WSCALE) OPT(PUTS(b, "wscale "); put_u64(b, r->wscale));
    if (o & TCPS_OPT_SACK_PERM) OPT(PUTS(b, "sackOK"));
    if (o & TCPS_OPT_SACK) OPT(
        PUTS(b, "sack "); put_u64(b, r->sack_count);
        for (int i = 0; i < r->sack_count && i < TCPS_MAX_SACK; i++) {
            PUTS(b, " {"); put_u64(b, r->sack[2 * i]); PUTS(b, ":"); put_u64(b, r->sack[2 * i + 1]); PUTS(b, "}");
        });
    if (o & TCPS_OPT_TIMESTAMP) OPT(PUTS(b, "TS val "); put_u64(b, r->ts_val); PUTS(b, " ecr "); put_u64(b, r->ts_ecr));
    if (o & TCPS_OPT_TFO) OPT(PUTS(b, "tfo"));
    if (o & TCPS_OPT_MPTCP) OPT(PUTS(b, "mptcp"));
    if (o & TCPS_OPT_MD5) OPT(PUTS(b, "md5"));
    if (o & TCPS_OPT_AO) OPT(PUTS(b, "tcp-ao"));
    if (o & TCPS_OPT_UTO) OPT(PUTS(b, "uto"));
    if (o & TCPS_OPT_EXP) OPT(PUTS(b, "exp"));
    if (o & TCPS_OPT_UNKNOWN) OPT(PUTS(b, "unknown"));
    if (o & TCPS_OPT_EOL) OPT(PUTS(b, "eol"));
#undef OPT
}

/* ------------------------------------------------------------------ */
/* One row                                                             */
/* ------------------------------------------------------------------ */

static void put_analysis_list(buf_t *b, uint32_t flags, int json)
{
    int first = 1;
    for (int k = 0; k < TCPS_AF_COUNT; k++) {
        int bit = display_order[k];
        if (!(flags & (1u << bit)))
            continue;
        if (!first)
            put(b, json ? "," : ";", 1);
        first = 0;
        if (json)
            PUTS(b, "\"");
        put_str(b, flag_name[bit]);
        if (json)
            PUTS(b, "\"");
    }
}

static void put_rules(buf_t *b, const tcps_annotation *a, int json)
{
    int first = 1;
    for (int k = 0; k < TCPS_AF_COUNT; k++) {
        int bit = display_order[k];
        if (!(a->flags & (1u << bit)))
            continue;
        const char *id = rule_id[a->rule[bit]] ? rule_id[a->rule[bit]] : "";
        if (!first)
            put(b, json ? "," : ";", 1);
        first = 0;
        if (json) {
            PUTS(b, "\"");
            put_str(b, flag_name[bit]);
            PUTS(b, "\":{\"rule\":\"");
            put_str(b, id);
            PUTS(b, "\",\"evidence\":[");
        } else {
            put_str(b, flag_name[bit]);
            PUTS(b, "=");
            put_str(b, id);
        }
        int n = 0;
        for (int i = 0; i < a->n_evidence && i < TCPS_MAX_EVIDENCE; i++) {
            if (a->evidence_flag[i] != bit)
                continue;
            if (json) {
                if (n)
                    PUTS(b, ",");
            } else {
                put(b, n ? "+" : "@", 1);
            }
            put_i64(b, a->evidence_frame[i]);
            n++;
        }
        if (json)
            PUTS(b, "]}");
    }
}

static void row_jsonl(buf_t *b, const tcps_record *r, const tcps_annotation *a, int64_t ts,
                      addr_cache_t cache[2], int *next, life_t *L, Py_ssize_t i)
{
    int has_ack = (r->tcp_flags & TCPS_ACK) != 0;
    PUTS(b, "{\"frame\":");
    put_i64(b, a->frame);
    PUTS(b, ",\"ts\":");
    put_secs(b, ts);
    PUTS(b, ",\"stream\":");
    put_i64(b, a->stream);
    PUTS(b, ",\"src\":\"");
    put_addr(b, r->src, r->ip_version, cache, next);
    PUTS(b, "\",\"sport\":");
    put_u64(b, r->sport);
    PUTS(b, ",\"dst\":\"");
    put_addr(b, r->dst, r->ip_version, cache, next);
    PUTS(b, "\",\"dport\":");
    put_u64(b, r->dport);
    PUTS(b, ",\"flags\":\"");
    put_tcp_flags(b, r->tcp_flags);
    PUTS(b, "\",\"seq\":");
    put_u64(b, r->seq);
    PUTS(b, ",\"ack\":");
    put_u64(b, r->ack);
    PUTS(b, ",\"rel_seq\":");
    put_i64(b, a->rel_seq);
    PUTS(b, ",\"rel_ack\":");
    if (has_ack && a->kind == TCPS_ANN_ANALYSED)
        put_i64(b, a->rel_ack);
    else
        PUTS(b, "null");
    PUTS(b, ",\"len\":");
    put_u64(b, r->payload_len);
    PUTS(b, ",\"win\":");
    put_u64(b, r->win);
    PUTS(b, ",\"win_scaled\":");
    if (a->win_scale == -1 && !(r->tcp_flags & TCPS_SYN))
        PUTS(b, "null");
    else
        put_i64(b, a->win_scaled);
    PUTS(b, ",\"options\":[");
    put_options(b, r, 1, ',');
    PUTS(b, "],\"checksum\":\"");
    put_str(b, csum_name(r->tcp_csum_status));
    PUTS(b, "\",\"analysis\":[");
    put_analysis_list(b, a->flags, 1);
    PUTS(b, "],\"dup_ack_num\":");
    if (a->dup_ack_num)
        put_u64(b, a->dup_ack_num);
    else
        PUTS(b, "null");
    PUTS(b, ",\"bytes_in_flight\":");
    if (a->bytes_in_flight >= 0)
        put_i64(b, a->bytes_in_flight);
    else
        PUTS(b, "null");
    PUTS(b, ",\"ack_rtt\":");
    if (a->ack_rtt_ns != -1)
        put_secs(b, a->ack_rtt_ns);
    else
        PUTS(b, "null");
    PUTS(b, ",\"acks_frame\":");
    if (a->acked_frame)
        put_i64(b, a->acked_frame);
    else
        PUTS(b, "null");
    PUTS(b, ",\"irtt\":");
    if (a->irtt_ns != -1)
        put_secs(b, a->irtt_ns);
    else
        PUTS(b, "null");
    PUTS(b, ",\"state\":{\"client\":");
    put_state(b, L->cstate, i, 1);
    PUTS(b, ",\"server\":");
    put_state(b, L->sstate, i, 1);
    PUTS(b, "},\"events\":[");
    put_events(b, L, i, 1);
    PUTS(b, "],\"rules\":{");
    put_rules(b, a, 1);
    PUTS(b, "}");
    put_cc(b, a, 1);
    PUTS(b, "}\n");
}

static const char CSV_HEADER[] =
    "frame,ts,stream,src,sport,dst,dport,flags,seq,ack,rel_seq,rel_ack,len,win,win_scaled,options,"
    "checksum,analysis,dup_ack_num,bytes_in_flight,ack_rtt,acks_frame,irtt,client_state,server_state,"
    "events,rules,cwnd_est,ssthresh_est,in_flight,cc_phase,limited_by,cc_events\n";

static void row_csv(buf_t *b, const tcps_record *r, const tcps_annotation *a, int64_t ts,
                    addr_cache_t cache[2], int *next, life_t *L, Py_ssize_t i)
{
    int has_ack = (r->tcp_flags & TCPS_ACK) != 0;
    put_i64(b, a->frame);
    PUTS(b, ",");
    put_secs(b, ts);
    PUTS(b, ",");
    put_i64(b, a->stream);
    PUTS(b, ",");
    put_addr(b, r->src, r->ip_version, cache, next);
    PUTS(b, ",");
    put_u64(b, r->sport);
    PUTS(b, ",");
    put_addr(b, r->dst, r->ip_version, cache, next);
    PUTS(b, ",");
    put_u64(b, r->dport);
    PUTS(b, ",");
    put_tcp_flags(b, r->tcp_flags);
    PUTS(b, ",");
    put_u64(b, r->seq);
    PUTS(b, ",");
    put_u64(b, r->ack);
    PUTS(b, ",");
    put_i64(b, a->rel_seq);
    PUTS(b, ",");
    if (has_ack && a->kind == TCPS_ANN_ANALYSED)
        put_i64(b, a->rel_ack);
    PUTS(b, ",");
    put_u64(b, r->payload_len);
    PUTS(b, ",");
    put_u64(b, r->win);
    PUTS(b, ",");
    if (!(a->win_scale == -1 && !(r->tcp_flags & TCPS_SYN)))
        put_i64(b, a->win_scaled);
    PUTS(b, ",");
    put_options(b, r, 0, ';');
    PUTS(b, ",");
    put_str(b, csum_name(r->tcp_csum_status));
    PUTS(b, ",");
    put_analysis_list(b, a->flags, 0);
    PUTS(b, ",");
    if (a->dup_ack_num)
        put_u64(b, a->dup_ack_num);
    PUTS(b, ",");
    if (a->bytes_in_flight >= 0)
        put_i64(b, a->bytes_in_flight);
    PUTS(b, ",");
    if (a->ack_rtt_ns != -1)
        put_secs(b, a->ack_rtt_ns);
    PUTS(b, ",");
    if (a->acked_frame)
        put_i64(b, a->acked_frame);
    PUTS(b, ",");
    if (a->irtt_ns != -1)
        put_secs(b, a->irtt_ns);
    PUTS(b, ",");
    put_state(b, L->cstate, i, 0);
    PUTS(b, ",");
    put_state(b, L->sstate, i, 0);
    PUTS(b, ",");
    put_events(b, L, i, 0);
    PUTS(b, ",");
    put_rules(b, a, 0);
    put_cc(b, a, 0);
    PUTS(b, "\n");
}

/* An optional read-only buffer argument (None = absent). */
static int get_opt_buffer(PyObject *o, Py_buffer *view, int *have)
{
    *have = 0;
    if (o == NULL || o == Py_None)
        return 0;
    if (PyObject_GetBuffer(o, view, PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    *have = 1;
    return 0;
}

/* format_packets(records, annotations, ts_ns, csv=False, header=False,
 *                client_state=None, server_state=None, ev_rows=None, ev_off=None,
 *                ev_blob=None) -> bytes */
static PyObject *format_packets(PyObject *self, PyObject *args)
{
    PyObject *ro, *ao, *to;
    PyObject *co = NULL, *so = NULL, *ero = NULL, *eoo = NULL, *ebo = NULL;
    int csv = 0, header = 0;
    if (!PyArg_ParseTuple(args, "OOO|ppOOOOO", &ro, &ao, &to, &csv, &header, &co, &so, &ero, &eoo,
                          &ebo))
        return NULL;
    Py_buffer bufs[8];
    int have[8] = {0};
    PyObject *objs[8] = {ro, ao, to, co, so, ero, eoo, ebo};
    PyObject *result = NULL;
    for (int j = 0; j < 8; j++) {
        if (j < 3) {
            if (PyObject_GetBuffer(objs[j], &bufs[j], PyBUF_C_CONTIGUOUS) < 0)
                goto done;
            have[j] = 1;
        } else if (get_opt_buffer(objs[j], &bufs[j], &have[j]) < 0) {
            goto done;
        }
    }
    Py_ssize_t n = bufs[0].len / (Py_ssize_t)sizeof(tcps_record);
    if (bufs[0].len % (Py_ssize_t)sizeof(tcps_record) ||
        bufs[1].len != n * (Py_ssize_t)sizeof(tcps_annotation) || bufs[2].len != n * 8) {
        PyErr_SetString(PyExc_ValueError, "records, annotations and ts_ns must be parallel arrays");
        goto done;
    }
    life_t L = {NULL, NULL, NULL, NULL, NULL, 0, 0};
    if (have[3] != have[4] || (have[3] && (bufs[3].len != n || bufs[4].len != n))) {
        PyErr_SetString(PyExc_ValueError, "client_state and server_state must be uint8, one per row");
        goto done;
    }
    if (have[3]) {
        L.cstate = bufs[3].buf;
        L.sstate = bufs[4].buf;
    }
    if (have[5] || have[6] || have[7]) {
        if (!(have[5] && have[6] && have[7]) || bufs[5].len % 8 ||
            bufs[6].len != bufs[5].len + 8) {
            PyErr_SetString(PyExc_ValueError,
                            "ev_rows (int64), ev_off (int64, one more) and ev_blob go together");
            goto done;
        }
        L.ev_rows = bufs[5].buf;
        L.ev_off = bufs[6].buf;
        L.blob = bufs[7].buf;
        L.ev_n = bufs[5].len / 8;
        /* Check it all up front: rows ascending, offsets inside the blob, names [a-z0-9_]. */
        if (L.ev_off[0] < 0 || L.ev_off[L.ev_n] > bufs[7].len) {
            PyErr_SetString(PyExc_ValueError, "ev_off points outside ev_blob");
            goto done;
        }
        for (Py_ssize_t k = 0; k < L.ev_n; k++) {
            if ((k && L.ev_rows[k] <= L.ev_rows[k - 1]) || L.ev_off[k + 1] < L.ev_off[k]) {
                PyErr_SetString(PyExc_ValueError, "ev_rows must ascend and ev_off must not decrease");
                goto done;
            }
        }
        for (Py_ssize_t c = L.ev_off[0]; c < L.ev_off[L.ev_n]; c++) {
            char ch = L.blob[c];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == ',')) {
                PyErr_SetString(PyExc_ValueError, "event names are [a-z0-9_], comma-separated");
                goto done;
            }
        }
    }
    buf_t b = {NULL, 0, 0, 0};
    const tcps_record *recs = bufs[0].buf;
    const tcps_annotation *anns = bufs[1].buf;
    const int64_t *ts = bufs[2].buf;
    addr_cache_t cache[2];
    memset(cache, 0, sizeof(cache));
    int next = 0;
    Py_BEGIN_ALLOW_THREADS
    if (csv && header)
        put(&b, CSV_HEADER, sizeof(CSV_HEADER) - 1);
    for (Py_ssize_t i = 0; i < n && !b.failed; i++) {
        if (anns[i].stream < 0)
            continue;
        if (csv)
            row_csv(&b, &recs[i], &anns[i], ts[i], cache, &next, &L, i);
        else
            row_jsonl(&b, &recs[i], &anns[i], ts[i], cache, &next, &L, i);
    }
    Py_END_ALLOW_THREADS
    if (b.failed)
        PyErr_NoMemory();
    else
        result = PyBytes_FromStringAndSize(b.p ? b.p : "", (Py_ssize_t)b.n);
    PyMem_RawFree(b.p);
done:
    for (int j = 0; j < 8; j++)
        if (have[j])
            PyBuffer_Release(&bufs[j]);
    return result;
}

static PyMethodDef module_methods[] = {
    {"format_packets", format_packets, METH_VARARGS,
     "format_packets(records, annotations, ts_ns, csv=False, header=False, client_state=None, "
     "server_state=None, ev_rows=None, ev_off=None, ev_blob=None) -> bytes: one JSON line "
     "(or CSV row) per TCP row."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_packets",
    "The per-packet text of `tcpscope packets` (see present/packets.py).", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__packets(void)
{
    format_init();
    return PyModule_Create(&moduledef);
}

/*
 * module.c -- the Python face of the engine: `tcpscope.analysis._engine`.
 *
 *   Engine(mode, close_timeout_ns, max_closed)
 *       .feed(records, ts_ns, frames, iface) -> bytearray of tcps_annotation
 *       .connections([start])                -> bytearray of tcps_conn
 *       .stats()                             -> counters and memory in use
 *   layout()  the annotation and connection layouts (name, offset, numpy type)
 *   enums()   the names and values of flags, side bits, kinds and rules
 *
 * feed() checks its buffers and runs the batch (packet.c) without the GIL;
 * analysis/engine.py wraps it all.
 */
#include "engine.h"

static int get_buffer(PyObject *obj, Py_buffer *view, const char *what, Py_ssize_t itemsize)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (itemsize && view->itemsize != itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: items of %zd bytes expected, got %zd", what, itemsize,
                     view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *Engine_feed(Engine *e, PyObject *args)
{
    PyObject *rec_obj, *ts_obj, *frame_obj, *iface_obj;
    if (!PyArg_ParseTuple(args, "OOOO", &rec_obj, &ts_obj, &frame_obj, &iface_obj))
        return NULL;
    Py_buffer rb, tb, fb, ib;
    if (get_buffer(rec_obj, &rb, "records", 0) < 0)
        return NULL;
    if (rb.len % (Py_ssize_t)sizeof(tcps_record)) {
        PyBuffer_Release(&rb);
        return PyErr_Format(PyExc_ValueError, "records: not a whole number of %zu-byte records",
                            sizeof(tcps_record));
    }
    Py_ssize_t n = rb.len / (Py_ssize_t)sizeof(tcps_record);
    if (get_buffer(ts_obj, &tb, "ts_ns", 8) < 0) {
        PyBuffer_Release(&rb);
        return NULL;
    }
    if (get_buffer(frame_obj, &fb, "frames", 8) < 0) {
        PyBuffer_Release(&rb);
        PyBuffer_Release(&tb);
        return NULL;
    }
    if (get_buffer(iface_obj, &ib, "iface", 2) < 0) {
        PyBuffer_Release(&rb);
        PyBuffer_Release(&tb);
        PyBuffer_Release(&fb);
        return NULL;
    }
    PyObject *result = NULL;
    if (e->busy) {
        PyErr_SetString(PyExc_RuntimeError, "this Engine is already feeding in another thread");
        goto done;
    }
    if (tb.len / 8 != n || fb.len / 8 != n || ib.len / 2 != n) {
        PyErr_SetString(PyExc_ValueError, "records, ts_ns, frames and iface must have the same length");
        goto done;
    }
    result = PyByteArray_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(tcps_annotation));
    if (!result)
        goto done;
    tcps_annotation *out = (tcps_annotation *)PyByteArray_AS_STRING(result);
    const tcps_record *recs = (const tcps_record *)rb.buf;
    const int64_t *ts = (const int64_t *)tb.buf, *frames = (const int64_t *)fb.buf;
    const uint16_t *ifc = (const uint16_t *)ib.buf;
    e->busy = 1;
    int failed;
    Py_BEGIN_ALLOW_THREADS
    failed = engine_feed(e, recs, ts, frames, ifc, out, n) < 0;
    Py_END_ALLOW_THREADS
    e->busy = 0;
    if (failed) {
        Py_CLEAR(result);
        PyErr_NoMemory();
    }
done:
    PyBuffer_Release(&rb);
    PyBuffer_Release(&tb);
    PyBuffer_Release(&fb);
    PyBuffer_Release(&ib);
    return result;
}

static PyObject *Engine_connections(Engine *e, PyObject *args)
{
    Py_ssize_t start = 0;
    if (!PyArg_ParseTuple(args, "|n", &start))
        return NULL;
    if (e->busy) {
        PyErr_SetString(PyExc_RuntimeError, "this Engine is feeding in another thread");
        return NULL;
    }
    if (start < 0 || (size_t)start > e->n_streams)
        start = (Py_ssize_t)e->n_streams;
    Py_ssize_t n = (Py_ssize_t)e->n_streams - start, k = 0;
    PyObject *result = PyByteArray_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(tcps_conn));
    if (!result)
        return NULL;
    tcps_conn *out = (tcps_conn *)PyByteArray_AS_STRING(result);
    for (Py_ssize_t i = 0; i < n; i++) {
        const summary_t *s = summary_live(e, start + i);
        if (s)
            export_conn(s, &out[k++]);
    }
    if (k < n && PyByteArray_Resize(result, k * (Py_ssize_t)sizeof(tcps_conn)) < 0)
        Py_CLEAR(result);
    return result;
}

/* The rows of the streams that became final since the last call (no frame can reach
 * them any more), in that order; their summaries are freed. */
static PyObject *Engine_drain(Engine *e, PyObject *unused)
{
    if (e->busy) {
        PyErr_SetString(PyExc_RuntimeError, "this Engine is feeding in another thread");
        return NULL;
    }
    Py_ssize_t n = (Py_ssize_t)e->final_n;
    PyObject *result = PyByteArray_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(tcps_conn));
    if (!result)
        return NULL;
    tcps_conn *out = (tcps_conn *)PyByteArray_AS_STRING(result);
    for (Py_ssize_t i = 0; i < n; i++) {
        export_conn(SUM(e, e->final[i]), &out[i]);
        summary_drained(e, e->final[i]);
    }
    e->final_n = 0;
    return result;
}

static PyObject *Engine_stats(Engine *e, PyObject *unused)
{
    size_t conv_bytes = e->active_convs * sizeof(conv_t) + e->table_used * sizeof(entry_t) +
                        e->table_cap * sizeof(slot_t) + e->closed_cap * sizeof(int64_t);
    return Py_BuildValue("{s:K,s:K,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:K,s:K,s:K,s:n,s:n,s:K,s:n}",
                         "frames", (unsigned long long)e->frames_seen,
                         "tcp_frames", (unsigned long long)e->tcp_seen,
                         "streams", (Py_ssize_t)e->n_streams,
                         "active_conversations", (Py_ssize_t)e->active_convs,
                         "state_bytes", (Py_ssize_t)(conv_bytes + e->seg_bytes + e->sender_bytes),
                         "summary_bytes", (Py_ssize_t)(e->live_blocks * SUM_BLOCK * sizeof(summary_t)),
                         "segment_bytes", (Py_ssize_t)e->seg_bytes,
                         "peak_segment_bytes", (Py_ssize_t)e->peak_seg_bytes,
                         "sender_bytes", (Py_ssize_t)e->sender_bytes,
                         "evidence_dropped", (unsigned long long)e->evidence_dropped,
                         "evicted", (unsigned long long)e->evicted,
                         "resurrected", (unsigned long long)e->resurrected,
                         "closed_waiting", (Py_ssize_t)e->closed_n,
                         "attempts", (Py_ssize_t)e->lcount[LIST_ATTEMPT],
                         "retired", (unsigned long long)e->retired,
                         "final_waiting", (Py_ssize_t)e->final_n);
}

static PyObject *Engine_sender_state(Engine *e, PyObject *args)
{
    long long stream, now = 0;
    int side;
    if (!PyArg_ParseTuple(args, "Li|L", &stream, &side, &now))
        return NULL;
    if (e->busy) {
        PyErr_SetString(PyExc_RuntimeError, "this Engine is feeding in another thread");
        return NULL;
    }
    sender_view_t v;
    if (!summary_live(e, stream) || !sender_view(e, stream, side ? 1 : 0, now, &v))
        Py_RETURN_NONE;
    return Py_BuildValue("{s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:i,s:i,s:i,s:O}", "cwnd", v.cwnd,
                         "ssthresh", v.ssthresh, "in_flight", v.in_flight, "rounds", v.rounds,
                         "srtt_us", v.srtt_us, "min_rtt_us", v.min_rtt_us, "phase", v.phase,
                         "limited_by", v.limited_by, "family", v.family, "confidence",
                         v.confidence, "remote", v.remote ? Py_True : Py_False);
}

static int Engine_init(Engine *e, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"mode", "close_timeout_ns", "max_closed", "attempt_timeout_ns",
                             "max_attempts", "max_evicted", NULL};
    int mode = MODE_WIRESHARK;
    long long close_timeout = 60LL * 1000000000LL, attempt_timeout = 120LL * 1000000000LL;
    Py_ssize_t max_closed = 10000, max_attempts = 4096, max_evicted = 16384;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|iLnLnn", kwlist, &mode, &close_timeout,
                                     &max_closed, &attempt_timeout, &max_attempts, &max_evicted))
        return -1;
    if (close_timeout < 0 || max_closed < 0 || attempt_timeout < 0 || max_attempts < 1 ||
        max_evicted < 0) {
        PyErr_SetString(PyExc_ValueError, "timeouts, max_closed and max_evicted must be >= 0, "
                                          "max_attempts >= 1");
        return -1;
    }
    e->close_timeout_ns = close_timeout;
    e->max_closed = (size_t)max_closed;
    e->attempt_timeout_ns = attempt_timeout;
    e->max_attempts = (size_t)max_attempts;
    e->max_evicted = (size_t)max_evicted;
    e->now = INT64_MIN;
    if (mode != MODE_WIRESHARK && mode != MODE_IMPROVED) {
        PyErr_SetString(PyExc_ValueError, "mode must be 0 (wireshark) or 1 (improved)");
        return -1;
    }
    e->mode = mode;
    return 0;
}

/* Entries first: freeing one clears its stream's summary's link to it. */
static void Engine_clear(Engine *e)
{
    table_free(e);
    summaries_free(e);
    hosts_free(e);
}

static void Engine_dealloc(Engine *e)
{
    Engine_clear(e);
    Py_TYPE(e)->tp_free((PyObject *)e);
}

static PyMethodDef Engine_methods[] = {
    {"feed", (PyCFunction)Engine_feed, METH_VARARGS,
     "feed(records, ts_ns, frames, iface) -> bytearray of tcps_annotation, one per record."},
    {"connections", (PyCFunction)Engine_connections, METH_VARARGS,
     "connections([start]) -> bytearray of tcps_conn for streams start.. (all by default) "
     "that were not drained."},
    {"drain", (PyCFunction)Engine_drain, METH_NOARGS,
     "drain() -> bytearray of tcps_conn for the streams that became final since the last "
     "drain (no frame can reach them any more); their summaries are freed."},
    {"stats", (PyCFunction)Engine_stats, METH_NOARGS, "Counters and memory in use."},
    {"sender_state", (PyCFunction)Engine_sender_state, METH_VARARGS,
     "sender_state(stream, side[, now_ns]) -> dict or None: the sender model of a side (0 client, "
     "1 server) as of the last packet, or as it stands at capture time now_ns."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EngineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tcpscope.analysis._engine.Engine",
    .tp_basicsize = sizeof(Engine),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Connection tracking and TCP analysis state; see analysis/engine.py.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Engine_init,
    .tp_dealloc = (destructor)Engine_dealloc,
    .tp_methods = Engine_methods,
};

/* ------------------------------------------------------------------ */
/* Layout export                                                       */
/* ------------------------------------------------------------------ */

typedef struct { const char *name; size_t offset; const char *ctype; } field_desc;

#define AFIELD(name, ctype) { #name, offsetof(tcps_annotation, name), ctype }
static const field_desc ANN_FIELDS[] = {
    AFIELD(frame, "i8"), AFIELD(stream, "i8"), AFIELD(rel_seq, "i8"), AFIELD(rel_ack, "i8"),
    AFIELD(next_rel_seq, "i8"), AFIELD(win_scaled, "i8"), AFIELD(bytes_in_flight, "i8"),
    AFIELD(push_bytes_sent, "i8"), AFIELD(ack_rtt_ns, "i8"), AFIELD(acked_frame, "i8"),
    AFIELD(irtt_ns, "i8"), AFIELD(dup_ack_frame, "i8"), AFIELD(rto_ns, "i8"), AFIELD(rto_frame, "i8"),
    AFIELD(evidence_frame, "(6,)i8"), AFIELD(flags, "u4"), AFIELD(dup_ack_num, "u4"),
    AFIELD(rule, "(16,)u1"), AFIELD(evidence_flag, "(6,)u1"), AFIELD(n_evidence, "u1"),
    AFIELD(win_scale, "i1"), AFIELD(kind, "u1"), AFIELD(from_server, "u1"),
    AFIELD(role_guessed, "u1"), AFIELD(has_analysis, "u1"), AFIELD(tcp_csum_status, "u1"),
    AFIELD(ip_id_gap, "u1"), AFIELD(cc_episode_start, "i8"), AFIELD(cwnd_est, "i4"),
    AFIELD(ssthresh_est, "i4"), AFIELD(in_flight, "i4"), AFIELD(cc_round, "u4"),
    AFIELD(cc_episode_lost, "u2"), AFIELD(cc_episode_retx, "u2"), AFIELD(cc_phase, "u1"),
    AFIELD(limited_by, "u1"), AFIELD(cc_event, "u1"), AFIELD(cc_trigger, "u1"),
    AFIELD(cc_episode_end, "u1"), AFIELD(cc_episode_trigger, "u1"),
    AFIELD(notes, "u4"), AFIELD(new_bytes, "u4"),
};

#define CFIELD(name, ctype) { #name, offsetof(tcps_conn, name), ctype }
static const field_desc CONN_FIELDS[] = {
    CFIELD(stream, "i8"), CFIELD(first_ts, "i8"), CFIELD(last_ts, "i8"), CFIELD(first_frame, "i8"),
    CFIELD(last_frame, "i8"), CFIELD(irtt_ns, "i8"), CFIELD(syn_frame, "i8"), CFIELD(prev_stream, "i8"),
    CFIELD(pkts, "(2,)u8"), CFIELD(bytes, "(2,)u8"), CFIELD(isn, "(2,)u4"),
    CFIELD(flag_counts, "(16,)u4"), CFIELD(side_flags, "(2,)u4"), CFIELD(mss, "(2,)u2"),
    CFIELD(wscale, "(2,)i1"), CFIELD(client_addr, "(16,)u1"), CFIELD(server_addr, "(16,)u1"),
    CFIELD(client_port, "u2"), CFIELD(server_port, "u2"), CFIELD(iface, "u2"),
    CFIELD(ip_version, "u1"), CFIELD(role_guessed, "u1"), CFIELD(isn_known, "(2,)u1"),
    CFIELD(ecn_setup, "u1"), CFIELD(reused_ports, "u1"), CFIELD(max_cwnd_est, "(2,)u4"),
    CFIELD(loss_episodes, "(2,)u4"), CFIELD(rto_count, "(2,)u4"), CFIELD(time_limited_ms, "(2,4)u4"),
    CFIELD(cc_guess, "(2,)u1"), CFIELD(cc_confidence, "(2,)u1"),
    CFIELD(unique_bytes, "(2,)u8"), CFIELD(retrans_bytes, "(2,)u8"), CFIELD(ecn_ce, "(2,)u4"),
    CFIELD(ecn_ece, "(2,)u4"), CFIELD(ecn_cwr, "(2,)u4"), CFIELD(urgent, "(2,)u4"),
    CFIELD(above_mss, "(2,)u4"), CFIELD(dsack, "(2,)u4"), CFIELD(challenge_acks, "(2,)u4"),
    CFIELD(tlp_count, "(2,)u4"),
};

static PyObject *fields_list(const field_desc *f, size_t n, size_t itemsize)
{
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (!list)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *t = Py_BuildValue("(sns)", f[i].name, (Py_ssize_t)f[i].offset, f[i].ctype);
        if (!t) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    return Py_BuildValue("(Nn)", list, (Py_ssize_t)itemsize);
}

static PyObject *layout(PyObject *self, PyObject *unused)
{
    return Py_BuildValue(
        "{s:N,s:N}",
        "annotation", fields_list(ANN_FIELDS, sizeof(ANN_FIELDS) / sizeof(ANN_FIELDS[0]), sizeof(tcps_annotation)),
        "conn", fields_list(CONN_FIELDS, sizeof(CONN_FIELDS) / sizeof(CONN_FIELDS[0]), sizeof(tcps_conn)));
}

static int add_pair(PyObject *d, const char *name, long value)
{
    PyObject *v = PyLong_FromLong(value);
    if (!v)
        return -1;
    int rc = PyDict_SetItemString(d, name, v);
    Py_DECREF(v);
    return rc;
}

static PyObject *enums(PyObject *self, PyObject *unused)
{
    PyObject *flags = PyDict_New(), *sides = PyDict_New(), *kinds = PyDict_New(), *rules = PyList_New(0);
    PyObject *phases = PyDict_New(), *limits = PyDict_New(), *events = PyDict_New();
    PyObject *triggers = PyDict_New(), *families = PyDict_New(), *notes = PyDict_New();
    if (!flags || !sides || !kinds || !rules || !phases || !limits || !events || !triggers || !families ||
        !notes)
        goto fail;
#define ADD_NOTE(name, bit) if (add_pair(notes, #name, bit) < 0) goto fail;
    TCPS_NOTES(ADD_NOTE)
#define ADD_TO(d, name, value) if (add_pair(d, #name, value) < 0) goto fail;
#define ADD_PHASE(name, value) ADD_TO(phases, name, value)
    TCPS_CC_PHASES(ADD_PHASE)
#define ADD_LIMIT(name, value) ADD_TO(limits, name, value)
    TCPS_CC_LIMITS(ADD_LIMIT)
#define ADD_EVENT(name, value) ADD_TO(events, name, value)
    TCPS_CC_EVENTS(ADD_EVENT)
#define ADD_TRIGGER(name, value) ADD_TO(triggers, name, value)
    TCPS_CC_TRIGGERS(ADD_TRIGGER)
#define ADD_FAMILY(name, value) ADD_TO(families, name, value)
    TCPS_CC_FAMILIES(ADD_FAMILY)
#define ADD_FLAG(name, bit) if (add_pair(flags, #name, bit) < 0) goto fail;
    TCPS_AFLAGS(ADD_FLAG)
#define ADD_SIDE(name, bit) if (add_pair(sides, #name, bit) < 0) goto fail;
    TCPS_SIDE_FLAGS(ADD_SIDE)
#define ADD_KIND(name, value) if (add_pair(kinds, #name, value) < 0) goto fail;
    TCPS_ANN_KINDS(ADD_KIND)
#define ADD_RULE(code, flag, id) { \
        PyObject *t = Py_BuildValue("(iis)", code, TCPS_AFB_##flag, id); \
        if (!t || PyList_Append(rules, t) < 0) { Py_XDECREF(t); goto fail; } \
        Py_DECREF(t); }
    TCPS_RULES(ADD_RULE)
    return Py_BuildValue("{s:N,s:N,s:N,s:N,s:i,s:N,s:N,s:N,s:N,s:N,s:N}", "flag", flags, "side", sides,
                         "kind", kinds, "rules", rules, "max_evidence", TCPS_MAX_EVIDENCE,
                         "cc_phase", phases, "limited_by", limits, "cc_event", events,
                         "cc_trigger", triggers, "cc_family", families, "note", notes);
fail:
    Py_XDECREF(notes);
    Py_XDECREF(phases);
    Py_XDECREF(limits);
    Py_XDECREF(events);
    Py_XDECREF(triggers);
    Py_XDECREF(families);
    Py_XDECREF(flags);
    Py_XDECREF(sides);
    Py_XDECREF(kinds);
    Py_XDECREF(rules);
    return NULL;
}

static PyMethodDef module_methods[] = {
    {"layout", layout, METH_NOARGS, "{'annotation': (fields, itemsize), 'conn': (fields, itemsize)}; fields are (name, offset, numpy format)."},
    {"enums", enums, METH_NOARGS, "Names and values of the analysis flags, side flags, annotation kinds, and the rules (code, flag bit, id)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_engine",
    "Native connection tracking and TCP analysis (see analysis/engine.py).", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__engine(void)
{
    if (PyType_Ready(&EngineType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m)
        return NULL;
    Py_INCREF(&EngineType);
    if (PyModule_AddObject(m, "Engine", (PyObject *)&EngineType) < 0) {
        Py_DECREF(&EngineType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "MODE_WIRESHARK", MODE_WIRESHARK) < 0 ||
        PyModule_AddIntConstant(m, "MODE_IMPROVED", MODE_IMPROVED) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/*
 * _tcpdump.c -- the hot loop of `tcpscope read`: ordinary TCP lines in C.
 *
 * present/tcpdump.py decides, per frame, whether a line is "ordinary" (the
 * whole datagram captured, a plain link layer, no IP options, and either no
 * TCP options or exactly nop,nop,TS) and which flow direction it belongs to;
 * it hands this function the dissected records plus per-flow strings and
 * tcpdump's relative-sequence bases. The function writes the lines of
 * consecutive ordinary frames and stops at the first frame it was not asked
 * to format, so the Python path prints that one with the same shared state,
 * and the text is identical whichever path prints a frame.
 *
 * The line (tcpdump 4.99, print-tcp.c's tcp_print, with -nn):
 *   TS PREFIX Flags [FLAGS][, seq S[:E]][, ack A], win W[, urg U][, options [nop,nop,TS val V ecr E]], length L
 * where seq is printed when there is payload or SYN/FIN/RST is set, and the
 * relative-number rule is tcpdump's: only segments with ACK consult the
 * per-connection table; an empty entry or a SYN stores (seq, ack-1) and the
 * numbers print absolute; otherwise they print relative to those bases.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "record.h"

/* Option layouts the caller classified (see Listing._lines). */
enum { OPTS_NONE = 0, OPTS_NOP_NOP_TS = 1 };

typedef struct {
    char *buf;
    size_t len, cap;
} outbuf;

static int out_reserve(outbuf *o, size_t more)
{
    if (o->len + more <= o->cap) return 0;
    size_t cap = o->cap ? o->cap : 1 << 16;
    while (cap < o->len + more) cap *= 2;
    char *p = PyMem_Realloc(o->buf, cap);
    if (!p) { PyErr_NoMemory(); return -1; }
    o->buf = p;
    o->cap = cap;
    return 0;
}

static void out_str(outbuf *o, const char *s, size_t n)
{
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void out_u64(outbuf *o, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) o->buf[o->len++] = tmp[--n];
}

#define OUT_LIT(o, s) out_str((o), (s), sizeof(s) - 1)

/* The timestamp column for -t styles 0 (local time), 1 (none), 2 (epoch) and
 * 4 (date and time); the text before the fraction is cached per second. */
typedef struct {
    int style;
    int64_t sec;
    char head[64];
    size_t head_len;
} clock_cache;

static void clock_head(clock_cache *c, int64_t sec)
{
    c->sec = sec;
    if (c->style == 2) {
        c->head_len = (size_t)snprintf(c->head, sizeof c->head, "%u", (unsigned)(sec & 0xFFFFFFFFu));
        return;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!localtime_r(&t, &tm)) {
        c->head_len = 0;
        return;
    }
    c->head_len = strftime(c->head, sizeof c->head,
                           c->style == 4 ? "%Y-%m-%d %H:%M:%S" : "%H:%M:%S", &tm);
}

static void out_stamp(outbuf *o, clock_cache *c, int64_t us)
{
    if (c->style == 1) return;
    int64_t sec = us / 1000000, frac = us % 1000000;
    if (sec != c->sec) clock_head(c, sec);
    out_str(o, c->head, c->head_len);
    char f[8] = {'.', 0, 0, 0, 0, 0, 0, ' '};
    for (int k = 6; k >= 1; k--) { f[k] = (char)('0' + frac % 10); frac /= 10; }
    out_str(o, f, 8);
}

/*
 * format(records, ts_us, frames, flow, optcls, start, prefixes, cell, bases, rev,
 *        flags_text, tstyle, absolute, number) -> (text, stop)
 *
 *   records   RECORD_DTYPE rows (buffer)            ts_us   int64 per row
 *   frames    int64 frame numbers (for -#)          flow    int32 flow index per row
 *   optcls    int8 per row: 0/1 = format here, anything else = stop there
 *   prefixes  list[str] per flow: "IP a.b > c.d: " with link prefix
 *   cell      int32 per flow: its entry in tcpdump's table (two directions share one)
 *   bases     int64 [ncells*2] tcpdump's (th_seq, th_ack), -1 = empty; updated in place
 *   rev       int8 per flow: 1 if the flow runs against the table's canonical order
 *   flags_text list[str] of 256 "[S.]"-style flag texts (without brackets)
 * Returns the text of rows start..stop-1 and stop (the first row not formatted).
 */
static PyObject *format_lines(PyObject *self, PyObject *args)
{
    Py_buffer rec_b = {0}, ts_b = {0}, fr_b = {0}, flow_b = {0}, oc_b = {0}, cell_b = {0}, base_b = {0},
              rev_b = {0};
    PyObject *prefixes, *flags_text;
    Py_ssize_t start;
    int tstyle, absolute, number;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*nO!y*w*y*O!ipp", &rec_b, &ts_b, &fr_b, &flow_b, &oc_b,
                          &start, &PyList_Type, &prefixes, &cell_b, &base_b, &rev_b, &PyList_Type,
                          &flags_text, &tstyle, &absolute, &number))
        return NULL;

    PyObject *result = NULL;
    const char **pfx = NULL;
    Py_ssize_t *pfx_len = NULL;
    const char *ftext[256];
    Py_ssize_t ftext_len[256];
    outbuf o = {0};

    Py_ssize_t n = rec_b.len / (Py_ssize_t)sizeof(tcps_record);
    Py_ssize_t nflows = PyList_GET_SIZE(prefixes);
    if (ts_b.len < n * 8 || fr_b.len < n * 8 || flow_b.len < n * 4 || oc_b.len < n
        || cell_b.len < nflows * 4 || rev_b.len < nflows || PyList_GET_SIZE(flags_text) != 256
        || start < 0 || start > n || (tstyle != 0 && tstyle != 1 && tstyle != 2 && tstyle != 4)) {
        PyErr_SetString(PyExc_ValueError, "format_lines: inconsistent arguments");
        goto done;
    }
    pfx = PyMem_Malloc(sizeof(char *) * (size_t)(nflows ? nflows : 1));
    pfx_len = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(nflows ? nflows : 1));
    if (!pfx || !pfx_len) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t f = 0; f < nflows; f++) {
        pfx[f] = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(prefixes, f), &pfx_len[f]);
        if (!pfx[f]) goto done;
    }
    for (int f = 0; f < 256; f++) {
        ftext[f] = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(flags_text, f), &ftext_len[f]);
        if (!ftext[f]) goto done;
    }

    const tcps_record *rec = rec_b.buf;
    const int64_t *ts = ts_b.buf, *frames = fr_b.buf;
    const int32_t *flow = flow_b.buf, *cell = cell_b.buf;
    Py_ssize_t ncells = base_b.len / 16;
    const int8_t *optcls = oc_b.buf, *rev = rev_b.buf;
    int64_t *bases = base_b.buf;
    clock_cache clock = {.style = tstyle, .sec = INT64_MIN};
    tzset();

    Py_ssize_t i = start;
    for (; i < n; i++) {
        int oc = optcls[i];
        int32_t f = flow[i];
        if ((oc != OPTS_NONE && oc != OPTS_NOP_NOP_TS) || f < 0 || f >= nflows) break;
        if (cell[f] < 0 || cell[f] >= ncells) break;
        if (ts[i] < 0 || ((ts[i] / 1000000) & 0x80000000)) break; /* tcpdump's error text: Python */
        const tcps_record *r = &rec[i];
        if (out_reserve(&o, (size_t)pfx_len[f] + 256) < 0) goto done;

        if (number) {
            char num[32];
            int k = snprintf(num, sizeof num, "%5lld  ", (long long)frames[i]);
            out_str(&o, num, (size_t)k);
        }
        out_stamp(&o, &clock, ts[i]);
        out_str(&o, pfx[f], (size_t)pfx_len[f]);

        uint32_t seq = r->seq, ack = r->ack;
        unsigned fl = r->tcp_flags;
        if ((fl & TCPS_ACK) && !absolute) {
            int64_t *th = &bases[2 * cell[f]];
            if (th[0] < 0 || (fl & TCPS_SYN)) {
                if (rev[f]) { th[0] = (uint32_t)(ack - 1); th[1] = seq; }
                else { th[0] = seq; th[1] = (uint32_t)(ack - 1); }
            } else if (rev[f]) {
                seq = seq - (uint32_t)th[1];
                ack = ack - (uint32_t)th[0];
            } else {
                seq = seq - (uint32_t)th[0];
                ack = ack - (uint32_t)th[1];
            }
        }
        OUT_LIT(&o, "Flags [");
        out_str(&o, ftext[fl & 0xFF], (size_t)ftext_len[fl & 0xFF]);
        OUT_LIT(&o, "]");
        uint32_t len = r->payload_len;
        if (len) {
            OUT_LIT(&o, ", seq ");
            out_u64(&o, seq);
            OUT_LIT(&o, ":");
            out_u64(&o, (uint32_t)(seq + len));
        } else if (fl & (TCPS_SYN | TCPS_FIN | TCPS_RST)) {
            OUT_LIT(&o, ", seq ");
            out_u64(&o, seq);
        }
        if (fl & TCPS_ACK) {
            OUT_LIT(&o, ", ack ");
            out_u64(&o, ack);
        }
        OUT_LIT(&o, ", win ");
        out_u64(&o, r->win);
        if (fl & TCPS_URG) {
            OUT_LIT(&o, ", urg ");
            out_u64(&o, r->urg);
        }
        if (oc == OPTS_NOP_NOP_TS) {
            OUT_LIT(&o, ", options [nop,nop,TS val ");
            out_u64(&o, r->ts_val);
            OUT_LIT(&o, " ecr ");
            out_u64(&o, r->ts_ecr);
            OUT_LIT(&o, "]");
        }
        OUT_LIT(&o, ", length ");
        out_u64(&o, len);
        OUT_LIT(&o, "\n");
    }
    {
        PyObject *text = PyUnicode_DecodeUTF8(o.buf ? o.buf : "", (Py_ssize_t)o.len, "surrogateescape");
        if (text) result = Py_BuildValue("(Nn)", text, i);
    }

done:
    PyMem_Free(o.buf);
    PyMem_Free(pfx);
    PyMem_Free(pfx_len);
    PyBuffer_Release(&rec_b);
    PyBuffer_Release(&ts_b);
    PyBuffer_Release(&fr_b);
    PyBuffer_Release(&flow_b);
    PyBuffer_Release(&oc_b);
    PyBuffer_Release(&cell_b);
    PyBuffer_Release(&base_b);
    PyBuffer_Release(&rev_b);
    return result;
}

static PyMethodDef METHODS[] = {
    {"format_lines", format_lines, METH_VARARGS,
     "Format consecutive ordinary TCP rows as tcpdump lines; return (text, first row not formatted)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {
    PyModuleDef_HEAD_INIT, "_tcpdump", "The hot loop of the tcpdump-compatible listing.", -1, METHODS,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__tcpdump(void) { return PyModule_Create(&MODULE); }

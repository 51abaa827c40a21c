/*
 * _listing.c -- `tcpscope read`: tcpdump's listing of a batch of frames, in C.
 *
 * Printer(verbose, absolute, tstyle, number, payload_ports, payload, link=0, quick=0,
 *         dump=0, nano=0)
 *   .format(data, offset, caplen, origlen, ts_ns, linktype, numbers, start, stop) -> str
 *
 * `format` prints frames start..stop-1 of a batch (tcpscope.capture.batch.FrameBatch
 * columns), one line each as `tcpdump -nn -r` prints it: [frame number] timestamp
 * and the frame's text (see _listing.h for the walk). The Printer keeps what tcpdump
 * keeps from one packet to the next: the relative-sequence table, the previous
 * timestamp (-ttt) and the interface names it has looked up. `payload(frame, bp,
 * end, length, sport, dport, verbose, proto) -> str` is called for the payload of
 * a segment on a port in `payload_ports` (the application printers, in Python).
 * `link` is -e, `quick` -q, `nano` --nano (nanosecond timestamps); `dump` the
 * packet dump after each line: 1 -x, 2 -xx, 3 -X, 4 -XX, 5 -A, 6 -AA (the
 * doubled ones include the link-level header).
 *
 * Module functions, for tests that hold the C text to wire/text.py's:
 * flags_text(bits) -> tcpdump's flag letters (_native/tcpflags.h);
 * address_text(4 or 16 bytes) -> an address as the listing writes it.
 */
#include "_listing.h"

#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "record.h"
#include "seq.h"
#include "tcpflags.h"

/* ------------------------------------------------------------ output */

/* Room for `more` bytes; -1 (a Python MemoryError set) if there is none. */
static int out_grow_soft(frame_ctx *fx, size_t more)
{
    size_t cap = fx->cap ? fx->cap : 1 << 16;
    while (cap < fx->len + more)
        cap *= 2;
    char *p = PyMem_Realloc(fx->buf, cap);
    if (!p) {
        PyErr_NoMemory();
        return -1;
    }
    fx->buf = p;
    fx->cap = cap;
    return 0;
}

void out_grow(frame_ctx *fx, size_t more)
{
    if (out_grow_soft(fx, more) < 0)
        longjmp(fx->jmp, JUMP_ERROR);
}

void putf(frame_ctx *fx, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        put(fx, tmp, (size_t)n);
        return;
    }
    if (fx->len + (size_t)n + 1 > fx->cap)
        out_grow(fx, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(fx->buf + fx->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    fx->len += (size_t)n;
}

void put_u64(frame_ctx *fx, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (fx->len + (size_t)n > fx->cap)
        out_grow(fx, (size_t)n);
    while (n)
        fx->buf[fx->len++] = tmp[--n];
}

void put_ip4(frame_ctx *fx, const uint8_t *a)
{
    for (int i = 0; i < 4; i++) {
        if (i)
            PUTS(fx, ".");
        put_u64(fx, a[i]);
    }
}

/* IPv6 text as tcpdump's addrtostr6 writes it (RFC 5952: the longest run of two
 * or more zero words as "::", the first of equal runs; an IPv4-compatible or
 * IPv4-mapped address with its last 32 bits as a dotted quad). */
void put_ip6(frame_ctx *fx, const uint8_t *a)
{
    unsigned w[8];
    for (int i = 0; i < 8; i++)
        w[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
    int best = -1, best_len = 0;
    for (int i = 0; i < 8;) {
        if (w[i]) {
            i++;
            continue;
        }
        int j = i;
        while (j < 8 && !w[j])
            j++;
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j;
    }
    if (best_len < 2)
        best = -1;
    char tmp[64];
    int n = 0;
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            tmp[n++] = ':';
            if (i + best_len == 8)
                tmp[n++] = ':';
            i += best_len - 1;
            continue;
        }
        if (i)
            tmp[n++] = ':';
        if (i == 6 && best == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xFFFF))) {
            n += snprintf(tmp + n, sizeof tmp - (size_t)n, "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
            break;
        }
        n += snprintf(tmp + n, sizeof tmp - (size_t)n, "%x", w[i]);
    }
    put(fx, tmp, (size_t)n);
}

void put_hex(frame_ctx *fx, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    if (fx->len + 2 * n > fx->cap)
        out_grow(fx, 2 * n);
    for (size_t i = 0; i < n; i++) {
        fx->buf[fx->len++] = digits[p[i] >> 4];
        fx->buf[fx->len++] = digits[p[i] & 15];
    }
}

_Noreturn void trunc_jump(frame_ctx *fx) { longjmp(fx->jmp, JUMP_TRUNCATED); }

/* ------------------------------------------------------------ the Printer */

/* One entry of tcpdump's relative-sequence table (print-tcp.c's tcp_seq_hash):
 * a connection in canonical order (lower port first; the addresses decide
 * only when the ports are equal) and the bases subtracted from its numbers. */
typedef struct {
    uint8_t alen;          /* 4 or 16; 0: an empty slot */
    uint8_t set;           /* bases stored */
    uint8_t src[16], dst[16];
    uint32_t ports;        /* sport << 16 | dport, canonical */
    uint32_t th_seq, th_ack;
} seq_entry;

enum { IFNAME_CACHE = 32 };

struct listing {
    PyObject_HEAD
    int verbose, absolute, tstyle, number, link, quick, dump, nano;
    PyObject *payload;                 /* the Python payload printers */
    uint8_t app_port[65536 / 8];       /* ports whose payload goes to `payload` */
    seq_entry *seqs;                   /* open addressing, power-of-two size */
    size_t seq_mask, seq_used;
    /* the timestamp column */
    int64_t head_sec;
    int head_valid;
    char head[96];
    size_t head_len;
    int64_t ref_us;                    /* -ttt / -ttttt reference (µs or ns); 0: none yet */
    /* if_indextoname, remembered */
    struct { uint32_t index; char name[IF_NAMESIZE + 1]; } ifnames[IFNAME_CACHE];
    int n_ifnames;
};

int payload_port(const frame_ctx *fx, unsigned sport, unsigned dport)
{
    const listing *ls = fx->ls;
    return (ls->app_port[sport >> 3] >> (sport & 7) & 1) || (ls->app_port[dport >> 3] >> (dport & 7) & 1);
}

const char *interface_name(frame_ctx *fx, uint32_t index)
{
    listing *ls = fx->ls;
    for (int i = 0; i < ls->n_ifnames; i++)
        if (ls->ifnames[i].index == index)
            return ls->ifnames[i].name;
    int slot = ls->n_ifnames < IFNAME_CACHE ? ls->n_ifnames++ : (int)(index % IFNAME_CACHE);
    ls->ifnames[slot].index = index;
    if (!if_indextoname(index, ls->ifnames[slot].name))
        strcpy(ls->ifnames[slot].name, "?");
    return ls->ifnames[slot].name;
}

static uint64_t seq_hash(int alen, const uint8_t *a, const uint8_t *b, uint32_t ports)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ ports;
    for (int i = 0; i < alen; i++)
        h = (h ^ a[i]) * 0x100000001B3ull;
    for (int i = 0; i < alen; i++)
        h = (h ^ b[i]) * 0x100000001B3ull;
    return h ^ (h >> 29);
}

static int seq_grow(listing *ls)
{
    size_t old_size = ls->seqs ? ls->seq_mask + 1 : 0;
    size_t size = old_size ? 2 * old_size : 1024;
    seq_entry *t = PyMem_Calloc(size, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < old_size; i++) {
        seq_entry *e = &ls->seqs[i];
        if (!e->alen)
            continue;
        size_t k = seq_hash(e->alen, e->src, e->dst, e->ports) & (size - 1);
        while (t[k].alen)
            k = (k + 1) & (size - 1);
        t[k] = *e;
    }
    PyMem_Free(ls->seqs);
    ls->seqs = t;
    ls->seq_mask = size - 1;
    return 0;
}

/* The table entry of a connection, created empty on first sight. */
static seq_entry *seq_lookup(listing *ls, frame_ctx *fx, int alen, const uint8_t *a,
                             const uint8_t *b, uint32_t ports)
{
    if (!ls->seqs || 2 * (ls->seq_used + 1) > ls->seq_mask + 1) {
        if (seq_grow(ls) < 0) {
            PyErr_NoMemory();
            longjmp(fx->jmp, JUMP_ERROR);
        }
    }
    size_t k = seq_hash(alen, a, b, ports) & ls->seq_mask;
    for (;; k = (k + 1) & ls->seq_mask) {
        seq_entry *e = &ls->seqs[k];
        if (!e->alen) {
            e->alen = (uint8_t)alen;
            memcpy(e->src, a, (size_t)alen);
            memcpy(e->dst, b, (size_t)alen);
            e->ports = ports;
            ls->seq_used++;
            return e;
        }
        if (e->alen == alen && e->ports == ports && !memcmp(e->src, a, (size_t)alen)
            && !memcmp(e->dst, b, (size_t)alen))
            return e;
    }
}

/* tcpdump's relative numbers (SEMANTICS.md §5): only segments with ACK consult
 * the table. An empty entry, or a SYN, stores (seq, ack - 1) in the entry's
 * canonical order and the numbers print as they are; otherwise they print
 * relative to the stored bases, modulo 2^32. SACK edges use the same bases. */
void relative_seq(frame_ctx *fx, int alen, const uint8_t *src, const uint8_t *dst,
                  unsigned sport, unsigned dport, unsigned flags, uint32_t *seq, uint32_t *ack,
                  int *rev, uint32_t *thseq, uint32_t *thack)
{
    listing *ls = fx->ls;
    int r = sport > dport || (sport == dport && memcmp(src, dst, (size_t)alen) > 0);
    seq_entry *e = r ? seq_lookup(ls, fx, alen, dst, src, dport << 16 | sport)
                     : seq_lookup(ls, fx, alen, src, dst, sport << 16 | dport);
    if (!e->set || (flags & TCPS_SYN)) {
        e->set = 1;
        e->th_seq = r ? *ack - 1 : *seq;
        e->th_ack = r ? *seq : *ack - 1;
    } else {
        *seq = (uint32_t)sdiff(*seq, r ? e->th_ack : e->th_seq);
        *ack = (uint32_t)sdiff(*ack, r ? e->th_seq : e->th_ack);
    }
    *rev = r;
    *thseq = e->th_seq;
    *thack = e->th_ack;
}

/* ------------------------------------------------------------ timestamps */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The text before the fraction for styles 0 (local time), 2 (epoch) and 4 (date and
 * time), cached per second; tcpdump refuses seconds with bit 31 set. */
static void time_head(listing *ls, int64_t sec)
{
    ls->head_sec = sec;
    ls->head_valid = 1;
    if (sec & 0x80000000) {
        ls->head_len = 0;
        return;
    }
    if (ls->tstyle == 2) {
        ls->head_len = (size_t)snprintf(ls->head, sizeof ls->head, "%u", (unsigned)(sec & 0xFFFFFFFFu));
        return;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!localtime_r(&t, &tm)) {
        ls->head_len = (size_t)snprintf(ls->head, sizeof ls->head, "%s",
                                        "[localtime() or gmtime() couldn't convert the date and time]");
        return;
    }
    ls->head_len = strftime(ls->head, sizeof ls->head,
                            ls->tstyle == 4 ? "%Y-%m-%d %H:%M:%S" : "%H:%M:%S", &tm);
}

static void put_frac(frame_ctx *fx, int64_t frac, int digits)
{
    char f[11];
    f[0] = '.';
    for (int k = digits; k >= 1; k--) {
        f[k] = (char)('0' + frac % 10);
        frac /= 10;
    }
    f[digits + 1] = ' ';
    put(fx, f, (size_t)digits + 2);
}

/* tcpdump's timestamp column (with its trailing space) for a time in microseconds, or
 * nanoseconds with --nano: -t styles 0 local time, 1 none, 2 epoch, 3 delta from the
 * previous packet, 4 date and time, 5 delta from the first packet. */
static void put_stamp(frame_ctx *fx, listing *ls, int64_t us)
{
    int style = ls->tstyle;
    int64_t unit = ls->nano ? 1000000000 : 1000000;
    int digits = ls->nano ? 9 : 6;
    if (style == 1)
        return;
    if (style == 3 || style == 5) {
        if (ls->ref_us == 0) /* tcpdump takes a zero reference for "none yet" */
            ls->ref_us = us;
        int64_t ref = ls->ref_us, d;
        if (us < ref) {
            PUTS(fx, "-");
            d = ref - us;
        } else {
            PUTS(fx, " ");
            d = us - ref;
        }
        if (style == 3)
            ls->ref_us = us;
        int64_t sec = d / unit;
        if (sec & 0x80000000) {
            PUTS(fx, "[Error converting time] ");
            return;
        }
        putf(fx, "%02d:%02d:%02d", (int)(sec / 3600 % 24), (int)(sec / 60 % 60), (int)(sec % 60));
        put_frac(fx, d % unit, digits);
        return;
    }
    int64_t sec = floor_div(us, unit);
    if (!ls->head_valid || sec != ls->head_sec)
        time_head(ls, sec);
    if (sec & 0x80000000) {
        PUTS(fx, "[Error converting time] ");
        return;
    }
    put(fx, ls->head, ls->head_len);
    put_frac(fx, us - sec * unit, digits);
}

/* The time put_stamp takes: microseconds, or nanoseconds with --nano. */
static int64_t stamp_units(const listing *ls, int64_t ts_ns)
{
    return ls->nano ? ts_ns : floor_div(ts_ns, 1000);
}

/* ------------------------------------------------------------ payload printers */

void print_payload(const cursor *c, int64_t bp, int64_t length, unsigned sport, unsigned dport)
{
    frame_ctx *fx = c->fx;
    PyObject *frame = PyBytes_FromStringAndSize((const char *)c->buf, (Py_ssize_t)c->cap);
    if (!frame)
        longjmp(fx->jmp, JUMP_ERROR);
    PyObject *text = PyObject_CallFunction(fx->ls->payload, "NLLLIIis", frame, (long long)bp,
                                           (long long)c->end, (long long)length, sport, dport,
                                           fx->v, fx->proto);
    if (!text)
        longjmp(fx->jmp, JUMP_ERROR);
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(text, &n);
    if (!s || (fx->len + (size_t)n > fx->cap && (out_grow_soft(fx, (size_t)n) < 0))) {
        Py_DECREF(text);
        longjmp(fx->jmp, JUMP_ERROR);
    }
    memcpy(fx->buf + fx->len, s, (size_t)n);
    fx->len += (size_t)n;
    /* A printer that ran out of captured bytes ends with " [|proto]": in tcpdump that
     * is its longjmp, after which -x/-X/-A dump the frame from its first byte (a line
     * cut for its length ends so too, without the longjmp). */
    if (n > 4 && s[n - 1] == ']' && c->end - bp < length) {
        for (Py_ssize_t k = n - 2; k >= 2 && s[k] != ' ' && s[k] != '\n'; k--) {
            if (s[k] == '|' && s[k - 1] == '[' && s[k - 2] == ' ') {
                fx->hdrlen = 0;
                fx->truncated_payload = 1;
                break;
            }
        }
    }
    Py_DECREF(text);
}

/* ------------------------------------------------------------ the Python type */

static int Printer_init(listing *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"verbose", "absolute", "tstyle", "number", "payload_ports", "payload",
                             "link", "quick", "dump", "nano", NULL};
    int verbose, absolute, tstyle, number, link = 0, quick = 0, dump = 0, nano = 0;
    Py_buffer ports;
    PyObject *payload;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ipipy*O|ppip", kwlist, &verbose, &absolute,
                                     &tstyle, &number, &ports, &payload, &link, &quick, &dump,
                                     &nano))
        return -1;
    if (tstyle < 0 || tstyle > 5 || (payload != Py_None && !PyCallable_Check(payload))
        || ports.len % 2 || dump < 0 || dump > 6) {
        PyBuffer_Release(&ports);
        PyErr_SetString(PyExc_ValueError, "Printer: tstyle is 0..5, dump 0..6, payload a "
                                          "callable, payload_ports uint16 values");
        return -1;
    }
    self->verbose = verbose;
    self->absolute = absolute;
    self->tstyle = tstyle;
    self->number = number;
    self->link = link;
    self->quick = quick;
    self->dump = dump;
    self->nano = nano;
    memset(self->app_port, 0, sizeof self->app_port);
    if (payload != Py_None) {
        const uint16_t *p = ports.buf;
        for (Py_ssize_t i = 0; i < ports.len / 2; i++)
            self->app_port[p[i] >> 3] |= (uint8_t)(1u << (p[i] & 7));
    }
    PyBuffer_Release(&ports);
    Py_INCREF(payload);
    Py_XSETREF(self->payload, payload);
    return 0;
}

static void Printer_dealloc(listing *self)
{
    Py_XDECREF(self->payload);
    PyMem_Free(self->seqs);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static frame_ctx *new_frame_ctx(listing *self)
{
    frame_ctx *fx = PyMem_Calloc(1, sizeof *fx);
    if (!fx) {
        PyErr_NoMemory();
        return NULL;
    }
    fx->ls = self;
    if (self) {
        fx->v = self->verbose;
        fx->absolute = self->absolute;
        fx->e = self->link;
        fx->q = self->quick;
    }
    return fx;
}

static PyObject *finish_text(frame_ctx *fx, int ok)
{
    PyObject *text = ok ? PyUnicode_DecodeUTF8(fx->buf ? fx->buf : "", (Py_ssize_t)fx->len,
                                               "surrogateescape") : NULL;
    PyMem_Free(fx->buf);
    PyMem_Free(fx);
    return text;
}

/* -x / -X / -A: the packet's bytes after the line (tcpdump's pretty_print_packet), from
 * the link header's end unless the flag is doubled. */
static void print_dump(frame_ctx *fx, const uint8_t *frame, uint32_t caplen)
{
    int dump = fx->ls->dump;
    int64_t start = dump % 2 == 0 ? 0 : fx->hdrlen;
    if (start >= (int64_t)caplen)
        return;
    cursor c = {frame, caplen, caplen, fx};
    if (dump <= 2)
        hex_words(&c, start, (int64_t)caplen - start);
    else if (dump <= 4)
        hex_and_ascii(&c, start, (int64_t)caplen - start);
    else
        ascii_text(&c, start, (int64_t)caplen - start);
}

/* One line: [frame number] timestamp, the frame's text, a newline. 0 on a Python error. */
static int print_frame(frame_ctx *fx, long long number, int64_t ts_ns, const uint8_t *frame,
                       uint32_t caplen, uint32_t origlen, unsigned linktype)
{
    listing *ls = fx->ls;
    int why = setjmp(fx->jmp);
    if (why == 0) {
        if (ls->number)
            putf(fx, "%5lld  ", number);
        put_stamp(fx, ls, stamp_units(ls, ts_ns));
        cursor c = {frame, caplen, caplen, fx};
        fx->proto = "";
        fx->hdrlen = 0;
        fx->truncated_payload = 0;
        link_print(&c, linktype, origlen);
        if (fx->truncated_payload)
            fx->hdrlen = 0;
    } else if (why == JUMP_TRUNCATED) {
        PUTS(fx, " [|");
        put_str(fx, fx->proto);
        PUTS(fx, "]");
        fx->hdrlen = 0; /* tcpdump 4.99 dumps a truncated packet from its first byte */
    } else {
        return 0;
    }
    if (ls->dump && setjmp(fx->jmp) == 0)
        print_dump(fx, frame, caplen);
    PUTS(fx, "\n");
    return 1;
}

static PyObject *Printer_format(listing *self, PyObject *args)
{
    Py_buffer data = {0}, off_b = {0}, cap_b = {0}, orig_b = {0}, ts_b = {0}, lt_b = {0},
              num_b = {0};
    Py_ssize_t start, stop;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*nn", &data, &off_b, &cap_b, &orig_b, &ts_b, &lt_b,
                          &num_b, &start, &stop))
        return NULL;
    PyObject *result = NULL;
    frame_ctx *fx = NULL;
    Py_ssize_t n = off_b.len / 8;
    if (cap_b.len < n * 4 || orig_b.len < n * 4 || ts_b.len < n * 8 || lt_b.len < n * 2
        || num_b.len < n * 8 || start < 0 || stop > n || start > stop) {
        PyErr_SetString(PyExc_ValueError, "format: inconsistent batch columns");
        goto done;
    }
    const int64_t *offset = off_b.buf, *ts = ts_b.buf, *numbers = num_b.buf;
    const uint32_t *caplen = cap_b.buf, *origlen = orig_b.buf;
    const uint16_t *linktype = lt_b.buf;
    for (Py_ssize_t i = start; i < stop; i++) {
        if (offset[i] < 0 || offset[i] + (int64_t)caplen[i] > (int64_t)data.len) {
            PyErr_SetString(PyExc_ValueError, "format: a frame lies outside the data");
            goto done;
        }
    }
    fx = new_frame_ctx(self);
    if (!fx)
        goto done;
    tzset();
    int ok = 1;
    for (Py_ssize_t i = start; i < stop && ok; i++)
        ok = print_frame(fx, (long long)numbers[i], ts[i], (const uint8_t *)data.buf + offset[i],
                         caplen[i], origlen[i], linktype[i]);
    result = finish_text(fx, ok);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&off_b);
    PyBuffer_Release(&cap_b);
    PyBuffer_Release(&orig_b);
    PyBuffer_Release(&ts_b);
    PyBuffer_Release(&lt_b);
    PyBuffer_Release(&num_b);
    return result;
}

static PyObject *Printer_timestamp(listing *self, PyObject *arg)
{
    long long ts = PyLong_AsLongLong(arg);
    if (ts == -1 && PyErr_Occurred())
        return NULL;
    frame_ctx *fx = new_frame_ctx(self);
    if (!fx)
        return NULL;
    tzset();
    int ok = 1;
    if (setjmp(fx->jmp) == 0)
        put_stamp(fx, self, stamp_units(self, ts));
    else
        ok = 0;
    return finish_text(fx, ok);
}

static PyMethodDef PRINTER_METHODS[] = {
    {"format", (PyCFunction)Printer_format, METH_VARARGS,
     "format(data, offset, caplen, origlen, ts_ns, linktype, numbers, start, stop) -> str\n\n"
     "The listing lines of frames start..stop-1 of a batch."},
    {"timestamp", (PyCFunction)Printer_timestamp, METH_O,
     "timestamp(ts_ns) -> str: the timestamp column of a frame at ts_ns (advances -ttt)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PRINTER_TYPE = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tcpscope.present.tcpdump._listing.Printer",
    .tp_basicsize = sizeof(listing),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Printer(verbose, absolute, tstyle, number, payload_ports, payload): "
              "tcpdump's listing, with the state it keeps across packets.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Printer_init,
    .tp_dealloc = (destructor)Printer_dealloc,
    .tp_methods = PRINTER_METHODS,
};

static PyObject *flags_text(PyObject *self, PyObject *arg)
{
    long bits = PyLong_AsLong(arg);
    if (bits == -1 && PyErr_Occurred())
        return NULL;
    if (bits < 0 || bits > 0x1FF) {
        PyErr_SetString(PyExc_ValueError, "flags_text: nine flag bits");
        return NULL;
    }
    char text[10];
    int n = tcps_flags_text((uint16_t)bits, text);
    return PyUnicode_FromStringAndSize(text, n);
}

static PyObject *address_text(PyObject *self, PyObject *arg)
{
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *text = NULL;
    frame_ctx *fx = NULL;
    if (b.len != 4 && b.len != 16) {
        PyErr_SetString(PyExc_ValueError, "address_text: 4 or 16 bytes");
    } else if ((fx = new_frame_ctx(NULL))) {
        int ok = setjmp(fx->jmp) == 0;
        if (ok) {
            if (b.len == 4)
                put_ip4(fx, b.buf);
            else
                put_ip6(fx, b.buf);
        }
        text = finish_text(fx, ok);
    }
    PyBuffer_Release(&b);
    return text;
}

static PyMethodDef METHODS[] = {
    {"flags_text", flags_text, METH_O, "flags_text(bits) -> the flag letters tcpdump prints."},
    {"address_text", address_text, METH_O,
     "address_text(4 or 16 bytes) -> the address as the listing writes it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {
    PyModuleDef_HEAD_INIT, "_listing", "tcpdump's listing of frames, in C (see _listing.h).", -1,
    METHODS, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__listing(void)
{
    if (PyType_Ready(&PRINTER_TYPE) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&MODULE);
    if (!m)
        return NULL;
    Py_INCREF(&PRINTER_TYPE);
    if (PyModule_AddObject(m, "Printer", (PyObject *)&PRINTER_TYPE) < 0) {
        Py_DECREF(&PRINTER_TYPE);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

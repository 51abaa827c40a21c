/*
 * _scan.c -- find the packet records of pcap and pcapng captures in a buffer.
 *
 * The Python readers (capture/pcap.py, capture/pcapng.py) read a capture in
 * chunks of a few MB and hand each chunk to a scanner here. A scanner walks the
 * records from a start position and, for every packet, writes one row of
 * columns (where its bytes are, how long it is, when it was captured, on which
 * interface). It stops and returns to Python when
 *
 *   - the next record is not completely in the buffer (SCAN_NEED_MORE: Python
 *     reads more and calls again from the returned position; `need` says how
 *     many bytes from that position the record needs),
 *   - the columns are full (SCAN_FULL),
 *   - the record is damaged (SCAN_DAMAGE, with a one-sentence reason), or
 *   - (pcapng) it meets a block Python handles itself: a Section Header Block
 *     or an Interface Description Block (SCAN_BLOCK).
 *
 * Safety: the input is untrusted. Every length read from the file is checked
 * against what is left in the buffer before it is used, in 64-bit arithmetic
 * so that no sum can wrap. Nothing is ever read outside [buf, buf + len).
 *
 * Length: one file of about 950 lines, over the project's 900, because both
 * scanners share the column, counter and scan-state plumbing and the module's
 * set-up; split, each half would need all of it.
 *
 * References (the formats are described, not copied from any implementation):
 *   - pcap: draft-ietf-opsawg-pcap, "File Header" and "Packet Record";
 *     the modified ("Kuznetzov") variant adds 8 bytes to each record header.
 *   - pcapng: draft-ietf-opsawg-pcapng, "General Block Structure",
 *     "Enhanced Packet Block", "Simple Packet Block", "Packet Block
 *     (obsolete)" and the if_tsresol / if_tsoffset options of the
 *     "Interface Description Block".
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Results and counters shared with Python                                  */
/* ------------------------------------------------------------------------ */

enum scan_status {
    SCAN_NEED_MORE = 0, /* the record at `pos` is incomplete; `need` bytes are needed */
    SCAN_FULL = 1,      /* the output columns are full (or max_frames reached) */
    SCAN_DAMAGE = 2,    /* the record at `pos` is damaged; see the message */
    SCAN_BLOCK = 3,     /* pcapng: a block for Python (SHB, IDB) starts at `pos` */
    SCAN_ERROR = -1,    /* a Python exception is set (bad arguments); never returned */
};

/*
 * Named event counters. Python passes an int64 array of N_COUNTERS entries and
 * reads the names from the module's COUNTER_NAMES tuple, in this order.
 */
enum counter {
    C_SNAPLEN_TRUNCATED,       /* caplen < origlen: the capture kept only a prefix */
    C_CAPLEN_EXCEEDS_ORIGLEN,  /* caplen > origlen: kept as recorded */
    C_CAPLEN_CLIPPED,          /* pcap: caplen > file snaplen, clipped like libpcap */
    C_CAPLEN_EXCEEDS_SNAPLEN,  /* pcapng: caplen > the interface's snaplen, kept */
    C_TS_FRACTION_OUT_OF_RANGE,/* pcap: usec >= 10^6 or nsec >= 10^9 (carried into seconds) */
    C_TS_OUT_OF_RANGE,         /* timestamp outside the int64 nanosecond range, saturated */
    C_EPB,                     /* Enhanced Packet Blocks */
    C_SPB,                     /* Simple Packet Blocks */
    C_PB,                      /* obsolete Packet Blocks */
    C_NRB,                     /* Name Resolution Blocks, skipped */
    C_ISB,                     /* Interface Statistics Blocks, skipped */
    C_DSB,                     /* Decryption Secrets Blocks, skipped */
    C_CUSTOM,                  /* Custom Blocks, skipped */
    C_UNKNOWN_BLOCK,           /* blocks of any other type, skipped */
    N_COUNTERS
};

static const char *const COUNTER_NAMES[N_COUNTERS] = {
    "snaplen_truncated",
    "caplen_exceeds_origlen",
    "caplen_clipped_to_snaplen",
    "caplen_exceeds_snaplen",
    "timestamp_fraction_out_of_range",
    "timestamp_out_of_range",
    "enhanced_packet_blocks",
    "simple_packet_blocks",
    "obsolete_packet_blocks",
    "name_resolution_blocks",
    "interface_statistics_blocks",
    "decryption_secrets_blocks",
    "custom_blocks",
    "unknown_blocks_skipped",
};

/* Nanoseconds per second, and the largest whole second whose every
 * nanosecond still fits in an int64 (year 2262). */
#define NS_PER_SEC 1000000000LL
#define MAX_TS_SECONDS 9223372035LL

/* ------------------------------------------------------------------------ */
/* Byte-order helpers                                                       */
/* ------------------------------------------------------------------------ */

/* Read unsigned integers stored little- or big-endian at p (no alignment needed). */
static uint16_t
read_u16(const uint8_t *p, int big_endian)
{
    if (big_endian)
        return (uint16_t)((p[0] << 8) | p[1]);
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t
read_u32(const uint8_t *p, int big_endian)
{
    if (big_endian)
        return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    return p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* ------------------------------------------------------------------------ */
/* Output columns                                                           */
/* ------------------------------------------------------------------------ */

/*
 * One row per frame; Python passes the seven columns as numpy arrays of the
 * same length (the capacity). `kind` is the record type: 0 for a pcap record,
 * else the pcapng block type (6 EPB, 3 SPB, 2 PB).
 */
struct columns {
    Py_buffer views[7];
    int n_views;
    int64_t *offset;
    uint32_t *caplen;
    uint32_t *origlen;
    int64_t *ts_ns;
    uint16_t *iface;
    uint16_t *linktype;
    uint8_t *kind;
    Py_ssize_t capacity;
    Py_ssize_t count;
};

static void
release_columns(struct columns *cols)
{
    for (int i = 0; i < cols->n_views; i++)
        PyBuffer_Release(&cols->views[i]);
    cols->n_views = 0;
}

/* Get a writable buffer of items of `itemsize` bytes; returns its length in items or -1. */
static Py_ssize_t
get_column(PyObject *array, Py_ssize_t itemsize, struct columns *cols, void **data)
{
    Py_buffer *view = &cols->views[cols->n_views];
    if (PyObject_GetBuffer(array, view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    cols->n_views++;
    if (view->len % itemsize != 0) {
        PyErr_SetString(PyExc_ValueError, "column buffer size is not a multiple of its item size");
        return -1;
    }
    *data = view->buf;
    return view->len / itemsize;
}

/* Unpack the 7-tuple (offset, caplen, origlen, ts_ns, iface, linktype, kind). */
static int
get_columns(PyObject *tuple, struct columns *cols)
{
    static const Py_ssize_t itemsizes[7] = {8, 4, 4, 8, 2, 2, 1};
    void *data[7];

    memset(cols, 0, sizeof(*cols));
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) != 7) {
        PyErr_SetString(PyExc_TypeError, "columns must be a tuple of 7 arrays");
        return -1;
    }
    for (int i = 0; i < 7; i++) {
        Py_ssize_t n = get_column(PyTuple_GET_ITEM(tuple, i), itemsizes[i], cols, &data[i]);
        if (n < 0)
            goto fail;
        if (i == 0)
            cols->capacity = n;
        else if (n != cols->capacity) {
            PyErr_SetString(PyExc_ValueError, "columns have different lengths");
            goto fail;
        }
    }
    cols->offset = data[0];
    cols->caplen = data[1];
    cols->origlen = data[2];
    cols->ts_ns = data[3];
    cols->iface = data[4];
    cols->linktype = data[5];
    cols->kind = data[6];
    return 0;
fail:
    release_columns(cols);
    return -1;
}

/* Get the writable int64 counters array. */
static int
get_counters(PyObject *array, Py_buffer *view)
{
    if (PyObject_GetBuffer(array, view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (view->len != (Py_ssize_t)(N_COUNTERS * sizeof(int64_t))) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "counters must be an int64 array of len(COUNTER_NAMES)");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Scan state and the tuple returned to Python                              */
/* ------------------------------------------------------------------------ */

struct scan {
    const uint8_t *buf;
    Py_ssize_t len;       /* bytes in buf */
    Py_ssize_t pos;       /* start of the next record */
    Py_ssize_t max_frames;
    int status;
    Py_ssize_t need;      /* SCAN_NEED_MORE: bytes needed from pos */
    PyObject *message;    /* SCAN_DAMAGE: the reason (new reference) */
    int64_t *counters;
    struct columns cols;
};

/* Record damage at the current position with a printf-style reason. */
static void
set_damage(struct scan *s, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    s->status = SCAN_DAMAGE;
    s->message = PyUnicode_FromFormatV(format, args);
    va_end(args);
}

static void
set_need_more(struct scan *s, int64_t need)
{
    s->status = SCAN_NEED_MORE;
    s->need = (Py_ssize_t)need;
}

/* Append a row; the caller has checked that cols.count < max_frames. */
static void
emit_frame(struct scan *s, int64_t data_offset, uint32_t caplen, uint32_t origlen,
           int64_t ts_ns, uint16_t iface, uint16_t linktype, uint8_t kind)
{
    struct columns *c = &s->cols;
    Py_ssize_t i = c->count++;
    c->offset[i] = data_offset;
    c->caplen[i] = caplen;
    c->origlen[i] = origlen;
    c->ts_ns[i] = ts_ns;
    c->iface[i] = iface;
    c->linktype[i] = linktype;
    c->kind[i] = kind;
    if (caplen < origlen)
        s->counters[C_SNAPLEN_TRUNCATED]++;
    else if (caplen > origlen)
        s->counters[C_CAPLEN_EXCEEDS_ORIGLEN]++;
}

/* (status, pos, nframes, need, message-or-None); releases what `s` holds. */
static PyObject *
finish_scan(struct scan *s)
{
    PyObject *message = s->message ? s->message : Py_None;
    PyObject *result = NULL;
    if (s->status != SCAN_ERROR && (s->status != SCAN_DAMAGE || s->message != NULL))
        result = Py_BuildValue("(innnO)", s->status, s->pos, s->cols.count, s->need, message);
    Py_XDECREF(s->message);
    release_columns(&s->cols);
    return result;
}

/* Common argument checks; 0 on success. */
static int
start_scan(struct scan *s, Py_buffer *data, Py_ssize_t pos, Py_ssize_t max_frames,
           PyObject *columns, Py_buffer *counters)
{
    memset(s, 0, sizeof(*s));
    if (pos < 0 || pos > data->len) {
        PyErr_SetString(PyExc_ValueError, "pos is outside the buffer");
        return -1;
    }
    if (get_columns(columns, &s->cols) < 0)
        return -1;
    s->buf = data->buf;
    s->len = data->len;
    s->pos = pos;
    s->max_frames = max_frames < s->cols.capacity ? max_frames : s->cols.capacity;
    if (s->max_frames < 0)
        s->max_frames = 0;
    s->counters = counters->buf;
    s->status = SCAN_FULL;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* pcap                                                                     */
/* ------------------------------------------------------------------------ */

/*
 * pcap "Packet Record": a 16-byte header then the captured bytes.
 *
 *     0  timestamp, seconds (unsigned 32 bits since 1970-01-01 UTC)
 *     4  timestamp, microseconds, or nanoseconds if the file magic is a1b23c4d
 *     8  captured length (bytes of packet data that follow)
 *    12  original length (length of the packet on the wire)
 *
 * The modified pcap (magic a1b2cd34) adds 8 bytes: ifindex (32 bits), protocol
 * (16 bits), packet type (8 bits) and padding; Python reads those if wanted.
 *
 * Files of version 2.0 - 2.2 had the two lengths the other way round, and some
 * files claiming 2.3 too (lengths_mode 1: always swapped; 2: swapped when the
 * captured length is the larger).
 */
struct pcap_params {
    int big_endian;
    int nanosecond;
    Py_ssize_t header_size;   /* 16, or 24 for the modified format */
    int lengths_mode;         /* 0 as stored, 1 swapped, 2 swapped if caplen > origlen */
    uint32_t snaplen;         /* file header snaplen; 0 = unknown */
    uint32_t caplen_limit;    /* larger captured lengths are damage */
    uint16_t linktype;
};

struct pcap_record {
    uint32_t seconds, fraction, caplen, origlen;
};

static void
read_pcap_record_header(const struct pcap_params *pp, const uint8_t *p, struct pcap_record *r)
{
    r->seconds = read_u32(p, pp->big_endian);
    r->fraction = read_u32(p + 4, pp->big_endian);
    r->caplen = read_u32(p + 8, pp->big_endian);
    r->origlen = read_u32(p + 12, pp->big_endian);
    if (pp->lengths_mode == 1 || (pp->lengths_mode == 2 && r->caplen > r->origlen)) {
        uint32_t t = r->caplen;
        r->caplen = r->origlen;
        r->origlen = t;
    }
}

/* Seconds and micro/nanoseconds to nanoseconds. Cannot overflow: both are
 * below 2^32, so the result is below 2^32 * 10^9 + 2^32 * 10^3 < 2^63. */
static int64_t
pcap_timestamp_ns(const struct pcap_params *pp, const struct pcap_record *r, int64_t *counters)
{
    int64_t fraction_ns;
    if (pp->nanosecond) {
        fraction_ns = r->fraction;
        if (r->fraction >= 1000000000u)
            counters[C_TS_FRACTION_OUT_OF_RANGE]++;
    } else {
        fraction_ns = (int64_t)r->fraction * 1000;
        if (r->fraction >= 1000000u)
            counters[C_TS_FRACTION_OUT_OF_RANGE]++;
    }
    return (int64_t)r->seconds * NS_PER_SEC + fraction_ns;
}

static int
all_zero(const uint8_t *p, Py_ssize_t n)
{
    while (n-- > 0)
        if (*p++ != 0)
            return 0;
    return 1;
}

/* Do these four bytes start a pcap file (any byte order, µs, ns or modified pcap) or a
 * pcapng section? */
static int
capture_magic(const uint8_t *p)
{
    static const uint8_t magics[7][4] = {
        {0xd4, 0xc3, 0xb2, 0xa1}, {0xa1, 0xb2, 0xc3, 0xd4}, {0x4d, 0x3c, 0xb2, 0xa1},
        {0xa1, 0xb2, 0x3c, 0x4d}, {0x34, 0xcd, 0xb2, 0xa1}, {0xa1, 0xb2, 0xcd, 0x34},
        {0x0a, 0x0d, 0x0d, 0x0a},
    };
    for (int i = 0; i < 7; i++)
        if (memcmp(p, magics[i], 4) == 0)
            return 1;
    return 0;
}

static void
scan_pcap_records(struct scan *s, const struct pcap_params *pp)
{
    while (s->cols.count < s->max_frames) {
        int64_t avail = s->len - s->pos;
        const uint8_t *p = s->buf + s->pos;
        struct pcap_record r;

        if (avail < pp->header_size) {
            set_need_more(s, pp->header_size);
            return;
        }
        read_pcap_record_header(pp, p, &r);
        /* A record of nothing at time 0 is what zero-filled data looks like (a
         * file preallocated or cut short by a crash, padding, a decompression
         * bomb): stop there rather than deliver one empty frame per 16 bytes. */
        if (r.caplen == 0 && r.origlen == 0 && all_zero(p, pp->header_size)) {
            set_damage(s, "record header is all zeros (zero-filled data from here on?)");
            return;
        }
        /* Another file's header read as a record (`cat a.pcap b.pcap`): its magic
         * where the seconds are, its zone and accuracy (zero) as the lengths. */
        if (r.caplen == 0 && r.origlen == 0 && capture_magic(p)) {
            set_damage(s, "another capture file starts here (files joined with cat?): "
                          "give each file to tcpscope, it merges them");
            return;
        }
        if (r.caplen > pp->caplen_limit) {
            set_damage(s, "record header claims caplen %lu, more than the %lu-byte limit",
                       (unsigned long)r.caplen, (unsigned long)pp->caplen_limit);
            return;
        }
        if (avail - pp->header_size < (int64_t)r.caplen) {
            set_need_more(s, pp->header_size + (int64_t)r.caplen);
            return;
        }

        /* Like libpcap: deliver at most snaplen bytes, skip the rest of the record. */
        uint32_t delivered = r.caplen;
        if (pp->snaplen != 0 && delivered > pp->snaplen) {
            delivered = pp->snaplen;
            s->counters[C_CAPLEN_CLIPPED]++;
        }
        emit_frame(s, s->pos + pp->header_size, delivered, r.origlen,
                   pcap_timestamp_ns(pp, &r, s->counters), 0, pp->linktype, 0);
        s->pos += pp->header_size + (Py_ssize_t)r.caplen;
    }
}

static PyObject *
scan_pcap(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"data", "pos", "columns", "counters", "max_frames",
                               "big_endian", "nanosecond", "header_size", "lengths_mode",
                               "snaplen", "caplen_limit", "linktype", NULL};
    Py_buffer data, counters;
    Py_ssize_t pos, max_frames, header_size;
    PyObject *columns, *counters_obj;
    int big_endian, nanosecond, lengths_mode;
    unsigned long snaplen, caplen_limit;
    unsigned int linktype;
    struct pcap_params pp;
    struct scan s;
    PyObject *result = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*nOOnppnikkI", keywords, &data, &pos,
                                     &columns, &counters_obj, &max_frames, &big_endian,
                                     &nanosecond, &header_size, &lengths_mode, &snaplen,
                                     &caplen_limit, &linktype))
        return NULL;
    if (get_counters(counters_obj, &counters) < 0)
        goto out_data;
    if (header_size != 16 && header_size != 24) {
        PyErr_SetString(PyExc_ValueError, "header_size must be 16 or 24");
        goto out_counters;
    }
    if (start_scan(&s, &data, pos, max_frames, columns, &counters) < 0)
        goto out_counters;

    pp.big_endian = big_endian;
    pp.nanosecond = nanosecond;
    pp.header_size = header_size;
    pp.lengths_mode = lengths_mode;
    pp.snaplen = (uint32_t)snaplen;
    pp.caplen_limit = (uint32_t)(caplen_limit > 0xFFFFFFFFul ? 0xFFFFFFFFul : caplen_limit);
    pp.linktype = (uint16_t)linktype;
    scan_pcap_records(&s, &pp);
    result = finish_scan(&s);
out_counters:
    PyBuffer_Release(&counters);
out_data:
    PyBuffer_Release(&data);
    return result;
}

/* ------------------------------------------------------------------------ */
/* pcapng                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * "General Block Structure": every block is
 *
 *     0  block type (32 bits)
 *     4  block total length (32 bits, a multiple of 4, at least 12)
 *     8  body
 *   L-4  block total length again
 *
 * in the byte order of the section it belongs to. The Section Header Block
 * (type 0a0d0d0a, the same in both byte orders) says the byte order; Python
 * handles it, and the Interface Description Blocks, itself.
 */
#define BT_IDB 0x00000001u
#define BT_PB 0x00000002u
#define BT_SPB 0x00000003u
#define BT_NRB 0x00000004u
#define BT_ISB 0x00000005u
#define BT_EPB 0x00000006u
#define BT_DSB 0x0000000Au
#define BT_SHB 0x0A0D0D0Au
#define BT_CB_COPY 0x00000BADu
#define BT_CB_NOCOPY 0x40000BADu

/*
 * The interfaces of the current section, as Python passes them: an int64
 * array of rows of IFACE_FIELDS values, row i describing the section's
 * interface i.
 */
enum iface_field {
    IF_GLOBAL_INDEX, /* index in the reader's `interfaces` list */
    IF_LINKTYPE,
    IF_SNAPLEN,      /* 0 = no limit */
    IF_TS_BASE,      /* if_tsresol: 10 or 2 */
    IF_TS_EXP,       /* if_tsresol: units per second = base ** exp */
    IF_TS_OFFSET,    /* if_tsoffset, seconds */
    IFACE_FIELDS
};

struct iface {
    uint16_t global_index;
    uint16_t linktype;
    uint32_t snaplen;
    int ts_base, ts_exp;
    int64_t ts_offset;
};

/*
 * The rows are read where Python keeps them, one when a packet names it (the
 * last one is kept decoded), never all at every call: Python calls again after
 * every IDB, so converting the whole table each time would make a file of n
 * IDBs cost O(n^2).
 */
struct pcapng_params {
    int big_endian;
    uint32_t max_block;       /* longer blocks are damage */
    Py_ssize_t n_ifaces;
    const char *rows;         /* n_ifaces rows of IFACE_FIELDS int64 */
    Py_ssize_t cached_id;     /* the row decoded in `cached`, or -1 */
    struct iface cached;
};

/* 10^n for 0 <= n <= 19 (10^19 < 2^64). */
static uint64_t
power_of_ten(int n)
{
    uint64_t v = 1;
    while (n-- > 0)
        v *= 10;
    return v;
}

/*
 * The fraction of a second `frac` / 2^exp (frac < 2^exp), in nanoseconds,
 * rounded down: floor(frac * 10^9 / 2^exp). frac * 10^9 can need 94 bits, so
 * frac is split into 32-bit halves: frac * 10^9 = hi * 10^9 * 2^32 + lo * 10^9,
 * both products below 2^62.
 */
static uint64_t
binary_fraction_to_ns(uint64_t frac, int exp)
{
    if (exp <= 32)
        return (frac * (uint64_t)NS_PER_SEC) >> exp; /* frac < 2^32: product < 2^62 */
    uint64_t hi = (frac >> 32) * (uint64_t)NS_PER_SEC;
    uint64_t lo = (frac & 0xFFFFFFFFu) * (uint64_t)NS_PER_SEC;
    /* floor((hi * 2^32 + lo) / 2^exp) = floor((hi + floor(lo / 2^32)) / 2^(exp - 32)) */
    uint64_t sum = hi + (lo >> 32);
    int shift = exp - 32;
    return shift >= 64 ? 0 : sum >> shift;
}

/*
 * Split a pcapng timestamp (units since 1970 at the interface's resolution,
 * "if_tsresol") into whole seconds and nanoseconds.
 */
static void
split_pcapng_timestamp(const struct iface *ifc, uint64_t units, uint64_t *seconds, uint64_t *ns)
{
    if (ifc->ts_base == 2) {
        if (ifc->ts_exp >= 64) {
            *seconds = 0;
            *ns = binary_fraction_to_ns(units, ifc->ts_exp);
        } else {
            *seconds = units >> ifc->ts_exp;
            *ns = binary_fraction_to_ns(units & ((UINT64_C(1) << ifc->ts_exp) - 1), ifc->ts_exp);
        }
        return;
    }
    /* Base 10; the usual resolutions get constant divisors. */
    switch (ifc->ts_exp) {
    case 6:
        *seconds = units / 1000000u;
        *ns = (units % 1000000u) * 1000u;
        return;
    case 9:
        *seconds = units / 1000000000u;
        *ns = units % 1000000000u;
        return;
    }
    if (ifc->ts_exp > 19) {
        /* 10^exp > 2^64 > units: everything is a fraction of the first second. */
        *seconds = 0;
        *ns = ifc->ts_exp - 9 > 19 ? 0 : units / power_of_ten(ifc->ts_exp - 9);
        return;
    }
    uint64_t per_second = power_of_ten(ifc->ts_exp);
    uint64_t frac = units % per_second;
    *seconds = units / per_second;
    if (ifc->ts_exp <= 9)
        *ns = frac * power_of_ten(9 - ifc->ts_exp); /* frac < 10^exp: product < 10^9 */
    else
        *ns = frac / power_of_ten(ifc->ts_exp - 9);
}

/*
 * seconds + offset as int64 seconds within +-MAX_TS_SECONDS. Returns 0, or
 * +1 / -1 when the sum is above / below that range. Exact for every input:
 * the magnitudes are compared as unsigned numbers, never summed blindly.
 */
static int
add_seconds(uint64_t seconds, int64_t offset, int64_t *total)
{
    if (offset >= 0) {
        if (seconds > (uint64_t)MAX_TS_SECONDS || (uint64_t)offset > (uint64_t)MAX_TS_SECONDS - seconds)
            return 1;
        *total = (int64_t)seconds + offset;
        return 0;
    }
    uint64_t magnitude = (uint64_t)(-(offset + 1)) + 1; /* |offset|, even for INT64_MIN */
    if (seconds >= magnitude) {
        if (seconds - magnitude > (uint64_t)MAX_TS_SECONDS)
            return 1;
        *total = (int64_t)(seconds - magnitude);
        return 0;
    }
    if (magnitude - seconds > (uint64_t)MAX_TS_SECONDS)
        return -1;
    *total = -(int64_t)(magnitude - seconds);
    return 0;
}

/* The timestamp plus if_tsoffset, as int64 nanoseconds since 1970; saturates
 * (and counts) outside the years 1677 .. 2262. */
static int64_t
pcapng_timestamp_ns(const struct iface *ifc, uint64_t units, int64_t *counters)
{
    uint64_t seconds, ns;
    int64_t total;
    split_pcapng_timestamp(ifc, units, &seconds, &ns);
    int range = add_seconds(seconds, ifc->ts_offset, &total);
    if (range != 0) {
        counters[C_TS_OUT_OF_RANGE]++;
        return range > 0 ? INT64_MAX : INT64_MIN;
    }
    return total * NS_PER_SEC + (int64_t)ns;
}

/* Decode row `id` of the interface table into np->cached; -1 (Python error) if out of range. */
static int
decode_iface(struct pcapng_params *np, Py_ssize_t id)
{
    int64_t v[IFACE_FIELDS];
    memcpy(v, np->rows + id * (Py_ssize_t)sizeof(v), sizeof(v));
    if (v[IF_GLOBAL_INDEX] < 0 || v[IF_GLOBAL_INDEX] > 0xFFFF || v[IF_LINKTYPE] < 0 ||
        v[IF_LINKTYPE] > 0xFFFF || v[IF_SNAPLEN] < 0 || v[IF_SNAPLEN] > 0xFFFFFFFFLL ||
        (v[IF_TS_BASE] != 10 && v[IF_TS_BASE] != 2) || v[IF_TS_EXP] < 0 || v[IF_TS_EXP] > 127) {
        PyErr_SetString(PyExc_ValueError, "interface row out of range");
        return -1;
    }
    np->cached.global_index = (uint16_t)v[IF_GLOBAL_INDEX];
    np->cached.linktype = (uint16_t)v[IF_LINKTYPE];
    np->cached.snaplen = (uint32_t)v[IF_SNAPLEN];
    np->cached.ts_base = (int)v[IF_TS_BASE];
    np->cached.ts_exp = (int)v[IF_TS_EXP];
    np->cached.ts_offset = v[IF_TS_OFFSET];
    np->cached_id = id;
    return 0;
}

/* The section's interface `id`, or NULL (and damage, or a Python error for a
 * bad row) if it has not been described. */
static const struct iface *
find_iface(struct scan *s, struct pcapng_params *np, uint32_t id, const char *block)
{
    if (id < (uint64_t)np->n_ifaces) {
        if ((Py_ssize_t)id != np->cached_id && decode_iface(np, (Py_ssize_t)id) < 0) {
            s->status = SCAN_ERROR;
            return NULL;
        }
        return &np->cached;
    }
    if (np->n_ifaces == 0)
        set_damage(s, "%s on interface %lu, but the section has no interface description block",
                   block, (unsigned long)id);
    else
        set_damage(s, "%s on interface %lu, but the section describes only %zd interface(s)",
                   block, (unsigned long)id, np->n_ifaces);
    return NULL;
}

/*
 * "Enhanced Packet Block" (type 6) and the obsolete "Packet Block" (type 2):
 *
 *     8  interface id (32 bits; PB: 16-bit id then 16-bit drop count)
 *    12  timestamp, upper 32 bits
 *    16  timestamp, lower 32 bits
 *    20  captured packet length
 *    24  original packet length
 *    28  packet data, padded to 32 bits, then options
 *
 * `total` has been checked against the buffer and the trailer.
 */
static void
scan_packet_block(struct scan *s, struct pcapng_params *np, uint32_t type, uint32_t total)
{
    const uint8_t *b = s->buf + s->pos;
    const char *name = type == BT_EPB ? "enhanced packet block" : "packet block";
    if (total < 32) {
        set_damage(s, "%s length %lu is less than the 32-byte minimum", name, (unsigned long)total);
        return;
    }
    uint32_t id = type == BT_EPB ? read_u32(b + 8, np->big_endian) : read_u16(b + 8, np->big_endian);
    uint64_t units = ((uint64_t)read_u32(b + 12, np->big_endian) << 32) | read_u32(b + 16, np->big_endian);
    uint32_t caplen = read_u32(b + 20, np->big_endian);
    uint32_t origlen = read_u32(b + 24, np->big_endian);
    uint32_t room = total - 32;

    if (caplen > room) {
        set_damage(s, "%s claims caplen %lu, but the block has room for only %lu bytes",
                   name, (unsigned long)caplen, (unsigned long)room);
        return;
    }
    const struct iface *ifc = find_iface(s, np, id, name);
    if (ifc == NULL)
        return;
    if (ifc->snaplen != 0 && caplen > ifc->snaplen)
        s->counters[C_CAPLEN_EXCEEDS_SNAPLEN]++;
    s->counters[type == BT_EPB ? C_EPB : C_PB]++;
    emit_frame(s, s->pos + 28, caplen, origlen, pcapng_timestamp_ns(ifc, units, s->counters),
               ifc->global_index, ifc->linktype, (uint8_t)type);
}

/*
 * "Simple Packet Block" (type 3): original length at 8, data at 12. It belongs
 * to the section's first interface and has no timestamp (timestamp 0 here). The
 * captured length is the smallest of the original length, the room in the
 * block and the interface's snaplen.
 */
static void
scan_simple_packet_block(struct scan *s, struct pcapng_params *np, uint32_t total)
{
    const uint8_t *b = s->buf + s->pos;
    if (total < 16) {
        set_damage(s, "simple packet block length %lu is less than the 16-byte minimum",
                   (unsigned long)total);
        return;
    }
    const struct iface *ifc = find_iface(s, np, 0, "simple packet block");
    if (ifc == NULL)
        return;
    uint32_t origlen = read_u32(b + 8, np->big_endian);
    uint32_t caplen = origlen;
    if (caplen > total - 16)
        caplen = total - 16;
    if (ifc->snaplen != 0 && caplen > ifc->snaplen)
        caplen = ifc->snaplen;
    s->counters[C_SPB]++;
    emit_frame(s, s->pos + 12, caplen, origlen, 0, ifc->global_index, ifc->linktype, BT_SPB);
}

/* Count a block we skip. */
static void
count_skipped_block(struct scan *s, uint32_t type)
{
    switch (type) {
    case BT_NRB: s->counters[C_NRB]++; break;
    case BT_ISB: s->counters[C_ISB]++; break;
    case BT_DSB: s->counters[C_DSB]++; break;
    case BT_CB_COPY:
    case BT_CB_NOCOPY: s->counters[C_CUSTOM]++; break;
    default: s->counters[C_UNKNOWN_BLOCK]++; break;
    }
}

/*
 * Check the general block structure of the block at pos: its length, that it
 * is all in the buffer, and that the trailing copy of the length agrees.
 * Returns the length, or 0 after setting the status.
 */
static uint32_t
check_block(struct scan *s, const struct pcapng_params *np)
{
    const uint8_t *b = s->buf + s->pos;
    int64_t avail = s->len - s->pos;
    uint32_t total = read_u32(b + 4, np->big_endian);

    if (total % 4 != 0) {
        set_damage(s, "block length %lu is not a multiple of 4", (unsigned long)total);
        return 0;
    }
    if (total < 12) {
        set_damage(s, "block length %lu is less than the 12-byte minimum", (unsigned long)total);
        return 0;
    }
    if (total > np->max_block) {
        set_damage(s, "block length %lu is more than the %lu-byte limit", (unsigned long)total,
                   (unsigned long)np->max_block);
        return 0;
    }
    if (avail < (int64_t)total) {
        set_need_more(s, total);
        return 0;
    }
    uint32_t trailer = read_u32(b + total - 4, np->big_endian);
    if (trailer != total) {
        set_damage(s, "block length %lu at its start does not match %lu at its end",
                   (unsigned long)total, (unsigned long)trailer);
        return 0;
    }
    return total;
}

static void
scan_pcapng_blocks(struct scan *s, struct pcapng_params *np)
{
    for (;;) {
        if (s->len - s->pos < 8) {
            set_need_more(s, 8);
            return;
        }
        uint32_t type = read_u32(s->buf + s->pos, np->big_endian);
        if (type == BT_SHB) {
            s->status = SCAN_BLOCK; /* may change the byte order: Python reads it */
            return;
        }
        int is_packet = type == BT_EPB || type == BT_SPB || type == BT_PB;
        if (is_packet && s->cols.count >= s->max_frames) {
            s->status = SCAN_FULL;
            return;
        }
        uint32_t total = check_block(s, np);
        if (total == 0)
            return;
        if (type == BT_IDB) {
            s->status = SCAN_BLOCK;
            return;
        }
        if (type == BT_EPB || type == BT_PB)
            scan_packet_block(s, np, type, total);
        else if (type == BT_SPB)
            scan_simple_packet_block(s, np, total);
        else
            count_skipped_block(s, type);
        if (s->status == SCAN_DAMAGE || s->status == SCAN_ERROR)
            return;
        s->pos += total;
    }
}

/* Point `np` at the interface table (rows of IFACE_FIELDS int64). */
static int
get_ifaces(Py_buffer *view, struct pcapng_params *np)
{
    const Py_ssize_t row = IFACE_FIELDS * (Py_ssize_t)sizeof(int64_t);
    if (view->len % row != 0) {
        PyErr_SetString(PyExc_ValueError, "ifaces must be an int64 array of rows of 6");
        return -1;
    }
    np->n_ifaces = view->len / row;
    np->rows = view->buf;
    np->cached_id = -1;
    return 0;
}

static PyObject *
scan_pcapng(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"data", "pos", "columns", "counters", "max_frames",
                               "big_endian", "ifaces", "max_block", NULL};
    Py_buffer data, ifaces_view, counters;
    Py_ssize_t pos, max_frames;
    PyObject *columns, *counters_obj;
    int big_endian;
    unsigned long max_block;
    struct pcapng_params np = {0};
    struct scan s;
    PyObject *result = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*nOOnpy*k", keywords, &data, &pos,
                                     &columns, &counters_obj, &max_frames, &big_endian,
                                     &ifaces_view, &max_block))
        return NULL;
    if (get_counters(counters_obj, &counters) < 0)
        goto out_ifaces;
    if (get_ifaces(&ifaces_view, &np) < 0)
        goto out_counters;
    if (start_scan(&s, &data, pos, max_frames, columns, &counters) < 0)
        goto out_counters;
    np.big_endian = big_endian;
    np.max_block = (uint32_t)(max_block > 0xFFFFFFFFul ? 0xFFFFFFFFul : max_block);
    scan_pcapng_blocks(&s, &np);
    result = finish_scan(&s);
out_counters:
    PyBuffer_Release(&counters);
out_ifaces:
    PyBuffer_Release(&ifaces_view);
    PyBuffer_Release(&data);
    return result;
}

/* ------------------------------------------------------------------------ */
/* Module                                                                   */
/* ------------------------------------------------------------------------ */

PyDoc_STRVAR(scan_pcap_doc,
"scan_pcap(data, pos, columns, counters, max_frames, big_endian, nanosecond,\n"
"          header_size, lengths_mode, snaplen, caplen_limit, linktype)\n"
"-> (status, pos, nframes, need, message)\n\n"
"Find pcap packet records in data[pos:] and fill the columns.");

PyDoc_STRVAR(scan_pcapng_doc,
"scan_pcapng(data, pos, columns, counters, max_frames, big_endian, ifaces, max_block)\n"
"-> (status, pos, nframes, need, message)\n\n"
"Find pcapng packet blocks in data[pos:] and fill the columns; stop at SHB/IDB.");

static PyMethodDef METHODS[] = {
    {"scan_pcap", (PyCFunction)(void (*)(void))scan_pcap, METH_VARARGS | METH_KEYWORDS, scan_pcap_doc},
    {"scan_pcapng", (PyCFunction)(void (*)(void))scan_pcapng, METH_VARARGS | METH_KEYWORDS, scan_pcapng_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_scan",
    .m_doc = "Find the packet records of pcap and pcapng captures.",
    .m_size = -1,
    .m_methods = METHODS,
};

PyMODINIT_FUNC
PyInit__scan(void)
{
    PyObject *m = PyModule_Create(&MODULE);
    if (m == NULL)
        return NULL;
    PyObject *names = PyTuple_New(N_COUNTERS);
    if (names == NULL)
        goto fail;
    for (int i = 0; i < N_COUNTERS; i++) {
        PyObject *name = PyUnicode_FromString(COUNTER_NAMES[i]);
        if (name == NULL) {
            Py_DECREF(names);
            goto fail;
        }
        PyTuple_SET_ITEM(names, i, name);
    }
    if (PyModule_AddObject(m, "COUNTER_NAMES", names) < 0) {
        Py_DECREF(names);
        goto fail;
    }
    if (PyModule_AddIntConstant(m, "NEED_MORE", SCAN_NEED_MORE) < 0 ||
        PyModule_AddIntConstant(m, "FULL", SCAN_FULL) < 0 ||
        PyModule_AddIntConstant(m, "DAMAGE", SCAN_DAMAGE) < 0 ||
        PyModule_AddIntConstant(m, "BLOCK", SCAN_BLOCK) < 0 ||
        PyModule_AddIntConstant(m, "IFACE_FIELDS", IFACE_FIELDS) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}

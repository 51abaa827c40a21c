/*
 * _bpf.c -- run a compiled capture filter over a batch of frames.
 *
 *   run(filter_fn, program, data, offset, caplen, origlen, rows) -> bytes
 *
 * `program` is a classic BPF program as libpcap's pcap_compile made it (8-byte
 * struct bpf_insn, host byte order), `filter_fn` the address of libpcap's own
 * interpreter, `bpf_filter` (bpf.py finds both through ctypes, so tcpscope
 * needs libpcap only at run time, and only to filter). For each row index in
 * `rows` (int64) the frame at data[offset[i] .. offset[i] + caplen[i]) is
 * filtered as tcpdump -r filters it: bpf_filter(program, bytes, origlen,
 * caplen) != 0. The result holds one byte per row: 1 = the frame matches.
 *
 * The loop is native and releases the GIL: no Python call per frame.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* libpcap's struct bpf_insn (pcap/bpf.h), a stable ABI since BSD 4.4. */
struct bpf_insn {
    uint16_t code;
    uint8_t jt;
    uint8_t jf;
    uint32_t k;
};

typedef unsigned (*bpf_filter_fn)(const struct bpf_insn *, const unsigned char *, unsigned,
                                  unsigned);

static PyObject *bpf_run(PyObject *self, PyObject *args)
{
    unsigned long long fn_addr;
    Py_buffer prog = {0}, data = {0}, off_b = {0}, cap_b = {0}, orig_b = {0}, rows_b = {0};
    if (!PyArg_ParseTuple(args, "Ky*y*y*y*y*y*", &fn_addr, &prog, &data, &off_b, &cap_b, &orig_b,
                          &rows_b))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = off_b.len / 8, nrows = rows_b.len / 8;
    if (!fn_addr || prog.len == 0 || prog.len % (Py_ssize_t)sizeof(struct bpf_insn)
        || cap_b.len < n * 4 || orig_b.len < n * 4) {
        PyErr_SetString(PyExc_ValueError, "run: a program, a filter function and batch columns");
        goto done;
    }
    const int64_t *offset = off_b.buf, *rows = rows_b.buf;
    const uint32_t *caplen = cap_b.buf, *origlen = orig_b.buf;
    for (Py_ssize_t j = 0; j < nrows; j++) {
        int64_t i = rows[j];
        if (i < 0 || i >= n || offset[i] < 0 || offset[i] + (int64_t)caplen[i] > (int64_t)data.len) {
            PyErr_SetString(PyExc_ValueError, "run: a row or frame lies outside the batch");
            goto done;
        }
    }
    result = PyBytes_FromStringAndSize(NULL, nrows);
    if (!result)
        goto done;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result);
    bpf_filter_fn filter = (bpf_filter_fn)(uintptr_t)fn_addr;
    const struct bpf_insn *pc = prog.buf;
    const unsigned char *base = data.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < nrows; j++) {
        int64_t i = rows[j];
        out[j] = filter(pc, base + offset[i], origlen[i], caplen[i]) != 0;
    }
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&prog);
    PyBuffer_Release(&data);
    PyBuffer_Release(&off_b);
    PyBuffer_Release(&cap_b);
    PyBuffer_Release(&orig_b);
    PyBuffer_Release(&rows_b);
    return result;
}

static PyMethodDef METHODS[] = {
    {"run", bpf_run, METH_VARARGS,
     "run(filter_fn, program, data, offset, caplen, origlen, rows) -> bytes: 1 per matching row"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_bpf",
                                    "A compiled capture filter run over a batch (libpcap's bpf_filter).",
                                    -1, METHODS, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__bpf(void) { return PyModule_Create(&MODULE); }

/*
 * _dissect.c -- bulk dissection of frames into tcps_record rows.
 *
 * Placeholder: exports the record layout and the enumeration names; the
 * dissector itself is written in wire/_dissect.c by the wire/ work.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include "record.h"

#define FIELD(name, ctype) { #name, offsetof(tcps_record, name), ctype, sizeof(((tcps_record *)0)->name) }
typedef struct { const char *name; size_t offset; const char *ctype; size_t size; } field_desc;

static const field_desc FIELDS[] = {
    FIELD(src, "(16,)u1"), FIELD(dst, "(16,)u1"),
    FIELD(seq, "u4"), FIELD(ack, "u4"), FIELD(payload_len, "u4"), FIELD(payload_cap, "u4"),
    FIELD(ts_val, "u4"), FIELD(ts_ecr, "u4"), FIELD(sack, "(8,)u4"),
    FIELD(sport, "u2"), FIELD(dport, "u2"), FIELD(tcp_flags, "u2"), FIELD(win, "u2"),
    FIELD(tcp_csum, "u2"), FIELD(tcp_csum_calc, "u2"), FIELD(urg, "u2"), FIELD(mss, "u2"),
    FIELD(opt_present, "u2"), FIELD(opt_off, "u2"), FIELD(opt_len, "u2"),
    FIELD(tcp_hlen, "u1"), FIELD(wscale, "u1"), FIELD(sack_count, "u1"), FIELD(tcp_csum_status, "u1"),
    FIELD(ip_len, "u4"), FIELD(ip6_flow, "u4"), FIELD(ip6_frag_id, "u4"),
    FIELD(ip_id, "u2"), FIELD(ip_frag_off, "u2"), FIELD(ip_csum, "u2"), FIELD(ip_csum_calc, "u2"),
    FIELD(ethertype, "u2"), FIELD(l3_off, "u2"), FIELD(l4_off, "u2"), FIELD(stop_off, "u2"),
    FIELD(warnings, "u2"),
    FIELD(ip_version, "u1"), FIELD(ip_hlen, "u1"), FIELD(ip_proto, "u1"), FIELD(ip_tos, "u1"),
    FIELD(ip_ttl, "u1"), FIELD(ip_flags, "u1"), FIELD(ip_csum_status, "u1"), FIELD(ip6_ext, "u1"),
    FIELD(ifindex, "u4"), FIELD(sll_pkttype, "u2"), FIELD(vlan_depth, "u1"), FIELD(kind, "u1"),
    FIELD(stop_layer, "u1"), FIELD(stop_reason, "u1"),
};

static PyObject *record_layout(PyObject *self, PyObject *unused)
{
    size_t n = sizeof(FIELDS) / sizeof(FIELDS[0]);
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (!list) return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *t = Py_BuildValue("(snsn)", FIELDS[i].name, (Py_ssize_t)FIELDS[i].offset,
                                    FIELDS[i].ctype, (Py_ssize_t)FIELDS[i].size);
        if (!t) { Py_DECREF(list); return NULL; }
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    return Py_BuildValue("(Nn)", list, (Py_ssize_t)sizeof(tcps_record));
}

#define NAME_PAIR(name, value) { #name, value },
typedef struct { const char *name; long value; } name_value;
static const name_value KINDS[] = { TCPS_KINDS(NAME_PAIR) };
static const name_value LAYERS[] = { TCPS_LAYERS(NAME_PAIR) };
static const name_value REASONS[] = { TCPS_REASONS(NAME_PAIR) };
static const name_value WARNINGS[] = { TCPS_WARNINGS(NAME_PAIR) };
static const name_value CSUMS[] = { TCPS_CSUM(NAME_PAIR) };
static const name_value OPTS[] = { TCPS_OPTS(NAME_PAIR) };

static PyObject *pairs_to_dict(const name_value *p, size_t n)
{
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *v = PyLong_FromLong(p[i].value);
        if (!v || PyDict_SetItemString(d, p[i].name, v) < 0) { Py_XDECREF(v); Py_DECREF(d); return NULL; }
        Py_DECREF(v);
    }
    return d;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))
static PyObject *enums(PyObject *self, PyObject *unused)
{
    /* warnings and options are bit numbers here; Python turns them into masks */
    return Py_BuildValue("{sNsNsNsNsNsN}",
        "kind", pairs_to_dict(KINDS, N(KINDS)), "layer", pairs_to_dict(LAYERS, N(LAYERS)),
        "reason", pairs_to_dict(REASONS, N(REASONS)), "warning", pairs_to_dict(WARNINGS, N(WARNINGS)),
        "csum", pairs_to_dict(CSUMS, N(CSUMS)), "option", pairs_to_dict(OPTS, N(OPTS)));
}

static PyMethodDef METHODS[] = {
    {"record_layout", record_layout, METH_NOARGS, "(fields, itemsize) of tcps_record; fields are (name, offset, numpy format, size)."},
    {"enums", enums, METH_NOARGS, "Names and values of the record's enumerations (warning/option values are bit numbers)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_dissect", "Bulk frame dissection.", -1, METHODS};

PyMODINIT_FUNC PyInit__dissect(void) { return PyModule_Create(&MODULE); }

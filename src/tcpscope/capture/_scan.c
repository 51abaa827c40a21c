/* _scan.c -- placeholder; the record scanners of capture/ go here. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
static PyMethodDef METHODS[] = {{NULL, NULL, 0, NULL}};
static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_scan", "Capture record scanning.", -1, METHODS};
PyMODINIT_FUNC PyInit__scan(void) { return PyModule_Create(&MODULE); }

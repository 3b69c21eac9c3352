/* The Python-facing side of the _spawn module, shared by its translation units (_spawn.c,
 * _lane.c, _reap.c, _process.c): parsing a spec from Python, the Lane type, the module
 * functions. The child side's interface (struct spec, spawn_vfork()) is spawn_child.h. */
#ifndef ACTIVATOR_SPAWN_H
#define ACTIVATOR_SPAWN_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "spawn_child.h"

/* What spec_parse() allocated (PyMem; free with the GIL held) and the buffers the child
 * writes its own pid into. The strings are borrowed from the argument tuples. */
struct spec_mem {
    long long *gl;
    int quiet;
    char listen_buf[32], watchdog_buf[32];
};

/* Fills `s` from spawn()'s keyword arguments; 0, or -1 with an exception set (then
 * spec_free() is still needed). */
int spec_parse(PyObject *args, PyObject *kw, struct spec *s, struct spec_mem *m, int *in_place);
void spec_free(struct spec *s, struct spec_mem *m);

extern PyTypeObject LaneType;

/* _reap.c: SIGCHLD blocked in the calling thread and readable from an fd (reaper.py). */
PyObject *sigchld_fd(PyObject *self, PyObject *unused);
/* _process.c: process-wide settings (PR_SET_CHILD_SUBREAPER, malloc_trim). */
PyObject *set_subreaper(PyObject *self, PyObject *unused);
PyObject *trim_memory(PyObject *self, PyObject *unused);
#endif

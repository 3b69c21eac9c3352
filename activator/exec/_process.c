/* Process-wide settings of the daemon, in C so that the daemon needs no ctypes:
 * set_subreaper() (service.py) and trim_memory() (daemon.py), one call each. */
#define _GNU_SOURCE
#include "_spawn.h"
#include <malloc.h>
#include <sys/prctl.h>

/* Orphans of services come back to us (a forking daemon, leftovers of a process group). */
PyObject *set_subreaper(PyObject *self, PyObject *unused)
{
    (void)self, (void)unused;
    return PyBool_FromLong(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0);
}

/* What parsing the units left in malloc's free lists goes back to the system. */
PyObject *trim_memory(PyObject *self, PyObject *unused)
{
    (void)self, (void)unused;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    Py_RETURN_NONE;
}

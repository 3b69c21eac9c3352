/* Process-wide settings of the daemon, in C so that the daemon needs no ctypes:
 * sigchld_fd() for the one reaper (reaper.py), set_subreaper(), malloc_trim().
 *
 * sigchld_fd: SIGCHLD as a file descriptor.
 *
 * The event loop watches this fd and reaps every zombie when it is readable: no thread,
 * no signal handler (uvloop keeps SIGCHLD handlers to itself), one wake-up per batch of
 * exits, none while idle. The signal must be blocked in every thread, or a thread that
 * leaves it unblocked takes it (and its default action ignores it): the caller blocks it
 * in the main thread before any other thread exists; every thread activator starts
 * inherits that mask or blocks everything, and children get an empty mask before exec. */
#define _GNU_SOURCE
#include "_spawn.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <malloc.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>

PyObject *sigchld_fd(PyObject *self, PyObject *unused)
{
    (void)self, (void)unused;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGCHLD);
    int e = pthread_sigmask(SIG_BLOCK, &s, NULL);
    if (e) {
        errno = e;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    int fd = signalfd(-1, &s, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(fd);
}

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

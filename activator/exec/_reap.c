/* sigchld_fd(): SIGCHLD as a file descriptor, for the one reaper (reaper.py), in C so that
 * the daemon needs no ctypes. (set_subreaper() and trim_memory(), process-wide settings
 * that have nothing to do with reaping, are _process.c's.)
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

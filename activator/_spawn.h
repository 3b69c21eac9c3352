/* Shared between the spawn core (_spawn.c) and the accept lane (_lane.c). */
#ifndef ACTIVATOR_SPAWN_H
#define ACTIVATOR_SPAWN_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sys/types.h>

struct spec {
    const char *path, *cwd;       /* cwd NULL: keep */
    char **argv, **envp;
    char *listen_pid;             /* the envp slot "LISTEN_PID=" + room for digits, or NULL */
    char *watchdog_pid;           /* likewise "WATCHDOG_PID=" (WatchdogSec=), or NULL */
    long long *fds, *rlimits;     /* rlimits: (resource, soft, hard) triples; -1 = infinity */
    int nfds, nrlimits, stdio[3]; /* stdio -1: /dev/null */
    int *scratch;                 /* 3 + nfds ints for move_fds() */
    long uid, gid;                /* -1: keep */
    gid_t *groups;
    int ngroups;                  /* -1: keep */
    unsigned int umask;
    int nice, oom, has_nice, has_oom, has_bounding;
    unsigned long long bounding, ambient; /* capability masks */
    int nonblocking, cwd_optional, no_new_privs, ignore_sigpipe, new_session;
};
struct report { int step, err, quiet; }; /* quiet: the caller logs failures itself */

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

/* vfork, set up, execve. Every signal must be blocked in the calling thread (the child
 * inherits the mask and unblocks just before execve). Returns the pid (the child has
 * exec'd or, with r->step != 0, exited) or -1 with errno. */
pid_t spawn_vfork(const struct spec *s, volatile struct report *r);

/* A failed step's name ("exec"), the verb for messages ("exec") and systemd's exit code. */
const char *spawn_step_name(int step);
const char *spawn_step_verb(int step);
int spawn_step_code(int step);

extern PyTypeObject LaneType;

/* _reap.c: SIGCHLD blocked in the calling thread and readable from an fd (reaper.py). */
PyObject *sigchld_fd(PyObject *self, PyObject *unused);
PyObject *set_subreaper(PyObject *self, PyObject *unused);
PyObject *trim_memory(PyObject *self, PyObject *unused);
#endif

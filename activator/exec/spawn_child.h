/* The spawn core's child side (spawn_child.c): what a caller fills in, and the two ways in.
 * Only POSIX/Linux headers here, never Python.h: the child must not be able to reach
 * Python, and this header is all it shares with the glue (_spawn.c) and the lane (_lane.c). */
#ifndef ACTIVATOR_SPAWN_CHILD_H
#define ACTIVATOR_SPAWN_CHILD_H
#include <sys/types.h>

/* Everything the child needs, prepared by the parent before vfork(): the child only reads it
 * (and writes its own pid into the LISTEN_PID=/WATCHDOG_PID= buffers and fds into scratch). */
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
/* step: 0 while no step has failed, else the failed one (1 .. spawn_step_count()).
 * quiet: the caller logs failures itself.
 * What the child let pass as systemd does in a container, for the caller to log (the child
 * cannot): tolerated has bit 1 << step for each such step; clamped bit 1 << RLIMIT_* for each
 * limit set to the closest value allowed (setrlimit_closest()); nice is the level set when
 * Nice= was clamped (setpriority_closest()). what: for a failed setrlimit, the resource; for
 * a failed capability_bounding or ambient_capabilities, the capability. */
struct report {
    int step, err, quiet;
    unsigned int tolerated;
    unsigned long long clamped;
    int nice, what;
};

/* vfork, set up, execve. Every signal must be blocked in the calling thread (the child
 * inherits the mask and unblocks just before execve). Returns the pid (the child has
 * exec'd or, with r->step != 0, exited) or -1 with errno. */
pid_t spawn_vfork(const struct spec *s, volatile struct report *r);

/* The same set-up and execve in the calling process itself (the chain-loader): execs, or
 * exits with the failed step's code; never returns. Every signal must be blocked. */
void spawn_in_place(const struct spec *s, volatile struct report *r) __attribute__((noreturn));

/* A failed step's name ("exec"), the verb for messages ("exec") and systemd's exit code;
 * steps are numbered 1 .. spawn_step_count(). */
const char *spawn_step_name(int step);
const char *spawn_step_verb(int step);
int spawn_step_code(int step);
int spawn_step_count(void);
#endif

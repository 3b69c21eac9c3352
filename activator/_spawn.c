/* activator._spawn: the privileged spawn core, everything between fork and exec.
 *
 * Why C and vfork: os.fork() copies the page tables of a big Python parent (322 spawns/s
 * from a 54 MB asyncio process); vfork() borrows the parent's memory until the child
 * execs or exits, so its cost does not grow with the parent. The price: the child shares
 * the parent's memory and libc state, so it may only make async-signal-safe calls, never
 * malloc, lock or run Python. The parent therefore prepares everything (argv, envp, the
 * LISTEN_PID= buffer, scratch arrays) before vfork(), and the child reports a failed step
 * by writing into `struct report`, which the parent reads once vfork() returns.
 *
 * Credentials change with raw syscalls: glibc's setgroups()/setgid()/setuid() broadcast
 * the change to every thread of the process (setxid signals), which from a vfork child
 * would reach the parent's threads. The raw syscalls change only the calling task.
 *
 * On failure the child writes one line to its fd 2 and exits with systemd's code for the
 * step (systemd.exec(5), "Process exit codes"). Python face: activator/execcore.py. */
#define _GNU_SOURCE
#include "_spawn.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifdef SYS_setresuid32 /* 32-bit x86/arm: the plain calls take 16-bit ids */
#define SYS_SETGROUPS SYS_setgroups32
#define SYS_SETRESGID SYS_setresgid32
#define SYS_SETRESUID SYS_setresuid32
#else
#define SYS_SETGROUPS SYS_setgroups
#define SYS_SETRESGID SYS_setresgid
#define SYS_SETRESUID SYS_setresuid
#endif

enum step { OK, SETSID, NICE, OOM, STDIN, STDOUT, STDERR, FDS, LIMITS, BOUNDING, KEEPCAPS,
            SETGROUPS, SETGID, SETUID, AMBIENT, NO_NEW_PRIVS, CHDIR, SIGNALS, EXEC };
static const struct { const char *name, *verb; int code; } steps[] = {
    [SETSID] = {"setsid", "create a session for", 220},
    [NICE] = {"nice", "set the nice level of", 201},
    [OOM] = {"oom_score_adj", "set the OOM score of", 206},
    [STDIN] = {"stdin", "set up stdin of", 208},
    [STDOUT] = {"stdout", "set up stdout of", 209},
    [STDERR] = {"stderr", "set up stderr of", 222},
    [FDS] = {"fds", "pass fds to", 202},
    [LIMITS] = {"setrlimit", "set resource limits of", 205},
    [BOUNDING] = {"capability_bounding", "drop capabilities of", 218},
    [KEEPCAPS] = {"keepcaps", "keep capabilities of", 217},
    [SETGROUPS] = {"setgroups", "set groups of", 216},
    [SETGID] = {"setgid", "set gid of", 216},
    [SETUID] = {"setuid", "set uid of", 217},
    [AMBIENT] = {"ambient_capabilities", "raise ambient capabilities of", 218},
    [NO_NEW_PRIVS] = {"no_new_privs", "set no_new_privs for", 227},
    [CHDIR] = {"chdir", "chdir to", 200},
    [SIGNALS] = {"signals", "reset signals of", 207},
    [EXEC] = {"exec", "exec", 203},
};


/* Writes v in decimal so that it ends just before `end`; returns where it starts. */
static char *decimal(char *end, long v)
{
    unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
    do *--end = (char)('0' + u % 10); while (u /= 10);
    if (v < 0) *--end = '-';
    return end;
}

static void __attribute__((noreturn))
fail(volatile struct report *r, enum step st, const char *obj)
{
    int e = errno;
    char num[24] = {0};
    const char *desc = NULL;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
    desc = strerrordesc_np(e); /* a static table: no locale, no malloc, unlike strerror() */
#endif
    if (!desc) desc = decimal(num + sizeof num - 1, e);
    r->step = st;
    r->err = e;
    struct iovec v[] = {{(char *)"activator-exec: unable to ", 26},
                        {(char *)steps[st].verb, strlen(steps[st].verb)}, {(char *)" ", 1},
                        {(char *)obj, strnlen(obj, 1024)}, {(char *)": ", 2},
                        {(char *)desc, strlen(desc)}, {(char *)"\n", 1}};
    /* Never block on fd 2: the parent is suspended until we exit, and it may be the very
     * process that drains that pipe (or a peer may leave that socket's buffer full). The
     * line stays under PIPE_BUF, so a pipe with room takes it whole. If it is lost, the
     * parent still reports the failure from `r`. */
    struct msghdr m = {.msg_iov = v, .msg_iovlen = 7};
    struct pollfd p = {.fd = 2, .events = POLLOUT};
    if (!r->quiet && sendmsg(2, &m, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno == ENOTSOCK &&
        poll(&p, 1, 0) == 1 && (p.revents & POLLOUT) && writev(2, v, 7) < 0) { /* lost */ }
    _exit(steps[st].code);
}
#define TRY(call, st) do { if ((call) < 0) fail(r, st, s->path); } while (0)

/* Puts stdio on 0-2 and fds[i] on 3+i, then closes everything else. Every source is first
 * copied above all sources and targets, so no dup2() can clobber a source still needed, one
 * fd may appear in several places, and every dup2() really creates the target (a dup2() of
 * an fd onto itself is a no-op that would leave FD_CLOEXEC set). */
#define FD_STEP(i) ((i) < 3 ? STDIN + (i) : FDS)
static void move_fds(const struct spec *s, volatile struct report *r)
{
    int n = 3 + s->nfds, *src = s->scratch, floor = n, null = -1;
    for (int i = 0; i < n; i++) src[i] = i < 3 ? s->stdio[i] : (int)s->fds[i - 3];
    for (int i = 0; i < n; i++) floor = src[i] >= floor ? src[i] + 1 : floor;
    /* The caller's fds first: a closed one must fail, not alias /dev/null opened below. */
    for (int i = 0; i < n; i++)
        if (src[i] >= 0 && (src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, floor)) < 0)
            fail(r, FD_STEP(i), s->path);
    for (int i = 0; i < 3; i++) {
        if (src[i] < 0 && null < 0) { /* above the targets too, like the others */
            int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
            if (fd < 0 || (null = fcntl(fd, F_DUPFD_CLOEXEC, floor)) < 0)
                fail(r, FD_STEP(i), s->path);
        }
        src[i] = src[i] < 0 ? null : src[i];
    }
    for (int i = 0; i < n; i++) {
        if (dup2(src[i], i) < 0) fail(r, FD_STEP(i), s->path);
        /* NonBlocking= for the passed fds; a socket on stdio is always made blocking, as
         * systemd does for StandardInput=socket; other stdio keeps its mode. O_NONBLOCK
         * lives in the open file description, so this changes the parent's copy too. */
        struct stat st;
        int fl = fcntl(i, F_GETFL), nb = fl & O_NONBLOCK;
        if (i >= 3) nb = s->nonblocking;
        else if (fstat(i, &st) == 0 && S_ISSOCK(st.st_mode)) nb = 0;
        int want = nb ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
        if (fl < 0 || (want != fl && fcntl(i, F_SETFL, want) < 0)) fail(r, FD_STEP(i), s->path);
    }
    if (syscall(SYS_close_range, n, ~0U, 0) < 0) {
        /* Before Linux 5.9, or a seccomp filter (old Docker) refusing it: close one by one. */
        struct rlimit rl;
        TRY(getrlimit(RLIMIT_NOFILE, &rl), FDS);
        for (unsigned long fd = n; fd < rl.rlim_cur; fd++) close((int)fd);
    }
}

/* The vfork child (or, in place, the process itself). Every signal is blocked on entry (the
 * parent blocked them before vfork) and stays blocked until just before execve(), so none
 * of the parent's handlers can run here. The order follows systemd's exec_child(). Not
 * inlined: its locals must live in a frame below the parent's, never in slots the parent
 * reads again after vfork() returns. */
static void __attribute__((noreturn, noinline))
child(const struct spec *s, volatile struct report *r)
{
    if (s->new_session) TRY(setsid(), SETSID);
    if (s->has_nice) TRY(setpriority(PRIO_PROCESS, 0, s->nice), NICE);
    if (s->has_oom) {
        char buf[24], *p = decimal(buf + sizeof buf, s->oom);
        int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        TRY(fd, OOM);
        TRY(write(fd, p, (size_t)(buf + sizeof buf - p)), OOM);
        close(fd);
    }
    umask(s->umask);
    /* fds before rlimits: a low LimitNOFILE= would make the F_DUPFD copies above the
     * highest source fail. */
    move_fds(s, r);
    for (int i = 0; i < s->nrlimits; i++) {
        struct rlimit rl = {(rlim_t)s->rlimits[3 * i + 1], (rlim_t)s->rlimits[3 * i + 2]};
        TRY(setrlimit((int)s->rlimits[3 * i], &rl), LIMITS);
    }
    /* Capabilities root still holds: the bounding set needs CAP_SETPCAP, so it goes first. */
    if (s->has_bounding)
        for (int cap = 0; cap < 64 && prctl(PR_CAPBSET_READ, cap) >= 0; cap++)
            if (!(s->bounding >> cap & 1)) TRY(prctl(PR_CAPBSET_DROP, cap), BOUNDING);
    /* Without KEEPCAPS, leaving uid 0 clears the permitted set, and ambient capabilities
     * can only be raised from it. (The kernel clears the flag again at execve.) */
    if (s->ambient && s->uid >= 0) TRY(prctl(PR_SET_KEEPCAPS, 1), KEEPCAPS);
    if (s->ngroups >= 0) TRY(syscall(SYS_SETGROUPS, s->ngroups, s->groups), SETGROUPS);
    if (s->gid >= 0) TRY(syscall(SYS_SETRESGID, s->gid, s->gid, s->gid), SETGID);
    if (s->uid >= 0) TRY(syscall(SYS_SETRESUID, s->uid, s->uid, s->uid), SETUID);
    if (s->ambient) { /* an ambient cap must be permitted (kept) and inheritable */
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2];
        TRY(syscall(SYS_capget, &h, d), AMBIENT);
        d[0].inheritable |= (__u32)s->ambient;
        d[1].inheritable |= (__u32)(s->ambient >> 32);
        TRY(syscall(SYS_capset, &h, d), AMBIENT);
        for (int cap = 0; cap < 64; cap++)
            if (s->ambient >> cap & 1)
                TRY(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0), AMBIENT);
    }
    if (s->no_new_privs) TRY(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), NO_NEW_PRIVS);
    /* After the uid drop, so a directory the user cannot enter fails as under systemd.
     * WorkingDirectory=-: any failure is ignored (systemd too), and we fall back to "/". */
    if (s->cwd && chdir(s->cwd) < 0 && !(s->cwd_optional && chdir("/") == 0))
        fail(r, CHDIR, s->cwd);
    /* The dispositions are the child's own copy (vfork shares memory, not the signal
     * table). Handlers would not survive execve anyway; ignored signals would. SIGKILL,
     * SIGSTOP and glibc's internal signals refuse; that is fine. */
    struct sigaction dfl = {.sa_handler = SIG_DFL}, ign = {.sa_handler = SIG_IGN};
    /* glibc refuses its internal signals (32, 33); an ignored disposition of theirs would
     * survive execve, so those go to the kernel directly (its sigaction layout; SIG_DFL
     * needs no restorer). */
    struct { void (*handler)(int); unsigned long flags; void (*restorer)(void); unsigned long mask; }
        kdfl = {SIG_DFL, 0, NULL, 0};
    for (int sig = 1; sig < _NSIG; sig++)
        if (sigaction(sig, &dfl, NULL) < 0 && errno == EINVAL && sig != SIGKILL && sig != SIGSTOP)
            syscall(SYS_rt_sigaction, sig, &kdfl, NULL, sizeof kdfl.mask);
    if (s->ignore_sigpipe) TRY(sigaction(SIGPIPE, &ign, NULL), SIGNALS);
    if (s->listen_pid || s->watchdog_pid) { /* the pid that will exec: ours, not the parent's */
        char buf[24], *p = decimal(buf + sizeof buf - 1, (long)syscall(SYS_getpid));
        buf[sizeof buf - 1] = '\0';
        if (s->listen_pid) strcpy(s->listen_pid + strlen("LISTEN_PID="), p);
        if (s->watchdog_pid) strcpy(s->watchdog_pid + strlen("WATCHDOG_PID="), p);
    }
    sigset_t none;
    sigemptyset(&none);
    TRY(sigprocmask(SIG_SETMASK, &none, NULL), SIGNALS);
    execve(s->path, s->argv, s->envp);
    fail(r, EXEC, s->path);
}

/* A NULL-terminated array borrowing the buffers of a tuple of bytes, with one spare NULL
 * slot; NULL with an exception if an item is not bytes or contains a NUL byte. */
static char **strings(PyObject *t)
{
    Py_ssize_t n = PyTuple_GET_SIZE(t);
    char **a = PyMem_Calloc((size_t)n + 3, sizeof *a); /* + LISTEN_PID, WATCHDOG_PID, NULL */
    if (!a) return (char **)PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len;
        if (PyBytes_AsStringAndSize(PyTuple_GET_ITEM(t, i), &a[i], &len) < 0 ||
            (size_t)len != strlen(a[i])) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "embedded null byte");
            PyMem_Free(a);
            return NULL;
        }
    }
    return a;
}

/* The items of a tuple of ints; NULL with an exception if one is not an int. */
static long long *ints(PyObject *t)
{
    Py_ssize_t n = PyTuple_GET_SIZE(t);
    long long *a = PyMem_Calloc((size_t)n + 1, sizeof *a);
    if (!a) return (long long *)PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++)
        if ((a[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(t, i))) == -1 && PyErr_Occurred()) {
            PyMem_Free(a);
            return NULL;
        }
    return a;
}

pid_t __attribute__((noinline)) spawn_vfork(const struct spec *s, volatile struct report *r)
{
    pid_t pid = vfork();
    if (pid == 0) child(s, r);
    return pid;
}

const char *spawn_step_name(int step) { return steps[step].name; }
const char *spawn_step_verb(int step) { return steps[step].verb; }
int spawn_step_code(int step) { return steps[step].code; }

void spec_free(struct spec *s, struct spec_mem *m)
{
    PyMem_Free(s->argv);
    PyMem_Free(s->envp);
    PyMem_Free(s->fds);
    PyMem_Free(s->rlimits);
    PyMem_Free(s->scratch);
    PyMem_Free(s->groups);
    PyMem_Free(m->gl);
    s->argv = s->envp = NULL;
    s->fds = s->rlimits = m->gl = NULL;
    s->scratch = NULL;
    s->groups = NULL;
}

int spec_parse(PyObject *args, PyObject *kw, struct spec *s, struct spec_mem *m, int *in_place)
{
    static char *names[] = {"path", "argv", "env", "fds", "stdin", "stdout", "stderr",
        "listen_pid", "nonblocking", "uid", "gid", "groups", "umask", "cwd", "cwd_optional",
        "rlimits", "nice", "oom_score_adj", "no_new_privs", "capability_bounding",
        "ambient_capabilities", "ignore_sigpipe", "new_session", "in_place", "quiet", "watchdog_pid",
        NULL};
    PyObject *argv, *env, *fds, *groups, *cwd, *rlimits, *nice, *oom, *bounding;
    int listen_pid, quiet = 0, watchdog_pid = 0;
    memset(s, 0, sizeof *s);
    memset(m, 0, sizeof *m);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "yO!O!O!iiippllOIOpO!OOpOKppp|pp", names, &s->path,
            &PyTuple_Type, &argv, &PyTuple_Type, &env, &PyTuple_Type, &fds, &s->stdio[0],
            &s->stdio[1], &s->stdio[2], &listen_pid, &s->nonblocking, &s->uid, &s->gid, &groups,
            &s->umask, &cwd, &s->cwd_optional, &PyTuple_Type, &rlimits, &nice, &oom,
            &s->no_new_privs, &bounding, &s->ambient, &s->ignore_sigpipe, &s->new_session,
            in_place, &quiet, &watchdog_pid))
        return -1;
    strcpy(m->listen_buf, "LISTEN_PID="); /* + the child's pid, written by the child */
    strcpy(m->watchdog_buf, "WATCHDOG_PID=");
    s->ngroups = -1;
    s->nfds = (int)PyTuple_GET_SIZE(fds);
    s->nrlimits = (int)PyTuple_GET_SIZE(rlimits) / 3;
    if ((s->has_nice = nice != Py_None)) s->nice = (int)PyLong_AsLong(nice);
    if ((s->has_oom = oom != Py_None)) s->oom = (int)PyLong_AsLong(oom);
    if ((s->has_bounding = bounding != Py_None)) s->bounding = PyLong_AsUnsignedLongLong(bounding);
    if (cwd != Py_None) s->cwd = PyBytes_AsString(cwd);
    if (PyErr_Occurred() || !(s->argv = strings(argv)) || !(s->envp = strings(env)) ||
        !(s->fds = ints(fds)) || !(s->rlimits = ints(rlimits)) ||
        !(s->scratch = PyMem_Calloc((size_t)s->nfds + 3, sizeof(int))))
        return -1;
    if ((s->cwd && strlen(s->cwd) != (size_t)PyBytes_GET_SIZE(cwd)) || PyTuple_GET_SIZE(argv) == 0) {
        PyErr_SetString(PyExc_ValueError, "empty argv or null byte in cwd");
        return -1;
    }
    if (groups != Py_None) {
        if (!PyTuple_Check(groups) || !(m->gl = ints(groups))) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "groups must be a tuple");
            return -1;
        }
        s->ngroups = (int)PyTuple_GET_SIZE(groups);
        if (!(s->groups = PyMem_Calloc((size_t)s->ngroups + 1, sizeof(gid_t)))) {
            PyErr_NoMemory();
            return -1;
        }
        for (int i = 0; i < s->ngroups; i++) s->groups[i] = (gid_t)m->gl[i];
    }
    Py_ssize_t slot = PyTuple_GET_SIZE(env);
    if (listen_pid) s->envp[slot++] = s->listen_pid = m->listen_buf;
    if (watchdog_pid) s->envp[slot] = s->watchdog_pid = m->watchdog_buf;
    m->quiet = quiet;
    return 0;
}

static PyObject *spawn(PyObject *self, PyObject *args, PyObject *kw)
{
    struct spec s;
    struct spec_mem m;
    PyObject *ret = NULL;
    int in_place = 0;
    (void)self;
    if (spec_parse(args, kw, &s, &m, &in_place) < 0) goto out;
    /* Block every signal around vfork(): the child inherits the mask, so no handler of
     * ours runs in it before it has reset the dispositions. The GIL stays held: this thread
     * is suspended until the child execs anyway, and releasing it would cost every spawn a
     * GIL round trip as soon as another thread wants it. */
    sigset_t all, old;
    volatile struct report rep = {OK, 0, m.quiet};
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (in_place) child(&s, &rep); /* chain-loading: execs or exits, never returns */
    pid_t pid = spawn_vfork(&s, &rep);
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
    } else if (rep.step != OK) /* the child has exited; the caller reaps it */
        ret = Py_BuildValue("(issii)", pid, steps[rep.step].name, steps[rep.step].verb, rep.err,
                            steps[rep.step].code);
    else
        ret = Py_BuildValue("(iOOii)", pid, Py_None, Py_None, 0, 0);
out:
    spec_free(&s, &m);
    return ret;
}

static PyMethodDef methods[] = {
    {"spawn", (PyCFunction)(void (*)(void))spawn, METH_VARARGS | METH_KEYWORDS,
     "spawn(path, argv, ...) -> (pid, step, verb, errno, exit_code): vfork, set up, execve.\n"
     "step is None once execve succeeded; else the child has exited with exit_code."},
    {"sigchld_fd", sigchld_fd, METH_NOARGS,
     "block SIGCHLD in this thread and return a signalfd for it (the reaper's wake-up)"},
    {"set_subreaper", set_subreaper, METH_NOARGS, "prctl(PR_SET_CHILD_SUBREAPER): ok?"},
    {"trim_memory", trim_memory, METH_NOARGS, "malloc_trim(0) where there is one (glibc)"},
    {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_spawn", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};
PyMODINIT_FUNC PyInit__spawn(void)
{
    if (PyType_Ready(&LaneType) < 0) return NULL;
    PyObject *mod = PyModule_Create(&module);
    if (mod && PyModule_AddObjectRef(mod, "Lane", (PyObject *)&LaneType) < 0) Py_CLEAR(mod);
    return mod;
}

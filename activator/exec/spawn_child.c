/* The spawn core's child side: everything between vfork() and execve(), and nothing else.
 * Callers: the CPython glue (_spawn.c, spawn()) and the accept lane's thread (_lane.c),
 * both through spawn_child.h.
 *
 * What this file may do: only what a vfork child may do. No Python (Python.h is not
 * included here, directly or through a header; tests/spawn/test_c_layout.py checks), no
 * malloc, no locks, no stdio: only async-signal-safe calls, on memory the parent prepared.
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
 * step (systemd.exec(5), "Process exit codes"; the steps[] table below, which
 * activator/execcore.py's EXIT_CODES must match). Python face: activator/execcore.py. */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64 /* as pyconfig.h does for the glue: 64-bit rlim_t on 32-bit too */
#include "spawn_child.h"
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

/* Container leniency. In a container activator lacks privileges a host's init has (Docker's
 * default capability set has no CAP_SYS_NICE or CAP_SYS_RESOURCE). Where systemd 252's
 * exec_child() (src/core/execute.c) lets a step pass or clamps it, so does the child, and it
 * records that in `r` for the caller to log; where systemd fails, the child fails too. Each
 * helper returns 0, or -1 with errno for fail(). */
#define PRIVILEGE(e) ((e) == EPERM || (e) == EACCES) /* systemd's ERRNO_IS_PRIVILEGE() */

/* systemd's setpriority_closest() (src/basic/process-util.c, as in 252): refused a lower nice
 * level, take the lowest RLIMIT_NICE allows (20 - rlim_cur, within -20..19), or keep the
 * current one if that is lower still. A refusal to raise it means setpriority() is barred
 * altogether, and fails. */
static int nice_closest(int want, volatile struct report *r)
{
    struct rlimit rl;
    int e, cur, lim;
    if (setpriority(PRIO_PROCESS, 0, want) == 0) return 0;
    if (!PRIVILEGE(e = errno)) return -1;
    errno = 0;
    cur = getpriority(PRIO_PROCESS, 0);
    if (errno != 0) return -1;
    if (want == cur) return 0;
    if (want > cur) {
        errno = e;
        return -1;
    }
    if (getrlimit(RLIMIT_NICE, &rl) < 0) return -1;
    lim = rl.rlim_cur <= 1 ? 19 : rl.rlim_cur >= 40 ? -20 : 20 - (int)rl.rlim_cur;
    if (cur >= lim && setpriority(PRIO_PROCESS, 0, lim) < 0) return -1;
    r->tolerated |= 1U << NICE;
    r->nice = cur < lim ? cur : lim;
    return 0;
}

/* systemd's setrlimit_closest() (src/basic/rlimit-util.c): refused (EPERM: raising a hard
 * limit needs CAP_SYS_RESOURCE), cap soft and hard at the current hard limit. If that is
 * unlimited, the refusal has another cause, and fails. */
static int rlimit_closest(int res, struct rlimit want, volatile struct report *r)
{
    struct rlimit cur;
    if (setrlimit(res, &want) == 0) return 0;
    if (errno != EPERM || getrlimit(res, &cur) < 0) return -1;
    if (cur.rlim_max == RLIM_INFINITY) {
        errno = EPERM;
        return -1;
    }
    want.rlim_cur = want.rlim_cur < cur.rlim_max ? want.rlim_cur : cur.rlim_max;
    want.rlim_max = want.rlim_max < cur.rlim_max ? want.rlim_max : cur.rlim_max;
    r->tolerated |= 1U << LIMITS;
    r->clamped |= 1ULL << res;
    if (want.rlim_cur == cur.rlim_cur && want.rlim_max == cur.rlim_max) return 0;
    return setrlimit(res, &want);
}

/* systemd's maybe_setgroups() (src/basic/user-util.c): in a user namespace whose
 * /proc/self/setgroups says "deny" (unshare -r, some rootless containers), dropping every
 * supplementary group is skipped; setting any fails there as everywhere. */
static int setgroups_lenient(const struct spec *s, volatile struct report *r)
{
    char buf[8] = {0};
    int e, fd;
    if (syscall(SYS_SETGROUPS, s->ngroups, s->groups) == 0) return 0;
    if ((e = errno) != EPERM || s->ngroups != 0) return -1;
    if ((fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC)) >= 0) {
        if (read(fd, buf, sizeof buf - 1) < 0) buf[0] = '\0';
        close(fd);
    }
    errno = e;
    if (strcmp(buf, "deny\n") != 0) return -1;
    r->tolerated |= 1U << SETGROUPS;
    return 0;
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
    if (s->has_nice) TRY(nice_closest(s->nice, r), NICE);
    if (s->has_oom) {
        char buf[24], *p = decimal(buf + sizeof buf, s->oom);
        int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        /* systemd: "Failed to adjust OOM setting, assuming containerized execution,
         * ignoring" (a negative value needs CAP_SYS_RESOURCE); EROFS and the rest fail. */
        if (fd < 0 || write(fd, p, (size_t)(buf + sizeof buf - p)) < 0) {
            if (!PRIVILEGE(errno)) fail(r, OOM, s->path);
            r->tolerated |= 1U << OOM;
        }
        if (fd >= 0) close(fd);
    }
    umask(s->umask);
    /* fds before rlimits: a low LimitNOFILE= would make the F_DUPFD copies above the
     * highest source fail. */
    move_fds(s, r);
    for (int i = 0; i < s->nrlimits; i++) {
        struct rlimit rl = {(rlim_t)s->rlimits[3 * i + 1], (rlim_t)s->rlimits[3 * i + 2]};
        r->what = (int)s->rlimits[3 * i];
        TRY(rlimit_closest(r->what, rl, r), LIMITS);
    }
    /* Capabilities root still holds: the bounding set needs CAP_SETPCAP, so it goes first.
     * Without CAP_SETPCAP every drop fails; as in systemd's capability_bounding_set_drop(),
     * that fails the step only for a capability still in the set. */
    if (s->has_bounding)
        for (int cap = 0; cap < 64 && prctl(PR_CAPBSET_READ, cap) >= 0; cap++)
            if (!(s->bounding >> cap & 1) && prctl(PR_CAPBSET_DROP, cap) < 0) {
                int e = errno;
                r->what = cap;
                if (prctl(PR_CAPBSET_READ, cap) != 0) {
                    errno = e;
                    fail(r, BOUNDING, s->path);
                }
                r->tolerated |= 1U << BOUNDING;
            }
    /* Without KEEPCAPS, leaving uid 0 clears the permitted set, and ambient capabilities
     * can only be raised from it. (The kernel clears the flag again at execve.) */
    if (s->ambient && s->uid >= 0) TRY(prctl(PR_SET_KEEPCAPS, 1), KEEPCAPS);
    if (s->ngroups >= 0) TRY(setgroups_lenient(s, r), SETGROUPS);
    if (s->gid >= 0) TRY(syscall(SYS_SETRESGID, s->gid, s->gid, s->gid), SETGID);
    if (s->uid >= 0) TRY(syscall(SYS_SETRESUID, s->uid, s->uid, s->uid), SETUID);
    /* An ambient cap must be permitted (kept) and inheritable. systemd 252 fails here too
     * (capability_ambient_set_apply()) for one the container withholds; for the message,
     * `what` names the first one missing from the permitted set, else the one refused. */
    if (s->ambient) {
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2];
        TRY(syscall(SYS_capget, &h, d), AMBIENT);
        unsigned long long missing = s->ambient & ~(d[0].permitted | 1ULL * d[1].permitted << 32);
        if (missing) r->what = __builtin_ctzll(missing);
        d[0].inheritable |= (__u32)s->ambient;
        d[1].inheritable |= (__u32)(s->ambient >> 32);
        TRY(syscall(SYS_capset, &h, d), AMBIENT);
        for (int cap = 0; cap < 64; cap++)
            if (s->ambient >> cap & 1) {
                r->what = cap;
                TRY(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0), AMBIENT);
            }
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

pid_t __attribute__((noinline)) spawn_vfork(const struct spec *s, volatile struct report *r)
{
    pid_t pid = vfork();
    if (pid == 0) child(s, r);
    return pid;
}

void spawn_in_place(const struct spec *s, volatile struct report *r)
{
    child(s, r);
}

const char *spawn_step_name(int step) { return steps[step].name; }
const char *spawn_step_verb(int step) { return steps[step].verb; }
int spawn_step_code(int step) { return steps[step].code; }
int spawn_step_count(void) { return (int)(sizeof steps / sizeof steps[0]) - 1; }

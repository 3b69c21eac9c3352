/* activator.exec._spawn.Lane: the Accept=yes hot path, accept → spawn, in a thread of its own.
 *
 * Why: per connection, Python cost more than the whole of tcpserver (~300 µs of state
 * machine, logging and spec building, plus ~470 µs of the loop thread suspended in vfork
 * until the child's execve). A lane is one thread per Accept=yes socket that accepts,
 * names the connection, fills in the per-connection environment and spawns from a
 * template planned once by Python (plan.py, the same code as every other start), without
 * the GIL. The event loop only keeps the books, in batches: it drains the lane's records
 * (one eventfd wake-up per batch), watches the pids with the one reaper, logs, and hands
 * each exit back with exited(). The thread never runs Python, never reaps, never logs.
 *
 * MaxConnections= is enforced here, on the lane's own count: an instance that has exited
 * but is not reaped yet still counts, so at the limit the thread first asks the kernel
 * (waitid WNOWAIT, which leaves the zombie to the reaper) which of its children are gone.
 *
 * Lifetime: Python starts the thread with start() and stops it with close(), which joins
 * it, before the listeners are closed. Python's reaper may reap a child before the lane's
 * record about it is drained, even before it is written: `spawning` is set from before
 * vfork() until the record is queued, so a reaper that reads it false and then drains has
 * seen the record of every child it has reaped (see acceptlane.py, resolve()). */
#define _GNU_SOURCE
#include "_spawn.h"
#include "_filter.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CONN_FD INT_MAX /* in the template's stdio and fds: "the connection" */
#define BATCH 32        /* accepts per readiness, as the Python path */
#define STACK (256 * 1024)
#define GRACE_US 2000   /* at MaxConnections=: how long an exiting instance may take */

/* Environment entries whose value belongs to one connection; Python puts a placeholder
 * entry at the index where build_environment() placed the variable. */
enum var { V_INVOCATION_ID, V_REMOTE_ADDR, V_REMOTE_PORT, V_PROTO, V_TCPREMOTEIP,
           V_TCPREMOTEPORT, V_TCPLOCALIP, V_TCPLOCALPORT, NVARS };
static const char *const var_names[NVARS] = {"INVOCATION_ID", "REMOTE_ADDR", "REMOTE_PORT",
    "PROTO", "TCPREMOTEIP", "TCPREMOTEPORT", "TCPLOCALIP", "TCPLOCALPORT"};

enum kind { R_SPAWNED, R_FAILED, R_NOFORK, R_REFUSED, R_ACCEPT_ERROR, R_DENIED };
struct rec {
    int kind, err, step, rport;
    pid_t pid;
    long active;
    unsigned long long n;
    char inst[160], remote[INET6_ADDRSTRLEN], inv[33];
};
struct live { pid_t pid; int dead; };

typedef struct {
    PyObject_HEAD
    struct spec spec;
    struct spec_mem mem;
    int parsed;
    PyObject *keep;             /* a copy of the spec dict: owns the bytes `spec` borrows */
    int tmpl_stdio[3];
    long long *tmpl_fds;
    int nlisten, *lfd;
    char (*local)[INET6_ADDRSTRLEN]; /* per listener: its bound address, "" if a wildcard */
    int *lport;
    int ctl[2];                 /* Python → thread: look at `stopping` */
    int wake_fd;                /* thread → Python: records waiting (an eventfd) */
    long max;
    unsigned char *deny;        /* IPAddressAllow=/IPAddressDeny=: denied ranges (_filter.c) */
    size_t ndeny;
    int has_var[NVARS];
    char var_buf[NVARS][96];    /* "NAME=value", pointed to by the envp slots */
    pthread_t thread;
    int started, stopping;
    pthread_mutex_t lock;       /* the books and the queue */
    int inflight;               /* from before vfork to the record: see `spawning` */
    struct live *live;          /* spawned and not yet handed back by exited() */
    size_t nlive, caplive;
    long active;                /* live minus those seen dead */
    int refusing;               /* the last connection was refused */
    unsigned long long accepted; /* the thread's own */
    char inv_prefix[33];        /* INVOCATION_ID starts with this (hex, up to 32) */
    size_t inv_prefix_len;
    struct rec *q, *q2;
    size_t nq, capq, capq2;
    unsigned char ids[512];     /* random bytes for INVOCATION_ID=, 16 per connection */
    size_t nids;                /* how many of them are unused (taken from the end) */
} Lane;

/* ------------------------------------------------------------------ the thread */

static void push(Lane *L, const struct rec *r, pid_t live_pid)
{
    int wake;
    pthread_mutex_lock(&L->lock);
    if (live_pid > 0) {
        if (L->nlive == L->caplive) {
            size_t cap = L->caplive ? 2 * L->caplive : 64;
            struct live *p = realloc(L->live, cap * sizeof *p);
            if (p) L->live = p, L->caplive = cap;
        }
        if (L->nlive < L->caplive) { /* else out of memory: it still counts until reaped */
            L->live[L->nlive++] = (struct live){live_pid, 0};
        }
        L->active++;
    }
    if (L->nq == L->capq) {
        size_t cap = L->capq ? 2 * L->capq : 64;
        struct rec *p = realloc(L->q, cap * sizeof *p);
        if (p) L->q = p, L->capq = cap;
    }
    wake = L->nq == 0;
    if (L->nq < L->capq) L->q[L->nq++] = *r; /* else out of memory: the record is lost */
    pthread_mutex_unlock(&L->lock);
    if (wake) {
        uint64_t one = 1;
        if (write(L->wake_fd, &one, sizeof one) < 0) { /* full or closed: Python is awake */ }
    }
}

/* At the limit: which of our children have exited (and are merely not reaped yet)?
 * With L->lock held. */
static void count_exited(Lane *L)
{
    for (size_t i = 0; i < L->nlive; i++) {
        struct live *x = &L->live[i];
        if (x->dead) continue;
        siginfo_t si;
        si.si_pid = 0;
        int rc = waitid(P_PID, (id_t)x->pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if ((rc < 0 && errno == ECHILD) || (rc == 0 && si.si_pid == x->pid)) {
            x->dead = 1; /* exited (ECHILD: already reaped, exited() is on its way) */
            L->active--;
        }
    }
}

static void set_var(Lane *L, enum var v, const char *value)
{
    snprintf(L->var_buf[v], sizeof L->var_buf[v], "%s=%s", var_names[v], value);
}

static void ntop(const struct sockaddr_storage *sa, char *host, int *port)
{
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)sa;
        inet_ntop(AF_INET, &a->sin_addr, host, INET6_ADDRSTRLEN);
        *port = ntohs(a->sin_port);
    } else {
        const struct sockaddr_in6 *a = (const void *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) /* "::ffff:1.2.3.4" is 1.2.3.4 */
            inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], host, INET6_ADDRSTRLEN);
        else
            inet_ntop(AF_INET6, &a->sin6_addr, host, INET6_ADDRSTRLEN);
        *port = ntohs(a->sin6_port);
    }
}

/* The instance string systemd gives the connection, and the per-connection variables
 * (activation.py's _describe() is the Python twin). li: the listener's index. */
static void describe(Lane *L, int li, int fd, const struct sockaddr_storage *sa, struct rec *r)
{
    if (sa->ss_family == AF_INET || sa->ss_family == AF_INET6) {
        struct sockaddr_storage me;
        socklen_t ml = sizeof me;
        char local[INET6_ADDRSTRLEN] = "", port[16];
        int lport = L->lport[li];
        ntop(sa, r->remote, &r->rport);
        if (L->local[li][0]) /* bound to one address: that one (no system call) */
            memcpy(local, L->local[li], sizeof local);
        else if (getsockname(fd, (struct sockaddr *)&me, &ml) == 0)
            ntop(&me, local, &lport);
        snprintf(r->inst, sizeof r->inst, "%llu-%s:%d-%s:%d", r->n, local, lport, r->remote,
                 r->rport);
        snprintf(port, sizeof port, "%d", r->rport);
        if (L->has_var[V_REMOTE_ADDR]) set_var(L, V_REMOTE_ADDR, r->remote);
        if (L->has_var[V_REMOTE_PORT]) set_var(L, V_REMOTE_PORT, port);
        if (L->has_var[V_TCPREMOTEIP]) set_var(L, V_TCPREMOTEIP, r->remote);
        if (L->has_var[V_TCPREMOTEPORT]) set_var(L, V_TCPREMOTEPORT, port);
        if (L->has_var[V_PROTO]) set_var(L, V_PROTO, strchr(local, ':') ? "TCP6" : "TCP");
        if (L->has_var[V_TCPLOCALIP]) set_var(L, V_TCPLOCALIP, local);
        snprintf(port, sizeof port, "%d", lport);
        if (L->has_var[V_TCPLOCALPORT]) set_var(L, V_TCPLOCALPORT, port);
    } else { /* AF_UNIX: who, by credentials */
        struct ucred c;
        socklen_t cl = sizeof c;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &cl) == 0 && c.pid > 0)
            snprintf(r->inst, sizeof r->inst, "%llu-%d-%u", r->n, (int)c.pid, (unsigned)c.uid);
        else
            snprintf(r->inst, sizeof r->inst, "%llu-unknown", r->n);
    }
    /* One getrandom() per 32 connections: glibc 2.36's arc4random_buf() is a getrandom()
     * per call, a system call per connection. Only this thread touches the pool. */
    if (L->nids < 16) {
        if (getrandom(L->ids, sizeof L->ids, 0) == (ssize_t)sizeof L->ids)
            L->nids = sizeof L->ids;
        else if (getrandom(L->ids, 16, 0) == 16) /* cannot fail for up to 256 bytes */
            L->nids = 16;
        else
            memset(L->ids, 0, 16), L->nids = 16;
    }
    L->nids -= 16;
    const unsigned char *id = L->ids + L->nids;
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) r->inv[2 * i] = hex[id[i] >> 4], r->inv[2 * i + 1] = hex[id[i] & 15];
    memcpy(r->inv, L->inv_prefix, L->inv_prefix_len); /* this run of activator's (generation.py) */
    r->inv[32] = '\0';
    if (L->has_var[V_INVOCATION_ID]) set_var(L, V_INVOCATION_ID, r->inv);
}

/* One accepted connection on listener li: refuse it at MaxConnections=, else spawn. */
static void one(Lane *L, int li, int fd, const struct sockaddr_storage *sa)
{
    struct rec r;
    memset(&r, 0, sizeof r);
    r.n = L->accepted++;
    describe(L, li, fd, sa, &r);
    pthread_mutex_lock(&L->lock);
    if (L->active >= L->max) count_exited(L);
    /* A client sees EOF when an instance closes its fds on the way out, a moment before
     * the kernel makes it a zombie; a client that reconnects at once would find it still
     * counted. So at the limit, unless the last connection was refused too (a flood:
     * shed it fast), give the instances up to GRACE_US to finish exiting. */
    for (int i = 0; i < 4 && L->active >= L->max && !L->refusing; i++) {
        pthread_mutex_unlock(&L->lock);
        usleep(GRACE_US / 4);
        pthread_mutex_lock(&L->lock);
        count_exited(L);
    }
    r.active = L->active;
    L->refusing = r.active >= L->max;
    pthread_mutex_unlock(&L->lock);
    if (r.active >= L->max) { /* systemd's answer: accept and close at once */
        close(fd);
        r.kind = R_REFUSED;
        push(L, &r, 0);
        return;
    }
    struct spec *s = &L->spec;
    for (int i = 0; i < 3; i++) s->stdio[i] = L->tmpl_stdio[i] == CONN_FD ? fd : L->tmpl_stdio[i];
    for (int i = 0; i < s->nfds; i++) s->fds[i] = L->tmpl_fds[i] == CONN_FD ? fd : L->tmpl_fds[i];
    volatile struct report rep = {.quiet = 1};
    __atomic_store_n(&L->inflight, 1, __ATOMIC_SEQ_CST);
    pid_t pid = spawn_vfork(s, &rep);
    r.err = pid < 0 ? errno : rep.err;
    close(fd);
    r.pid = pid;
    r.step = rep.step;
    r.kind = pid < 0 ? R_NOFORK : rep.step ? R_FAILED : R_SPAWNED;
    push(L, &r, pid); /* a child that failed before exec is a zombie to reap: it counts too */
    __atomic_store_n(&L->inflight, 0, __ATOMIC_SEQ_CST);
}

/* A peer IPAddressAllow=/IPAddressDeny= deny, queued before the listener's BPF filter was
 * attached (or after a reload changed the lists): reset at once, nothing spawned, no
 * instance number used up. */
static void deny(Lane *L, int fd, const struct sockaddr_storage *sa)
{
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    struct rec r;
    memset(&r, 0, sizeof r);
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(fd);
    r.kind = R_DENIED;
    ntop(sa, r.remote, &r.rport);
    push(L, &r, 0);
}

/* -1: back off (an error that may pass: EMFILE and friends, or anything unexpected). */
static int accept_some(Lane *L, int i)
{
    int lfd = L->lfd[i];
    for (int k = 0; k < BATCH; k++) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof sa;
        int fd = accept4(lfd, (struct sockaddr *)&sa, &sl, SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR) return 0;
            if (e == ECONNABORTED || e == EPROTO || e == EPERM) continue; /* that one is gone */
            struct rec r;
            memset(&r, 0, sizeof r);
            r.kind = R_ACCEPT_ERROR;
            r.err = e;
            push(L, &r, 0);
            return -1;
        }
        if (sl == 0) sa.ss_family = AF_UNIX; /* an unnamed unix peer */
        if (L->ndeny && addr_denied(L->deny, L->ndeny, &sa)) deny(L, fd, &sa);
        else one(L, i, fd, &sa);
    }
    return 0;
}

static void *lane_main(void *arg)
{
    Lane *L = arg;
    /* No signal is ever delivered to this thread, and a vfork child starts with all of
     * them blocked (it unblocks just before execve, after resetting the dispositions). */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, NULL);
    struct pollfd *p = calloc((size_t)L->nlisten + 1, sizeof *p);
    if (!p) return NULL;
    p[0] = (struct pollfd){.fd = L->ctl[0], .events = POLLIN};
    for (int i = 0; i < L->nlisten; i++) p[1 + i] = (struct pollfd){.fd = L->lfd[i], .events = POLLIN};
    int backoff = 0;
    while (!__atomic_load_n(&L->stopping, __ATOMIC_ACQUIRE)) {
        /* Backing off: only the control pipe, for 100 ms (trio's answer to EMFILE). */
        nfds_t nf = backoff ? 1 : (nfds_t)L->nlisten + 1;
        int n = poll(p, nf, backoff ? 100 : -1);
        backoff = 0;
        if (n <= 0 || nf == 1) continue; /* the listeners' revents are stale after a backoff */
        if (p[0].revents) {
            char b[64];
            while (read(L->ctl[0], b, sizeof b) > 0) {}
            continue;
        }
        for (int i = 0; i < L->nlisten; i++) {
            if (p[1 + i].revents & POLLNVAL) backoff = 1; /* closed under us: never busy-loop */
            else if (p[1 + i].revents && accept_some(L, i) < 0) backoff = 1;
        }
    }
    free(p);
    return NULL;
}

/* ------------------------------------------------------------------ the Python face */

static void lane_stop(Lane *L)
{
    if (!L->started) return;
    __atomic_store_n(&L->stopping, 1, __ATOMIC_RELEASE);
    char c = 0;
    if (write(L->ctl[1], &c, 1) < 0) { /* a full pipe already wakes it */ }
    Py_BEGIN_ALLOW_THREADS
    pthread_join(L->thread, NULL);
    Py_END_ALLOW_THREADS
    L->started = 0;
}

static int Lane_init(Lane *L, PyObject *args, PyObject *kw)
{
    static char *names[] = {"spec", "listen_fds", "wake_fd", "max_connections", "conn_env",
                            "accepted", "local", "deny", "invocation_prefix", NULL};
    PyObject *spec, *fds, *vars, *locals = NULL, *empty = NULL;
    Py_buffer deny_table = {0};
    const char *prefix = "";
    Py_ssize_t prefix_len = 0;
    if (L->parsed || L->keep) {
        PyErr_SetString(PyExc_RuntimeError, "Lane.__init__ called twice");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!O!ilO!|KO!y*s#", names, &PyDict_Type, &spec,
                                     &PyTuple_Type, &fds, &L->wake_fd, &L->max, &PyTuple_Type,
                                     &vars, &L->accepted, &PyTuple_Type, &locals, &deny_table,
                                     &prefix, &prefix_len))
        return -1;
    if (prefix_len > 32 || strspn(prefix, "0123456789abcdef") != (size_t)prefix_len) {
        PyBuffer_Release(&deny_table);
        PyErr_SetString(PyExc_ValueError, "Lane: invocation_prefix is up to 32 hex digits");
        return -1;
    }
    memcpy(L->inv_prefix, prefix, (size_t)prefix_len);
    L->inv_prefix_len = (size_t)prefix_len;
    if (deny_table.buf) {
        int bad = deny_table.len % 32 != 0;
        if (!bad && deny_table.len && !(L->deny = PyMem_Malloc((size_t)deny_table.len))) bad = 2;
        if (!bad) memcpy(L->deny, deny_table.buf, (size_t)deny_table.len);
        L->ndeny = bad ? 0 : (size_t)deny_table.len / 32;
        PyBuffer_Release(&deny_table);
        if (bad == 2) {
            PyErr_NoMemory();
            return -1;
        }
        if (bad) {
            PyErr_SetString(PyExc_ValueError, "Lane: deny is a table of 32-byte ranges");
            return -1;
        }
    }
    if (!(L->keep = PyDict_Copy(spec)) || !(empty = PyTuple_New(0))) return -1;
    int in_place = 0, rc = spec_parse(empty, L->keep, &L->spec, &L->mem, &in_place);
    Py_DECREF(empty);
    L->parsed = 1;
    if (rc < 0) return -1;
    if (in_place || L->max < 1 || PyTuple_GET_SIZE(fds) < 1) {
        PyErr_SetString(PyExc_ValueError, "Lane: in_place, max_connections < 1 or no listener");
        return -1;
    }
    L->nlisten = (int)PyTuple_GET_SIZE(fds);
    if (!(L->lfd = PyMem_Calloc((size_t)L->nlisten, sizeof(int))) ||
        !(L->lport = PyMem_Calloc((size_t)L->nlisten, sizeof(int))) ||
        !(L->local = PyMem_Calloc((size_t)L->nlisten, sizeof *L->local)) ||
        !(L->tmpl_fds = PyMem_Calloc((size_t)L->spec.nfds + 1, sizeof(long long)))) {
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < L->nlisten; i++)
        if ((L->lfd[i] = (int)PyLong_AsLong(PyTuple_GET_ITEM(fds, i))) < 0) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "Lane: bad listener fd");
            return -1;
        }
    if (locals && PyTuple_GET_SIZE(locals) != L->nlisten) {
        PyErr_SetString(PyExc_ValueError, "Lane: one local address (or None) per listener");
        return -1;
    }
    for (int i = 0; locals && i < L->nlisten; i++) {
        PyObject *a = PyTuple_GET_ITEM(locals, i);
        const char *host;
        if (a == Py_None) continue;
        if (!PyArg_ParseTuple(a, "si", &host, &L->lport[i])) return -1;
        if (strlen(host) >= sizeof L->local[i]) {
            PyErr_SetString(PyExc_ValueError, "Lane: local address too long");
            return -1;
        }
        strcpy(L->local[i], host);
    }
    memcpy(L->tmpl_stdio, L->spec.stdio, sizeof L->tmpl_stdio);
    memcpy(L->tmpl_fds, L->spec.fds, (size_t)L->spec.nfds * sizeof(long long));
    Py_ssize_t nenv = 0;
    while (L->spec.envp[nenv]) nenv++;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(vars); i++) {
        int idx, v;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(vars, i), "ii", &idx, &v)) return -1;
        if (idx < 0 || idx >= nenv || v < 0 || v >= NVARS) {
            PyErr_SetString(PyExc_ValueError, "Lane: conn_env entry out of range");
            return -1;
        }
        L->has_var[v] = 1;
        snprintf(L->var_buf[v], sizeof L->var_buf[v], "%s=", var_names[v]);
        L->spec.envp[idx] = L->var_buf[v];
    }
    if (pipe2(L->ctl, O_NONBLOCK | O_CLOEXEC) < 0) {
        L->ctl[0] = L->ctl[1] = -1;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    pthread_mutex_init(&L->lock, NULL);
    return 0;
}

static PyObject *Lane_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    (void)args, (void)kw;
    Lane *L = (Lane *)type->tp_alloc(type, 0);
    if (L) L->ctl[0] = L->ctl[1] = -1;
    return (PyObject *)L;
}

static void Lane_dealloc(Lane *L)
{
    lane_stop(L);
    if (L->ctl[0] >= 0) {
        close(L->ctl[0]);
        close(L->ctl[1]);
        pthread_mutex_destroy(&L->lock);
    }
    if (L->parsed) spec_free(&L->spec, &L->mem);
    PyMem_Free(L->lfd);
    PyMem_Free(L->lport);
    PyMem_Free(L->local);
    PyMem_Free(L->tmpl_fds);
    PyMem_Free(L->deny);
    free(L->live);
    free(L->q);
    free(L->q2);
    Py_XDECREF(L->keep);
    Py_TYPE(L)->tp_free((PyObject *)L);
}

static int ready(Lane *L)
{
    if (L->ctl[0] < 0) PyErr_SetString(PyExc_RuntimeError, "Lane is not initialized");
    return L->ctl[0] >= 0;
}

static PyObject *Lane_start(Lane *L, PyObject *unused)
{
    (void)unused;
    if (!ready(L)) return NULL;
    if (L->started) Py_RETURN_NONE;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, STACK);
    __atomic_store_n(&L->stopping, 0, __ATOMIC_RELEASE);
    int e = pthread_create(&L->thread, &a, lane_main, L);
    pthread_attr_destroy(&a);
    if (e) {
        errno = e;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    L->started = 1;
    Py_RETURN_NONE;
}

static PyObject *Lane_close(Lane *L, PyObject *unused)
{
    (void)unused;
    lane_stop(L);
    Py_RETURN_NONE;
}

/* An instance spawned by the lane of the activator this process replaced (a re-exec):
 * counted against MaxConnections= like our own until exited() hands it back. */
static PyObject *Lane_adopt(Lane *L, PyObject *arg)
{
    long pid = PyLong_AsLong(arg);
    if ((pid == -1 && PyErr_Occurred()) || !ready(L)) return NULL;
    if (pid <= 0) {
        PyErr_SetString(PyExc_ValueError, "Lane.adopt: pid must be positive");
        return NULL;
    }
    pthread_mutex_lock(&L->lock);
    if (L->nlive == L->caplive) {
        size_t cap = L->caplive ? 2 * L->caplive : 64;
        struct live *p = realloc(L->live, cap * sizeof *p);
        if (p) L->live = p, L->caplive = cap;
    }
    int ok = L->nlive < L->caplive;
    if (ok) {
        L->live[L->nlive++] = (struct live){(pid_t)pid, 0};
        L->active++;
    }
    pthread_mutex_unlock(&L->lock);
    if (!ok) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *Lane_exited(Lane *L, PyObject *arg)
{
    long pid = PyLong_AsLong(arg);
    int found = 0;
    if ((pid == -1 && PyErr_Occurred()) || !ready(L)) return NULL;
    pthread_mutex_lock(&L->lock);
    for (size_t i = 0; i < L->nlive; i++)
        if (L->live[i].pid == (pid_t)pid) {
            if (!L->live[i].dead) L->active--;
            L->live[i] = L->live[--L->nlive];
            found = 1;
            break;
        }
    pthread_mutex_unlock(&L->lock);
    return PyBool_FromLong(found);
}

static PyObject *remote_of(const struct rec *r)
{
    if (!r->remote[0]) Py_RETURN_NONE;
    return PyUnicode_FromString(r->remote);
}

static PyObject *record(const struct rec *r)
{
    PyObject *remote = remote_of(r), *t = NULL;
    if (!remote) return NULL;
    switch (r->kind) {
    case R_SPAWNED:
        t = Py_BuildValue("(iiKsOis)", r->kind, (int)r->pid, r->n, r->inst, remote, r->rport, r->inv);
        break;
    case R_FAILED:
        t = Py_BuildValue("(iiKsOisssii)", r->kind, (int)r->pid, r->n, r->inst, remote, r->rport,
                          r->inv, spawn_step_name(r->step), spawn_step_verb(r->step), r->err,
                          spawn_step_code(r->step));
        break;
    case R_NOFORK:
        t = Py_BuildValue("(iiKsOisi)", r->kind, -1, r->n, r->inst, remote, r->rport, r->inv, r->err);
        break;
    case R_REFUSED:
        t = Py_BuildValue("(iiKsOil)", r->kind, 0, r->n, r->inst, remote, r->rport, r->active);
        break;
    case R_DENIED:
        t = Py_BuildValue("(iiKsOi)", r->kind, 0, 0ULL, "", remote, r->rport);
        break;
    default:
        t = Py_BuildValue("(ii)", r->kind, r->err);
    }
    Py_DECREF(remote);
    return t;
}

static PyObject *Lane_drain(Lane *L, PyObject *unused)
{
    (void)unused;
    if (!ready(L)) return NULL;
    pthread_mutex_lock(&L->lock); /* swap the queues: the thread goes on filling the other */
    struct rec *q = L->q;
    size_t n = L->nq, cap = L->capq;
    L->q = L->q2, L->capq = L->capq2, L->nq = 0;
    L->q2 = q, L->capq2 = cap;
    pthread_mutex_unlock(&L->lock);
    PyObject *out = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; out && i < n; i++) {
        PyObject *t = record(&q[i]);
        if (!t) Py_CLEAR(out);
        else PyList_SET_ITEM(out, (Py_ssize_t)i, t);
    }
    return out;
}

static PyObject *Lane_get_active(Lane *L, void *closure)
{
    (void)closure;
    pthread_mutex_lock(&L->lock);
    long a = L->active;
    pthread_mutex_unlock(&L->lock);
    return PyLong_FromLong(a);
}

static PyMethodDef Lane_methods[] = {
    {"start", (PyCFunction)Lane_start, METH_NOARGS, "start accepting (the thread)"},
    {"close", (PyCFunction)Lane_close, METH_NOARGS,
     "stop accepting; returns once the thread is gone (call before closing the listeners)"},
    {"drain", (PyCFunction)Lane_drain, METH_NOARGS,
     "the records since the last drain: (kind, pid, n, instance, remote, port, ...)"},
    {"exited", (PyCFunction)Lane_exited, METH_O, "exited(pid): that child is reaped; frees its slot"},
    {"adopt", (PyCFunction)Lane_adopt, METH_O,
     "adopt(pid): an instance of the activator this one replaced; counts until exited(pid)"},
    {NULL, NULL, 0, NULL}};

static PyObject *Lane_get_spawning(Lane *L, void *closure)
{
    (void)closure;
    return PyBool_FromLong(__atomic_load_n(&L->inflight, __ATOMIC_SEQ_CST));
}

static PyGetSetDef Lane_getset[] = {
    {"active", (getter)Lane_get_active, NULL, "instances counted against max_connections", NULL},
    {"spawning", (getter)Lane_get_spawning, NULL,
     "a child may exist whose record is not queued yet (read it before drain())", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject LaneType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "activator.exec._spawn.Lane",
    .tp_basicsize = sizeof(Lane),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Lane(spec, listen_fds, wake_fd, max_connections, conn_env, accepted=0, local=None, "
              "deny=b''): "
              "accept and spawn "
              "in a thread; see activator/acceptlane.py",
    .tp_new = Lane_new,
    .tp_init = (initproc)Lane_init,
    .tp_dealloc = (destructor)Lane_dealloc,
    .tp_methods = Lane_methods,
    .tp_getset = Lane_getset,
};

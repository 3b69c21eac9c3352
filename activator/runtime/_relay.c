/* activator.runtime._relay.Relay: the proxy's byte mover (X-Activator-ProxyTo=), in a thread.
 *
 * Why C and a thread: a relay in Python would run Python per chunk, and a process per
 * service (systemd-socket-proxyd) costs a process per service. One Relay per proxied
 * socket owns the pairs (client, backend) that Python hands it with add(); its thread
 * moves bytes with splice(2) through a pipe per direction (socket → pipe → socket: the
 * pages are not copied to user space), edge-triggered epoll, no system call to re-arm.
 * It never runs Python and never touches the event loop: when a pair is done it queues
 * a record and writes to `wake_fd` (an eventfd the loop reads), once per batch.
 *
 * Semantics, as a TCP proxy should have them: a FIN is passed on as shutdown(SHUT_WR)
 * once what came before it is delivered (half-close), the pair ends when both ways are
 * closed; an error on one side (a reset, EPIPE) resets the other (SO_LINGER 0) at once.
 *
 * Not privileged: the relay runs in activator's process but handles no credential, no
 * fd of a unit's listener; it belongs to the runtime, not to exec/. */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define STACK (256 * 1024)
#define EVENTS 64

struct conn;
struct end { struct conn *c; int side; };  /* epoll's data: which socket of which pair */
struct way {                                 /* one direction: from → pipe → to */
    int pipe[2];
    size_t inpipe;                           /* bytes in the pipe */
    int eof, shut;                           /* read EOF; passed on with shutdown() */
    unsigned long long bytes;
};
struct conn {
    int fd[2];                               /* 0: client, 1: backend */
    struct end end[2];
    struct way way[2];                       /* 0: client → backend, 1: backend → client */
    int err, done;
    unsigned long long cookie;               /* the caller's name for the pair */
    struct conn *prev, *next, *dead_next;
};
struct rec { unsigned long long up, down, cookie; int err; };

typedef struct {
    PyObject_HEAD
    int ep, ctl, wake_fd;
    size_t pipe_size;
    pthread_t thread;
    int started, stopping;
    pthread_mutex_t lock;                    /* the list, the count, the queue */
    struct conn *all;
    long active;
    unsigned long long relayed;
    struct rec *q, *q2;
    size_t nq, capq, capq2;
} Relay;

static void reset_close(int fd)
{
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(fd);
}

static void conn_free(struct conn *c, int reset)
{
    for (int i = 0; i < 2; i++) {
        if (c->fd[i] >= 0) {
            if (reset) reset_close(c->fd[i]);
            else close(c->fd[i]);
        }
        for (int k = 0; k < 2; k++)
            if (c->way[i].pipe[k] >= 0) close(c->way[i].pipe[k]);
    }
    free(c);
}

/* With R->lock held: off the list, into the queue (the loop hears of it). */
static int conn_report(Relay *R, struct conn *c)
{
    if (c->prev) c->prev->next = c->next;
    else R->all = c->next;
    if (c->next) c->next->prev = c->prev;
    R->active--;
    R->relayed++;
    if (R->nq == R->capq) {
        size_t cap = R->capq ? 2 * R->capq : 64;
        struct rec *p = realloc(R->q, cap * sizeof *p);
        if (p) R->q = p, R->capq = cap;
    }
    int wake = R->nq == 0;
    if (R->nq < R->capq) /* else out of memory: the record is lost, the count is right */
        R->q[R->nq++] = (struct rec){c->way[0].bytes, c->way[1].bytes, c->cookie, c->err};
    return wake;
}

/* Move what can be moved one way; -1: an error on one of the sockets (in c->err). */
static int pump(Relay *R, struct conn *c, int w)
{
    struct way *x = &c->way[w];
    int from = c->fd[w], to = c->fd[1 - w];
    for (;;) {
        int progress = 0;
        if (x->inpipe > 0) {
            ssize_t n = splice(x->pipe[0], NULL, to, NULL, x->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) x->inpipe -= (size_t)n, x->bytes += (unsigned long long)n, progress = 1;
            else if (n < 0 && errno != EAGAIN && errno != EINTR) return c->err = errno, -1;
        }
        if (!x->eof && x->inpipe < R->pipe_size) {
            ssize_t n = splice(from, NULL, x->pipe[1], NULL, R->pipe_size - x->inpipe,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) x->inpipe += (size_t)n, progress = 1;
            else if (n == 0) x->eof = 1, progress = 1;
            else if (errno != EAGAIN && errno != EINTR) return c->err = errno, -1;
        }
        if (x->eof && x->inpipe == 0 && !x->shut) {
            x->shut = 1; /* their FIN, passed on after everything before it */
            if (shutdown(to, SHUT_WR) < 0 && errno != ENOTCONN) return c->err = errno, -1;
        }
        if (!progress) return 0;
    }
}

static void *relay_main(void *arg)
{
    Relay *R = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, NULL);
    struct epoll_event ev[EVENTS];
    while (!__atomic_load_n(&R->stopping, __ATOMIC_ACQUIRE)) {
        int n = epoll_wait(R->ep, ev, EVENTS, -1);
        if (n < 0) continue; /* EINTR */
        struct conn *dead = NULL;
        int wake = 0;
        for (int i = 0; i < n; i++) {
            struct end *e = ev[i].data.ptr;
            if (!e) { /* the control eventfd: look at `stopping` */
                uint64_t v;
                if (read(R->ctl, &v, sizeof v) < 0) { /* nothing to read: fine */ }
                continue;
            }
            struct conn *c = e->c;
            if (c->done) continue; /* both of its sockets were in this batch */
            /* Readable: move what it sent on. Writable: only a way that waits for it to be
             * (ET reports EPOLLOUT with most events; pumping blindly costs a splice). */
            int k = e->side, bad = 0;
            if (ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                bad = pump(R, c, k) < 0;
            if (!bad && (ev[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && c->way[1 - k].inpipe)
                bad = pump(R, c, 1 - k) < 0;
            if (!bad && !(c->way[0].shut && c->way[1].shut)) continue;
            c->done = 1;
            pthread_mutex_lock(&R->lock);
            wake |= conn_report(R, c);
            pthread_mutex_unlock(&R->lock);
            c->dead_next = dead, dead = c;
            /* an error on one side resets the other: the peer learns at once */
            for (int f = 0; f < 2; f++) {
                if (bad) reset_close(c->fd[f]);
                else close(c->fd[f]);
                c->fd[f] = -1;
            }
        }
        while (dead) { /* freed after the batch: a later event may still name it */
            struct conn *c = dead;
            dead = c->dead_next;
            conn_free(c, 0);
        }
        if (wake) {
            uint64_t one = 1;
            if (write(R->wake_fd, &one, sizeof one) < 0) { /* full: the loop is awake */ }
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ the Python face */

static int Relay_init(Relay *R, PyObject *args, PyObject *kw)
{
    static char *names[] = {"wake_fd", "pipe_size", NULL};
    Py_ssize_t pipe_size = 1 << 20;
    if (R->ep >= 0) {
        PyErr_SetString(PyExc_RuntimeError, "Relay.__init__ called twice");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "i|n", names, &R->wake_fd, &pipe_size)) return -1;
    if (pipe_size < 4096) {
        PyErr_SetString(PyExc_ValueError, "Relay: pipe_size below a page");
        return -1;
    }
    R->pipe_size = (size_t)pipe_size;
    R->ep = epoll_create1(EPOLL_CLOEXEC);
    R->ctl = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
    if (R->ep < 0 || R->ctl < 0 || epoll_ctl(R->ep, EPOLL_CTL_ADD, R->ctl, &e) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    pthread_mutex_init(&R->lock, NULL);
    return 0;
}

static PyObject *Relay_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    (void)args, (void)kw;
    Relay *R = (Relay *)type->tp_alloc(type, 0);
    if (R) R->ep = R->ctl = -1;
    return (PyObject *)R;
}

static void relay_stop(Relay *R)
{
    if (R->started) {
        __atomic_store_n(&R->stopping, 1, __ATOMIC_RELEASE);
        uint64_t one = 1;
        if (write(R->ctl, &one, sizeof one) < 0) { /* full: it is awake already */ }
        Py_BEGIN_ALLOW_THREADS
        pthread_join(R->thread, NULL);
        Py_END_ALLOW_THREADS
        R->started = 0;
    }
    if (R->ep < 0) return;
    pthread_mutex_lock(&R->lock);
    struct conn *c = R->all;
    R->all = NULL;
    R->active = 0;
    pthread_mutex_unlock(&R->lock);
    while (c) { /* the supervisor is going: both ends learn it at once */
        struct conn *next = c->next;
        conn_free(c, 1);
        c = next;
    }
}

static void Relay_dealloc(Relay *R)
{
    relay_stop(R);
    if (R->ep >= 0) {
        close(R->ep);
        pthread_mutex_destroy(&R->lock);
    }
    if (R->ctl >= 0) close(R->ctl);
    free(R->q);
    free(R->q2);
    Py_TYPE(R)->tp_free((PyObject *)R);
}

static PyObject *Relay_add(Relay *R, PyObject *args)
{
    int cfd, bfd;
    unsigned long long cookie = 0;
    if (!PyArg_ParseTuple(args, "ii|K", &cfd, &bfd, &cookie)) return NULL;
    if (R->ep < 0) return PyErr_Format(PyExc_RuntimeError, "Relay is not initialized");
    if (__atomic_load_n(&R->stopping, __ATOMIC_ACQUIRE))
        return PyErr_Format(PyExc_RuntimeError, "Relay is closed");
    struct conn *c = calloc(1, sizeof *c);
    if (!c) return PyErr_NoMemory();
    c->fd[0] = cfd, c->fd[1] = bfd;
    c->cookie = cookie;
    for (int i = 0; i < 2; i++) {
        c->end[i] = (struct end){c, i};
        c->way[i].pipe[0] = c->way[i].pipe[1] = -1;
    }
    for (int i = 0; i < 2; i++) {
        /* Bytes leave as they came: the peer's writes were sized already, and Nagle on a
         * relay holds a small reply behind an unacknowledged one (a delayed ACK: 40 ms). */
        int one = 1;
        (void)setsockopt(c->fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* unix: no */
        int fl = fcntl(c->fd[i], F_GETFL);
        if (fl < 0 || fcntl(c->fd[i], F_SETFL, fl | O_NONBLOCK) < 0 ||
            pipe2(c->way[i].pipe, O_CLOEXEC | O_NONBLOCK) < 0)
            goto fail;
        /* bigger pipes, fewer splices; refused past the user's pipe budget: keep 64 KiB */
        (void)fcntl(c->way[i].pipe[1], F_SETPIPE_SZ, (int)R->pipe_size);
    }
    if (!R->started) { /* a proxy nobody connects to costs no thread */
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, STACK);
        int e = pthread_create(&R->thread, &a, relay_main, R);
        pthread_attr_destroy(&a);
        if (e) {
            errno = e;
            goto fail;
        }
        R->started = 1;
    }
    /* Under the lock until both sockets are in the epoll set: the thread may see the first
     * one's events at once, but it frees a pair only after taking the lock. */
    pthread_mutex_lock(&R->lock);
    c->next = R->all;
    if (R->all) R->all->prev = c;
    R->all = c;
    R->active++;
    for (int i = 0; i < 2; i++) {
        struct epoll_event want = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                   .data.ptr = &c->end[i]};
        if (epoll_ctl(R->ep, EPOLL_CTL_ADD, c->fd[i], &want) == 0) continue;
        c->err = errno;
        if (i == 0) { /* the thread has never heard of it */
            R->all = c->next;
            if (c->next) c->next->prev = NULL;
            R->active--;
            pthread_mutex_unlock(&R->lock);
            int e = c->err;
            conn_free(c, 1);
            errno = e;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        /* the client's end is in: shut both, the thread sees it and resets the pair */
        (void)shutdown(c->fd[0], SHUT_RDWR);
        (void)shutdown(c->fd[1], SHUT_RDWR);
    }
    pthread_mutex_unlock(&R->lock);
    Py_RETURN_NONE;
fail:
    {
        int e = errno;
        c->fd[0] = c->fd[1] = -1; /* still the caller's: it closes them */
        conn_free(c, 0);
        errno = e;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
}

static PyObject *Relay_drain(Relay *R, PyObject *unused)
{
    (void)unused;
    if (R->ep < 0) return PyErr_Format(PyExc_RuntimeError, "Relay is not initialized");
    pthread_mutex_lock(&R->lock);
    struct rec *q = R->q;
    size_t n = R->nq, cap = R->capq;
    R->q = R->q2, R->capq = R->capq2, R->nq = 0;
    R->q2 = q, R->capq2 = cap;
    pthread_mutex_unlock(&R->lock);
    PyObject *out = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; out && i < n; i++) {
        PyObject *t = Py_BuildValue("(KKKi)", q[i].cookie, q[i].up, q[i].down, q[i].err);
        if (!t) Py_CLEAR(out);
        else PyList_SET_ITEM(out, (Py_ssize_t)i, t);
    }
    return out;
}

static PyObject *Relay_close(Relay *R, PyObject *unused)
{
    (void)unused;
    relay_stop(R);
    Py_RETURN_NONE;
}

static PyObject *Relay_get_active(Relay *R, void *closure)
{
    (void)closure;
    if (R->ep < 0) return PyLong_FromLong(0);
    pthread_mutex_lock(&R->lock);
    long a = R->active;
    pthread_mutex_unlock(&R->lock);
    return PyLong_FromLong(a);
}

static PyMethodDef Relay_methods[] = {
    {"add", (PyCFunction)Relay_add, METH_VARARGS,
     "add(client_fd, backend_fd, cookie=0): relay between them from now on; the relay owns\n"
     "both fds"},
    {"drain", (PyCFunction)Relay_drain, METH_NOARGS,
     "the pairs done since the last drain: (cookie, bytes client→backend, backend→client,\n"
     "errno)"},
    {"close", (PyCFunction)Relay_close, METH_NOARGS,
     "stop the thread and reset every pair still open"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Relay_getset[] = {
    {"active", (getter)Relay_get_active, NULL, "pairs being relayed", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject RelayType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "activator.runtime._relay.Relay",
    .tp_basicsize = sizeof(Relay),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Relay(wake_fd, pipe_size=1048576): splice pairs of sockets in a thread; "
              "see activator/runtime/proxy.py",
    .tp_new = Relay_new,
    .tp_init = (initproc)Relay_init,
    .tp_dealloc = (destructor)Relay_dealloc,
    .tp_methods = Relay_methods,
    .tp_getset = Relay_getset,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_relay", NULL, -1, NULL,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__relay(void)
{
    if (PyType_Ready(&RelayType) < 0) return NULL;
    PyObject *mod = PyModule_Create(&module);
    if (mod && PyModule_AddObjectRef(mod, "Relay", (PyObject *)&RelayType) < 0) Py_CLEAR(mod);
    return mod;
}

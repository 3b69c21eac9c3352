/* activator.exec._spawn: the CPython glue of the spawn core, and the module itself.
 *
 * spawn() parses its arguments into a struct spec (PyMem, with the GIL held), blocks every
 * signal and hands the spec to the child side, spawn_child.c (spawn_vfork(), or
 * spawn_in_place() for the chain-loader), then turns the struct report into a tuple. All
 * allocation and every Python call happen here, before vfork() or after it returns; the
 * code that runs in the child is spawn_child.c's alone, and it cannot see Python.
 * The rest of the module: Lane (_lane.c), sigchld_fd (_reap.c), set_subreaper and
 * trim_memory (_process.c). Python face: activator/execcore.py. */
#define _GNU_SOURCE
#include "_spawn.h"
#include "_filter.h"
#include <errno.h>
#include <signal.h>
#include <string.h>

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

/* The names of the steps in a mask of 1 << step (struct report's tolerated), as a tuple;
 * NULL with an exception (Py_BuildValue's "N" passes that on). */
static PyObject *step_names(unsigned int mask)
{
    PyObject *t = PyTuple_New(__builtin_popcount(mask));
    for (int st = 1, i = 0; t && st <= spawn_step_count(); st++)
        if (mask >> st & 1) {
            PyObject *name = PyUnicode_FromString(spawn_step_name(st));
            if (!name) Py_CLEAR(t);
            else PyTuple_SET_ITEM(t, i++, name);
        }
    return t;
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
    volatile struct report rep = {.quiet = m.quiet};
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (in_place) spawn_in_place(&s, &rep); /* chain-loading: execs or exits, never returns */
    pid_t pid = spawn_vfork(&s, &rep);
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
    } else if (rep.step != 0) /* the child has exited; the caller reaps it */
        ret = Py_BuildValue("(issiiNKii)", pid, spawn_step_name(rep.step),
                            spawn_step_verb(rep.step), rep.err, spawn_step_code(rep.step),
                            step_names(rep.tolerated), rep.clamped, rep.nice, rep.what);
    else
        ret = Py_BuildValue("(iOOiiNKii)", pid, Py_None, Py_None, 0, 0,
                            step_names(rep.tolerated), rep.clamped, rep.nice, -1);
out:
    spec_free(&s, &m);
    return ret;
}

/* {step: exit code} from the child's own table, for the test that holds
 * execcore.EXIT_CODES to it (tests/spawn/test_exit_codes.py). */
static PyObject *exit_codes(PyObject *self, PyObject *unused)
{
    (void)self, (void)unused;
    PyObject *d = PyDict_New();
    for (int st = 1; d && st <= spawn_step_count(); st++) {
        PyObject *code = PyLong_FromLong(spawn_step_code(st));
        if (!code || PyDict_SetItemString(d, spawn_step_name(st), code) < 0) Py_CLEAR(d);
        Py_XDECREF(code);
    }
    return d;
}

static PyMethodDef methods[] = {
    {"spawn", (PyCFunction)(void (*)(void))spawn, METH_VARARGS | METH_KEYWORDS,
     "spawn(path, argv, ...) -> (pid, step, verb, errno, exit_code, tolerated, clamped, nice,\n"
     "what): vfork, set up, execve. step is None once execve succeeded; else the child has\n"
     "exited with exit_code. tolerated: the steps let pass as systemd does in a container;\n"
     "clamped: mask of 1 << RLIMIT_* set to the closest value allowed; nice: the nice level\n"
     "set if 'nice' was tolerated; what: the resource or capability a failed step was at."},
    {"sigchld_fd", sigchld_fd, METH_NOARGS,
     "block SIGCHLD in this thread and return a signalfd for it (the reaper's wake-up)"},
    {"set_subreaper", set_subreaper, METH_NOARGS, "prctl(PR_SET_CHILD_SUBREAPER): ok?"},
    {"trim_memory", trim_memory, METH_NOARGS, "malloc_trim(0) where there is one (glibc)"},
    {"attach_filter", attach_filter, METH_VARARGS,
     "attach_filter(fd, program): SO_ATTACH_FILTER, a packed array of struct sock_filter"},
    {"exit_codes", exit_codes, METH_NOARGS,
     "exit_codes() -> {step: exit_code}: systemd's code for each step the child can fail at"},
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

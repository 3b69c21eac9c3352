"""Helpers for the spawn-core tests: the probe program and bounded reaping.

The probe is a stdlib-only script for Debian's /usr/bin/python3 (the venv's interpreter lives
under /root, which nobody cannot reach). It writes what it received as JSON to the file named
by its last argument. Everything it reports is read at the start of the script, and the
environment comes from /proc/self/environ, which is what execve() passed (Python's own
locale coercion edits only its in-memory copy).
"""

from __future__ import annotations

import os
import select
import signal

from activator.exec.spec import ExecSpec, spawn

PYTHON = b"/usr/bin/python3"
IS_ROOT = os.geteuid() == 0

PROBE = r"""
import fcntl, json, os, resource, socket, stat, sys

def fd_info(fd):
    st = os.fstat(fd)
    info = {
        "ino": [st.st_dev, st.st_ino],
        "nonblock": bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK),
        "cloexec": bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC),
        "kind": "file",
    }
    if stat.S_ISSOCK(st.st_mode):
        s = socket.socket(fileno=fd)  # flags were read above; detach() leaves fd open
        try:
            listening = s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            info["kind"] = "listening" if listening else "socket"
            info["type"] = int(s.type)
        finally:
            s.detach()
    elif stat.S_ISCHR(st.st_mode):
        info["kind"] = "chr %d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    elif stat.S_ISFIFO(st.st_mode):
        info["kind"] = "fifo"
    return info

fds = {}
for name in os.listdir("/proc/self/fd"):
    try:
        fds[int(name)] = fd_info(int(name))
    except OSError:  # the directory fd listdir() itself used, closed by now
        pass
with open("/proc/self/status") as f:
    status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
with open("/proc/self/environ", "rb") as f:
    environ = [e.decode("latin-1") for e in f.read().split(b"\0")[:-1]]
with open("/proc/self/oom_score_adj") as f:
    oom = int(f.read())
out = {
    "pid": os.getpid(), "sid": os.getsid(0), "pgid": os.getpgid(0),
    "resuid": os.getresuid(), "resgid": os.getresgid(), "groups": sorted(os.getgroups()),
    "cwd": os.getcwd(), "umask": int(status["Umask"], 8), "status": status,
    "environ": environ, "fds": fds, "nice": os.getpriority(os.PRIO_PROCESS, 0), "oom": oom,
    "rlimits": {n: resource.getrlimit(getattr(resource, n))
                for n in dir(resource) if n.startswith("RLIMIT_")},
}
with open(sys.argv[-1], "w") as f:
    json.dump(out, f)
"""


def reap(pid: int, timeout: float = 10.0) -> int:
    """Wait (bounded) for `pid` to exit and reap it; SIGKILL it if it overstays.

    Returns its exit code as os.waitstatus_to_exitcode() gives it (-N for signal N)."""
    pidfd = os.pidfd_open(pid)
    try:
        exited = select.select([pidfd], [], [], timeout)[0]
    finally:
        os.close(pidfd)
    if not exited:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert exited, f"pid {pid} did not exit within {timeout}s"
    return os.waitstatus_to_exitcode(status)


def run_spec(spec: ExecSpec, timeout: float = 10.0) -> tuple[int, int]:
    """Spawn `spec`, wait for it; returns (pid, exit code)."""
    pid = spawn(spec)
    return pid, reap(pid, timeout)

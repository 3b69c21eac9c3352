"""The spawn core inside whole processes: with a reaper thread blocked in waitpid(-1), under a
signal storm, from a parent whose stdio is closed, and as the chain-loader CLI.

Each runs in its own interpreter: a waitpid(-1) thread would reap the test process's children,
and closing fd 0/1 would break pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from spawnprobe import PYTHON

TIMEOUT = 60

THREADS = r"""
import json, os, signal, sys, threading
from activator.exec.spec import ExecSpec, SpawnError, spawn

creds = json.loads(sys.argv[1])
reaped, cond = {}, threading.Condition()

def reaper():  # the daemon's design: one thread blocked in waitpid(-1, 0)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return
        with cond:
            reaped[pid] = os.waitstatus_to_exitcode(status)
            cond.notify_all()

# A child that outlives the run keeps the reaper blocked in waitpid rather than finding none.
keeper = spawn(ExecSpec(path=b"/bin/sleep", argv=[b"sleep", b"60"], env=[], **creds))
threading.Thread(target=reaper, daemon=True).start()
hits, stop = [0], threading.Event()
signal.signal(signal.SIGUSR1, lambda *_: hits.__setitem__(0, hits[0] + 1))

def storm():  # process-directed signals, taken by whichever thread has them unblocked
    while not stop.wait(0.0002):
        os.kill(os.getpid(), signal.SIGUSR1)

def busy():
    while not stop.is_set():
        sum(range(100))

threads = [threading.Thread(target=storm), threading.Thread(target=busy)]
for t in threads:
    t.start()
spawned, failed = [], None
try:
    for i in range(300):
        spawned.append(spawn(ExecSpec(path=b"/bin/true", argv=[b"true"], env=[], **creds)))
        if i == 150:
            try:
                spawn(ExecSpec(path=b"/nonexistent", argv=[b"x"], env=[], **creds))
            except SpawnError as e:
                failed = e.pid
finally:
    stop.set()
    for t in threads:
        t.join(10)
    os.kill(keeper, signal.SIGKILL)
everything = spawned + [failed, keeper]
with cond:
    done = cond.wait_for(lambda: all(p in reaped for p in everything), timeout=30)
print(json.dumps({
    "done": done, "hits": hits[0], "spawned": len(spawned),
    "true": sorted({reaped.get(p) for p in spawned}, key=str),
    "failed": reaped.get(failed), "keeper": reaped.get(keeper),
}))
"""


def test_spawning_beside_a_waitpid_thread_and_a_signal_storm(nobody):
    proc = subprocess.run(
        [sys.executable, "-c", THREADS, json.dumps(nobody)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result == {
        "done": True,
        "hits": result["hits"],
        "spawned": 300,
        "true": [0],
        "failed": 203,
        "keeper": -9,
    }
    assert result["hits"] > 0  # the storm reached the process while it spawned


CLOSED_STDIO = r"""
import os, sys
from activator.exec.spec import ExecSpec, spawn
os.close(0)
os.close(1)  # a daemon started with stdin and stdout closed: /dev/null may open on 0
script, out, creds = sys.argv[1], sys.argv[2], eval(sys.argv[3])
pid = spawn(ExecSpec(path=b"/usr/bin/python3", argv=[b"/usr/bin/python3", b"-I", b"-S",
            script.encode(), out.encode()], env=[], stderr=2, **creds))
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


def test_parent_with_closed_stdio_still_gives_the_child_dev_null(probe_dir, scratch, nobody):
    out = scratch("out")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CLOSED_STDIO,
            os.path.join(probe_dir, "probe.py"),
            out,
            repr(nobody),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    with open(out) as f:
        fds = json.load(f)["fds"]
    assert sorted(fds) == ["0", "1", "2"]
    assert fds["0"]["kind"] == fds["1"]["kind"] == "chr 1:3"
    assert not fds["0"]["cloexec"] and not fds["1"]["cloexec"]


FULL_STDERR = r"""
import os, socket
from activator.exec.spec import ExecSpec, SpawnError, spawn

def fill(fd):  # through a second, non-blocking open file description
    try:
        while True:
            os.write(fd, b"x" * 65536)
    except BlockingIOError:
        pass

r, w = os.pipe()
extra = os.open(f"/proc/self/fd/{w}", os.O_WRONLY | os.O_NONBLOCK)
fill(extra)
a, b = socket.socketpair()
a.setblocking(False)
fill(a.fileno())
for stderr in (w, a.fileno()):  # both blocking in the child (stdio sockets are made so)
    try:
        spawn(ExecSpec(path=b"/nonexistent", argv=[b"x"], env=[], stderr=stderr))
    except SpawnError as e:
        print(e.exit_code, os.waitstatus_to_exitcode(os.waitpid(e.pid, 0)[1]))
"""


def test_failure_line_never_blocks_on_a_full_stderr():
    # A child blocked writing to a full pipe would hold its vfork parent suspended, and the
    # parent may be the process meant to drain that pipe: a deadlock.
    proc = subprocess.run(
        [sys.executable, "-c", FULL_STDERR], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert (proc.returncode, proc.stdout) == (0, "203 203\n203 203\n"), proc.stderr


def chain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "activator.execcore", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


@pytest.mark.root
def test_chain_loader_drops_privileges_and_execs_in_place(root):
    proc = chain(
        "--uid",
        "65534",
        "--gid",
        "65534",
        "--groups",
        "65534",
        "--listen-pid",
        "--",
        "sh",
        "-c",
        'id; echo "$LISTEN_PID $$"',
    )
    assert proc.returncode == 0, proc.stderr
    ids, pids = proc.stdout.splitlines()
    assert ids == "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"
    listen_pid, shell_pid = pids.split()
    assert listen_pid == shell_pid


def test_chain_loader_failure_is_one_line_and_systemds_code():
    proc = chain("--", "/nonexistent/program")
    assert proc.returncode == 203
    assert proc.stderr == (
        "activator-exec: unable to exec /nonexistent/program: No such file or directory\n"
    )


def test_probe_interpreter_is_reachable_by_nobody():
    # The probe relies on it; the venv's interpreter (under /root) is not.
    assert os.stat(PYTHON).st_mode & 0o001

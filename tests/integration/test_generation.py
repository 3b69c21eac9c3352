"""Issue 15 item 6: after an unclean death, the next activator stops what is left and binds.

Before: after SIGKILL of activator (not PID 1) every service ran on unsupervised, and a
new activator could not bind the port the orphaned Accept=no service held ("Address
already in use"); the orphan was never stopped. Now a state record beside the control
socket names the dead one's run, and every process it left (found by the INVOCATION_ID
prefix, with their sessions and process groups) is stopped before anything binds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import pytest
from harness import SYSTEM_PYTHON, Activator, free_port, public_dir
from reliability import record

pytestmark = pytest.mark.root

# Accept=no: serves every connection with its pid, and leaves a child in its session
# that outlives nothing on purpose (it waits for a signal).
SERVER = r"""
import os, signal, socket
if os.fork() == 0:
    signal.pause()
    os._exit(0)
lst = socket.socket(fileno=3)
while True:
    c, _ = lst.accept()
    c.sendall(b"%d\n" % os.getpid())
    c.close()
"""


def ask(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        return int(c.makefile().readline())


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def session_members(sid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[3]) == sid:
                        out.append(int(name))
            except (OSError, ValueError):
                continue
    return out


def units(d, port: int, eport: int) -> dict[str, str]:
    return {
        "t.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
        "t.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {d / 'server.py'}\nUser=nobody\n",
        "e.socket": f"[Socket]\nListenStream=127.0.0.1:{eport}\nAccept=yes\n",
        "e@.service": "[Service]\nExecStart=/bin/cat\nStandardInput=socket\nUser=nobody\n",
    }


@pytest.mark.chaos
def test_issue_15_leftovers_of_a_dead_activator_are_stopped_and_the_port_bound(loop_kind):
    d = public_dir()
    (d / "server.py").write_text(SERVER)
    port, eport = free_port(), free_port()
    a = Activator(units(d, port, eport), loop=loop_kind)
    held = socket.create_connection(("127.0.0.1", eport), timeout=10)  # an instance, running
    try:
        rec = json.loads((a.dir / "generation.json").read_text())
        assert rec["pid"] == a.pid
        server = ask(port)
        instance = a.wait_for("start", unit=f"e@0-127.0.0.1:{eport}-127.0.0.1:"
                              f"{held.getsockname()[1]}.service")["pid"]  # fmt: skip
        left = session_members(server)  # the service and the child it forked
        assert len(left) == 2
        os.kill(a.pid, signal.SIGKILL)
        a.proc.wait(10)
        assert not any(gone(p) for p in [*left, instance])  # unsupervised now
        began = time.monotonic()
        with Activator(units(d, port, eport), loop=loop_kind, control=a.control) as b:
            record(f"kill -9 of activator, a new one ({loop_kind})",
                   left=len(left) + 1, ready_after=f"{time.monotonic() - began:.2f}s")  # fmt: skip
            stopped = b.wait_for("stop", reason=f"left running by activator {a.pid}, which died")
            assert set(map(int, stopped["pids"].split())) == {*left, instance}
            assert all(gone(p) for p in [*left, instance])
            assert b.count("failed", unit="t.socket") == 0  # it bound the port
            assert ask(port) not in left  # a new service answers
            assert json.loads((a.dir / "generation.json").read_text())["pid"] == b.pid
        # a clean stop leaves no record
        assert not (a.dir / "generation.json").exists()
    finally:
        held.close()
        a.close()


def test_issue_15_a_live_activator_on_the_same_path_is_left_alone(loop_kind):
    d = public_dir()
    (d / "server.py").write_text(SERVER)
    port, eport = free_port(), free_port()
    with Activator(units(d, port, eport), loop=loop_kind) as a:
        server = ask(port)
        with Activator({}, loop=loop_kind, control=a.control) as b:
            b.wait_for("failed", reason=f"unable to bind control socket {a.control}: "
                       "another activator is serving it")  # fmt: skip
            assert b.count("stop") == 0
        assert not gone(server) and ask(port) == server
        assert json.loads((a.dir / "generation.json").read_text())["pid"] == a.pid

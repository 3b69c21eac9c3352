"""A socket unit's own ExecStartPre=/ExecStartPost=/ExecStopPre=/ExecStopPost= (issue 12,
item 8), as systemd's socket.c runs them: before and after binding, before and after
closing, with the socket's User=, Group= and Environment=, each bounded by TimeoutSec=; a
failing or late ExecStartPre= fails the socket (Result: exit-code / timeout), unbound."""

from __future__ import annotations

import os
import pwd
import socket
import threading

import pytest
from harness import Activator, free_port, public_dir

pytestmark = pytest.mark.root

NOBODY = pwd.getpwnam("nobody")


@pytest.fixture
def out():
    """A directory every service user may write its findings to."""
    d = public_dir("activator-sockexec-")
    d.chmod(0o777)
    return d


def _connect(path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(path)
            return True
        except OSError:
            return False


def test_commands_run_around_bind_and_close_with_the_sockets_settings(out, loop_kind):
    node = out / "s.sock"
    note = out / "notes"
    probe = f"if [ -S {node} ]; then b=bound; else b=unbound; fi; "
    line = probe + 'echo "$0 $b $(id -u) $WHO" >> ' + str(note)
    units = {
        "s.socket": (
            f"[Socket]\nListenStream={node}\nRemoveOnStop=yes\nUser=nobody\n"
            "Environment=WHO=sock\n"
            f"ExecStartPre=/bin/sh -c '{line}' start-pre\n"
            f"ExecStartPost=/bin/sh -c '{line}' start-post\n"
            f"ExecStopPre=/bin/sh -c '{line}' stop-pre\n"
            f"ExecStopPost=/bin/sh -c '{line}' stop-post\n"
        ),
        "s.service": "[Service]\nExecStart=/bin/true\nUser=nobody\n",
    }
    with Activator(units, loop=loop_kind) as a:
        assert a.status("s.socket")["sub"] == "listening" and _connect(str(node))
        a.ctl("stop", "s.socket", check=True)
        assert a.status("s.socket")["active"] == "inactive"
    uid = NOBODY.pw_uid
    assert note.read_text().splitlines() == [
        f"start-pre unbound {uid} sock",
        f"start-post bound {uid} sock",
        f"stop-pre bound {uid} sock",
        f"stop-post unbound {uid} sock",
    ]


def test_a_failing_exec_start_pre_fails_the_socket_unbound(out, loop_kind):
    port = free_port()
    units = {
        "f.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nExecStartPre=/bin/false\n"
        f"ExecStopPost=/bin/sh -c 'echo ran > {out}/post'\n",
        "f.service": "[Service]\nExecStart=/bin/true\nUser=nobody\n",
    }
    with Activator(units, loop=loop_kind) as a:
        a.wait_for("failed", unit="f.socket", result="exit-code")
        st = a.status("f.socket")
        assert (st["active"], st["result"]) == ("failed", "exit-code")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        exit_line = a.wait_for("exit", unit="f.socket")
        assert (exit_line["command"], exit_line["status"]) == ("ExecStartPre", 1)
        assert not (out / "post").exists()  # a failed ExecStartPre=: straight to the end
        r = a.ctl("start", "f.socket")
        assert r.returncode == 1 and "failed to start (result: exit-code)" in r.stderr


def test_start_waits_in_start_pre_and_timeout_sec_bounds_it(out, loop_kind):
    fifo = out / "go"
    os.mkfifo(fifo, 0o666)
    port, port2 = free_port(), free_port()
    units = {  # a template: not started by the boot, which would wait for it
        "w@.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n"
        f"ExecStartPre=/bin/sh -c 'read x < {fifo}'\n",
        "w@.service": "[Service]\nExecStart=/bin/true\nUser=nobody\n",
        "t.socket": f"[Socket]\nListenStream=127.0.0.1:{port2}\nTimeoutSec=1\n"
        "ExecStartPre=/bin/sleep 30\n",
        "t.service": "[Service]\nExecStart=/bin/true\nUser=nobody\n",
    }
    with Activator(units, loop=loop_kind) as a:
        a.ctl("start", "--no-block", "w@x.socket", check=True)
        a.wait_for("start", unit="w@x.socket")
        st = a.status("w@x.socket")
        assert (st["active"], st["sub"]) == ("activating", "start-pre")
        release = threading.Thread(target=lambda: fifo.write_text("go\n"))
        release.start()
        release.join(timeout=10)
        timeout = a.wait_for("timeout", unit="t.socket")
        assert timeout["phase"] == "start-pre" and "TimeoutSec=1s" in timeout["reason"]
        a.wait_for("failed", unit="t.socket", result="timeout")
        assert a.status("t.socket")["active"] == "failed"
        a.ctl("start", "w@x.socket", check=True)  # waits until it is up
        assert a.status("w@x.socket")["sub"] == "listening"
        socket.create_connection(("127.0.0.1", port), timeout=5).close()

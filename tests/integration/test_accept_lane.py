"""The C accept lane (activator/acceptlane.py, _lane.c): what it runs behaves as the Python path.

The tests of test_activation.py run Accept=yes under both paths (the `accept_path`
fixture); these cover what only the lane has: its instances read as `Conn` records until
an operator acts on one, its plan follows a reload, a unit it cannot run goes to the
Python path (and says why), a failed exec, a process group outliving its main process.
"""

from __future__ import annotations

import json
import os
import socket

import pytest
from harness import SYSTEM_PYTHON, Activator, free_port, hold_units, public_dir, read_line

pytestmark = pytest.mark.root

HOLD = hold_units(0)["h@.service"]


def read_all(c: socket.socket) -> bytes:
    data = b""
    while chunk := c.recv(65536):
        data += chunk
    return data


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _wait_status(a: Activator, unit: str, done, timeout: float = 10) -> dict:
    """The unit's status once ``done(status)`` holds (a bounded poll, woken by log lines)."""

    def check() -> dict | None:
        st = a.status(unit)
        return st if done(st) else None

    return a.until(check, timeout, f"{unit} done")


def test_instances_are_listed_stopped_and_killed(loop_kind):
    port = free_port()
    units = hold_units(port)
    with Activator(units, loop=loop_kind) as a:
        assert a.status("h.socket")["accept_path"] is None  # nothing planned before traffic
        c1, c2 = _connect(port), _connect(port)
        s1 = a.wait_for("start")
        s2 = a.wait_for("start", start=a.events.index(s1) + 1)
        st = _wait_status(a, "h.socket", lambda st: len(st["instances"]) == 2)
        assert st["accept_path"] == "accept lane (C thread)"
        assert {i["pid"] for i in st["instances"]} == {s1["pid"], s2["pid"]}
        assert st["NConnections"] == 2
        peers = {i["unit"]: i["peer"] for i in st["instances"]}
        assert peers[s1["unit"]] == s1["peer"]

        one = a.status(s1["unit"])  # reading it leaves it a light record; the answer is complete
        assert (one["active"], one["sub"], one["main_pid"]) == ("active", "running", s1["pid"])
        assert one["triggered_by"] == ["h.socket"] and one["peer"] == s1["peer"]

        a.ctl("stop", s1["unit"], check=True)  # now a Service: SIGTERM, reaped, logged
        a.wait_for("exit", unit=s1["unit"], signal="SIGTERM")
        assert c1.recv(10) == b""
        a.ctl("kill", "--signal", "KILL", s2["unit"], check=True)
        a.wait_for("exit", unit=s2["unit"], signal="SIGKILL")
        a.wait_for("failed", unit=s2["unit"], result="signal")
        st = _wait_status(a, "h.socket", lambda st: st["NConnections"] == 0)
        assert st["NConnections"] == 0 and st["instances"] == []
        assert read_line(("127.0.0.1", port), send=b"x\n") == b"done\n"  # the slots are free
        c1.close()
        c2.close()


def test_refused_at_max_connections_counts_exits_not_yet_reaped(loop_kind):
    """At the limit the lane asks the kernel which instances have exited, reaped or not.

    Clients one after the other against MaxConnections=1: the loop reaps in batches (up
    to reaper.HOLD_OFF late), so without that a reconnect would mostly find the last
    instance still counted. And the client sees EOF when the instance closes its fds, a
    moment before it is a zombie: the lane gives it up to 2 ms to finish (the Python path
    and systemd refuse some of these; this test would see ~5% refused there). On a busy
    machine an instance may need more than those 2 ms to be scheduled and exit (seen: 6
    of 100 refused at load 3), so the bound is 90: without the kernel's answer most
    reconnects would be refused. The books must agree with the client exactly, always.
    """
    port = free_port()
    units = {
        "m.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nMaxConnections=1\n",
        "m@.service": "[Service]\nExecStart=/bin/echo hi\nUser=nobody\nStandardInput=socket\n",
    }
    with Activator(units, loop=loop_kind) as a:
        served = sum(read_line(("127.0.0.1", port)) == b"hi\n" for _ in range(100))
        assert served >= 90
        st = _wait_status(a, "m.socket", lambda st: st["NConnections"] == 0)
        assert st["NAccepted"] == 100 and st["NRefused"] == 100 - served


def test_exec_failure_is_logged_and_the_socket_keeps_working(loop_kind):
    d = public_dir()
    prog = d / "prog"
    port = free_port()
    units = {
        "x.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n",
        "x@.service": f"[Service]\nExecStart={prog}\nUser=nobody\nStandardInput=socket\n",
    }
    with Activator(units, loop=loop_kind) as a:
        assert read_line(("127.0.0.1", port)) == b""  # nothing to exec: closed, nothing said
        f = a.wait_for("failed", step="exec")
        assert f["status"] == 203 and str(prog) in f["reason"] and f["unit"].startswith("x@0-")
        a.wait_for("failed", unit=f["unit"], result="exit-code")
        prog.write_text("#!/bin/sh\necho fixed\n")
        prog.chmod(0o755)
        assert read_line(("127.0.0.1", port)) == b"fixed\n"
        st = _wait_status(a, "x.socket", lambda st: st["NConnections"] == 0)
        assert st["NAccepted"] == 2 and st["NConnections"] == 0


def test_reload_replans_the_lane(loop_kind):
    port = free_port()
    units = {
        "r.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n",
        "r@.service": "[Service]\nExecStart=/bin/echo one\nUser=nobody\nStandardInput=socket\n",
    }
    with Activator(units, loop=loop_kind) as a:
        assert read_line(("127.0.0.1", port)) == b"one\n"
        (a.unit_dir / "r@.service").write_text(units["r@.service"].replace("one", "two"))
        a.ctl("reload", check=True)
        assert read_line(("127.0.0.1", port)) == b"two\n"
        # a change the lane cannot run: the loop takes over, and says why
        (a.unit_dir / "r@.service").write_text(
            units["r@.service"].replace("one", "three") + "ExecStartPre=/bin/true\n"
        )
        a.ctl("reload", check=True)
        assert read_line(("127.0.0.1", port)) == b"three\n"
        assert a.status("r.socket")["accept_path"] == "event loop (more than one command)"
        assert a.status("r.socket")["NAccepted"] == 3


def test_leftover_process_group_is_stopped_as_systemd_would(loop_kind, accept_path):
    """The main process exits but left a child in its group: the state machine stops it."""
    d = public_dir()
    pidfile = d / "leftover"
    os.chmod(d, 0o777)
    port = free_port()
    script = f"sleep 60 & echo $! > {pidfile}; echo started"
    units = {
        "g.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n",
        "g@.service": f"[Service]\nExecStart=/bin/sh -c '{script}'\nUser=nobody\n"
        "StandardInput=socket\nStandardError=null\nTimeoutStopSec=5\n",
    }
    with Activator(units, loop=loop_kind, env=accept_path) as a:
        assert read_line(("127.0.0.1", port)) == b"started\n"
        a.wait_for("exit", status=0)
        leftover = int(pidfile.read_text())
        a.wait_for("reap", pid=leftover, signal="SIGTERM")
        # SIGTERM'd, and reaped by activator (its subreaper)
        a.until(lambda: not os.path.exists(f"/proc/{leftover}"), what=f"{leftover} gone")
        st = _wait_status(a, "g.socket", lambda st: st["NConnections"] == 0)
        assert st["NConnections"] == 0


def test_units_the_lane_cannot_run_take_the_event_loop(loop_kind):
    port = free_port()
    units = {
        "p.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"
        "MaxConnectionsPerSource=4\n",
        "p@.service": "[Service]\nExecStart=/bin/echo hi\nUser=nobody\nStandardInput=socket\n",
    }
    with Activator(units, loop=loop_kind) as a:
        assert read_line(("127.0.0.1", port)) == b"hi\n"
        assert a.status("p.socket")["accept_path"] == "event loop (MaxConnectionsPerSource=)"
        human = a.ctl("status", "p.socket").stdout
        assert "Spawning: event loop (MaxConnectionsPerSource=)" in human


def test_lane_env_matches_the_python_path(probe, loop_kind):
    """Same unit, both paths: the same environment keys and the same kind of values."""
    port_l, port_p = free_port(), free_port()

    def units(port):
        return {
            "e.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nX-Activator-UCSPI=yes\n",
            "e@.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {probe} once\nUser=nobody\n"
            "Environment=FOO=bar\nUnsetEnvironment=LANG\n",
        }

    reports = []
    for port, env in (
        (port_l, {"ACTIVATOR_ACCEPT_LANE": "1"}),
        (port_p, {"ACTIVATOR_ACCEPT_LANE": "0"}),
    ):
        with Activator(units(port), loop=loop_kind, env=env) as a:
            with _connect(port) as c:
                cport = c.getsockname()[1]
                rep = json.loads(read_all(c))
            rep["cport"] = cport
            rep["unit"] = a.wait_for("start", pid=rep["pid"])["unit"]
            reports.append((port, rep))
    (pl, lane), (pp, py) = reports
    assert sorted(lane["env"]) == sorted(py["env"])
    for rep, port in ((lane, pl), (py, pp)):
        env = rep["env"]
        assert env["REMOTE_ADDR"] == env["TCPREMOTEIP"] == "127.0.0.1"
        assert env["REMOTE_PORT"] == env["TCPREMOTEPORT"] == str(rep["cport"])
        assert env["TCPLOCALIP"] == "127.0.0.1" and env["TCPLOCALPORT"] == str(port)
        assert (
            env["PROTO"] == "TCP" and env["FOO"] == "bar" and env["LISTEN_PID"] == str(rep["pid"])
        )
        assert len(env["INVOCATION_ID"]) == 32 and int(env["INVOCATION_ID"], 16) >= 0
        assert rep["unit"] == f"e@0-127.0.0.1:{port}-127.0.0.1:{rep['cport']}.service"
    for key in ("uid", "gid", "groups", "cwd", "umask", "sigblk", "sigign"):
        assert lane[key] == py[key], key
    assert lane["uid"][0] != 0 and lane["sid"] == lane["pid"]  # nobody, its own session
    assert sorted(lane["fds"]) == sorted(py["fds"]) == ["0", "1", "2", "3"]


def test_sigterm_with_lane_instances_running(loop_kind):
    """Shutdown stops the lane's instances like any other (SIGTERM, reaped, exit 0)."""
    port = free_port()
    units = hold_units(port)
    with Activator(units, loop=loop_kind) as a:
        held = [_connect(port) for _ in range(3)]
        assert _wait_status(a, "h.socket", lambda st: st["NConnections"] == 3)["NConnections"] == 3
        assert a.stop() == 0
        assert a.count("exit", signal="SIGTERM") == 3
        for c in held:
            c.close()


def test_instances_of_a_replanned_lane_finish_in_the_books(loop_kind):
    """A reload replans the lane while its instances run: they finish, counted and reaped."""
    port = free_port()
    units = hold_units(port)
    with Activator(units, loop=loop_kind) as a:
        held = [_connect(port) for _ in range(2)]
        assert _wait_status(a, "h.socket", lambda st: st["NConnections"] == 2)["NConnections"] == 2
        (a.unit_dir / "h@.service").write_text(HOLD.replace("echo done", "echo new"))
        a.ctl("reload", check=True)
        c = _connect(port)  # the new plan
        c.sendall(b"x\n")
        assert read_all(c) == b"new\n"
        c.close()
        for h in held:  # the old plan's instances, still running
            h.sendall(b"x\n")
            assert read_all(h) == b"done\n"
            h.close()
        st = _wait_status(a, "h.socket", lambda st: st["NConnections"] == 0)
        assert st["NConnections"] == 0 and st["NAccepted"] == 3 and st["instances"] == []
        assert a.count("exit", status=0) == 3


def test_a_unit_that_cannot_be_planned_says_why_per_connection(loop_kind):
    """An unknown User=: the lane is not made (status says why); every connection is
    refused by the event loop's path with the user named; the daemon carries on."""
    port = free_port()
    units = {
        "n.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n",
        "n@.service": "[Service]\nExecStart=/bin/echo hi\nUser=no-such-user-xyz\n"
        "StandardInput=socket\n",
    }
    with Activator(units, loop=loop_kind) as a:
        for _ in range(2):
            assert read_line(("127.0.0.1", port)) == b""

        def said() -> list[str]:
            return [
                e["unit"]
                for e in a.events
                if e.get("event") == "failed" and "no-such-user-xyz" in e.get("reason", "")
            ]

        a.until(lambda: len(said()) >= 2, what="both failures said")
        assert len(said()) == 2 and all(u.startswith("n@") for u in said())
        assert a.count("start") == 0
        st = _wait_status(a, "n.socket", lambda st: st["NConnections"] == 0)
        assert st["state"] == "listening" and "no-such-user-xyz" in st["accept_path"]
        assert st["NAccepted"] == 2

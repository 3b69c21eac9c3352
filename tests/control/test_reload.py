"""Reloading unit files (activatorctl reload, SIGHUP) without dropping anything.

New units start, removed ones stop, changed services restart, only sockets whose
listen settings changed are rebound; invalid files change nothing.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

import pytest
from ctlhelp import echo_once, echo_units, probe_service, sync_log
from harness import Activator, free_port, read_report

pytestmark = pytest.mark.root


def _sock(port: int, extra: str = "") -> str:
    return f"[Socket]\nListenStream=127.0.0.1:{port}\n{extra}"


def _write(a: Activator, name: str, text: str | None) -> None:
    path = a.unit_dir / name
    if text is None:
        path.unlink()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _reload(a: Activator, check: bool = True) -> dict:
    """activatorctl --json reload; the log is read up to the reload's own line, so
    a.count() sees every event the reload caused."""
    a.drain()
    start = len(a.events)
    r = a.ctl("--json", "reload")
    if check:
        assert r.returncode == 0, r.stderr
    a.wait_for("daemon-reload", start=start, applied=r.returncode == 0)
    return {"rc": r.returncode, "stderr": r.stderr, **json.loads(r.stdout)}


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_reload_adds_removes_changes(probe, loop_kind):
    kp, gp, np_, ep = free_port(), free_port(), free_port(), free_port()
    units = {
        "keep.socket": _sock(kp),
        "keep.service": probe_service(probe),
        "gone.socket": _sock(gp),
        "gone.service": probe_service(probe),
        "cosm.service": "[Unit]\nDescription=before\n[Service]\nExecStart=/bin/sleep 1000\nUser=nobody\n",
        **echo_units(ep),
    }
    with Activator(units, loop=loop_kind) as a:
        old = read_report(("127.0.0.1", kp))
        gone_pid = read_report(("127.0.0.1", gp))["pid"]
        a.ctl("start", "cosm.service", check=True)
        cosm_pid = a.status("cosm.service")["main_pid"]
        assert echo_once(ep) == b"ping\n"

        _write(a, "gone.socket", None)
        _write(a, "gone.service", None)
        _write(a, "new.socket", _sock(np_))
        _write(a, "new.service", probe_service(probe))
        _write(a, "keep.service", probe_service(probe, "Environment=GEN=2\n"))
        _write(
            a,
            "echo.socket",
            units["echo.socket"].replace("MaxConnections=256", "MaxConnections=100"),
        )
        _write(a, "cosm.service", units["cosm.service"].replace("before", "after"))
        r = _reload(a)
        assert r["applied"] is True and r["problems"] == [] and r["failed"] == []
        assert sorted(r["added"]) == ["new.service", "new.socket"]
        assert sorted(r["removed"]) == ["gone.service", "gone.socket"]
        assert sorted(r["changed"]) == ["cosm.service", "echo.socket", "keep.service"]
        assert r["rebound"] == [] and r["restarted"] == ["keep.service"]

        # removed: stopped, listener closed, unknown now
        a.wait_for("exit", pid=gone_pid)
        assert _refused(gp)
        assert a.ctl("status", "gone.socket").returncode == 4
        # added: listening, started by traffic
        assert read_report(("127.0.0.1", np_))["env"]["LISTEN_FDS"] == "1"
        # changed and active: restarted with the new definition, on the same listener
        a.wait_for("exit", pid=old["pid"])
        new = read_report(("127.0.0.1", kp))
        assert new["pid"] != old["pid"] and new["env"]["GEN"] == "2"
        assert a.count("listen", unit="keep.socket") == 1
        # a description alone restarts nothing
        st = a.status("cosm.service")
        assert st["main_pid"] == cosm_pid and st["description"] == "after"
        # a runtime setting of a socket: applied in place, counters carried on
        echo = a.status("echo.socket")
        assert echo["max_connections"] == 100 and echo["NAccepted"] == 1
        assert echo_once(ep) == b"ping\n"
        assert a.count("listen", unit="echo.socket") == 1
        sync_log(a)
        assert a.count("traceback") == 0


def test_reload_rebinds_changed_listeners(probe, loop_kind):
    """A new address: rebound; the Accept=no service holding the old fd restarts;
    connections an Accept=yes socket already accepted keep their instances."""
    p1, p2, e1, e2 = free_port(), free_port(), free_port(), free_port()
    units = {
        "web.socket": _sock(p1, "FileDescriptorName=http\n"),
        "web.service": probe_service(probe),
        **echo_units(e1),
    }
    with Activator(units, loop=loop_kind) as a:
        old = read_report(("127.0.0.1", p1))
        held = socket.create_connection(("127.0.0.1", e1), timeout=10)
        held.sendall(b"1\n")
        assert held.recv(10) == b"1\n"

        _write(a, "web.socket", _sock(p2, "FileDescriptorName=http\n"))
        _write(a, "echo.socket", units["echo.socket"].replace(str(e1), str(e2)))
        r = _reload(a)
        assert sorted(r["rebound"]) == ["echo.socket", "web.socket"]
        assert r["restarted"] == ["web.service"]
        assert _refused(p1) and _refused(e1)
        new = read_report(("127.0.0.1", p2))
        assert new["pid"] != old["pid"] and new["env"]["LISTEN_FDNAMES"] == "http"
        assert new["fds"]["3"]["listening"] and len([k for k in new["fds"] if int(k) >= 3]) == 1
        assert echo_once(e2) == b"ping\n"
        held.sendall(b"2\n")  # the connection accepted before the reload still has its cat
        assert held.recv(10) == b"2\n"
        held.close()
        assert a.status("echo.socket")["NAccepted"] == 2


def test_reload_restarts_service_whose_fds_change(probe, loop_kind):
    """Removing one of a service's two sockets, or renaming its fd, restarts it: it holds
    the old set."""
    p1, p2 = free_port(), free_port()
    units = {
        "a.socket": _sock(p1, "Service=svc.service\n"),
        "b.socket": _sock(p2, "Service=svc.service\n"),
        "svc.service": probe_service(probe),
    }
    with Activator(units, loop=loop_kind) as a:
        first = read_report(("127.0.0.1", p1))
        assert first["env"]["LISTEN_FDS"] == "2"
        _write(a, "b.socket", None)
        r = _reload(a)
        assert r["removed"] == ["b.socket"] and r["restarted"] == ["svc.service"]
        second = read_report(("127.0.0.1", p1))
        assert second["pid"] != first["pid"] and second["env"]["LISTEN_FDS"] == "1"
        _write(a, "a.socket", _sock(p1, "Service=svc.service\nFileDescriptorName=renamed\n"))
        r = _reload(a)
        assert (
            r["changed"] == ["a.socket"]
            and r["rebound"] == []
            and r["restarted"] == ["svc.service"]
        )
        third = read_report(("127.0.0.1", p1))
        assert third["env"]["LISTEN_FDNAMES"] == "renamed"
        assert a.count("listen", unit="a.socket") == 1


def test_reload_with_errors_changes_nothing(probe, loop_kind):
    port, bad_port, new_port = free_port(), free_port(), free_port()
    units = {
        "web.socket": _sock(port),
        "web.service": "[Unit]\nDescription=one\n" + probe_service(probe),
    }
    with Activator(units, loop=loop_kind) as a:
        pid = read_report(("127.0.0.1", port))["pid"]
        _write(a, "web.service", "[Unit]\nDescription=two\n" + probe_service(probe))
        _write(a, "new.socket", _sock(new_port))
        _write(a, "new.service", probe_service(probe))
        _write(
            a, "bad.socket", f"[Socket]\nListenStream=127.0.0.1:{bad_port}\nMaxConnections=lots\n"
        )
        _write(a, "bad.service", "[Service]\nExecStart=/bin/true\n")
        r = a.ctl("reload")
        assert r.returncode == 1
        assert "nothing was changed" in r.stderr
        assert f"{a.unit_dir}/bad.socket:3: MaxConnections=" in r.stderr
        r = _reload(a, check=False)
        assert r["rc"] == 1 and r["error"] == "refused"
        # everything as it was: same process, same description, nothing added
        st = a.status("web.service")
        assert st["main_pid"] == pid and st["description"] == "one"
        assert a.ctl("status", "new.socket").returncode == 4
        assert _refused(new_port)
        assert read_report(("127.0.0.1", port))["pid"] == pid
        # fixed: the reload goes through
        _write(a, "bad.socket", None)
        _write(a, "bad.service", None)
        r = _reload(a)
        assert sorted(r["added"]) == ["new.service", "new.socket"]
        assert a.status("web.service")["description"] == "two"


def test_sighup_reloads(probe, loop_kind):
    port = free_port()
    with Activator({"x.service": "[Service]\nExecStart=/bin/true\n"}, loop=loop_kind) as a:
        _write(a, "y.socket", _sock(port))
        _write(a, "y.service", probe_service(probe, mode="once"))
        os.kill(a.pid, signal.SIGHUP)
        e = a.wait_for("daemon-reload")
        assert e["applied"] is True and e["added"] == 2
        assert read_report(("127.0.0.1", port))["env"]["LISTEN_FDS"] == "1"
        # a SIGHUP that meets a broken file is refused the same way
        _write(a, "z.socket", "[Socket]\nListenStream=nonsense\n")
        os.kill(a.pid, signal.SIGHUP)
        e = a.wait_for("daemon-reload", applied=False)
        assert e["errors"] == 1
        assert a.ctl("status", "y.socket").returncode == 0


def test_reload_during_connection_stream_refuses_nothing(probe, loop_kind):
    """Issue #5: a client making connections in a loop against an Accept=yes echo while
    the units are reloaded three times (a changed service, an added unit): no failure."""
    ep, wp = free_port(), free_port()
    units = {**echo_units(ep), "web.socket": _sock(wp), "web.service": probe_service(probe)}
    with Activator(units, loop=loop_kind) as a:
        stop = threading.Event()
        started = threading.Event()
        done: list[int] = []
        failures: list[str] = []

        def stream() -> None:
            deadline = time.monotonic() + 90
            n = 0
            while not stop.is_set() and n < 20000 and time.monotonic() < deadline:
                payload = b"%d\n" % n
                try:
                    got = echo_once(ep, payload)
                    if got != payload:
                        failures.append(f"{n}: got {got!r}")
                except OSError as e:
                    failures.append(f"{n}: {e!r}")
                n += 1
                done.append(n)
                if n == 20:
                    started.set()
            started.set()

        t = threading.Thread(target=stream)
        t.start()
        try:
            assert started.wait(60)
            first_web = read_report(("127.0.0.1", wp))["pid"]
            marks = []
            for gen in range(1, 4):
                before = len(done)
                _write(a, "web.service", probe_service(probe, f"Environment=GEN={gen}\n"))
                _write(a, "echo@.service", units["echo@.service"] + f"Environment=GEN={gen}\n")
                _write(a, f"extra{gen}.socket", _sock(free_port()))
                _write(a, f"extra{gen}.service", probe_service(probe))
                r = _reload(a)
                assert r["restarted"] == ["web.service"] and r["rebound"] == []
                assert sorted(r["changed"]) == ["echo@.service", "web.service"]
                assert sorted(r["added"]) == [f"extra{gen}.service", f"extra{gen}.socket"]
                marks.append((before, len(done)))
                assert t.is_alive(), "the stream ended before the reloads did"
            stop.set()
            t.join(60)
        finally:
            stop.set()
            t.join(60)
        assert failures == [], failures[:5]
        print(f"{len(done)} connections, during the reloads: {marks}")
        assert len(done) >= 40
        # connections were made while each reload ran, not only between them
        assert all(after > before for before, after in marks), marks
        assert read_report(("127.0.0.1", wp))["env"]["GEN"] == "3"
        assert read_report(("127.0.0.1", wp))["pid"] != first_web
        assert a.count("listen", unit="echo.socket") == 1  # one bind, at start-up
        assert a.status("echo.socket")["NAccepted"] == len(done)


def test_reload_reports_a_unit_that_cannot_start(probe, loop_kind):
    """The files are fine but a new socket cannot bind: the rest is applied, the failure told."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port, tport = free_port(), taken.getsockname()[1]
    try:
        with Activator({"x.service": "[Service]\nExecStart=/bin/true\n"}, loop=loop_kind) as a:
            _write(a, "t.socket", _sock(tport))
            _write(a, "t.service", probe_service(probe))
            _write(a, "ok.socket", _sock(port))
            _write(a, "ok.service", probe_service(probe))
            r = a.ctl("reload")
            assert r.returncode == 1
            assert "reloaded, but some units failed" in r.stderr
            assert f"t.socket: unable to bind 127.0.0.1:{tport}" in r.stderr
            assert read_report(("127.0.0.1", port))["env"]["LISTEN_FDS"] == "1"
            assert a.status("t.socket")["state"] == "failed"
    finally:
        taken.close()


def test_reload_keeps_an_operators_stop(probe, loop_kind):
    """A socket stopped by hand stays stopped through a reload that changes its address."""
    p1, p2 = free_port(), free_port()
    with Activator({"s.socket": _sock(p1), "s.service": probe_service(probe)}, loop=loop_kind) as a:
        a.ctl("stop", "s.socket", check=True)
        _write(a, "s.socket", _sock(p2))
        r = _reload(a)
        assert r["rebound"] == ["s.socket"]
        assert a.status("s.socket")["state"] == "inactive"
        assert _refused(p1) and _refused(p2)
        a.ctl("start", "s.socket", check=True)
        assert read_report(("127.0.0.1", p2))["env"]["LISTEN_FDS"] == "1"


def test_reload_dry_run_changes_nothing(probe, loop_kind):
    """--dry-run says what a reload would do (user-demands D3) and does none of it."""
    p1, p2 = free_port(), free_port()
    units = {"a.socket": _sock(p1), "a.service": probe_service(probe)}
    with Activator(units, loop=loop_kind) as a:
        pid = read_report(("127.0.0.1", p1))["pid"]
        _write(a, "a.service", probe_service(probe, "Environment=X=1\n"))
        _write(a, "b.socket", _sock(p2))
        _write(a, "b.service", probe_service(probe))
        r = a.ctl("--json", "reload", "--dry-run")
        assert r.returncode == 0, r.stderr
        plan = json.loads(r.stdout)
        assert plan["dry_run"] is True and plan["applied"] is False
        assert sorted(plan["added"]) == ["b.service", "b.socket"]
        assert plan["changed"] == ["a.service"] and plan["restarted"] == ["a.service"]
        text = a.ctl("reload", "--dry-run").stdout
        assert text.startswith(
            "would reload: 2 added, 0 removed, 1 changed, 0 rebound, 1 restarted\n"
        )
        assert "  restarted: a.service\n" in text
        assert a.ctl("status", "b.socket").returncode == 4 and _refused(p2)
        assert a.status("a.service")["main_pid"] == pid
        assert a.ctl("reload", "--dry-run", "a.service").returncode == 2
        _write(a, "c.socket", "[Socket]\nListenStream=nowhere\n")
        r = a.ctl("reload", "--dry-run")
        assert r.returncode == 1 and "c.socket" in r.stderr
        # the real thing does what the dry run said
        _write(a, "c.socket", None)
        r = _reload(a)
        assert sorted(r["added"]) == ["b.service", "b.socket"] and r["restarted"] == ["a.service"]

"""Every verb of activatorctl end to end against a running activator, under both loops.

Each test drives the real command (python -m activator.ctl) and checks both what
it prints or exits with and what happened to the sockets and processes.
"""

from __future__ import annotations

import errno
import json
import os
import socket

import pytest
from ctlhelp import echo_once, echo_units, probe_service, refused, sync_log
from harness import Activator, event_time, free_port, read_report

pytestmark = pytest.mark.root


def _json(r):
    assert r.stdout, r.stderr
    return json.loads(r.stdout)


def _web(probe, port, extra_service=""):
    return {
        "web.socket": f"[Unit]\nDescription=Web socket\n[Socket]\nListenStream=127.0.0.1:{port}\n"
        "FileDescriptorName=http\n",
        "web.service": "[Unit]\nDescription=Web\n" + probe_service(probe, extra_service),
    }


def test_status_exit_codes_and_fields(probe, loop_kind):
    """0 active, 3 inactive/failed, 4 unknown; the socket's and the service's fields."""
    port, eport = free_port(), free_port()
    units = {
        **_web(probe, port),
        **echo_units(eport),
        "broken.service": "[Service]\nExecStart=/nonexistent/program\n",
    }
    with Activator(units, loop=loop_kind) as a:
        assert a.ctl("status", "web.socket").returncode == 0
        assert a.ctl("status", "web.service").returncode == 3  # lazily started: not yet
        assert a.ctl("status", "web").returncode == 3  # a bare name is a service
        r = a.ctl("status", "nope.socket")
        assert r.returncode == 4 and "nope.socket could not be found" in r.stderr
        assert a.ctl("status", "web.socket", "nope.service").returncode == 4
        assert a.ctl("status").returncode == 0  # no units: "activator answers"

        rep = read_report(("127.0.0.1", port))
        assert a.ctl("status", "web.socket", "web.service").returncode == 0
        svc, sock = (_json(a.ctl("--json", "status", u))[0] for u in ("web.service", "web.socket"))
        assert (svc["active"], svc["sub"], svc["state"]) == ("active", "running", "active")
        assert svc["main_pid"] == rep["pid"] and svc["command"] == "python3"
        assert svc["memory"] > 1 << 20 and svc["since"] > event_time(a.ready) - 1
        assert svc["triggered_by"] == ["web.socket"] and svc["restarts"] == 0
        assert any("event=start" in e["text"] and str(rep["pid"]) in e["text"] for e in svc["log"])
        assert (sock["active"], sock["sub"]) == ("active", "running")  # the service holds the fds
        assert sock["listen"] == [
            {"address": f"127.0.0.1:{port}", "type": "Stream", "fdname": "http", "listening": True}
        ]
        assert sock["triggers"] == "web.service" and sock["triggers_active"] == "active"

        # an Accept=yes socket: counters, and its instances with their peers
        held = socket.create_connection(("127.0.0.1", eport), timeout=10)
        held.sendall(b"x\n")
        assert held.recv(10) == b"x\n"  # the instance runs
        echo = _json(a.ctl("--json", "status", "echo.socket"))[0]
        assert echo["NAccepted"] == 1 and echo["NConnections"] == 1 and echo["NRefused"] == 0
        assert echo["refused"] == {
            "limit": 0, "per_source": 0, "trigger_limit": 0, "ip_deny": 0, "rate": 0, "rate_total": 0
        }  # fmt: skip
        (inst,) = echo["instances"]
        assert inst["peer"] == f"127.0.0.1:{held.getsockname()[1]}" and inst["pid"] > 0
        assert a.ctl("status", inst["unit"]).returncode == 0
        text = a.ctl("status", "echo.socket").stdout
        assert "   Accepted: 1; Connected: 1; Refused: 0 (MaxConnections= 0, " in text
        assert "  Instances: 1 (max 256)\n" in text
        assert f"(pid {inst['pid']}) from 127.0.0.1:{held.getsockname()[1]}\n" in text
        held.close()

        # a failed service: the reason and the exit
        r = a.ctl("start", "broken.service")
        assert r.returncode == 1 and "broken.service failed to start" in r.stderr
        b = _json(a.ctl("--json", "status", "broken.service"))[0]
        assert b["active"] == "failed" and b["result"] in ("exit-code", "resources")
        assert a.ctl("status", "broken").returncode == 3
        assert "Active: failed (Result: " in a.ctl("status", "broken").stdout


def test_status_human_output(probe, loop_kind):
    """systemctl's layout: ● unit - description, Loaded:, Active:, Listen:, Main PID: …"""
    port = free_port()
    with Activator(_web(probe, port), loop=loop_kind) as a:
        rep = read_report(("127.0.0.1", port))
        out = a.ctl("status", "web.socket", "web.service").stdout
        sock, svc = out.split("\n\n● ", 1) if "\n\n● " in out else (out, "")
        assert sock.startswith("● web.socket - Web socket\n")
        assert f"     Loaded: loaded ({a.unit_dir}/web.socket; static)\n" in sock  # no [Install]
        assert "     Active: active (running) since " in sock and " ago\n" in sock
        assert "   Triggers: ● web.service\n" in sock
        assert f"     Listen: 127.0.0.1:{port} (Stream) as http\n" in sock
        assert "Accepted:" not in sock  # Accept=no: activator accepts nothing itself
        assert "web.service - Web\n" in svc
        assert "TriggeredBy: ● web.socket\n" in svc
        assert f"   Main PID: {rep['pid']} (python3)\n" in svc
        assert "     Memory: " in svc and "Traceback" not in out


def test_start_stop_socket(probe, loop_kind):
    """Starting a socket binds it; stopping it closes the listener and stops its instances."""
    port = free_port()
    with Activator(echo_units(port), loop=loop_kind) as a:
        held = socket.create_connection(("127.0.0.1", port), timeout=10)
        held.sendall(b"a\n")
        assert held.recv(10) == b"a\n"
        inst = a.wait_for("start")["pid"]
        assert a.ctl("stop", "echo.socket").returncode == 0
        assert refused(port)
        held.settimeout(10)
        assert held.recv(10) == b""  # its instance was stopped too
        held.close()
        a.wait_for("exit", pid=inst)
        st = a.status("echo.socket")
        assert st["state"] == "inactive" and st["instances"] == []
        assert a.ctl("status", "echo.socket").returncode == 3
        assert a.ctl("start", "echo.socket").returncode == 0
        assert echo_once(port) == b"ping\n"
        assert a.ctl("start", "echo.socket").returncode == 0  # already listening: nothing to do
        assert a.status("echo.socket")["state"] == "listening"


def test_start_service_without_traffic(probe, loop_kind):
    """systemd: the service gets its sockets and the socket goes to running."""
    port = free_port()
    with Activator(_web(probe, port), loop=loop_kind) as a:
        r = a.ctl("--json", "start", "web.service")
        assert r.returncode == 0, r.stderr
        assert _json(r)[0]["active"] == "active"
        pid = a.status("web.service")["main_pid"]
        assert a.status("web.socket")["state"] == "running"
        rep = read_report(("127.0.0.1", port))
        assert rep["pid"] == pid
        assert rep["env"]["LISTEN_FDS"] == "1" and rep["env"]["LISTEN_FDNAMES"] == "http"
        # stopping the service gives the socket back to activator
        assert a.ctl("stop", "web").returncode == 0
        a.wait_for("exit", pid=pid)
        assert a.status("web.socket")["state"] == "listening"
        assert read_report(("127.0.0.1", port))["pid"] != pid  # traffic starts it again


def test_start_socket_while_service_active_isrefused(probe, loop_kind):
    """systemd's socket_start(): "socket service … already active, refusing"."""
    port = free_port()
    with Activator(_web(probe, port), loop=loop_kind) as a:
        a.ctl("start", "web.service", check=True)
        a.ctl("stop", "web.socket", check=True)
        assert a.status("web.service")["active"] == "active"  # it keeps its fds
        r = a.ctl("start", "web.socket")
        assert r.returncode == 1
        assert "socket service web.service already active, refusing" in r.stderr
        assert _json(a.ctl("--json", "start", "web.socket"))["error"] == "already-active"
        assert a.status("web.socket")["state"] == "inactive"
        a.ctl("stop", "web.service", check=True)
        a.ctl("start", "web.socket", check=True)
        assert a.status("web.socket")["state"] == "listening"


def test_restart(probe, loop_kind):
    port, eport = free_port(), free_port()
    with Activator({**_web(probe, port), **echo_units(eport)}, loop=loop_kind) as a:
        a.ctl("start", "web.service", check=True)
        pid = a.status("web.service")["main_pid"]
        a.ctl("restart", "web.service", check=True)
        new = a.status("web.service")
        assert new["active"] == "active" and new["main_pid"] not in (None, pid)
        assert read_report(("127.0.0.1", port))["pid"] == new["main_pid"]
        # an inactive service: restart starts it
        a.ctl("stop", "web.service", check=True)
        a.ctl("restart", "web.service", check=True)
        assert a.status("web.service")["active"] == "active"
        # a socket: closed and bound again
        first = a.wait_for("listen", unit="echo.socket")
        a.ctl("restart", "echo.socket", check=True)
        a.wait_for("listen", unit="echo.socket", start=a.events.index(first) + 1)
        assert echo_once(eport) == b"ping\n"
        assert a.ctl("restart", "nope.socket").returncode == 4


def test_reload_service(probe, loop_kind, tmp_path):
    """reload UNIT: ExecReload= when there is one, else a restart; inactive units refuse."""
    port, port2 = free_port(), free_port()
    units = {
        **_web(probe, port, "ExecReload=/bin/true\n"),
        "plain.socket": f"[Socket]\nListenStream=127.0.0.1:{port2}\n",
        "plain.service": probe_service(probe),
    }
    with Activator(units, loop=loop_kind) as a:
        r = a.ctl("reload", "web.service")
        assert r.returncode == 1 and "not active" in r.stderr
        assert _json(a.ctl("--json", "reload", "web.service"))["error"] == "not-active"
        r = a.ctl("--json", "reload", "web.socket")
        assert r.returncode == 1 and _json(r)["error"] == "refused"

        a.ctl("start", "web.service", "plain.service", check=True)
        pid, plain = a.status("web.service")["main_pid"], a.status("plain.service")["main_pid"]
        a.drain()
        start = len(a.events)
        a.ctl("reload", "web.service", check=True)
        a.wait_for("start", unit="web.service", command="/bin/true", start=start)
        a.wait_for("reloaded", unit="web.service", start=start)
        assert a.status("web.service")["main_pid"] == pid  # reloaded, not restarted
        a.ctl("reload", "plain.service", check=True)  # no ExecReload=: a restart
        assert a.status("plain.service")["main_pid"] not in (None, plain)


def test_list_units_and_sockets(probe, loop_kind):
    port, eport = free_port(), free_port()
    with Activator({**_web(probe, port), **echo_units(eport)}, loop=loop_kind) as a:
        units = {u["unit"]: u for u in _json(a.ctl("--json", "list-units", "--all"))}
        # (and the targets of the boot: sockets.target, multi-user.target …, issue 11)
        ours = {n for n, u in units.items() if u["kind"] in ("socket", "service")}
        assert ours == {"web.socket", "web.service", "echo.socket"}
        assert {u["kind"] for u in units.values()} == {"socket", "service", "target"}
        assert (
            units["web.socket"]["sub"] == "listening"
            and units["web.service"]["active"] == "inactive"
        )
        text = a.ctl("list-units", "--all").stdout
        assert text.splitlines()[0].split() == ["UNIT", "LOAD", "ACTIVE", "SUB", "DESCRIPTION"]
        assert f"{len(units)} loaded units listed." in text
        socks = _json(a.ctl("--json", "list-sockets"))
        assert {(s["listen"], s["unit"], s["activates"]) for s in socks} == {
            (f"127.0.0.1:{port}", "web.socket", "web.service"),
            (f"127.0.0.1:{eport}", "echo.socket", "echo@.service"),
        }
        assert "2 sockets listed." in a.ctl("list-sockets").stdout


def test_cat_and_show(probe, loop_kind):
    port = free_port()
    units = {**_web(probe, port), "web.service.d/override.conf": "[Service]\nEnvironment=X=1\n"}
    with Activator(units, loop=loop_kind) as a:
        r = a.ctl("cat", "web.service")
        assert r.returncode == 0
        assert f"# {a.unit_dir}/web.service\n[Unit]\nDescription=Web\n" in r.stdout
        assert (
            f"# {a.unit_dir}/web.service.d/override.conf\n[Service]\nEnvironment=X=1\n" in r.stdout
        )
        assert a.ctl("cat", "nope").returncode == 4
        props = dict(line.split("=", 1) for line in a.ctl("show", "web.socket").stdout.splitlines())
        assert props["Id"] == "web.socket" and props["ActiveState"] == "active"
        assert props["SubState"] == "listening" and props["Triggers"] == "web.service"
        assert props["Listen"] == f"127.0.0.1:{port} (Stream)" and props["SocketMode"] == "0666"
        assert props["Accept"] == "no" and props["FileDescriptorName"] == "http"
        a.ctl("start", "web.service", check=True)
        r = a.ctl("show", "web.service", "-p", "MainPID,ActiveState", "-p", "Environment")
        assert r.stdout == (
            f"MainPID={a.status('web.service')['main_pid']}\nActiveState=active\nEnvironment=X=1\n"
        )
        assert a.ctl("show", "web", "-p", "SubState", "--value").stdout == "running\n"
        show = _json(a.ctl("--json", "show", "web.service"))[0]
        assert show["ExecStart"].startswith("{ path=/usr/bin/python3 ; argv[]=/usr/bin/python3 ")
        assert show["TimeoutStopSec"] == "1min 30s" and show["KillSignal"] == "15"
        assert a.ctl("show", "nope.service").returncode == 4


def test_kill(probe, loop_kind):
    port = free_port()
    with Activator(_web(probe, port), loop=loop_kind) as a:
        r = a.ctl("kill", "web.service")
        assert r.returncode == 1 and "no process" in r.stderr
        assert a.ctl("kill", "web.socket").returncode == 1
        assert a.ctl("kill", "nope.service").returncode == 4
        a.ctl("start", "web.service", check=True)
        pid = a.status("web.service")["main_pid"]
        r = a.ctl("kill", "--signal", "bogus", "web.service")
        assert r.returncode == 1 and "unknown signal" in r.stderr
        r = a.ctl("--json", "kill", "-s", "hup", "web.service")
        assert r.returncode == 0 and _json(r) == [
            {"unit": "web.service", "pid": pid, "signal": "SIGHUP"}
        ]
        a.wait_for("exit", unit="web.service", pid=pid, signal="SIGHUP")
        a.ctl("start", "web.service", check=True)
        pid = a.status("web.service")["main_pid"]
        a.ctl("kill", "-s", "9", "web", check=True)
        a.wait_for("exit", unit="web.service", pid=pid, signal="SIGKILL")
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_reset_failed(probe, loop_kind):
    units = {
        "bad.service": "[Service]\nExecStart=/bin/false\nType=oneshot\n",
        "ok.service": "[Service]\nExecStart=/bin/true\nType=oneshot\nRemainAfterExit=yes\n",
    }
    with Activator(units, loop=loop_kind) as a:
        r = a.ctl("start", "bad.service")
        assert r.returncode == 1 and "(result: exit-code)" in r.stderr
        assert a.status("bad.service")["active"] == "failed"
        a.ctl("start", "ok.service", check=True)
        assert a.status("ok.service")["sub"] == "exited"
        assert _json(a.ctl("--json", "reset-failed", "bad.service")) == ["bad.service"]
        st = a.status("bad.service")
        assert (st["active"], st["result"]) == ("inactive", "success")
        assert a.ctl("status", "bad").returncode == 3
        a.ctl("start", "bad.service")
        assert _json(a.ctl("--json", "reset-failed")) == ["bad.service"]  # all units
        assert a.status("ok.service")["active"] == "active"  # untouched
        assert a.ctl("reset-failed", "nope").returncode == 4


def test_start_limit_needs_reset_failed(probe, loop_kind):
    """systemd: a unit over its start limit stays down for `start` until reset-failed."""
    units = {
        "flap.service": "[Unit]\nStartLimitBurst=2\nStartLimitIntervalSec=1h\n"
        "[Service]\nExecStart=/bin/false\nType=oneshot\n"
    }
    with Activator(units, loop=loop_kind) as a:
        for _ in range(2):
            assert a.ctl("start", "flap").returncode == 1
        r = a.ctl("start", "flap")
        assert r.returncode == 1 and "start-limit-hit" in r.stderr
        assert a.status("flap.service")["result"] == "start-limit-hit"
        a.ctl("reset-failed", "flap", check=True)
        r = a.ctl("start", "flap")
        assert "(result: exit-code)" in r.stderr  # it ran again


def test_refuse_manual_and_templates(probe, loop_kind):
    port = free_port()
    units = {
        **echo_units(port),
        "locked.service": "[Unit]\nRefuseManualStart=yes\nRefuseManualStop=yes\n"
        "[Service]\nExecStart=/bin/true\n",
    }
    with Activator(units, loop=loop_kind) as a:
        r = a.ctl("--json", "start", "locked.service")
        assert r.returncode == 1 and _json(r)["error"] == "refused"
        assert "RefuseManualStart=yes" in a.ctl("start", "locked").stderr
        assert a.ctl("stop", "locked").returncode == 1
        r = a.ctl("start", "echo@.service")
        assert r.returncode == 1 and "template" in r.stderr


def test_no_block_and_errors_never_show_tracebacks(probe, loop_kind):
    port = free_port()
    with Activator(_web(probe, port), loop=loop_kind) as a:
        r = a.ctl("start", "--no-block", "web.service")
        assert r.returncode == 0
        a.wait_for("start", unit="web.service")
        for args in (
            ("start", "nope"),
            ("stop", "nope.socket"),
            ("kill", "web.socket"),
            ("reload", "web.socket"),
            ("show", "x.y"),
        ):
            r = a.ctl(*args)
            assert r.returncode in (1, 4) and "Traceback" not in r.stderr + r.stdout
        sync_log(a)
        assert a.count("traceback") == 0


def test_stop_refuses_nothing_else(probe, loop_kind):
    """Stopping one unit does not disturb another's listener."""
    p1, p2 = free_port(), free_port()
    with Activator({**echo_units(p1), **echo_units(p2, name="other")}, loop=loop_kind) as a:
        a.ctl("stop", "echo.socket", check=True)
        assert echo_once(p2) == b"ping\n"
        with pytest.raises(OSError) as e:
            echo_once(p1)
        assert e.value.errno == errno.ECONNREFUSED


def test_status_of_unit_that_failed_to_load(loop_kind):
    units = {
        "ok.service": "[Service]\nExecStart=/bin/true\n",
        "bad.socket": "[Socket]\nListenStream=127.0.0.1:99999\n",
        "bad.service": "[Service]\nExecStart=/bin/true\n",
    }
    with Activator(units, loop=loop_kind) as a:
        r = a.ctl("status", "bad.socket")
        assert r.returncode == 3
        assert "Loaded: error" in r.stdout and "bad.socket:2: ListenStream=" in r.stdout
        (st,) = _json(a.ctl("--json", "status", "bad.socket"))
        assert st["load"] == "error" and st["problems"]
        assert a.ctl("start", "bad.socket").returncode == 4

"""The exec contract end to end: what a service process gets, set up as systemd sets it up."""

from __future__ import annotations

import json
import socket

import pytest
from harness import (
    SYSTEM_PYTHON,
    Activator,
    free_port,
    public_dir,
    read_line,
    read_report,
)

pytestmark = pytest.mark.root


def test_exec_settings_reach_the_child(probe, loop_kind):
    """UMask=, WorkingDirectory=, LimitNOFILE=, Environment=, SupplementaryGroups=, $VAR expansion."""
    port = free_port()
    work = public_dir()
    units = {
        "c.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
        "c.service": (
            f"[Service]\nExecStart={SYSTEM_PYTHON} {probe} once $WORDS ${{ONE}}\n"
            "User=nobody\nGroup=nogroup\nSupplementaryGroups=daemon\n"
            f"UMask=0077\nWorkingDirectory={work}\nLimitNOFILE=123:456\n"
            'Environment="WORDS=a b" "ONE=1 2"\n'
        ),
    }
    with Activator(units, loop=loop_kind):
        rep = read_report(("127.0.0.1", port))
    assert rep["argv"][1:] == ["once", "a", "b", "1 2"]
    assert rep["umask"] == 0o077 and rep["cwd"] == str(work)
    daemon_gid = __import__("grp").getgrnam("daemon").gr_gid
    assert rep["groups"] == sorted({65534, daemon_gid})
    assert rep["env"]["WORDS"] == "a b"
    assert rep["sid"] == rep["pid"]  # the service leads its own session


def test_limits_and_stdout_file(probe, loop_kind):
    port = free_port()
    out = public_dir() / "out.log"
    units = {
        "o.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n",
        "o@.service": (
            f"[Service]\nExecStart=/bin/sh -c 'ulimit -n; echo to-file'\nUser=nobody\n"
            f"LimitNOFILE=77\nStandardInput=socket\nStandardOutput=append:{out}\n"
            "StandardError=inherit\n"
        ),
    }
    with Activator(units, loop=loop_kind) as a:
        assert read_line(("127.0.0.1", port)) == b""
        a.wait_for("exit")
    assert out.read_text() == "77\nto-file\n"


def test_control_commands_run_in_order(probe, loop_kind):
    """ExecStartPre= (with '-'), ExecStartPost=, ExecStopPost= with SERVICE_RESULT; no fds for them."""
    port = free_port()
    log = public_dir() / "order.log"
    log.touch()
    log.chmod(0o666)
    units = {
        "o.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
        "o.service": (
            "[Service]\n"
            f"ExecStartPre=/bin/sh -c 'echo pre $LISTEN_FDS >> {log}'\n"
            "ExecStartPre=-/bin/false\n"
            f"ExecStart={SYSTEM_PYTHON} {probe}\n"
            f"ExecStartPost=/bin/sh -c 'echo post >> {log}'\n"
            f"ExecStopPost=/bin/sh -c 'echo stoppost $SERVICE_RESULT $EXIT_CODE $EXIT_STATUS >> {log}'\n"
            "User=nobody\n"
        ),
    }
    with Activator(units, loop=loop_kind) as a:
        rep = read_report(("127.0.0.1", port))
        assert rep["env"]["LISTEN_FDS"] == "1"
        a.wait_for("exit", unit="o.service", pid=rep["pid"])
        a.stop()
    lines = log.read_text().splitlines()
    assert lines[0] == "pre"  # control commands get no LISTEN_FDS
    assert lines[1] == "post"
    assert lines[2] == "stoppost success exited 0"


def test_failing_start_pre_fails_the_start(probe, loop_kind):
    """A failing ExecStartPre= fails the start (exit-code) and ExecStart= never runs. Then
    traffic repeats the trigger, each start failing, until the start limit (5 in 10 s),
    which fails the service for good and stops its socket (README, "Restarts and limits")."""
    port = free_port()
    units = {
        "f.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
        "f.service": f"[Service]\nExecStartPre=/bin/false\nExecStart={SYSTEM_PYTHON} {probe}\n",
    }
    with Activator(units, loop=loop_kind) as a:
        r = a.ctl("start", "f.service")  # no traffic yet: nothing triggers it again
        assert r.returncode == 1 and "result: exit-code" in r.stderr
        st = a.status("f.service")
        assert (st["state"], st["result"]) == ("failed", "exit-code")
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            a.wait_for("failed", unit="f.service", result="start-limit-hit")
            a.wait_for("stop", unit="f.socket", result="service-start-limit-hit")
        st = a.status("f.service")
        assert (st["state"], st["result"]) == ("failed", "start-limit-hit")
        assert a.status("f.socket")["state"] == "failed"
        starts = [e for e in a.events if e.get("event") == "start"]
        assert len(starts) == 5  # the operator's and four triggers: the limit's burst
        assert all(e["command"] == "/bin/false" for e in starts)  # never the ExecStart=
        assert a.count("failed", unit="f.service", result="exit-code") == 5


def test_missing_environment_file_fails_start(probe, loop_kind):
    port = free_port()
    units = {
        "m.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n",
        "m@.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {probe}\nEnvironmentFile=/no/such/env\n",
    }
    with Activator(units, loop=loop_kind) as a:
        assert read_line(("127.0.0.1", port)) == b""
        e = a.wait_for("failed", result="resources")
        assert "/no/such/env" in e["reason"]


def test_ucspi_variables(probe, loop_kind):
    """X-Activator-UCSPI=yes: tcpserver's variables for UCSPI programs."""
    port = free_port()
    units = {
        "u.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nX-Activator-UCSPI=yes\n",
        "u@.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {probe}\nStandardInput=socket\nUser=nobody\n",
    }
    with Activator(units, loop=loop_kind):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            cport = c.getsockname()[1]
            data = b""
            while chunk := c.recv(65536):
                data += chunk
    env = json.loads(data)["env"]
    assert env["PROTO"] == "TCP" and env["TCPREMOTEIP"] == "127.0.0.1"
    assert env["TCPREMOTEPORT"] == str(cport) and env["TCPLOCALPORT"] == str(port)
    assert env["TCPLOCALIP"] == "127.0.0.1"


def test_accept_no_stdin_socket_gets_the_listener(probe, loop_kind):
    """§6c 14: Accept=no + StandardInput=socket with one listener: fd 0 is the listening socket."""
    port = free_port()
    units = {
        "l.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
        "l.service": (
            f'[Service]\nExecStart={SYSTEM_PYTHON} -c "import socket,sys; '
            "s=socket.socket(fileno=0); c,_=s.accept(); c.sendall(b'listening' "
            "if s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) else b'no')\"\n"
            "StandardInput=socket\nStandardOutput=journal\nUser=nobody\n"
        ),
    }
    with Activator(units, loop=loop_kind):
        assert read_line(("127.0.0.1", port)) == b"listening"


def test_socket_start_refused_while_service_active_and_direct_service_start(probe, loop_kind):
    """§6c 24, 25: a started service gets the socket's fds; starting the socket then is refused."""
    port = free_port()
    units = {
        "s.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
        "s.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {probe} serve\nUser=nobody\n",
    }
    with Activator(units, loop=loop_kind) as a:
        a.ctl("start", "s.service", check=True)  # no traffic: it gets its sockets anyway
        assert a.status("s.service")["state"] == "active"
        assert a.status("s.socket")["state"] == "running"
        rep = read_report(("127.0.0.1", port))
        assert rep["env"]["LISTEN_FDNAMES"] == "s.socket"
        a.ctl("stop", "s.socket", check=True)  # the service keeps running with its copies
        assert a.status("s.service")["state"] == "active"
        r = a.ctl("start", "s.socket")
        assert r.returncode == 1 and "already active, refusing" in r.stderr
        a.ctl("stop", "s.service", check=True)
        a.ctl("start", "s.socket", check=True)
        assert a.status("s.socket")["state"] == "listening"

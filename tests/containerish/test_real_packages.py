"""Real Debian packages' units, unchanged, started by activator as a container's PID 1
would run it: Docker's default capabilities, a read-only /proc/sys, RLIMIT_NOFILE 1024
(dockerish.py), a /run of its own (issue 12). Each test copies the package's unit files
as shipped from /lib/systemd/system and talks to the daemon the way its users do.

The packages come from .ci/run; a test is skipped here when its package is missing, and
fails in CI (CI=true), which must run it. Daemons that bind every address run in a
network namespace of their own and are reached through ``nsenter``.
"""

from __future__ import annotations

import json
import os
import pwd
import socket
import subprocess
from pathlib import Path

import pytest
from dockerish import NOFILE_HARD, wrapper
from harness import Activator, public_dir

pytestmark = [pytest.mark.root, pytest.mark.slow]

SYSTEM = Path("/lib/systemd/system")


def shipped(package: str, *names: str) -> dict[str, str]:
    """The unit files as the package ships them (skip, or in CI fail, without it)."""
    missing = [n for n in names if not (SYSTEM / n).exists()]
    if missing:
        if os.environ.get("CI") == "true":  # .ci/run installs it
            pytest.fail(f"{', '.join(missing)} missing: CI must install {package}")
        pytest.skip(f"needs the Debian package {package}")
    return {n: (SYSTEM / n).read_text() for n in names}


def in_container(a: Activator, path: str) -> str:
    """A path as activator's mount namespace sees it, from outside."""
    return f"/proc/{a.pid}/root{path}"


def nsenter(a: Activator, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess:
    """Run argv in activator's network and mount namespaces (its loopback, its /run)."""
    return subprocess.run(
        ["nsenter", f"--target={a.pid}", "--net", "--mount", "--", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def started(a: Activator, unit: str) -> None:
    """``activatorctl start``, which waits until the unit is up (or failed)."""
    r = a.ctl("start", unit)
    assert r.returncode == 0, (r.stdout, r.stderr, a.log_text())


def test_uwsgi_app_with_dynamic_user_serves(loop_kind):
    """uwsgi-app@.socket/.service as Debian ships them: DynamicUser=yes, User=www-%i (no
    such user), Group=www-data, StateDirectory=uwsgi/%i, Type=notify."""
    units = shipped("uwsgi-core", "uwsgi-app@.service", "uwsgi-app@.socket")
    apps = public_dir("activator-uwsgi-")
    (apps / "demo.ini").write_text("[uwsgi]\nprotocol = http\nroute-run = return:200\n")
    if not Path("/etc/uwsgi/apps-available").is_dir():
        pytest.skip("needs /etc/uwsgi/apps-available (Debian package uwsgi)")
    w = wrapper(
        nofile=NOFILE_HARD,
        tmpfs=("/run", "/var/lib"),
        binds=((str(apps), "/etc/uwsgi/apps-available"),),
    )
    with Activator(units, loop=loop_kind, wrapper=w) as a:
        started(a, "uwsgi-app@demo.socket")
        path = in_container(a, "/run/uwsgi/demo.socket")
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(20)
            s.connect(path)
            s.sendall(b"GET / HTTP/1.0\r\nHost: demo\r\n\r\n")
            answer = s.recv(1000)
        assert answer.startswith(b"HTTP/1.0 200 OK"), answer
        a.wait_for("ready", unit="uwsgi-app@demo.service", timeout=20)  # READY=1
        pid = a.status("uwsgi-app@demo.service")["main_pid"]
        with open(f"/proc/{pid}/status") as f:
            ids = {ln.split(":")[0]: ln.split()[1:] for ln in f if ln.startswith(("Uid", "Gid"))}
        uid = int(ids["Uid"][0])
        assert 61184 <= uid <= 65519 and int(ids["Gid"][0]) == 33  # www-data
        env = dict(
            kv.split("=", 1)
            for kv in Path(f"/proc/{pid}/environ").read_text().split("\0")
            if "=" in kv
        )
        assert env["USER"] == "www-demo" and env["STATE_DIRECTORY"] == "/var/lib/uwsgi/demo"
        state = in_container(a, "/var/lib/private/uwsgi/demo")
        assert os.stat(state).st_uid == uid
        assert os.readlink(in_container(a, "/var/lib/uwsgi/demo")) == "../private/uwsgi/demo"
        lock = in_container(a, "") + str(Path(a.control).parent / "dynamic-uid" / str(uid))
        assert Path(lock).read_text() == "www-demo\n"
        a.ctl("stop", "uwsgi-app@demo.service", check=True)
        assert not Path(lock).exists()  # released when it stopped


def test_uuidd_hands_out_time_uuids(loop_kind):
    """uuidd.socket/.service (util-linux's uuid-runtime): User=uuidd, a sandboxing list
    activator ignores (one warning), --socket-activation."""
    units = shipped("uuid-runtime", "uuidd.service", "uuidd.socket")
    with Activator(
        units, loop=loop_kind, wrapper=wrapper(nofile=NOFILE_HARD, tmpfs=("/run",))
    ) as a:
        warned = a.wait_for("unit-warning", unit="uuidd.service")
        assert "ProtectSystem=" in warned["problem"] and "SystemCallFilter=" in warned["problem"]
        with socket.socket(socket.AF_UNIX) as s:  # util-linux uuidd.h: UUIDD_OP_TIME_UUID
            s.settimeout(20)
            s.connect(in_container(a, "/run/uuidd/request"))
            s.sendall(b"\x02")
            reply = b""
            while len(reply) < 20:
                chunk = s.recv(64)
                if not chunk:
                    break
                reply += chunk
        assert int.from_bytes(reply[:4], "little") == 16
        assert reply[4 + 6] >> 4 == 1  # a version 1 (time-based) UUID
        pid = a.status("uuidd.service")["main_pid"]
        assert os.stat(f"/proc/{pid}").st_uid == pwd.getpwnam("uuidd").pw_uid


def _fastcgi(path: str, params: dict[str, str]) -> bytes:
    """One FastCGI request (responder role) and the stdout records of the answer."""

    def record(kind: int, body: bytes) -> bytes:
        return bytes([1, kind, 0, 1, len(body) >> 8, len(body) & 255, 0, 0]) + body

    def pair(k: str, v: str) -> bytes:
        return bytes([len(k), len(v)]) + k.encode() + v.encode()

    body = b"".join(pair(k, v) for k, v in params.items())
    request = (
        record(1, bytes([0, 1, 0, 0, 0, 0, 0, 0]))  # BEGIN_REQUEST, responder
        + record(4, body) + record(4, b"") + record(5, b"")  # PARAMS, end, STDIN end
    )  # fmt: skip
    out = b""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(20)
        s.connect(path)
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    while len(data) >= 8:
        kind, n, pad = data[1], data[4] << 8 | data[5], data[6]
        if kind == 6:  # STDOUT
            out += data[8 : 8 + n]
        data = data[8 + n + pad :]
    return out


def test_fcgiwrap_runs_a_cgi_script_as_www_data(loop_kind):
    """fcgiwrap.socket/.service: SocketUser=/SocketGroup=www-data, mode 0660, User=www-data,
    EnvironmentFile=-/etc/default/fcgiwrap, ExecStart=… ${DAEMON_OPTS}."""
    units = shipped("fcgiwrap", "fcgiwrap.service", "fcgiwrap.socket")
    d = public_dir("activator-cgi-")
    script = d / "who.cgi"
    script.write_text('#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n"; id -un\n')
    script.chmod(0o755)
    with Activator(
        units, loop=loop_kind, wrapper=wrapper(nofile=NOFILE_HARD, tmpfs=("/run",))
    ) as a:
        node = in_container(a, "/run/fcgiwrap.socket")
        st = os.stat(node)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (33, 33, 0o660)
        answer = _fastcgi(
            node,
            {"SCRIPT_FILENAME": str(script), "REQUEST_METHOD": "GET", "QUERY_STRING": ""},
        )
        assert answer.endswith(b"\r\n\r\nwww-data\n"), answer


def test_rpcbind_answers_rpcinfo(loop_kind):
    """rpcbind.socket/.service: a unix socket and 0.0.0.0/[::]:111 stream and datagram
    (BindIPv6Only=ipv6-only), Type=notify, DefaultDependencies=no, RequiresMountsFor=."""
    units = shipped("rpcbind", "rpcbind.service", "rpcbind.socket")
    w = wrapper(nofile=NOFILE_HARD, tmpfs=("/run",), net=True)
    with Activator(units, loop=loop_kind, wrapper=w) as a:
        r = nsenter(a, "rpcinfo", "-p", "127.0.0.1")
        assert r.returncode == 0 and "portmapper" in r.stdout, (r.stdout, r.stderr, a.log_text())
        a.wait_for("ready", unit="rpcbind.service")  # READY=1
        r = nsenter(a, "rpcinfo", "-T", "udp", "127.0.0.1", "100000")
        assert r.returncode == 0 and "ready and waiting" in r.stdout, (r.stdout, r.stderr)


def test_openbsd_inetd_serves_its_internal_echo(loop_kind):
    """openbsd-inetd's inetd.service: Type=notify, WatchdogSec=5, KillMode=process, no
    socket unit (inetd binds its own), ConditionPathExists=/etc/inetd.conf; as root, so
    activator warns that it runs as root."""
    units = shipped("openbsd-inetd", "inetd.service")
    conf = public_dir("activator-inetd-") / "inetd.conf"
    conf.write_text("echo stream tcp nowait root internal\n")
    w = wrapper(
        nofile=NOFILE_HARD, tmpfs=("/run",), net=True, binds=((str(conf), "/etc/inetd.conf"),)
    )
    with Activator(units, loop=loop_kind, wrapper=w) as a:
        assert "runs as root" in a.wait_for("unit-warning", unit="inetd.service")["problem"]
        started(a, "inetd.service")
        a.wait_for("ready", unit="inetd.service")
        client = (
            "import socket; s = socket.create_connection(('127.0.0.1', 7), timeout=10); "
            "s.sendall(b'hello\\n'); print(s.recv(100).decode(), end='')"
        )
        r = nsenter(a, "/usr/bin/python3", "-c", client)
        assert r.stdout == "hello\n", (r.stdout, r.stderr, a.log_text())
        assert json.dumps(a.status("inetd.service")["active"]) == '"active"'

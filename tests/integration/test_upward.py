"""Readiness upward (manager/upward.py): activator tells the supervisor above it how it is
doing — sd_notify(3) datagrams to NOTIFY_SOCKET as systemd's Type=notify expects them,
a newline on --ready-fd as s6's notification-fd expects it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from harness import Activator, free_port
from supervisor_side import NotifySocket

from activator.manager.upward import notify_address, watchdog_interval


def _units(port: int) -> dict[str, str]:
    return {
        "e.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n",
        "e@.service": "[Service]\nExecStart=/bin/cat\nStandardInput=socket\nUser=nobody\n",
    }


@pytest.mark.root
@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_ready_status_and_stopping_reach_notify_socket(tmp_path, loop_kind, abstract):
    name = f"@activator-test-{os.getpid()}-{loop_kind}" if abstract else str(tmp_path / "notify")
    m = NotifySocket(notify_address(name))
    try:
        with Activator(_units(free_port()), loop=loop_kind, env={"NOTIFY_SOCKET": name}) as a:
            ready = m.wait_for("READY", "1")
            assert m.pid(ready) == a.pid  # what NotifyAccess=main accepts
            assert m.messages[ready][1]["STATUS"] == "sockets: 1, services: 0"
            statuses = [f["STATUS"] for _, f in m.messages[:ready]]
            assert statuses == ["loading units", "starting default.target"]
            assert a.ctl("is-system-running").stdout == "running\n"
            assert m.count("STOPPING") == 0
            assert a.stop() == 0
        assert m.pid(m.wait_for("STOPPING", "1")) == a.pid
        assert m.count("WATCHDOG") == 0  # not asked for
    finally:
        m.close()


# WATCHDOG_PID names the process meant: a shell that execs activator keeps its pid, as
# systemd's child does.
_AS_SYSTEMD = ["sh", "-c", 'WATCHDOG_PID=$$ exec "$@"', "sh"]


@pytest.mark.root
def test_watchdog_pings_every_half_interval(tmp_path, loop_kind):
    path = str(tmp_path / "notify")
    m = NotifySocket(path)
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"}  # a ping every 50 ms
    try:
        with Activator(_units(free_port()), loop=loop_kind, env=env, wrapper=_AS_SYSTEMD) as a:
            i = m.wait_for("READY", "1")
            t0 = time.monotonic()
            for _ in range(4):
                i = m.wait_for("WATCHDOG", "1", timeout=5, start=i + 1)
                assert m.pid(i) == a.pid
            assert time.monotonic() - t0 >= 0.1  # four pings, at least three intervals apart
    finally:
        m.close()


@pytest.mark.root
def test_no_watchdog_pings_for_another_pid(tmp_path, loop_kind):
    path = str(tmp_path / "notify")
    m = NotifySocket(path)
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"}
    try:
        with Activator(_units(free_port()), loop=loop_kind, env=env) as a:
            m.wait_for("READY", "1")
            for _ in range(3):  # each call outlasts the 50 ms a ping would come after
                assert a.ctl("is-system-running").returncode == 0
            assert a.stop() == 0
        m.wait_for("STOPPING", "1")
        assert m.count("WATCHDOG") == 0, m.messages
    finally:
        m.close()


def test_watchdog_interval_as_sd_watchdog_enabled():
    assert watchdog_interval({}, 42) == (None, None)
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}, 42) == (15.0, None)
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "42"}, 42) == (1.0, None)
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "7"}, 42) == (None, None)
    for bad in ("0", "-5", "1s", "", str(2**64 - 1), str(2**64), "١٢"):
        interval, why = watchdog_interval({"WATCHDOG_USEC": bad}, 42)
        assert interval is None and why and "WATCHDOG_USEC" in why, bad
    interval, why = watchdog_interval({"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "x"}, 42)
    assert interval is None and "WATCHDOG_PID" in why


def test_notify_addresses():
    assert notify_address("/run/systemd/notify") == "/run/systemd/notify"
    assert notify_address("@sd-notify") == b"\0sd-notify"
    assert notify_address("vsock:2:1234") is None and notify_address("@") is None


@pytest.mark.root
def test_ready_fd_gets_one_newline_then_eof(loop_kind):
    r, w = os.pipe()
    try:
        with Activator(
            _units(free_port()), loop=loop_kind, extra_args=["--ready-fd", str(w)], pass_fds=(w,)
        ) as a:
            os.close(w)
            w = -1
            assert os.read(r, 100) == b"\n"
            assert os.read(r, 100) == b""  # closed: activator keeps no copy, nor do services
            assert not any(
                os.readlink(f"/proc/{a.pid}/fd/{fd}").startswith("pipe:")
                and os.stat(f"/proc/{a.pid}/fd/{fd}").st_ino == os.fstat(r).st_ino
                for fd in os.listdir(f"/proc/{a.pid}/fd")
            )
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


@pytest.mark.parametrize(
    "fd, why", [("9", "not an open file descriptor"), ("1", "not for readiness"), ("-1", "not")]
)
def test_bad_ready_fd_is_a_usage_error(tmp_path, fd, why):
    r = subprocess.run(
        [sys.executable, "-m", "activator", "--units", str(tmp_path), "--control", "none",
         f"--ready-fd={fd}"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert r.returncode == 2 and f"--ready-fd {fd}: " in r.stderr and why in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1


def test_ready_fd_opened_read_only_is_refused(tmp_path):
    r, w = os.pipe()
    try:
        p = subprocess.run(
            [sys.executable, "-m", "activator", "--units", str(tmp_path), "--control", "none",
             "--ready-fd", str(r)],
            capture_output=True, text=True, timeout=30, pass_fds=(r,),
        )  # fmt: skip
    finally:
        os.close(r)
        os.close(w)
    assert p.returncode == 2 and "not open for writing" in p.stderr, p.stderr

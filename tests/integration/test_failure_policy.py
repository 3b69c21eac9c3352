"""Issue 13 items 2 and 3: what ends activator, with which exit status, and how fast it
stops — real activator processes, both loops.

Exit statuses (README "Exit codes of activator"): 3 a unit failed to load
(--on-failure=exit), 4 a unit failed while running (--on-failure=exit), 5 a service ended
failed while activator stopped; FailureAction=/SuccessAction= with their own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from harness import Activator, public_dir

BOOT = "[Install]\nWantedBy=multi-user.target\n"


def run_until_exit(units: dict[str, str], *args: str, loop: str, timeout: float = 60):
    """activator on these units, to its end (it is expected to end by itself): the exit
    status and its JSON log lines."""
    d = public_dir()
    (d / "units").mkdir()
    for name, text in units.items():
        (d / "units" / name).write_text(text)
    cmd = [sys.executable, "-m", "activator", "--units", str(d / "units"), "--control", "none",
           "--loop", loop, "--log-format", "json", *args]  # fmt: skip
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return p.returncode, [json.loads(line) for line in p.stderr.splitlines()]


def _shutdown(lines: list[dict]) -> dict:
    return next(e for e in lines if e["event"] == "shutdown")


def test_issue13_missing_units_directory_exits_3(loop_kind):
    d = public_dir()
    cmd = [sys.executable, "-m", "activator", "--units", str(d / "nope"), "--control", "none",
           "--loop", loop_kind, "--log-format", "json", "--on-failure=exit"]  # fmt: skip
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    lines = [json.loads(line) for line in p.stderr.splitlines()]
    assert p.returncode == 3
    assert "no such file or directory" in _shutdown(lines)["reason"]
    assert not any(e["event"] == "ready" for e in lines)
    # continue (the default): the problem is logged, activator runs
    cmd.remove("--on-failure=exit")
    with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE) as p:
        try:
            for line in p.stderr:
                if json.loads(line)["event"] == "ready":
                    break
        finally:
            p.send_signal(signal.SIGTERM)
            p.communicate(timeout=30)
    assert p.returncode == 0


def test_issue13_a_unit_that_fails_to_load_exits_3(loop_kind):
    units = {"bad.service": "[Service]\nExecStart=/bin/true\nNoSuchDirective=1\n"}
    code, lines = run_until_exit(units, "--on-failure=exit", loop=loop_kind)
    assert code == 3 and "NoSuchDirective" in _shutdown(lines)["reason"]


def test_issue13_start_limit_hit_exits_4_after_stopping_the_rest(loop_kind):
    """The only service fails at its start limit: activator stops the others, in order, and
    exits 4."""
    units = {
        "crash.service": "[Unit]\nStartLimitBurst=3\nStartLimitIntervalSec=60\n"
        f"[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=0\n{BOOT}",
        "other.service": f"[Service]\nExecStart=/bin/sleep 60\n{BOOT}",
    }
    code, lines = run_until_exit(units, "--on-failure=exit", loop=loop_kind)
    assert code == 4
    assert "crash.service failed (start-limit-hit)" in _shutdown(lines)["reason"]
    events = [(e["event"], e.get("unit")) for e in lines]
    assert ("stop", "other.service") in events  # stopped, not left behind
    assert lines[-1]["event"] == "exit" and lines[-1]["status"] == 4


def test_issue13_a_port_already_taken_exits_4(loop_kind):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        units = {
            "web.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
            "web.service": "[Service]\nExecStart=/bin/sleep 60\n",
        }
        code, lines = run_until_exit(units, "--on-failure=exit", loop=loop_kind)
    assert code == 4 and "web.socket failed" in _shutdown(lines)["reason"]


def test_issue13_failure_action_and_success_action(loop_kind):
    """FailureAction=exit with FailureActionExitStatus=; poweroff (a container's: exit)
    propagating the service's own exit status; SuccessAction=reboot."""
    units = {
        "f.service": "[Unit]\nFailureAction=exit\nFailureActionExitStatus=7\n"
        f"[Service]\nType=oneshot\nExecStart=/bin/false\n{BOOT}"
    }
    assert run_until_exit(units, loop=loop_kind)[0] == 7
    units = {
        "p.service": "[Unit]\nFailureAction=poweroff\n"
        f"[Service]\nType=oneshot\nExecStart=/bin/sh -c 'exit 42'\n{BOOT}"
    }
    assert run_until_exit(units, loop=loop_kind)[0] == 42
    units = {
        "s.service": "[Unit]\nSuccessAction=reboot\nSuccessActionExitStatus=9\n"
        f"[Service]\nType=oneshot\nExecStart=/bin/true\n{BOOT}"
    }
    code, lines = run_until_exit(units, loop=loop_kind)
    assert code == 9 and "SuccessAction=" in _shutdown(lines)["reason"]


STUBBORN = (
    "[Service]\nExecStart=/bin/sh -c 'trap \"\" TERM; echo up; while :; do sleep 0.2; done'\n"
    "ExecStopPost=/bin/sh -c 'echo post $SERVICE_RESULT > {marker}'\n{extra}" + BOOT
)


def test_issue13_a_service_failed_during_the_stop_makes_exit_5(loop_kind):
    d = public_dir()
    units = {"s.service": STUBBORN.format(marker=d / "post", extra="TimeoutStopSec=1\n")}
    with Activator(units, loop=loop_kind) as a:
        a.wait_for("output", unit="s.service", msg="up", timeout=30)
        assert a.stop() == 5
        a.wait_for("kill", unit="s.service", signal="SIGKILL")
        assert a.events[-1]["status"] == 5 and "s.service" in a.events[-1]["reason"]
    assert (d / "post").read_text() == "post timeout\n"


def test_issue13_stop_deadline_kills_and_runs_stop_post_in_time(loop_kind):
    """A stubborn service (SIGTERM ignored, TimeoutStopSec= 90 s by default) under
    --stop-deadline 5: SIGKILL, then ExecStopPost=, and activator is gone within 5 s."""
    d = public_dir()
    units = {"s.service": STUBBORN.format(marker=d / "post", extra="")}
    with Activator(units, loop=loop_kind, extra_args=["--stop-deadline", "5"]) as a:
        a.wait_for("output", unit="s.service", msg="up", timeout=30)
        began = time.monotonic()
        os.kill(a.pid, signal.SIGTERM)
        a.proc.wait(timeout=30)
        took = time.monotonic() - began
        a.drain(1)
        kill = a.wait_for("kill", unit="s.service")
        assert kill["reason"] == "still running at the stop deadline"
        assert a.proc.returncode == 5
    assert (d / "post").read_text() == "post timeout\n"
    assert took < 5.0, f"activator took {took:.2f}s to stop under --stop-deadline 5"


def test_issue13_default_timeout_stop_sec(loop_kind):
    """--default-timeout-stop-sec: a unit without TimeoutStopSec= gets it."""
    d = public_dir()
    units = {"s.service": STUBBORN.format(marker=d / "post", extra="")}
    with Activator(units, loop=loop_kind, extra_args=["--default-timeout-stop-sec", "1"]) as a:
        a.wait_for("output", unit="s.service", msg="up", timeout=30)
        assert a.stop() == 5
        kill = a.wait_for("kill", unit="s.service")
        assert kill["reason"] == "still running after TimeoutStopSec=1s"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_issue13_log_format_from_the_environment(loop_kind, fmt):
    d = public_dir()
    cmd = [sys.executable, "-m", "activator", "--units", str(d), "--control", "none",
           "--loop", loop_kind, "--on-failure=exit"]  # fmt: skip
    env = {**os.environ, "ACTIVATOR_LOG_FORMAT": fmt}
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=60)
    assert p.returncode == 3  # no unit to run
    first = p.stderr.splitlines()[0]
    assert first.startswith(b"{") == (fmt == "json")
    env["ACTIVATOR_LOG_FORMAT"] = "yaml"
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=60)
    assert p.returncode == 2 and b"ACTIVATOR_LOG_FORMAT" in p.stderr


def test_issue13_exit_force_skips_the_stop_timeouts(loop_kind):
    d = public_dir()
    units = {
        "s.service": STUBBORN.format(marker=d / "post", extra=""),
        "boom.service": "[Unit]\nFailureAction=exit-force\nFailureActionExitStatus=11\n"
        "[Service]\nType=oneshot\nExecStart=/bin/false\n",
    }
    with Activator(units, loop=loop_kind) as a:
        a.wait_for("output", unit="s.service", msg="up", timeout=30)
        began = time.monotonic()
        r = a.ctl("start", "--no-block", "boom.service")
        assert r.returncode == 0, r.stderr
        a.proc.wait(timeout=30)
        took = time.monotonic() - began
        a.drain(1)
        assert a.proc.returncode == 11
        a.wait_for("timeout", phase="shutdown", deadline=0.0)  # SIGKILL at once
    assert took < 5.0

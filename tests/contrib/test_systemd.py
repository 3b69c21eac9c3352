"""contrib/systemd/activator.service: systemd-analyze verify accepts it, and activator
started the way systemd starts a Type=notify service with this unit's settings tells its
manager READY=1 (from its main pid, as NotifyAccess=main requires), pings the watchdog,
reloads on ExecReload=, and says STOPPING=1 then exits 0 on KillSignal=.

There is no systemd PID 1 here: the test plays the manager's side of NOTIFY_SOCKET."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import free_port, public_dir, read_line
from supervisor_side import NotifySocket, pong_units

from activator.units.loader import load_one

UNIT = Path(__file__).resolve().parents[2] / "contrib" / "systemd" / "activator.service"
BIN = Path(sys.executable).parent


@pytest.mark.root
def test_systemd_analyze_verify_accepts_it():
    """As installed: `activator` on systemd's search path (pip as root puts it in
    /usr/local/bin: a mount namespace of its own puts it there), and the manual pages the
    unit's Documentation= names (the checkout's, which the wheel installs)."""
    man = UNIT.parents[2] / "man"
    script = (
        f"mount -t tmpfs tmpfs /usr/local/bin && ln -s {BIN / 'activator'} /usr/local/bin/ && "
        f'MANPATH={man}: exec systemd-analyze verify "$1"'
    )
    r = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, "sh", str(UNIT)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), r.stderr


@pytest.mark.root
def test_run_as_systemd_runs_it(tmp_path):
    unit, problems = load_one(str(UNIT))
    assert unit is not None and not problems, problems
    s = unit.Service
    assert (s.Type, s.NotifyAccess, s.KillMode) == ("notify", "main", "mixed")
    (start,) = s.ExecStart
    argv = [shutil.which(start.argv[0], path=str(BIN)), *start.argv[1:]]
    d = public_dir("activator-systemd-")
    units, port = pong_units(d)
    notify = NotifySocket(str(tmp_path / "notify"))
    env = {
        "PATH": os.environ["PATH"],
        "NOTIFY_SOCKET": str(tmp_path / "notify"),
        "WATCHDOG_USEC": str(int(s.WatchdogSec * 1e6)),
        "ACTIVATOR_UNITS": str(units),  # what Environment= would say for another directory
        "ACTIVATOR_CONTROL": str(d / "control.sock"),  # RuntimeDirectory= makes /run/activator
    }
    log = (tmp_path / "log").open("w+")
    # systemd's child sets WATCHDOG_PID to its own pid, then execs ExecStart=: so does sh
    p = subprocess.Popen(
        ["sh", "-c", 'WATCHDOG_PID=$$ exec "$@"', "sh", *argv],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        ready = notify.wait_for("READY", "1", timeout=20)  # within TimeoutStartSec=
        assert notify.pid(ready) == p.pid
        ping = notify.wait_for("WATCHDOG", "1", timeout=s.WatchdogSec)
        assert notify.pid(ping) == p.pid
        assert read_line(("127.0.0.1", port)) == b"pong\n"
        # ExecReload=: kill -HUP $MAINPID re-reads the unit files, as `activatorctl reload`
        (units / "f.socket").write_text(f"[Socket]\nListenStream=127.0.0.1:{free_port()}\n")
        (units / "f.service").write_text("[Service]\nExecStart=/bin/true\n")
        (reload,) = s.ExecReload
        subprocess.run(
            [a.replace("$MAINPID", str(p.pid)) for a in reload.argv], check=True, timeout=10
        )
        ctl = [str(BIN / "activatorctl"), "--control", str(d / "control.sock")]
        # (a reload waits for the one SIGHUP began: then the new socket listens)
        subprocess.run([*ctl, "reload", "--dry-run"], check=True, timeout=30, capture_output=True)
        assert subprocess.run([*ctl, "is-active", "f.socket"], timeout=30).returncode == 0
        # KillMode=mixed: KillSignal= to the main process alone
        t0 = time.monotonic()
        os.kill(p.pid, s.KillSignal)
        assert notify.pid(notify.wait_for("STOPPING", "1", timeout=10)) == p.pid
        assert p.wait(timeout=s.TimeoutStopSec) == 0
        assert time.monotonic() - t0 < s.TimeoutStopSec
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
        notify.close()
        log.seek(0)
        text = log.read()
        log.close()
    assert "event=daemon-reload" in text and "event=exit pid=" in text, text

"""contrib/s6/activator under Debian's s6: s6-supervise runs activator, readiness arrives
through the notification fd, a crash is restarted, `s6-svc -d` stops it cleanly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import public_dir, read_line
from supervisor_side import pong_units

SERVICE = Path(__file__).resolve().parents[2] / "contrib" / "s6" / "activator"
pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        shutil.which("s6-supervise") is None, reason="needs s6 (.ci/run installs it)"
    ),
]


def _s6(*args: str, timeout: float = 30) -> str:
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{args}: {r.returncode} {r.stdout} {r.stderr}"
    return r.stdout


def _stat(d: Path) -> dict[str, str]:
    fields = ("up", "ready", "pid", "exitcode", "signal", "normallyup")
    values = _s6("s6-svstat", "-o", ",".join(fields), str(d)).split()
    return dict(zip(fields, values, strict=True))


def test_s6_supervises_activator(tmp_path):
    d = public_dir("activator-s6-")
    svc = d / "activator"
    shutil.copytree(SERVICE, svc)
    units, port = pong_units(d)
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        ACTIVATOR_UNITS=str(units),
        ACTIVATOR_CONTROL=str(d / "control.sock"),
    )
    log = (tmp_path / "log").open("w+")
    supervise = subprocess.Popen(
        ["s6-supervise", str(svc)], env=env, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        # up and *ready*: s6 knows it only from the newline on the notification fd
        _s6("s6-svwait", "-U", "-t", "20000", str(svc))
        first = _stat(svc)
        assert first["up"] == "true" and first["ready"] == "true", first
        assert read_line(("127.0.0.1", port)) == b"pong\n"
        # a crash: s6-supervise runs ./finish, then starts activator again, ready again
        _s6("s6-svlisten1", "-R", "-t", "20000", str(svc), "kill", "-KILL", first["pid"])
        second = _stat(svc)
        assert second["ready"] == "true" and second["pid"] != first["pid"], second
        assert read_line(("127.0.0.1", port)) == b"pong\n"
        # s6-svc -d: SIGTERM; activator stops its services and exits 0
        _s6("s6-svlisten1", "-D", "-t", "20000", str(svc), "s6-svc", "-d", str(svc))
        down = _stat(svc)
        assert (down["up"], down["exitcode"], down["signal"]) == ("false", "0", "NA"), down
    finally:
        subprocess.run(["s6-svc", "-xd", str(svc)], timeout=10, check=False)
        try:
            supervise.wait(timeout=20)
        except subprocess.TimeoutExpired:
            supervise.kill()
            supervise.wait(timeout=10)
        log.seek(0)
        text = log.read()
        log.close()
    assert "activator: killed by signal 9: restarting" in text, text  # ./finish said so
    assert text.count("event=ready") == 2 and "event=exit pid=" in text, text

"""contrib/s6/activator under Debian's s6: s6-supervise runs activator, readiness arrives
through the notification fd, a crash is restarted, `s6-svc -d` stops it cleanly."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
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


class Output:
    """What s6-supervise and its service write to our pipe, read as it comes (bounded)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.text = ""

    def wait_for(self, needle: str, timeout: float = 20, start: int = 0) -> int:
        """Read until ``needle`` stands in the text after ``start``; its index."""
        deadline = time.monotonic() + timeout
        while (i := self.text.find(needle, start)) < 0:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise TimeoutError(f"no {needle!r} within {timeout}s: {self.text}")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError(f"no {needle!r}: {self.text}")
            self.text += chunk.decode(errors="replace")
        return i

    def read_to_end(self, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0 and select.select([self.fd], [], [], left)[
            0
        ]:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                break
            self.text += chunk.decode(errors="replace")
        return self.text


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
    supervise = subprocess.Popen(
        ["s6-supervise", str(svc)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    out = Output(supervise.stdout.fileno())
    try:
        # activator has started (so s6-supervise has written its status), and is up and
        # *ready*: s6 knows that only from the newline on the notification fd
        out.wait_for("event=ready")
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
        text = out.read_to_end()
        supervise.stdout.close()
    assert "activator: killed by signal 9: restarting" in text, text  # ./finish said so
    assert text.count("event=ready") == 2 and "event=exit pid=" in text, text

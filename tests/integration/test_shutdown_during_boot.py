"""SIGTERM while the boot still waits for a service: everything stops, exit 0.

Found by the chaos suite (issue 15): shutdown cancelled the boot's pending jobs while
iterating over them ("dictionary changed size during iteration"), activator died with a
traceback and the service it was waiting for ran on unsupervised.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from harness import public_dir

pytestmark = pytest.mark.root


def test_sigterm_during_the_boot_stops_the_service_it_waits_for(loop_kind):
    d = public_dir()
    (d / "units").mkdir()
    (d / "units" / "late.service").write_text(
        "[Service]\nType=notify\nExecStart=/bin/sleep infinity\nUser=nobody\n"
        "TimeoutStartSec=infinity\n[Install]\nWantedBy=multi-user.target\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "activator", "--units", str(d / "units"), "--control",
         str(d / "c.sock"), "--loop", loop_kind, "--log-format", "json"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    pid = None
    try:
        for line in proc.stderr:  # bounded by the service's start: the boot waits for it
            e = json.loads(line)
            if e["event"] == "start" and e.get("unit") == "late.service":
                pid = e["pid"]
                break
        os.kill(proc.pid, signal.SIGTERM)
        rest = proc.stderr.read().decode()
        assert proc.wait(30) == 0, rest
        assert "Traceback" not in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stderr.close()
    assert pid is not None
    # activator exits after its services: it reaped this one itself
    assert not os.path.exists(f"/proc/{pid}"), "the service outlived activator"

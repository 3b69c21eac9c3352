"""Real programs, unchanged, started by activator from unit files.

What they need is installed by the project's own files (.ci/run installs gcc,
libsystemd-dev, python3-systemd and git from Debian; the gunicorn test installs
gunicorn from PyPI into a directory of its own). A missing one fails the test in CI
(CI=true) and skips it elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def need(ok: bool, what: str) -> None:
    """Skip (fail in CI) unless ``ok``: ``what`` names the missing piece and its package."""
    if ok:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing, and CI must run this test")
    pytest.skip(f"{what} is missing")


def compile_c(src: str, out: Path, *libs: str) -> str:
    """Compile ``src`` with gcc into ``out`` (world-executable); its path."""
    need(shutil.which("gcc") is not None, "gcc (Debian package gcc)")
    need(
        os.path.exists("/usr/include/systemd/sd-daemon.h"),
        "sd-daemon.h (Debian package libsystemd-dev)",
    )
    c = out.with_suffix(".c")
    c.write_text(src)
    r = subprocess.run(
        ["gcc", "-O2", "-Wall", "-o", str(out), str(c), *libs],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    out.chmod(0o755)
    return str(out)


def pip_install(target: Path, *packages: str) -> None:
    """``pip install --target`` from PyPI (pure-Python packages, for /usr/bin/python3 3.11)."""
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-compile",
            "--target",
            str(target),
            *packages,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    need(r.returncode == 0, f"{' '.join(packages)} from PyPI (pip said: {r.stderr.strip()[-300:]})")
    for root, dirs, files in os.walk(target):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)

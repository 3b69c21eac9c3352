"""Fixtures for the spawn-core tests (helpers in spawnprobe.py)."""

from __future__ import annotations

import grp
import itertools
import json
import os
import pwd
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from spawnprobe import IS_ROOT, PROBE, PYTHON, run_spec

from activator.exec.spec import ExecSpec


@pytest.fixture(scope="session")
def probe_dir() -> Iterator[str]:
    """A directory under /tmp that nobody can traverse, holding probe.py (0644)."""
    if not os.access(PYTHON, os.X_OK):
        pytest.skip("needs /usr/bin/python3 for the probe")
    d = tempfile.mkdtemp(prefix="activator-spawn-", dir="/tmp")
    try:
        os.chmod(d, 0o755)
        with open(os.path.join(d, "probe.py"), "w") as f:
            f.write(PROBE)
        os.chmod(os.path.join(d, "probe.py"), 0o644)
        yield d
    finally:
        shutil.rmtree(d)


@pytest.fixture
def root() -> None:
    if not IS_ROOT:
        pytest.skip("needs root")


@pytest.fixture
def nobody() -> dict[str, Any]:
    """Credentials of nobody:nogroup as ExecSpec fields (empty, i.e. keep, when not root)."""
    if not IS_ROOT:
        return {}
    gid = grp.getgrnam("nogroup").gr_gid
    return {"uid": pwd.getpwnam("nobody").pw_uid, "gid": gid, "groups": [gid]}


@pytest.fixture
def scratch(probe_dir: str) -> Callable[[str], str]:
    """Paths in probe_dir, created empty and writable by anyone; removed afterwards."""
    made: list[str] = []
    counter = itertools.count()

    def make(what: str) -> str:
        path = os.path.join(probe_dir, f"{what}-{os.getpid()}-{next(counter)}")
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666))
        os.chmod(path, 0o666)
        made.append(path)
        return path

    yield make
    for path in made:
        os.unlink(path)


@pytest.fixture
def run_probe(probe_dir: str, nobody: dict[str, Any], scratch: Callable[[str], str]):
    """run_probe(**ExecSpec fields) -> what the probe saw, plus "spawned_pid".

    Defaults: nobody's credentials, an empty environment, stderr to a file that is shown if
    the probe fails."""

    def run(**fields: Any) -> dict[str, Any]:
        out, err = scratch("out"), scratch("err")
        fields = {"env": [], **nobody, **fields}
        err_fd = os.open(err, os.O_WRONLY)
        try:
            fields.setdefault("stderr", err_fd)
            script = os.path.join(probe_dir, "probe.py").encode()
            argv = [PYTHON, b"-I", b"-S", script, out.encode()]
            spec = ExecSpec(path=PYTHON, argv=argv, **fields)
            pid, code = run_spec(spec)
        finally:
            os.close(err_fd)
        with open(err) as f:
            assert code == 0, f"probe exited {code}: {f.read()}"
        with open(out) as f:
            seen = json.load(f)
        seen["fds"] = {int(k): v for k, v in seen["fds"].items()}
        seen["spawned_pid"] = pid
        return seen

    return run

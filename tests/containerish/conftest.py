"""Fixtures for running activator as in a container with Docker's default capabilities.

``docker_default`` is the wrapper of dockerish.py with Docker's defaults (plus a low
RLIMIT_NOFILE hard limit, 1024, below what the tests' units ask for); ``spawn_under(wrapper,
**fields)`` spawns one ExecSpec with the spawn core behind such a wrapper and returns what
spawn_under.py reports.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dockerish import NOFILE_HARD, missing_tools, run, wrapper

SPAWN_UNDER = str(Path(__file__).with_name("spawn_under.py"))


def pytest_collection_modifyitems(config, items):
    missing = missing_tools()
    if not missing:
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason=f"needs util-linux's {', '.join(missing)}")
    for item in items:
        if Path(item.fspath).parent == here:
            item.add_marker(skip)


@pytest.fixture
def docker_default() -> list[str]:
    """Docker's default capabilities, read-only /proc/sys, RLIMIT_NOFILE 1024:1024."""
    return wrapper(nofile=NOFILE_HARD)


@pytest.fixture
def spawn_under() -> Callable[..., dict[str, Any]]:
    def spawn(prefix: list[str], **fields: Any) -> dict[str, Any]:
        r = run([*prefix, sys.executable, SPAWN_UNDER, json.dumps(fields)])
        assert r.returncode == 0, f"spawn_under.py exited {r.returncode}:\n{r.stderr}"
        return json.loads(r.stdout)

    return spawn

"""Fixtures of the container tests: cached Debian root filesystems (rootfs.py).

Each rootfs is built once per session (a cache hit after the first session: seconds),
bounded in time. These tests need root (mmdebstrap --mode=root, namespaces, mounts).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from rootfs import BOOT, build  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason="needs root: mmdebstrap --mode=root, namespaces, mounts")
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def boot_rootfs() -> Path:
    """A bookworm rootfs with BOOT's packages installed (cached; read-only: overlay it)."""
    return build(BOOT, timeout=900)

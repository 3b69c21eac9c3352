"""The names the spawn core's messages use for capabilities and limits agree with the kernel's
header and with the unit layer's table, which the planner uses (the spawn core keeps its own
copy: it imports nothing else of activator)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from activator.exec import plan, spec

HEADER = Path("/usr/include/linux/capability.h")


def test_capability_names_are_the_kernels():
    if not HEADER.exists():
        pytest.skip("needs linux/capability.h (Debian package linux-libc-dev)")
    defined = re.findall(r"^#define\s+(CAP_[A-Z_]+)\s+(\d+)\s*$", HEADER.read_text(), re.M)
    assert len(defined) >= 38
    for name, number in defined:
        assert spec.CAPABILITY_NAMES[int(number)] == name


def test_capability_and_limit_names_match_the_planners():
    assert plan.CAPABILITIES == {name: i for i, name in enumerate(spec.CAPABILITY_NAMES)}
    assert {spec._LIMIT_NAMES[res] for res in plan._RLIMITS.values()} == set(plan._RLIMITS)

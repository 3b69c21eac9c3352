"""A time budget for hypothesis: run a property again and again until its share is spent.

``FUZZ_SECONDS`` is the budget of the whole fuzz run (default ``DEFAULT_SECONDS``, the
short one the test suite runs; ``make fuzz`` sets a long one), shared among the targets
by weight. Each round is a fresh hypothesis run (new random seed, no example database,
so the repository stays clean); a failing round shrinks its input and fails the test
with it. ``COUNTS`` records the inputs each target ran, for the summary line.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

DEFAULT_SECONDS = 30.0
# Target name → share of the budget (the slow ones, which touch the file system, and the
# wide ones get more).
WEIGHTS: dict[str, float] = {
    "ini": 1.0,
    "ini-generated": 1.0,
    "toml": 1.0,
    "toml-generated": 1.0,
    "load-units": 2.0,
    "instances": 0.5,
    "directives": 1.5,
    "values": 1.0,
    "listen": 0.5,
    "specifiers": 0.5,
    "names": 0.25,
    "protocol": 0.75,
    "cli-daemon": 0.25,
    "cli-ctl": 0.25,
    "records": 0.25,
}
COUNTS: dict[str, int] = {}
SPENT: dict[str, float] = {}


def total_seconds() -> float:
    return float(os.environ.get("FUZZ_SECONDS") or DEFAULT_SECONDS)


def share(target: str) -> float:
    return total_seconds() * WEIGHTS[target] / sum(WEIGHTS.values())


def fuzz(target: str, strategy: st.SearchStrategy[Any], check: Callable[[Any], None]) -> int:
    """Run ``check`` on inputs from ``strategy`` for ``target``'s share of the budget.

    Returns how many inputs ran. An exception from ``check`` fails the call with the
    shrunk input (hypothesis' report).
    """
    seconds = share(target)
    start = time.monotonic()
    end = start + seconds
    ran = 0
    batch = 20

    def one(value: Any) -> None:
        nonlocal ran
        ran += 1
        check(value)

    while True:
        prop = settings(
            max_examples=batch,
            deadline=None,
            database=None,
            phases=(Phase.generate, Phase.shrink),
            suppress_health_check=list(HealthCheck),
        )(given(strategy)(one))
        t0 = time.monotonic()
        prop()
        now = time.monotonic()
        if now >= end:
            break
        # Aim for rounds of about a second: long enough to amortise hypothesis' set-up,
        # short enough to stop near the budget.
        per = (now - t0) / batch
        batch = max(5, min(2000, int(min(1.0, end - now) / max(per, 1e-6))))
    COUNTS[target] = COUNTS.get(target, 0) + ran
    SPENT[target] = SPENT.get(target, 0.0) + time.monotonic() - start
    return ran

"""Shared by the reliability suites (tests/chaos, tests/soak): their scale, their figures,
and what /proc says of a process.

``CHAOS_SCALE``/``SOAK_SCALE`` = ``short`` (the default: what ``make test`` and CI run)
or ``full`` (``make chaos``, ``make soak``). Figures are what a suite measured (CPU
shares, latencies, counts); they are printed after the run and, with ``RELIABILITY_RESULTS``
set, appended to that file as JSON lines — never asserted as timings.
"""

from __future__ import annotations

import json
import os
import time

FIGURES: list[tuple[str, dict]] = []
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def full(suite: str) -> bool:
    return os.environ.get(f"{suite.upper()}_SCALE", "short") == "full"


def scale(suite: str, short: int, full_: int) -> int:
    return full_ if full(suite) else short


def record(name: str, **values) -> None:
    """Keep one measurement for the summary (and RELIABILITY_RESULTS)."""
    FIGURES.append((name, values))
    path = os.environ.get("RELIABILITY_RESULTS")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"name": name, "ts": time.time(), **values}) + "\n")


# ---------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE // 1024


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def thread_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def children_of(pid: int) -> list[int]:
    out: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            continue
    return out


def state_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def zombies_of(pid: int) -> list[int]:
    return [c for c in children_of(pid) if state_of(c) == "Z"]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]

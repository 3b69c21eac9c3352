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
import shutil
import subprocess
import time

FIGURES: list[tuple[str, dict]] = []
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def full(suite: str) -> bool:
    return os.environ.get(f"{suite.upper()}_SCALE", "short") == "full"


def scale(suite: str, short: int, full_: int) -> int:
    return full_ if full(suite) else short


def summary(terminalreporter, suite: str) -> None:
    """The figures, after the tests (a conftest's pytest_terminal_summary)."""
    if not FIGURES:
        return
    tr = terminalreporter
    tr.section(f"reliability figures ({'full' if full(suite) else 'short'} scale)")
    for name, values in FIGURES:
        tr.write_line(f"{name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
    FIGURES.clear()


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


# ---------------------------------------------------------------- bench's C tools

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
BUILD = os.path.join(BENCH, "build")  # git ignores it; bench/run.py builds there too
_LIBS = {"loadgen": ["-lm"]}


def tool(name: str, source: str | None = None) -> str:
    """bench/NAME.c (or ``source``) built with gcc into bench/build, if stale; its path."""
    src = source or os.path.join(BENCH, f"{name}.c")
    out = os.path.join(BUILD, name)
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        os.makedirs(BUILD, exist_ok=True)
        subprocess.run(
            ["gcc", "-O2", "-Wall", "-Wextra", "-o", out, src, *_LIBS.get(name, [])],
            check=True,
            timeout=120,
        )
    return out


def public_tool(name: str, where, source: str | None = None) -> str:
    """The tool copied where nobody can run it (a public_dir())."""
    dst = os.path.join(str(where), name)
    shutil.copy(tool(name, source), dst)
    os.chmod(dst, 0o755)
    return dst


def loadgen(port: int, n: int, c: int, tlimit: float, request: str | None = None) -> dict:
    """bench/loadgen: n connections, c at once, each reads to EOF; its JSON summary
    (``ok``, ``errors``, ``rate`` …). Bounded by ``tlimit`` seconds."""
    argv = [tool("loadgen"), "-H", "127.0.0.1", "-p", str(port), "-n", str(n), "-c", str(c),
            "-t", str(tlimit), "-T", "10000", "-j"]  # fmt: skip
    if request is not None:
        argv += ["-s", request]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=tlimit + 40)
    return json.loads(r.stdout.replace(":nan", ":null"))

"""The fuzz run's summary: inputs per target, after the tests."""

from __future__ import annotations

from .budget import COUNTS, SPENT, total_seconds


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if not COUNTS:
        return
    tr = terminalreporter
    tr.section(f"fuzz: inputs per target (FUZZ_SECONDS={total_seconds():g})")
    for target, n in sorted(COUNTS.items()):
        tr.write_line(f"{target:16} {n:>9,} inputs in {SPENT[target]:6.1f} s")
    tr.write_line(f"{'total':16} {sum(COUNTS.values()):>9,} inputs")

"""The chaos suite's summary: what each experiment measured (reliability.FIGURES)."""

from __future__ import annotations

from reliability import FIGURES, full


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if not FIGURES:
        return
    tr = terminalreporter
    tr.section(
        f"reliability figures ({'full' if full('chaos') or full('soak') else 'short'} scale)"
    )
    for name, values in FIGURES:
        tr.write_line(f"{name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))

"""The soak suite's figures, after its tests."""

from __future__ import annotations

from reliability import summary


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    summary(terminalreporter, "soak")

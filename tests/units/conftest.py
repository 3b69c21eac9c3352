"""Helpers for the unit-file tests: write a directory of units, load it."""

from __future__ import annotations

from pathlib import Path

import pytest

from activator.units import Problem, UnitSet, load_units


def write_units(root: Path, files: dict[str, str]) -> Path:
    """Create ``files`` (relative name → text) under ``root``; parents as needed."""
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def load_ok(root: Path, strict: bool = False) -> tuple[UnitSet, list[Problem]]:
    """Load ``root`` and fail the test on any error."""
    units, problems = load_units([root], strict=strict)
    errors = [str(p) for p in problems if p.severity == "error"]
    assert not errors, "\n".join(errors)
    return units, problems


@pytest.fixture
def units_dir(tmp_path: Path):  # type: ignore[no-untyped-def]
    def make(files: dict[str, str]) -> Path:
        return write_units(tmp_path / "units", files)

    return make

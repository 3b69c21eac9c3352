"""Regressions for hostile unit files: each of these stopped activator with a traceback,
hung it, or made it read until memory ran out. A bad file is left out and reported
(file:line and the cause) while the rest load; load_units never raises.

tests/fuzz/ looks for more of the same; these pin the ones it (or the issue) found.
"""

from __future__ import annotations

from pathlib import Path

from activator.units import build as build_module
from activator.units import load_one, load_units
from activator.units.errors import INTERNAL

from .conftest import write_units

GOOD = {"good.socket": "[Socket]\nListenStream=127.0.0.1:8080\n", "good.service": "[Service]\nExecStart=/bin/true\n"}  # fmt: skip


def _load_with_good(root: Path, files_: dict[str, str]) -> list[str]:
    """Load ``files_`` beside a good pair; the good pair must load. Returns the problems."""
    write_units(root, {**GOOD, **files_})
    units, problems = load_units([root])
    assert units.get("good.socket") is not None and units.get("good.service") is not None
    for p in problems:
        assert INTERNAL not in p.message, str(p)
    return [str(p) for p in problems]


# ---------------------------------------------------------------- 1. one bad value


def test_a_bug_refuses_one_unit_and_the_rest_load(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """load_units used to let anything but its own error type out: a reload answered
    "internal" and a start died. Now a bug costs the unit it meets, nothing more."""

    def explode(self, entry, ctx):  # type: ignore[no-untyped-def]
        if entry.key == "Nice":
            raise RuntimeError("boom")
        return feed(self, entry, ctx)

    feed = build_module._Builder.feed
    monkeypatch.setattr(build_module._Builder, "feed", explode)
    write_units(tmp_path, {**GOOD, "bad.service": "[Service]\nExecStart=/bin/true\nNice=1\n"})
    units, problems = load_units([tmp_path])
    assert units.get("good.socket") is not None and units.get("bad.service") is None
    (p,) = problems
    assert (p.path, p.unit, p.severity) == (f"{tmp_path}/bad.service", "bad.service", "error")
    assert p.message.startswith(f"{INTERNAL} while loading (RuntimeError at ")
    assert "boom" in p.message
    unit, (p1,) = load_one(str(tmp_path / "bad.service"))
    assert unit is None and p1.message.startswith(INTERNAL)

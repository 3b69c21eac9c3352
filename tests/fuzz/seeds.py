"""The fuzzers' seeds: the example units, the golden cases, the real units in the repo,
and Debian's installed units when the machine has them.

A seed group is a set of files that load together (a golden case, the example
directory, a socket with its services), so that a mutated file still meets the
pairing checks of its neighbours.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_SUFFIXES = (".socket", ".service", ".socket.toml", ".service.toml", ".conf", ".conf.toml")
# Debian's own units, read when present: more real-world syntax than the repo holds.
SYSTEM_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/user")
SYSTEM_MAX = 300  # enough variety; reading more only slows the collection


def _is_unit(p: Path) -> bool:
    return p.name.endswith(_SUFFIXES) and p.is_file()


def _stem(name: str) -> str:
    base = name.removesuffix(".toml").rsplit(".", 1)[0]
    return base.split("@", 1)[0]


@functools.cache
def seed_groups() -> tuple[tuple[tuple[str, str], ...], ...]:
    """Each group: (relative file name, text) pairs that form one units directory."""
    groups: list[dict[str, str]] = []
    examples = {p.name: p.read_text() for p in sorted((ROOT / "units").iterdir()) if _is_unit(p)}
    groups.append(examples)
    for case in sorted((ROOT / "tests/units/golden").iterdir()):
        files = {
            str(p.relative_to(case)): p.read_text() for p in sorted(case.rglob("*")) if _is_unit(p)
        }
        if files:
            groups.append(files)
    by_stem: dict[tuple[str, str], dict[str, str]] = {}
    for p in sorted((ROOT / "tests/units/real").rglob("*")):
        if _is_unit(p):
            key = (str(p.parent), _stem(p.name))
            by_stem.setdefault(key, {})[p.name] = p.read_text()
    groups.extend(by_stem.values())
    by_stem = {}
    for d in SYSTEM_DIRS:
        if not os.path.isdir(d):
            continue
        for p in sorted(Path(d).iterdir())[:SYSTEM_MAX]:
            if not _is_unit(p) or p.is_symlink():
                continue
            try:
                text = p.read_text()
            except (OSError, UnicodeDecodeError):
                continue
            by_stem.setdefault((d, _stem(p.name)), {})[p.name] = text
    groups.extend(by_stem.values())
    return tuple(tuple(sorted(g.items())) for g in groups)


@functools.cache
def seed_files() -> tuple[tuple[str, str], ...]:
    """Every seed file on its own: (file name, text)."""
    return tuple(f for g in seed_groups() for f in g)

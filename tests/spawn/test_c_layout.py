"""The C layout: the code that runs in the vfork child (activator/exec/spawn_child.c and its
header spawn_child.h) cannot see Python. Python.h is included neither there nor in any
local header they include; spawn_child.c compiles without Python's include directory."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "activator" / "exec"
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.MULTILINE)


def included(path: Path, seen: set[Path] | None = None) -> set[str]:
    """Every header `path` includes, following the local ones ("x.h" beside the file)."""
    seen = set() if seen is None else seen
    seen.add(path)
    names: set[str] = set()
    for quote, name in INCLUDE.findall(path.read_text()):
        names.add(name)
        local = path.parent / name
        if quote == '"' and local.is_file() and local not in seen:
            names |= included(local, seen)
    return names


@pytest.mark.parametrize("name", ["spawn_child.c", "spawn_child.h"])
def test_the_child_side_does_not_include_python_h(name: str) -> None:
    headers = included(SRC / name)
    assert not any(Path(h).name == "Python.h" for h in headers), sorted(headers)
    assert "_spawn.h" not in headers  # the Python-facing header


def test_the_glue_does_include_python_h() -> None:
    """The scan itself works: _spawn.c reaches Python.h through _spawn.h."""
    assert "Python.h" in included(SRC / "_spawn.c")


def test_spawn_child_c_compiles_without_python(tmp_path: Path) -> None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    r = subprocess.run(
        [cc, "-fsyntax-only", "-Wall", "-Wextra", "-Wshadow", str(SRC / "spawn_child.c")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr

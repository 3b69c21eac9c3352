"""The offline verbs of activatorctl: ``verify`` and ``import``. No daemon is involved.

Both print to **stdout** only — problems, results and the summary alike — so that
``activatorctl verify units/ | grep`` sees everything; exit codes carry the verdict.
"""

from __future__ import annotations

import json as _json
import os
import sys
from typing import TextIO

from ..units import Problem, load_units
from ..units.errors import in_causal_order
from ..units.export import Format


def _summary(loaded: int, problems: list[Problem]) -> tuple[int, int, str]:
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    s = "s" if loaded != 1 else ""
    line = (
        f"{loaded} unit{s} loaded, {errors} error{'s' if errors != 1 else ''}, "
        f"{warnings} warning{'s' if warnings != 1 else ''}"
    )
    return errors, warnings, line


def run_verify(
    paths: list[str], *, strict: bool = False, json: bool = False, out: TextIO | None = None
) -> int:
    """Check unit files offline, like ``systemd-analyze verify``.

    Prints every problem (one line each: ``file:line: Directive=: message``; warnings
    carry ``warning:``), then ``N units loaded, E errors, W warnings``. With ``json``,
    one JSON object instead: ``{"units": [...], "problems": [...], "loaded": N,
    "errors": E, "warnings": W}``. Everything goes to stdout.

    Exit code: 0 when every unit loads (warnings allowed, unless ``strict`` makes them
    errors), 1 otherwise (some unit refused or a path unreadable).
    """
    from ..exec.preflight import Preflight

    out = out or sys.stdout
    checks = Preflight(root_warning=True, users=True, programs=True)
    units, problems = load_units(paths, strict=strict, checks=checks)
    problems = in_causal_order([*problems, *_start_problems(units, strict)])
    errors, warnings, line = _summary(len(units), problems)
    if json:
        doc = {
            "units": sorted(u.name for u in units),
            "problems": [p.to_dict() for p in problems],
            "loaded": len(units),
            "errors": errors,
            "warnings": warnings,
        }
        print(_json.dumps(doc, indent=2), file=out)
    else:
        for p in problems:
            print(p, file=out)
        print(line, file=out)
    return 1 if errors else 0


def _start_problems(units, strict: bool) -> list[Problem]:
    """What starting each unit would meet (units/deps.py check): a needed unit that does
    not exist, an ordering cycle — as systemd-analyze verify reports them."""
    from activator.units.deps import Graph, check

    out = []
    for name, severity, message in check(units, Graph(units)):
        unit = units.get(name)
        path = unit.path if unit else name
        error = strict or severity == "error"
        out.append(Problem(path, None, None, message, "error" if error else "warning", name))
    return out


def run_import(
    files: list[str],
    outdir: str | None = None,
    *,
    fmt: Format = "toml",
    out: TextIO | None = None,
) -> int:
    """Write each unit file (drop-ins beside it merged) as TOML, or with ``fmt="ini"`` in
    systemd's syntax, into ``outdir``; the text of every value is kept (units/export.py).

    Output names are ``NAME.socket.toml`` … (``NAME.socket`` for INI) in ``outdir``
    (default: the current directory, created if missing). An existing file is **never
    overwritten**: that unit is reported and skipped (remove the file first). Units are
    converted one by one, without pairing checks, so a socket can be imported without
    its service. Problems are printed; a unit with errors is not written.

    Exit code: 0 when every file was written, 1 if any was refused or failed.
    """
    from ..units.errors import UnitError
    from ..units.export import export_unit
    from ..units.loader import load_source

    out = out or sys.stdout
    outdir = outdir or "."
    status = 0
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as e:
        print(f"{outdir}: cannot create directory: {e.strerror}", file=out)
        return 1
    for path in files:
        unit, problems, entries = load_source(path)
        for p in problems:
            print(p, file=out)
        if unit is None:
            print(f"{path}: not imported (fix the errors above)", file=out)
            status = 1
            continue
        target = os.path.join(outdir, unit.name + (".toml" if fmt == "toml" else ""))
        try:
            text = export_unit(unit.name, entries, fmt, source=path)
        except UnitError as e:
            print(f"{e}; {path}: not imported", file=out)
            status = 1
            continue
        try:
            # "x": exclusive creation, so an existing file is never clobbered (no race).
            with open(target, "x", encoding="utf-8") as f:
                f.write(text)
        except FileExistsError:
            print(f"{target}: already exists, not overwritten", file=out)
            status = 1
            continue
        except OSError as e:
            print(f"{target}: cannot write: {e.strerror}", file=out)
            status = 1
            continue
        print(f"{path} -> {target}", file=out)
    return status

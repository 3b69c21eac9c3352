"""Load units: read each file with its drop-ins, build it, check the set, make a UnitSet.

Load-path semantics follow systemd's, scaled down to the paths given: a directory
contributes every ``*.socket``/``*.service`` file (``.toml`` for the TOML form); the
first path that has a unit name wins; drop-ins ``NAME.d/*.conf`` and
``NAME.d/*.conf.toml`` are looked up in every directory given (and beside a file given
directly), together with the template's (``foo@.service.d``), the dashed prefixes'
(``foo-.service.d``) and the type's (``service.d``), applied in file-name order.
A symlink to another unit name is an alias; to /dev/null, a masked unit. Other unit
types (.target, .timer, …) in a directory are skipped silently: activator runs sockets
and services only; named explicitly, such a file is an error.

The steps live beside this module: discover.py (which files), pairing.py (aliases,
sockets and their services), unitset.py (the result); this one reads and builds.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence

from .build import build_unit, field_origins
from .discover import KINDS, _DirCache, _discover, _unit_name_of, find_dropins, read_entries
from .errors import Problem, UnitError, internal_problem
from .ini import Entry
from .model import ServiceUnit, SocketUnit
from .names import parse_unit_name
from .pairing import Unit, _collect_aliases, _pair
from .specifiers import uses_instance
from .unitset import UnitSet, _Raw


def read_unit(
    name: str, path: str, search_dirs: Sequence[str], dirs: _DirCache | None = None
) -> tuple[list[Entry], list[str], list[UnitError]]:
    """A unit's fragment and drop-ins → entries (in application order), drop-in paths, errors."""
    entries, errors = read_entries(path)
    dropins = find_dropins(name, search_dirs, dirs or _DirCache())
    for d in dropins:
        e2, err2 = read_entries(d)
        entries.extend(e2)
        errors.extend(err2)
    return entries, dropins, errors


def load_one(path: str, *, strict: bool = False) -> tuple[Unit | None, list[Problem]]:
    """Load a single unit file (with its drop-ins beside it), without cross-unit checks.

    This is what ``activatorctl import`` converts.
    """
    fname = os.path.basename(path)
    name = _unit_name_of(fname)
    parsed = parse_unit_name(name)
    if parsed is None or parsed.suffix not in KINDS:
        return None, [
            Problem(path, None, None, "not a .socket or .service unit file name", "error", None)
        ]
    try:
        entries, dropins, errors = read_unit(name, path, [os.path.dirname(path) or "."])
        return _build(name, path, entries, dropins, errors, strict)[:2]
    except Exception as e:  # a bug; see internal_problem()
        return None, [internal_problem(path, name, e)]


def _build(
    name: str,
    path: str,
    entries: list[Entry],
    dropins: list[str],
    errors: list[UnitError],
    strict: bool,
) -> tuple[Unit | None, list[Problem], _Raw]:
    fragment = os.path.abspath(path)
    if errors:
        unit, problems = None, []
        # Still run the builder: it reports the directive errors too, in one pass.
        _, problems = build_unit(name, entries, fragment=fragment, verify=False)
    else:
        unit, problems = build_unit(
            name,
            entries,
            fragment=fragment,
            dropins=[os.path.abspath(d) for d in dropins],
            model_path=fragment,
        )
    out = [e.problem(path, name) for e in errors] + [p.problem(path, name) for p in problems]
    if strict and any(p.severity == "warning" for p in out):
        out = [p.as_error() for p in out]
        unit = None
    raw = _Raw(
        entries=tuple(entries),
        fragment=fragment,
        dropins=tuple(os.path.abspath(d) for d in dropins),
        instance_dependent=any(_uses_instance(e.value) for e in entries),
    )
    return unit, out, raw


def _uses_instance(value: object) -> bool:
    if isinstance(value, str):
        return "%" in value and uses_instance(value)
    if isinstance(value, dict):  # TOML's Environment table: strings, one level deep
        return any(isinstance(v, str) and _uses_instance(v) for v in value.values())
    return False


def load_units(
    paths: Sequence[str | os.PathLike[str]], *, strict: bool = False
) -> tuple[UnitSet, list[Problem]]:
    """Load every unit in ``paths`` (directories and/or files). Never raises for bad input.

    Bad units are left out and reported; the good ones load. With ``strict`` a warning
    refuses its unit like an error. Problems come sorted by file and line. Should
    activator itself fail on a unit (a bug: tests/fuzz looks for those), that unit is
    refused with an "internal error" problem and the others still load.
    """
    # A load allocates many small objects that live on; the collection passes their
    # count triggers find nothing to free and cost ~20% of the time for 1,000 units.
    # Any cycle made meanwhile is collected by the first pass after the load.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _load_units(paths, strict)
    except Exception as e:  # a bug past the per-unit net: load nothing, say why
        where = ", ".join(map(str, paths)) or "."
        return UnitSet({}, {}, {}, {}, {}, {}), [internal_problem(where, None, e)]
    finally:
        if gc_was_enabled:
            gc.enable()


def _load_units(
    paths: Sequence[str | os.PathLike[str]], strict: bool
) -> tuple[UnitSet, list[Problem]]:
    problems: list[Problem] = []
    dirs = _DirCache()
    sources, link_aliases, search_dirs, instance_dirs = _discover(paths, problems, dirs)

    built: dict[str, Unit] = {}
    failed: set[str] = set()
    raw: dict[str, _Raw] = {}
    origins: dict[str, dict[tuple[str, str], Entry]] = {}
    for name, src in sources.items():
        try:
            entries, dropins, errors = read_unit(name, src.path, search_dirs, dirs)
            unit, probs, r = _build(name, src.path, entries, dropins, errors, strict)
        except Exception as e:  # a bug; this unit is refused, the others load
            problems.append(internal_problem(src.path, name, e))
            failed.add(name)
            continue
        problems.extend(probs)
        if unit is None:
            failed.add(name)
            continue
        built[name] = unit
        if "@." in name:
            raw[name] = r
        origins[name] = field_origins(entries)

    # Drop-ins for single instances ("echo@special.service.d/") of loaded templates.
    instance_dropins: dict[str, tuple[Entry, ...]] = {}
    for inst in instance_dirs:
        p = parse_unit_name(inst)
        if p is None or p.template not in built or inst in sources:
            continue
        entries: list[Entry] = []
        for d in find_dropins(inst, search_dirs, dirs):
            if os.path.dirname(d).endswith(f"/{inst}.d"):
                e, errs = read_entries(d)
                entries.extend(e)
                problems.extend(x.problem(d, inst) for x in errs)
        instance_dropins[inst] = tuple(entries)

    aliases = _collect_aliases(built, failed, link_aliases, sources, origins, problems)
    _pair(built, failed, aliases, origins, sources, problems, strict)

    sockets = {n: u for n, u in built.items() if isinstance(u, SocketUnit) and "@." not in n}
    socket_templates = {n: u for n, u in built.items() if isinstance(u, SocketUnit) and "@." in n}
    services = {n: u for n, u in built.items() if isinstance(u, ServiceUnit)}
    unitset = UnitSet(sockets, services, socket_templates, aliases, raw, instance_dropins)
    problems.sort(key=_problem_order)
    return unitset, problems


def _problem_order(p: Problem) -> tuple[str, int]:
    if isinstance(p.where, int):
        return (p.path, p.where)
    return (p.path, -1 if p.where is None else 1 << 30)

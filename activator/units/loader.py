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
from collections import deque
from collections.abc import Collection, Sequence

from .build import build_unit, field_origins
from .checks import UnitChecks
from .discover import (
    KINDS,
    _DirCache,
    _discover,
    _Source,
    _unit_name_of,
    find_dropins,
    read_entries,
)
from .errors import Problem, UnitError, in_causal_order, internal_problem
from .ini import Entry, read_ini
from .model import PLACEHOLDER_KINDS, PlaceholderUnit, ServiceUnit, SocketUnit, TargetUnit
from .names import parse_unit_name
from .pairing import Unit, _collect_aliases, _implied_service, _pair
from .specifiers import uses_instance
from .targets import BOOT_TARGETS, BUILTIN_TARGETS, DEFAULT_TARGET, is_plumbing
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


def load_one(
    path: str, *, strict: bool = False, checks: UnitChecks | None = None
) -> tuple[Unit | None, list[Problem]]:
    """Load a single unit file (with its drop-ins beside it), without cross-unit checks."""
    unit, problems, _ = load_source(path, strict=strict, checks=checks)
    return unit, problems


def load_source(
    path: str, *, strict: bool = False, checks: UnitChecks | None = None
) -> tuple[Unit | None, list[Problem], tuple[Entry, ...]]:
    """``load_one()``, and the entries the unit was built from (fragment, then drop-ins):
    what ``activatorctl import`` converts."""
    fname = os.path.basename(path)
    name = _unit_name_of(fname)
    parsed = parse_unit_name(name)
    if parsed is None or parsed.suffix not in KINDS:
        return (
            None,
            [Problem(path, None, None, "not a .socket or .service unit file name", "error", None)],
            (),
        )
    try:
        entries, dropins, errors = read_unit(name, path, [os.path.dirname(path) or "."])
        unit, problems, raw = _build(name, path, entries, dropins, errors, strict, checks)
        return unit, problems, raw.entries
    except Exception as e:  # a bug; see internal_problem()
        return None, [internal_problem(path, name, e)], ()


def _build(
    name: str,
    path: str,
    entries: list[Entry],
    dropins: list[str],
    errors: list[UnitError],
    strict: bool,
    checks: UnitChecks | None = None,
) -> tuple[Unit | None, list[Problem], _Raw]:
    fragment = os.path.abspath(path)
    unit: Unit | None = None
    if any(e.severity == "error" for e in errors):
        # Still run the builder: it reports the directive errors too, in one pass.
        _, problems = build_unit(name, entries, fragment=fragment, verify=False, checks=checks)
    else:
        unit, problems = build_unit(
            name,
            entries,
            fragment=fragment,
            dropins=[os.path.abspath(d) for d in dropins],
            model_path=fragment,
            checks=checks,
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
    paths: Sequence[str | os.PathLike[str]],
    *,
    strict: bool = False,
    roots: Collection[str] | None = None,
    also: Collection[str] = (),
    install: bool = False,
    plumbing: bool = False,
    checks: UnitChecks | None = None,
) -> tuple[UnitSet, list[Problem]]:
    """Load the units in ``paths`` (directories and/or files). Never raises for bad input.

    ``roots`` None: every unit found, and what they name; else only the units ``roots``
    reach through their dependencies (systemd's load on demand: a search path holds
    hundreds of units, a boot needs the closure of default.target); ``also`` adds roots
    (units asked for by name since, such as an instance). Either way the
    standard targets are there (built in where the paths have none) and units of types
    a container does not have are placeholders. ``install``: a unit whose [Install]
    names a boot target (targets.BOOT_TARGETS) is wanted by it, as if enabled.
    ``plumbing``: systemd's own services and sockets (targets.PLUMBING) are placeholders
    (systemd mode: they come with the search path, not from the operator). ``checks``
    looks at each unit file's processes against this machine (checks.py).

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
        return _Load(paths, strict, install, plumbing, checks).run(roots, also)
    except Exception as e:  # a bug past the per-unit net: load nothing, say why
        where = ", ".join(map(str, paths)) or "."
        return UnitSet({}, {}, {}, {}, {}, {}), [internal_problem(where, None, e)]
    finally:
        if gc_was_enabled:
            gc.enable()


class _Load:
    """One load: discover the files, then build units breadth-first from the roots."""

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        strict: bool,
        install: bool,
        plumbing: bool = False,
        checks: UnitChecks | None = None,
    ) -> None:
        self.plumbing = plumbing
        self.checks = checks
        self.problems: list[Problem] = []
        self.dirs = _DirCache()
        self.found = _discover(paths, self.problems, self.dirs)
        self.strict = strict
        self.install = install
        self.built: dict[str, Unit] = {}
        self.failed: set[str] = set()
        self.raw: dict[str, _Raw] = {}
        self.origins: dict[str, dict[tuple[str, str], Entry]] = {}
        self.placeholders: dict[str, PlaceholderUnit] = {}
        self.masked: set[str] = set()
        self.not_found: set[str] = set()
        self.dep_dirs = {
            k: {d: set(v) for d, v in m.items()} for k, m in self.found.dep_dirs.items()
        }
        self.instance_dropins: dict[str, tuple[Entry, ...]] = {}
        self._seen: set[str] = set()
        self._todo: deque[str] = deque()
        self._referrer: dict[str, str] = {}  # a name → the file of a unit that named it

    def run(
        self, roots: Collection[str] | None, also: Collection[str] = ()
    ) -> tuple[UnitSet, list[Problem]]:
        found = self.found
        if roots is None:
            roots = [*found.sources, *found.placeholders, *found.masked]
        self._todo.extend(sorted({*roots, *also}))
        self._todo.append("default.target")
        while self._todo:
            name = self._todo.popleft()
            try:
                self._one(name)
            except Exception as e:  # a bug; this unit is refused, the others load
                src = self.found.sources.get(name)
                self.problems.append(internal_problem(src.path if src else name, name, e))
                self.failed.add(name)
                self._seen.add(name)
        for inst in found.instance_dirs:  # for instances made later (Accept=yes)
            p = parse_unit_name(inst)
            if p is not None and p.template in self.built and inst not in self.instance_dropins:
                self._instance_dropins(inst)
        sources = dict(found.sources)
        for name, unit in self.built.items():  # instances and built-in targets: no file
            sources.setdefault(name, _Source(name, unit.path, ""))
        aliases = _collect_aliases(
            self.built, self.failed, found.link_aliases, sources, self.origins, self.problems
        )
        _pair(
            self.built,
            self.failed,
            aliases,
            self.origins,
            sources,
            self.problems,
            self.strict,
            masked=found.masked,
        )
        b = self.built
        unitset = UnitSet(
            {n: u for n, u in b.items() if isinstance(u, SocketUnit) and "@." not in n},
            {n: u for n, u in b.items() if isinstance(u, ServiceUnit)},
            {n: u for n, u in b.items() if isinstance(u, SocketUnit) and "@." in n},
            aliases,
            self.raw,
            self.instance_dropins,
            targets={n: u for n, u in b.items() if isinstance(u, TargetUnit)},
            placeholders=self.placeholders,
            masked=self.masked,
            not_found=self.not_found,
            dep_dirs={
                k: {d: tuple(sorted(v)) for d, v in m.items()} for k, m in self.dep_dirs.items()
            },
        )
        return unitset, in_causal_order(self.problems)

    # ------------------------------------------------------------ one name
    def _one(self, name: str) -> None:
        found = self.found
        name = found.link_aliases.get(name, name)
        if name in self._seen:
            return
        p = parse_unit_name(name)
        if p is None:
            return
        if name in found.masked:
            self._seen.add(name)
            self.masked.add(name)
            self.problems.append(
                Problem(found.masked[name], None, None, "masked (symlink to /dev/null): not loaded",
                        "warning", name)
            )  # fmt: skip
            return
        if p.suffix in PLACEHOLDER_KINDS or (self.plumbing and is_plumbing(name)):
            self._seen.add(name)
            self._placeholder(name, p.suffix)
            return
        if p.suffix not in KINDS:
            self._seen.add(name)
            return
        if p.instance and name not in found.sources:
            self._instance(name, p.template)
            return
        self._seen.add(name)
        src = found.sources.get(name)
        if src is not None:
            entries, dropins, errors = read_unit(name, src.path, found.search_dirs, self.dirs)
            path = src.path
        elif name in BUILTIN_TARGETS:
            self._builtin(name)
            return
        elif name == "default.target":
            self._todo.append(DEFAULT_TARGET)  # no default.target symlink (UnitSet.resolve)
            return
        else:
            self.not_found.add(name)
            return
        unit, probs, r = _build(name, path, entries, dropins, errors, self.strict, self.checks)
        self.problems.extend(probs)
        if unit is None:
            self.failed.add(name)
            return
        self._add(name, unit, entries)
        if "@." in name:
            self.raw[name] = r

    def _builtin(self, name: str) -> None:
        """A standard target the paths do not have (targets.py), with its drop-ins."""
        entries, _ = read_ini(BUILTIN_TARGETS[name], f"<built-in {name}>")
        dropins = find_dropins(name, self.found.search_dirs, self.dirs)
        for d in dropins:
            more, errors = read_entries(d)
            entries.extend(more)
            self.problems.extend(e.problem(d, name) for e in errors)
        unit, probs = build_unit(name, entries, fragment="", dropins=dropins, model_path="")
        self.problems.extend(p.problem(dropins[0] if dropins else name, name) for p in probs)
        if unit is None:
            self.failed.add(name)
        else:
            self._add(name, unit, entries)

    def _add(self, name: str, unit: Unit, entries: Sequence[Entry]) -> None:
        self.built[name] = unit
        self.origins[name] = field_origins(entries)
        if "@." in name:  # a template runs as its instances: they pull in their own
            if self.install:
                self._install(name, unit)
            return
        refs = sorted(references(unit))
        for ref in refs:
            self._referrer.setdefault(ref, unit.path)
        self._todo.extend(refs)
        for members in self.dep_dirs.get(name, {}).values():
            self._todo.extend(sorted(members))
        p = parse_unit_name(name)
        if p is not None and p.instance:  # the template's directories apply to each instance
            for directive, members in self.dep_dirs.get(p.template, {}).items():
                mine = self.dep_dirs.setdefault(name, {}).setdefault(directive, set())
                mine |= members
                self._todo.extend(sorted(members))
        if self.install and not (p is not None and p.instance):  # an instance is not a file
            self._install(name, unit)

    def _install(self, name: str, unit: Unit) -> None:
        """[Install] as if enabled: wanted (required, upheld) by the boot targets it names;
        a template by its DefaultInstance=."""
        inst = unit.Install
        if "@." in name:
            if not inst.DefaultInstance:
                return
            name = name.replace("@.", f"@{inst.DefaultInstance}.", 1)
        for directive, targets in (
            ("Wants", inst.WantedBy),
            ("Requires", inst.RequiredBy),
            ("Upholds", inst.UpheldBy),
        ):
            for target in targets:
                if target in BOOT_TARGETS:
                    self.dep_dirs.setdefault(target, {}).setdefault(directive, set()).add(name)
                    self._todo.extend((target, name))

    def _instance(self, name: str, template: str) -> None:
        """``foo@bar.socket`` named by a dependency: the template, made for ``bar``."""
        template = self.found.link_aliases.get(template, template)
        self._one(template)  # the template first (a no-op when it is done already)
        if name in self._seen:
            return
        self._seen.add(name)
        t = self.built.get(template)
        if t is None:
            self.not_found.add(name)
            return
        dropins = self._instance_dropins(name)
        raw = self.raw[template]
        unit, probs = build_unit(
            name,
            raw.entries + dropins,
            fragment=raw.fragment,
            dropins=raw.dropins,
            model_path=t.path,
        )
        self.problems.extend(x.problem(raw.fragment, name) for x in probs)
        if unit is None:
            self.failed.add(name)
            return
        self._add(name, unit, raw.entries)

    def _instance_dropins(self, inst: str) -> tuple[Entry, ...]:
        """Drop-ins for one instance ("echo@special.service.d/")."""
        found: list[Entry] = []
        for d in find_dropins(inst, self.found.search_dirs, self.dirs):
            if os.path.dirname(d).endswith(f"/{inst}.d"):
                e, errs = read_entries(d)
                found.extend(e)
                self.problems.extend(x.problem(d, inst) for x in errs)
        if found:
            self.instance_dropins[inst] = tuple(found)
        return tuple(found)

    def _placeholder(self, name: str, kind: str) -> None:
        src = self.found.sources.get(name)
        path = self.found.placeholders.get(name) or (src.path if src else "")
        self.placeholders[name] = PlaceholderUnit.model_validate(
            {"name": name, "path": path, "kind": kind}
        )
        why = (
            f"systemd's own {name} is not run in a container"
            if kind in ("service", "socket")
            else f".{kind} units do not exist in a container"
        )
        where = path or self._referrer.get(name) or name
        self.problems.append(
            Problem(where, None, None, f"{why}: {name} counts as present", "warning", name)
        )


def references(unit: Unit) -> set[str]:
    """The units loading ``unit`` pulls in: what it requires, wants, binds to, is part of,
    upholds or starts on failure/success, its service (a socket), its Sockets= (a service).
    Ordering (After=, Before=) and Conflicts= do not load a unit."""
    u = unit.Unit
    refs = {*u.Requires, *u.Requisite, *u.Wants, *u.BindsTo, *u.PartOf, *u.Upholds,
            *u.OnFailure, *u.OnSuccess}  # fmt: skip
    if isinstance(unit, SocketUnit):
        refs.add(_implied_service(unit))
    elif isinstance(unit, ServiceUnit):
        refs.update(unit.Service.Sockets)
    return refs

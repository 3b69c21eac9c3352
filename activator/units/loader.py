"""Find unit files, read them with their drop-ins, build them, pair sockets with services.

Load-path semantics follow systemd's, scaled down to the paths given: a directory
contributes every ``*.socket``/``*.service`` file (``.toml`` for the TOML form); the
first path that has a unit name wins; drop-ins ``NAME.d/*.conf`` and
``NAME.d/*.conf.toml`` are looked up in every directory given (and beside a file given
directly), together with the template's (``foo@.service.d``), the dashed prefixes'
(``foo-.service.d``) and the type's (``service.d``), applied in file-name order.
A symlink to another unit name is an alias; to /dev/null, a masked unit. Other unit
types (.target, .timer, …) in a directory are skipped silently: activator runs sockets
and services only; named explicitly, such a file is an error.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from .build import build_unit, field_origins
from .errors import Problem, UnitError
from .ini import Entry, read_ini
from .model import ServiceUnit, SocketUnit
from .names import is_valid_instance, parse_unit_name
from .specifiers import uses_instance
from .toml_reader import read_toml

Unit = SocketUnit | ServiceUnit
KINDS = ("socket", "service")


@dataclass(frozen=True, slots=True)
class _Source:
    name: str
    path: str  # as found (given path joined with the file name)
    directory: str


@dataclass(frozen=True, slots=True)
class _Raw:
    """A template's parsed text, kept to build instances that use %i and friends."""

    entries: tuple[Entry, ...]
    fragment: str
    dropins: tuple[str, ...]
    instance_dependent: bool


# ---------------------------------------------------------------- reading files


def read_entries(path: str) -> tuple[list[Entry], list[UnitError]]:
    """Read one unit file or drop-in, INI or TOML by its name. Never raises."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return [], [UnitError(f"cannot read: {e.strerror}", path=path)]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return [], [UnitError(f"not valid UTF-8 ({e.reason} at byte {e.start})", path=path)]
    if path.endswith(".toml"):
        return read_toml(text, path)
    return read_ini(text, path)


def _unit_name_of(filename: str) -> str:
    return filename[:-5] if filename.endswith(".toml") else filename


def dropin_dir_names(name: str) -> list[str]:
    """Drop-in directory names for ``name``, lowest precedence first (systemd's order)."""
    parsed = parse_unit_name(name)
    if parsed is None:
        return [name + ".d"]
    prefix, instance, suffix = parsed
    out = [f"{suffix}.d"]
    parts = prefix.split("-")
    for i in range(1, len(parts)):
        out.append("-".join(parts[:i]) + f"-.{suffix}.d")
    if instance:
        out.append(f"{prefix}@.{suffix}.d")
    out.append(f"{name}.d")
    return out


class _DirCache:
    """Directory listings, read once per load (drop-in lookups are mostly misses)."""

    def __init__(self) -> None:
        self._cache: dict[str, frozenset[str]] = {}

    def names(self, d: str) -> frozenset[str]:
        hit = self._cache.get(d)
        if hit is None:
            try:
                hit = frozenset(os.listdir(d))
            except OSError:
                hit = frozenset()
            self._cache[d] = hit
        return hit


def find_dropins(name: str, search_dirs: Sequence[str], dirs: _DirCache) -> list[str]:
    """Drop-in files for ``name``: sorted by file name; for equal names, the most
    specific directory and the earliest search path win."""
    chosen: dict[str, str] = {}
    dnames = dropin_dir_names(name)
    for base in reversed(search_dirs):
        listing = dirs.names(base)
        for dn in dnames:
            if dn not in listing:
                continue
            d = os.path.join(base, dn)
            for f in dirs.names(d):
                if f.endswith((".conf", ".conf.toml")):
                    chosen[f] = os.path.join(d, f)
    return [chosen[f] for f in sorted(chosen)]


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
    entries, dropins, errors = read_unit(name, path, [os.path.dirname(path) or "."])
    return _build(name, path, entries, dropins, errors, strict)[:2]


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
    if isinstance(value, dict):
        return any(_uses_instance(v) for v in value.values())
    return False


# ---------------------------------------------------------------- the unit set


class UnitSet:
    """The immutable result of a load: units by name, aliases, pairing and instances."""

    __slots__ = (
        "sockets", "services", "socket_templates", "aliases", "_raw", "_instance_dropins",
        "_triggered_by",
    )  # fmt: skip
    sockets: Mapping[str, SocketUnit]  # "web.socket" → unit (templates excluded)
    services: Mapping[str, ServiceUnit]  # "web.service", templates as "echo@.service"
    socket_templates: Mapping[str, SocketUnit]  # "foo@.socket"
    aliases: Mapping[str, str]  # Alias= (and symlink) name → real unit name

    def __init__(
        self,
        sockets: dict[str, SocketUnit],
        services: dict[str, ServiceUnit],
        socket_templates: dict[str, SocketUnit],
        aliases: dict[str, str],
        raw: dict[str, _Raw],
        instance_dropins: dict[str, tuple[Entry, ...]],
    ) -> None:
        setattr_ = object.__setattr__  # the instance is read-only once built
        setattr_(self, "sockets", MappingProxyType(dict(sorted(sockets.items()))))
        setattr_(self, "services", MappingProxyType(dict(sorted(services.items()))))
        # Templates of sockets ("foo@.socket") are validated but cannot be started by
        # themselves, so they are kept apart from ``sockets`` (what the daemon binds).
        setattr_(self, "socket_templates", MappingProxyType(dict(sorted(socket_templates.items()))))
        setattr_(self, "aliases", MappingProxyType(dict(sorted(aliases.items()))))
        setattr_(self, "_raw", raw)
        setattr_(self, "_instance_dropins", instance_dropins)
        triggered: dict[str, list[str]] = {}
        for sname in self.sockets:
            triggered.setdefault(self.service_of(sname), []).append(sname)
        for svc in self.services.values():
            for s in svc.Service.Sockets:
                real = self.resolve(s)
                lst = triggered.setdefault(svc.name, [])
                if real in self.sockets and real not in lst:
                    lst.append(real)
        setattr_(self, "_triggered_by", {k: tuple(v) for k, v in triggered.items()})

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("UnitSet is immutable")

    def __len__(self) -> int:
        return len(self.sockets) + len(self.services) + len(self.socket_templates)

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield from self.sockets.values()
        yield from self.socket_templates.values()
        yield from self.services.values()

    def resolve(self, name: str) -> str:
        """The real name behind an alias (also for instances of an aliased template)."""
        real = self.aliases.get(name)
        if real is not None:
            return real
        p = parse_unit_name(name)
        if p is not None and p.instance:
            t = self.aliases.get(p.template)
            if t is not None:
                return t.replace("@.", f"@{p.instance}.", 1)
        return name

    def get(self, name: str) -> Unit | None:
        """A unit by name, alias or instance name ("echo@x.service" → instantiated)."""
        name = self.resolve(name)
        unit = self.sockets.get(name) or self.services.get(name) or self.socket_templates.get(name)
        if unit is not None:
            return unit
        p = parse_unit_name(name)
        if (
            p is not None
            and p.instance
            and (p.template in self.services or p.template in self.socket_templates)
        ):
            try:
                return self.instantiate(p.template, p.instance)
            except UnitError:
                return None
        return None

    def service_of(self, socket: str) -> str:
        """The service a socket triggers: Service=, else NAME.service, else (Accept=yes)
        NAME@.service; alias-resolved. KeyError if there is no such socket."""
        socket = self.resolve(socket)
        s = self.sockets.get(socket) or self.socket_templates.get(socket)
        if s is None:
            raise KeyError(socket)
        return self.resolve(_implied_service(s))

    def sockets_of(self, service: str) -> tuple[str, ...]:
        """Socket units whose fds this service gets: those that trigger it (by name order),
        then its own Sockets= in the order listed. For an instance without its own entry,
        those of its template (Accept=yes: the socket that accepted the connection is one
        of them)."""
        service = self.resolve(service)
        hit = self._triggered_by.get(service)
        if hit is not None:
            return hit
        p = parse_unit_name(service)
        if p is not None and p.instance:
            return self._triggered_by.get(p.template, ())
        return ()

    def instances_share_template(self, template: str) -> bool:
        """Whether every instance of ``template`` is the template under another name: no
        instance-dependent specifier, no instance drop-in (instantiate()'s fast path)."""
        raw = self._raw.get(template)
        if raw is None or raw.instance_dependent:
            return False
        prefix = template[: template.index("@") + 1]
        return not any(name.startswith(prefix) for name in self._instance_dropins)

    def instantiate(self, template: str, instance: str) -> ServiceUnit:
        """The instance ``instance`` of a template ("echo@.service") as its own unit.

        Hot path of Accept=yes (once per connection): when neither the template's text
        nor its drop-ins use an instance-dependent specifier (%i %I %n %N %f) and there
        is no instance drop-in, the template's model is copied with the new name;
        otherwise the unit is built again from the cached entries.
        Raises KeyError for an unknown template, UnitError for an invalid instance name
        or an instance whose expanded values are invalid.
        """
        t = self.services.get(template) or self.socket_templates.get(template)
        if t is None:
            raise KeyError(template)
        if not is_valid_instance(instance):
            raise UnitError(f'"{instance}": invalid instance name', unit=template)
        name = template.replace("@.", f"@{instance}.", 1)
        raw = self._raw[template]
        extra = self._instance_dropins.get(name)
        if not raw.instance_dependent and extra is None:
            return t.model_copy(update={"name": name})  # type: ignore[return-value]
        entries = raw.entries + (extra or ())
        unit, problems = build_unit(
            name, entries, fragment=raw.fragment, dropins=raw.dropins, model_path=t.path
        )
        if unit is None:
            first = next(p for p in problems if p.severity == "error")
            raise first
        return unit  # type: ignore[return-value]


def _implied_service(s: SocketUnit) -> str:
    if s.Socket.Service:
        return s.Socket.Service
    p = parse_unit_name(s.name)
    assert p is not None
    if s.Socket.Accept:
        return f"{p.prefix}@.service"
    if p.instance is not None:
        return f"{p.prefix}@{p.instance}.service"
    return f"{p.prefix}.service"


# ---------------------------------------------------------------- load_units


def _discover(
    paths: Iterable[str | os.PathLike[str]], problems: list[Problem], dirs: _DirCache
) -> tuple[dict[str, _Source], dict[str, str], list[str], list[str]]:
    """Unit files by name (first wins), symlink aliases, drop-in search dirs and the
    names of instance drop-in dirs ("foo@bar.service.d")."""
    sources: dict[str, _Source] = {}
    link_aliases: dict[str, str] = {}
    search_dirs: list[str] = []
    seen_real: set[str] = set()

    def add(path: str, directory: str, explicit: bool) -> None:
        fname = os.path.basename(path)
        name = _unit_name_of(fname)
        parsed = parse_unit_name(name)
        if parsed is None and name.endswith((".socket", ".service")):
            problems.append(Problem(path, None, None, "not a valid unit name", "error", None))
            return
        if parsed is None or parsed.suffix not in KINDS:
            if explicit:
                problems.append(
                    Problem(path, None, None, "not a .socket or .service unit file", "error", None)
                )
            return
        if os.path.islink(path):
            real = os.path.realpath(path)
            if real == "/dev/null":
                problems.append(
                    Problem(
                        path,
                        None,
                        None,
                        "masked (symlink to /dev/null): not loaded",
                        "warning",
                        name,
                    )
                )
                return
            if not os.path.exists(real):
                msg = f"dangling symlink to {os.readlink(path)}"
                problems.append(Problem(path, None, None, msg, "error", name))
                return
            target = _unit_name_of(os.path.basename(real))
            if target != name:
                if parse_unit_name(target) is None or target.rsplit(".", 1)[-1] != parsed.suffix:
                    problems.append(
                        Problem(
                            path,
                            None,
                            None,
                            f"symlink to {real}: not a unit of the same type",
                            "error",
                            name,
                        )
                    )
                    return
                link_aliases[name] = target
                if target not in sources:
                    pending.append((real, os.path.dirname(real)))
                return
        real = os.path.realpath(path)
        if real in seen_real:
            return
        seen_real.add(real)
        if name in sources:
            other = sources[name]
            if other.directory == directory:
                problems.append(
                    Problem(
                        path,
                        None,
                        None,
                        f"{name} is defined twice: {other.path} and {path}",
                        "error",
                        name,
                    )
                )
            return  # an earlier path shadows this one, as in systemd's load path
        sources[name] = _Source(name, path, directory)

    pending: list[tuple[str, str]] = []
    instance_dirs: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            search_dirs.append(p)
            for fname in sorted(dirs.names(p)):
                full = os.path.join(p, fname)
                if fname.endswith(".d"):
                    u = parse_unit_name(fname[:-2])
                    if u is not None and u.instance:
                        instance_dirs.append(fname[:-2])
                    continue
                if os.path.isdir(full):
                    continue
                add(full, p, explicit=False)
        elif os.path.exists(p) or os.path.islink(p):
            d = os.path.dirname(p) or "."
            if d not in search_dirs:
                search_dirs.append(d)
            add(p, d, explicit=True)
        else:
            problems.append(Problem(p, None, None, "no such file or directory", "error", None))
    for real, d in pending:
        name = _unit_name_of(os.path.basename(real))
        if name not in sources:
            sources[name] = _Source(name, real, d)
    return sources, link_aliases, search_dirs, instance_dirs


def load_units(
    paths: Sequence[str | os.PathLike[str]], *, strict: bool = False
) -> tuple[UnitSet, list[Problem]]:
    """Load every unit in ``paths`` (directories and/or files). Never raises for bad input.

    Bad units are left out and reported; the good ones load. With ``strict`` a warning
    refuses its unit like an error. Problems come sorted by file and line.
    """
    # A load allocates many small objects that live on; the collection passes their
    # count triggers find nothing to free and cost ~20% of the time for 1,000 units.
    # Any cycle made meanwhile is collected by the first pass after the load.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _load_units(paths, strict)
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
        entries, dropins, errors = read_unit(name, src.path, search_dirs, dirs)
        unit, probs, r = _build(name, src.path, entries, dropins, errors, strict)
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


def _collect_aliases(
    built: dict[str, Unit],
    failed: set[str],
    link_aliases: dict[str, str],
    sources: dict[str, _Source],
    origins: dict[str, dict[tuple[str, str], Entry]],
    problems: list[Problem],
) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for link, target in sorted(link_aliases.items()):
        if target in built:
            aliases[link] = target
    for name in sorted(built):
        unit = built[name]
        entry = origins[name].get(("Install", "Alias"))
        src = sources[name]
        own = parse_unit_name(name)
        assert own is not None
        mine: list[str] = []
        refused = False
        for alias in unit.Install.Alias:
            a = parse_unit_name(alias)
            msg = None
            if a is None or a.suffix != own.suffix:
                msg = f"{alias}: an alias must be a .{own.suffix} unit name"
            elif a.is_template != own.is_template:
                msg = f"{alias}: a template's alias must be a template, and only a template's"
            elif alias in built or alias in failed or alias in sources:
                msg = f"{alias}: there is already a unit of that name"
            elif aliases.get(alias, name) != name:
                msg = f"{alias}: already an alias of {aliases[alias]}"
            if msg:
                refused = True
                problems.append(
                    Problem(
                        entry.path if entry else src.path,
                        entry.where if entry else None,
                        "Alias",
                        msg,
                        "error",
                        name,
                    )
                )
            else:
                mine.append(alias)
        if refused:
            # An error refuses the unit, like any other: its names would be ambiguous.
            del built[name]
            failed.add(name)
            continue
        for alias in mine:
            aliases[alias] = name
    return aliases


def _pair(
    built: dict[str, Unit],
    failed: set[str],
    aliases: dict[str, str],
    origins: dict[str, dict[tuple[str, str], Entry]],
    sources: dict[str, _Source],
    problems: list[Problem],
    strict: bool,
) -> None:
    """Refuse sockets whose service is missing; warn about Sockets= naming no socket."""

    def resolve(n: str) -> str:
        if n in aliases:
            return aliases[n]
        p = parse_unit_name(n)
        if p is not None and p.instance and p.template in aliases:
            return aliases[p.template].replace("@.", f"@{p.instance}.", 1)
        return n

    def exists(n: str) -> str | None:
        """None if the service can be had; else why not."""
        if n in built:
            return None
        p = parse_unit_name(n)
        if p is not None and p.instance and p.template in built:
            return None
        missing = p.template if p is not None and p.instance else n
        if missing in failed or n in failed:
            return f"{missing} did not load (see its errors)"
        return f"{missing} does not exist"

    for name in sorted(built):
        unit = built[name]
        src = sources[name]
        if isinstance(unit, SocketUnit):
            svc = resolve(_implied_service(unit))
            why = exists(svc)
            if why is None:
                continue
            entry = origins[name].get(("Socket", "Service"))
            if unit.Socket.Service:
                msg = f"{name} triggers {svc}, but {why}"
            elif unit.Socket.Accept:
                msg = f"{name} has Accept=yes and so starts instances of {svc}, but {why}"
            else:
                msg = f"{name} triggers {svc} (same name), but {why}; set Service= to use another"
            problems.append(
                Problem(
                    entry.path if entry else src.path,
                    entry.where if entry else None,
                    "Service" if entry else None,
                    msg,
                    "error",
                    name,
                )
            )
            del built[name]
            failed.add(name)
    for name in sorted(built):
        unit = built[name]
        if isinstance(unit, ServiceUnit):
            for s in unit.Service.Sockets:
                real = resolve(s)
                if real in built and isinstance(built[real], SocketUnit):
                    continue
                entry = origins[name].get(("Service", "Sockets"))
                why = "did not load" if real in failed else "does not exist"
                problems.append(
                    Problem(
                        entry.path if entry else sources[name].path,
                        entry.where if entry else None,
                        "Sockets",
                        f"{s} {why}; {name} will not get its file descriptors",
                        "error" if strict else "warning",
                        name,
                    )
                )
                if strict:
                    del built[name]
                    failed.add(name)
                    break

"""Cross-unit checks of a load: aliases (Alias=, symlinks) and socket/service pairing.

A unit that passes its own checks can still be refused here: an alias that clashes with
another unit, a socket whose service is missing (systemd would fail it at start; we say
so at load). ``_implied_service`` (systemd's rule for the service a socket triggers,
src/core/socket.c) and ``resolve_alias`` are shared with UnitSet.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from .discover import _Source
from .errors import Problem
from .ini import Entry
from .model import ServiceUnit, SocketUnit, TargetUnit
from .names import parse_unit_name
from .suggest import closest

Unit = SocketUnit | ServiceUnit | TargetUnit


def resolve_alias(aliases: Mapping[str, str], name: str) -> str:
    """The real name behind an alias (also for instances of an aliased template)."""
    real = aliases.get(name)
    if real is not None:
        return real
    if not aliases or "@" not in name:
        return name  # (the common case, without parsing: a load resolves ~50 names a unit)
    p = parse_unit_name(name)
    if p is not None and p.instance:
        t = aliases.get(p.template)
        if t is not None:
            return t.replace("@.", f"@{p.instance}.", 1)
    return name


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
    masked: Collection[str] = (),
) -> None:
    """Refuse sockets whose service is missing; warn about Sockets= naming no socket. A
    socket whose service is masked loads: its traffic is refused at run time, as in
    systemd (a mask is an operator's decision, often a temporary one)."""
    for name in sorted(built):
        unit = built[name]
        src = sources[name]
        if isinstance(unit, SocketUnit):
            if unit.Socket.Metrics:
                continue  # activator serves it itself: no service behind it
            svc = resolve_alias(aliases, _implied_service(unit))
            if svc in masked:
                continue
            why = _why_missing(svc, built, failed, sources)
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
                    cause=_template_of(svc),
                )
            )
            del built[name]
            failed.add(name)
    for name in sorted(built):
        unit = built[name]
        if isinstance(unit, ServiceUnit):
            for s in unit.Service.Sockets:
                real = resolve_alias(aliases, s)
                if real in built and isinstance(built[real], SocketUnit):
                    continue
                entry = origins[name].get(("Service", "Sockets"))
                why = "did not load" if real in failed else "does not exist" + _guess(s, sources)
                problems.append(
                    Problem(
                        entry.path if entry else sources[name].path,
                        entry.where if entry else None,
                        "Sockets",
                        f"{s} {why}; {name} will not get its file descriptors",
                        "error" if strict else "warning",
                        name,
                        cause=real,
                    )
                )
                if strict:
                    del built[name]
                    failed.add(name)
                    break


def _why_missing(
    n: str, built: dict[str, Unit], failed: set[str], known: Collection[str] = ()
) -> str | None:
    """None if the service can be had (loaded, or an instance of a loaded template); else
    why not (with the name of a unit file ``n`` may misspell)."""
    if n in built:
        return None
    p = parse_unit_name(n)
    if p is not None and p.instance and p.template in built:
        return None
    missing = p.template if p is not None and p.instance else n
    if missing in failed or n in failed:
        return f"{missing} did not load (see its errors)"
    return f"{missing} does not exist" + _guess(missing, known)


def _template_of(name: str) -> str:
    p = parse_unit_name(name)
    return p.template if p is not None and p.instance else name


def _guess(name: str, known: Collection[str]) -> str:
    """ " (did you mean web.service?)" for a unit file name ``name`` may misspell."""
    suffix = name.rsplit(".", 1)[-1]
    guess = closest(name, [k for k in known if k.endswith("." + suffix) and k != name])
    return f" (did you mean {guess}?)" if guess else ""

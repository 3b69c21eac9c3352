"""``UnitSet``: the immutable result of a load, and instances of its templates.

It answers what the daemon asks of the units at run time: a unit by name, alias or
instance name, which service a socket triggers and which sockets' fds a service gets
(systemd's UNIT_TRIGGERS / UNIT_TRIGGERED_BY, computed once here), and
``instantiate``, the Accept=yes hot path, which keeps each template's parsed entries
(``_Raw``) so that an instance that needs its own values can be built without reading
files again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .build import build_unit
from .errors import UnitError
from .ini import Entry
from .model import PlaceholderUnit, ServiceUnit, SocketUnit, TargetUnit
from .names import is_valid_instance, parse_unit_name
from .pairing import Unit, _implied_service, resolve_alias
from .targets import DEFAULT_TARGET


@dataclass(frozen=True, slots=True)
class _Raw:
    """A template's parsed text, kept to build instances that use %i and friends."""

    entries: tuple[Entry, ...]
    fragment: str
    dropins: tuple[str, ...]
    instance_dependent: bool


class UnitSet:
    """The immutable result of a load: units by name, aliases, pairing and instances."""

    __slots__ = (
        "sockets", "services", "socket_templates", "aliases", "_raw", "_instance_dropins",
        "_triggered_by", "targets", "placeholders", "masked", "not_found", "dep_dirs",
    )  # fmt: skip
    sockets: Mapping[str, SocketUnit]  # "web.socket" → unit (templates excluded)
    services: Mapping[str, ServiceUnit]  # "web.service", templates as "echo@.service"
    socket_templates: Mapping[str, SocketUnit]  # "foo@.socket"
    aliases: Mapping[str, str]  # Alias= (and symlink) name → real unit name
    targets: Mapping[str, TargetUnit]  # from files, or built in (targets.py)
    placeholders: Mapping[str, PlaceholderUnit]  # .mount, .timer …: present, never run
    masked: frozenset[str]  # symlinks to /dev/null that something wanted
    not_found: frozenset[str]  # names something wanted that exist nowhere
    #: NAME.wants/, NAME.requires/, NAME.upholds/ (and, without --systemd, [Install] of the
    #: units that name a boot target): NAME → directive → the units they add
    dep_dirs: Mapping[str, Mapping[str, tuple[str, ...]]]
    _raw: dict[str, _Raw]  # templates as read, for instances whose text depends on %i
    _instance_dropins: dict[str, tuple[Entry, ...]]  # "echo@special.service.d/" drop-ins
    _triggered_by: dict[str, tuple[str, ...]]  # service → the sockets that trigger it

    def __init__(
        self,
        sockets: dict[str, SocketUnit],
        services: dict[str, ServiceUnit],
        socket_templates: dict[str, SocketUnit],
        aliases: dict[str, str],
        raw: dict[str, _Raw],
        instance_dropins: dict[str, tuple[Entry, ...]],
        *,
        targets: dict[str, TargetUnit] | None = None,
        placeholders: dict[str, PlaceholderUnit] | None = None,
        masked: Iterable[str] = (),
        not_found: Iterable[str] = (),
        dep_dirs: Mapping[str, Mapping[str, tuple[str, ...]]] | None = None,
    ) -> None:
        setattr_ = object.__setattr__  # the instance is read-only once built
        setattr_(self, "targets", MappingProxyType(dict(sorted((targets or {}).items()))))
        setattr_(self, "placeholders", MappingProxyType(dict(sorted((placeholders or {}).items()))))
        setattr_(self, "masked", frozenset(masked))
        setattr_(self, "not_found", frozenset(not_found))
        setattr_(self, "dep_dirs", MappingProxyType(dict(dep_dirs or {})))
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

    def with_units(self, other: UnitSet) -> UnitSet:
        """This set and the units of ``other`` it lacks (a load on demand): what is here
        already keeps its definition."""

        def merge(mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> dict[str, Any]:
            return {**theirs, **mine}

        dep_dirs = {k: dict(v) for k, v in self.dep_dirs.items()}
        for k, v in other.dep_dirs.items():
            for d, members in v.items():
                have = dep_dirs.setdefault(k, {}).get(d, ())
                dep_dirs[k][d] = tuple(sorted({*have, *members}))
        return UnitSet(
            merge(self.sockets, other.sockets),
            merge(self.services, other.services),
            merge(self.socket_templates, other.socket_templates),
            merge(self.aliases, other.aliases),
            merge(self._raw, other._raw),
            merge(self._instance_dropins, other._instance_dropins),
            targets=merge(self.targets, other.targets),
            placeholders=merge(self.placeholders, other.placeholders),
            masked=self.masked | other.masked,
            not_found=(self.not_found | other.not_found) - set(other.services) - set(other.sockets),
            dep_dirs=dep_dirs,
        )

    def with_instance(self, unit: SocketUnit | ServiceUnit) -> UnitSet:
        """This set and one instance made from one of its templates."""
        sockets, services = dict(self.sockets), dict(self.services)
        if isinstance(unit, SocketUnit):
            sockets[unit.name] = unit
        else:
            services[unit.name] = unit
        return UnitSet(
            sockets,
            services,
            dict(self.socket_templates),
            dict(self.aliases),
            self._raw,
            self._instance_dropins,
            targets=dict(self.targets),
            placeholders=dict(self.placeholders),
            masked=self.masked,
            not_found=self.not_found,
            dep_dirs=self.dep_dirs,
        )

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __iter__(self) -> Iterator[SocketUnit | ServiceUnit | TargetUnit | PlaceholderUnit]:
        """The units loaded from files of their own (not instances made from a template,
        not built-in targets)."""
        for group in (self.sockets, self.socket_templates, self.services, self.targets):
            for name, unit in group.items():
                if unit.path and ("@" not in name or "@." in name):
                    yield unit
        yield from (p for p in self.placeholders.values() if p.path)

    def resolve(self, name: str) -> str:
        """The real name behind an alias (also for instances of an aliased template);
        default.target, when no file or symlink says otherwise, is multi-user.target."""
        if name == "default.target" and name not in self.targets and name not in self.aliases:
            return DEFAULT_TARGET
        return resolve_alias(self.aliases, name)

    def get(self, name: str) -> Unit | PlaceholderUnit | None:
        """A unit by name, alias or instance name ("echo@x.service" → instantiated)."""
        name = self.resolve(name)
        unit = (
            self.sockets.get(name)
            or self.services.get(name)
            or self.socket_templates.get(name)
            or self.targets.get(name)
            or self.placeholders.get(name)
        )
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
            copy = t.model_copy(update={"name": name})
            copy.share_fields_set()
            return copy  # type: ignore[return-value]
        entries = raw.entries + (extra or ())
        unit, problems = build_unit(
            name, entries, fragment=raw.fragment, dropins=raw.dropins, model_path=t.path
        )
        if unit is None:
            first = next(p for p in problems if p.severity == "error")
            raise first
        return unit  # type: ignore[return-value]

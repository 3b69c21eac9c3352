"""Entries (from INI or TOML, fragment then drop-ins) → one validated unit model.

Every directive is looked up in the table (directives.py), its value parsed, and folded
into per-section field values with systemd's assignment semantics (last wins, lists
accumulate, empty resets). Then the pydantic models are built and the load-time
checks systemd's socket_verify()/service_verify() make are applied. Every problem is
collected as a ``UnitError`` carrying file, line/key path and directive; the unit is
returned only if there was no error.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError

from .checks import ExecFacts, Located, UnitChecks
from .directives import (
    IGNORED,
    RESET,
    SECTIONS,
    TABLES,
    UNJUDGED_CONDITIONS,
    Directive,
    all_caps,
    home_section_of,
    ignored_reason,
    sort_caps,
)
from .directives.network import socket_problems
from .errors import BadValue, UnitError
from .ini import Entry
from .model import (
    ExitStatusSet,
    FifoListen,
    InetListen,
    InstallSection,
    ServiceSection,
    ServiceUnit,
    SocketSection,
    SocketType,
    SocketUnit,
    TargetUnit,
    UnitSection,
    UnixListen,
)
from .specifiers import Specifiers, UnknownSpecifier
from .suggest import closest

Unit = SocketUnit | ServiceUnit | TargetUnit

TEMPLATE_TEST_INSTANCE = "test_instance"
_KIND_SECTION = {"socket": "Socket", "service": "Service", "target": ""}
_SECTION_MODEL = {
    "Unit": UnitSection,
    "Install": InstallSection,
    "Socket": SocketSection,
    "Service": ServiceSection,
}


class _Ctx:
    """What a value parser may use: specifier expansion and a way to warn."""

    __slots__ = ("spec", "entry", "builder", "is_template")

    def __init__(self, spec: Specifiers, builder: _Builder, is_template: bool) -> None:
        self.spec = spec
        self.builder = builder
        self.entry: Entry | None = None
        self.is_template = is_template

    def expand(self, text: str) -> str:
        return self.spec.expand(text)

    def warn(self, message: str) -> None:
        assert self.entry is not None
        self.builder.problem(self.entry, message, "warning")


@functools.cache
def _empty_section(section: str) -> Any:
    """The model of a section with nothing set, shared by every unit (frozen: no unit can
    change another's); 2 of a socket+service pair's 10 models, ~0.7 KiB."""
    return _SECTION_MODEL[section]()


class _Builder:
    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind
        self.valid_sections = SECTIONS[kind]
        self.values: dict[str, dict[str, Any]] = {s: {} for s in self.valid_sections}
        self.origin: dict[tuple[str, str], Entry] = {}  # who set a field last
        self.items: dict[tuple[str, str], list[Entry]] = {}  # who added each list item
        self.problems: list[UnitError] = []
        self.ignored_seen: set[str] = set()
        self.ignored: list[Entry] = []  # the first entry of each ignored directive
        # fields with a refused value: checks that would only repeat the error skip them
        self.bad_fields: set[str] = set()
        self.list_refused: set[tuple[str, str]] = set()  # TOML lists for scalars, said once
        self.headers: dict[str, Entry] = {}  # the first header line of each section

    def problem(self, entry: Entry, message: str, severity: str = "error") -> None:
        self.problems.append(
            UnitError(
                message,
                path=entry.path,
                where=entry.where,
                directive=entry.key or None,
                unit=self.name,
                severity=severity,  # type: ignore[arg-type]
            )
        )

    def unit_problem(
        self, message: str, entry: Entry | None = None, directive: str | None = None
    ) -> None:
        self.problems.append(
            UnitError(
                message,
                path=entry.path if entry else None,
                where=entry.where if entry else None,
                directive=directive or (entry.key if entry else None),
                unit=self.name,
            )
        )

    @property
    def failed(self) -> bool:
        return any(p.severity == "error" for p in self.problems)

    # ------------------------------------------------------------ one entry

    def feed(self, entry: Entry, ctx: _Ctx) -> None:
        section, key = entry.section, entry.key
        if not key:  # a section header
            self.headers.setdefault(section, entry)
            if section not in self.valid_sections:
                where = _KIND_SECTION.get(self.kind, "")
                if self.kind == "target":
                    msg = f"section [{section}] does not belong in a .target unit "
                    msg += "(it has [Unit] and [Install] only)"
                elif section in ("Socket", "Service"):
                    msg = (
                        f"section [{section}] does not belong in a .{self.kind} unit "
                        f"(expected [{where}])"
                    )
                else:
                    guess = closest(section, self.valid_sections)
                    msg = (
                        f"unknown section [{section}] (did you mean [{guess}]?)"
                        if guess
                        else f"unknown section [{section}] (expected [Unit], [{where}] or "
                        "[Install]; X-… sections are ignored)"
                    )
                self.problem(entry, msg)
            return
        if section not in self.valid_sections:
            return  # reported once at the header
        d = TABLES[section].get(key)
        if d is None:
            self.unknown(entry)
            return
        value = entry.value
        if entry.listed and d.kind == "scalar":
            if (section, key) not in self.list_refused:  # once per key, not per element
                self.list_refused.add((section, key))
                self.problem(
                    entry._replace(where=f"{section}.{key}"), "takes a single value, not a list"
                )
            return
        if value == "" and not isinstance(value, bool):
            self.reset(d, entry)
            return
        if isinstance(value, dict) and d.kind != "env":
            self.problem(entry, "expected a value, not a table")
            return
        ctx.entry = entry
        try:
            parsed = d.parse(value, ctx)
        except UnknownSpecifier as e:
            self.bad_fields.add(d.field)
            shown = f'"{value}"' if isinstance(value, str) else "value"
            self.problem(
                entry, f'{shown}: unknown specifier "%{e.letter}" (write %% for a literal %)'
            )
            return
        except BadValue as e:
            self.bad_fields.add(d.field)
            msg = e.message
            if isinstance(value, str) and _has_specifier(value):
                # The message shows the expanded value; show the value as written too,
                # and for addresses the %-trap: "[::1]:80%lo" is %l (the host name) + "o".
                msg += f' (the value as written is "{value}"'
                msg += "; write %% for a literal %)" if d.kind == "listen" else ")"
            self.problem(entry, msg)
            return
        if parsed is RESET:
            self.reset(d, entry)
        else:
            self.apply(d, entry, parsed)

    def unknown(self, entry: Entry) -> None:
        section, key = entry.section, entry.key
        if key in IGNORED[section]:
            if key not in self.ignored_seen:
                self.ignored_seen.add(key)
                self.ignored.append(entry)
            return
        if key.startswith("X-Activator-"):
            known = ", ".join(f"{k}=" for k in TABLES[section] if k.startswith("X-Activator-"))
            self.problem(
                entry,
                f"unknown activator extension in [{section}] (known: {known or 'none'})",
            )
            return
        if key.startswith("X-"):
            return  # systemd ignores X- keys: they are for other programs
        home = home_section_of(key)
        if home and home != section:
            hint = f" (it belongs in [{home}])"
        else:
            guess = closest(key, (*TABLES[section], *IGNORED[section]))
            hint = f" (did you mean {guess}=?)" if guess else ""
        self.problem(entry, f"unknown directive in [{section}]{hint}")

    def summarise_ignored(self) -> None:
        """One warning per unit for the directives it sets that activator does not carry
        out, grouped by why, at the first one's line (one line each would bury the rest)."""
        if not self.ignored:
            return
        why: dict[str, list[str]] = {}
        for entry in self.ignored:
            reason = (
                "not judged in a container: it holds"
                if entry.key.startswith(("Condition", "Assert"))
                else ignored_reason(entry.key)
            )
            why.setdefault(reason, []).append(entry.key + "=")
        parts = [f"{', '.join(keys)} ({reason})" for reason, keys in why.items()]
        self.problems.append(
            UnitError(
                "ignored, not carried out by activator: " + "; ".join(parts),
                path=self.ignored[0].path,
                where=self.ignored[0].where,
                unit=self.name,
                severity="warning",
            )
        )

    def reset(self, d: Directive, entry: Entry) -> None:
        sec = d.section or entry.section
        vals = self.values[sec]
        key = (sec, d.field)
        self.origin[key] = entry
        if d.kind == "scalar":
            for f in (d.field, *d.fields):
                vals.pop(f, None)
        elif d.kind in ("list", "listen"):
            vals[d.field] = []
            self.items[key] = []
        elif d.kind == "env":
            vals[d.field] = {}
        elif d.kind == "caps":
            vals[d.field] = frozenset()  # systemd: the empty assignment is the empty set
        elif d.kind == "exit":
            vals.pop(d.field, None)
        elif d.kind == "cond":
            family = "Assert" if d.name.startswith("Assert") else "Condition"
            kept = [
                (c, e) for c, e in zip(vals.get(d.field, []), self.items.get(key, []), strict=True)
                if not c[0].startswith(family)
            ]  # fmt: skip
            vals[d.field] = [c for c, _ in kept]
            self.items[key] = [e for _, e in kept]

    def apply(self, d: Directive, entry: Entry, parsed: Any) -> None:
        sec = d.section or entry.section
        vals = self.values[sec]
        key = (sec, d.field)
        if d.kind == "scalar":
            for f in (d.field, *d.fields):
                vals[f] = parsed
                self.origin[(sec, f)] = entry
        elif d.kind in ("list", "listen"):
            vals.setdefault(d.field, []).extend(parsed)
            self.items.setdefault(key, []).extend([entry] * len(parsed))
            self.origin[key] = entry
        elif d.kind == "env":
            env = vals.setdefault(d.field, {})
            for name, value in parsed:
                env.pop(name, None)  # keep the order of the last assignment
                env[name] = value
            self.origin[key] = entry
        elif d.kind == "caps":
            # systemd's config_parse_capability_set(): an empty list, or a set still at
            # its initial value (all for the bounding set, none for the ambient set), is
            # replaced; otherwise a line adds its capabilities, or with "~" removes them.
            invert, names = parsed
            current = vals.get(d.field)
            initial = all_caps() if d.field == "CapabilityBoundingSet" else frozenset()
            if not names or current is None or current == initial:
                vals[d.field] = (all_caps() - names) if invert else names
            else:
                vals[d.field] = (current - names) if invert else (current | names)
            self.origin[key] = entry
        elif d.kind == "exit":
            cur: ExitStatusSet | None = vals.get(d.field)
            if cur is not None:
                parsed = ExitStatusSet(
                    codes=cur.codes | parsed.codes, signals=cur.signals | parsed.signals
                )
            vals[d.field] = parsed
            self.origin[key] = entry
        elif d.kind == "cond":
            vals.setdefault(d.field, []).append((d.name, parsed))
            self.items.setdefault(key, []).append(entry)
            self.origin[key] = entry
            kind = d.name.removeprefix("Condition").removeprefix("Assert")
            if kind in UNJUDGED_CONDITIONS and d.name not in self.ignored_seen:
                self.ignored_seen.add(d.name)
                self.ignored.append(entry)  # it holds: said with the ignored ones

    # ------------------------------------------------------------ models

    def section_model(self, section: str) -> Any:
        vals = self.values[section]
        kwargs: dict[str, Any] = {}
        for field, value in vals.items():
            if isinstance(value, list):
                if field == "Conditions":
                    value = _group_conditions(value)
                value = tuple(value)
            elif isinstance(value, frozenset):
                value = sort_caps(value)
            kwargs[field] = value
        if not kwargs:  # a section that sets nothing ([Install] mostly): one shared instance
            return _empty_section(section)
        try:
            return _SECTION_MODEL[section](**kwargs)
        except ValidationError as e:
            for err in e.errors(include_url=False):
                self.translate(section, err)
            return None

    def translate(self, section: str, err: Any) -> None:
        """A pydantic error → a problem at the line of the directive that set the field."""
        loc = err.get("loc", ())
        field = str(loc[0]) if loc else ""
        entry = None
        if len(loc) > 1 and isinstance(loc[1], int):
            items = self.items.get((section, field), [])
            if loc[1] < len(items):
                entry = items[loc[1]]
        entry = entry or self.origin.get((section, field))
        msg = err.get("msg", "invalid value")
        value = err.get("input")
        shown = f'"{value}": ' if isinstance(value, (str, int, float)) else ""
        self.unit_problem(f"{shown}{msg[:1].lower()}{msg[1:]}", entry, directive=field or None)


def _has_specifier(text: str) -> bool:
    """Whether ``text`` has a specifier other than %% (so expansion changed it)."""
    return "%" in text and "%" in text.replace("%%", "")


def _group_conditions(conds: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Group conditions by directive, first appearance first (order within one kept).

    Conditions are ANDed (the "|" ones ORed among themselves), so the grouping does not
    change their meaning; it makes the model expressible in TOML, where a key appears once.
    """
    order: dict[str, list[tuple[str, str]]] = {}
    for c in conds:
        order.setdefault(c[0], []).append(c)
    return [c for group in order.values() for c in group]


# ---------------------------------------------------------------- load-time checks


def _verify_socket(b: _Builder, sock: SocketSection) -> None:
    """systemd's socket_verify(): refusals at load time; and the kill settings a socket
    has no use for said so (its control processes are stopped, never restarted or
    watched)."""
    for name in ("RestartKillSignal", "WatchdogSignal"):
        entry = b.origin.get(("Socket", name))
        if entry is not None:
            b.problem(entry, "has no effect on a socket (as in systemd): its commands are "
                      "never restarted or watched", "warning")  # fmt: skip
    listen_entry = b.origin.get(("Socket", "Listen"))
    if not sock.Listen and "Listen" not in b.bad_fields:
        b.unit_problem(
            "no Listen*= directive: a socket needs at least one listener "
            "(ListenStream=, ListenDatagram=, ListenSequentialPacket=, ListenFIFO=, …)",
            listen_entry,
        )
    if sock.Accept:
        for lst, entry in zip(sock.Listen, b.items.get(("Socket", "Listen"), []), strict=False):
            accepting = (
                isinstance(lst, (InetListen, UnixListen)) and lst.type != SocketType.DATAGRAM
            )
            if not accepting:
                b.unit_problem(
                    f'"{lst.text}": Accept=yes needs connection-oriented listeners '
                    "(ListenStream= or ListenSequentialPacket=); systemd refuses this unit",
                    entry,
                )
        if sock.Service is not None:
            b.unit_problem(
                "explicit service configuration for accepting socket units not supported "
                "(with Accept=yes each connection starts an instance of NAME@.service)",
                b.origin.get(("Socket", "Service")),
            )
    for field, message in socket_problems(sock):
        b.unit_problem(message, b.origin.get(("Socket", field)), directive=_directive_of(field))
    if sock.Symlinks:
        nodes = [
            lst for lst in sock.Listen
            if isinstance(lst, FifoListen)
            or (isinstance(lst, UnixListen) and not lst.path.startswith("@"))
        ]  # fmt: skip
        if len(nodes) != 1:
            b.unit_problem(
                "Symlinks= needs exactly one file-system socket or FIFO, "
                f"this unit has {len(nodes)}",
                b.origin.get(("Socket", "Symlinks")),
            )


def _directive_of(field: str) -> str:
    """The directive that sets a [Socket] field (X-Activator-ProxyTo= for ProxyTo)."""
    for name, d in TABLES["Socket"].items():
        if d.field == field:
            return name
    return field


def _verify_service(b: _Builder, svc: ServiceSection) -> None:
    """systemd's service_verify(): refusals at load time."""
    o = b.origin.get
    if "ExecStart" in b.bad_fields or "ExecStop" in b.bad_fields:
        pass  # the refused command line was reported already
    elif not svc.ExecStart and not svc.ExecStop:
        b.unit_problem(
            "service has no ExecStart= (nor ExecStop=): nothing to run", directive="ExecStart"
        )
    elif not svc.ExecStart and svc.Type != "oneshot":
        b.unit_problem(
            f"service has no ExecStart=, which only Type=oneshot allows (Type={svc.Type.value})",
            directive="ExecStart",
        )
    if len(svc.ExecStart) > 1 and svc.Type != "oneshot":
        items = b.items.get(("Service", "ExecStart"), [])
        b.unit_problem(
            "more than one ExecStart= command is only allowed for Type=oneshot "
            f"(Type={svc.Type.value})",
            items[1] if len(items) > 1 else o(("Service", "ExecStart")),
        )
    if svc.Type == "oneshot" and svc.Restart in ("always", "on-success"):
        b.unit_problem(
            f"Restart={svc.Restart.value} is not allowed for Type=oneshot services",
            o(("Service", "Restart")),
        )
    if svc.Type == "dbus" and not svc.BusName:
        b.unit_problem("Type=dbus needs BusName=", o(("Service", "Type")))


# ---------------------------------------------------------------- facts for checks.py

_EXEC_DIRECTIVES = {
    "Service": ("ExecCondition", "ExecStartPre", "ExecStart", "ExecStartPost", "ExecReload",
                "ExecStop", "ExecStopPost"),
    "Socket": ("ExecStartPre", "ExecStartPost", "ExecStopPre", "ExecStopPost"),
}  # fmt: skip


def _exec_facts(b: _Builder, template: bool) -> ExecFacts:
    """What the unit's [Service]/[Socket] says of its processes, with the entries that said
    it: from the values fed so far, so even a unit refused for another error has them."""
    sec = _KIND_SECTION[b.kind]
    vals = b.values[sec]

    def located(field: str, value: Any, entry: Entry | None, first_word: bool = False) -> Any:
        raw = entry.value if entry is not None else None
        if isinstance(raw, str) and first_word:
            raw = raw.split(None, 1)[0] if raw.split() else raw
        dependent = template and isinstance(raw, str) and _has_specifier(raw)
        return Located(value, entry, dependent)

    def scalar(field: str) -> Located[str] | None:
        if field not in vals or field in b.bad_fields:
            return None
        return located(field, vals[field], b.origin.get((sec, field)))

    def listed(field: str, first_word: bool = False) -> list[Located[Any]]:
        items = b.items.get((sec, field), [])
        values = vals.get(field, []) if field not in b.bad_fields else []
        return [
            located(field, v, items[i] if i < len(items) else None, first_word)
            for i, v in enumerate(values)
        ]

    commands = tuple(
        (directive, cmd)
        for directive in _EXEC_DIRECTIVES[sec]
        for cmd in listed(directive, first_word=True)
    )
    return ExecFacts(
        unit=b.name,
        kind=b.kind,
        header=b.headers.get(sec),
        user=scalar("User"),
        user_refused="User" in b.bad_fields,
        group=scalar("Group"),
        supplementary=tuple(listed("SupplementaryGroups")),
        dynamic_user=bool(vals.get("DynamicUser", False)),
        commands=commands,
    )


# ---------------------------------------------------------------- entry point


def build_unit(
    name: str,
    entries: Iterable[Entry],
    *,
    fragment: str,
    dropins: Sequence[str] = (),
    model_path: str | None = None,
    verify: bool = True,
    checks: UnitChecks | None = None,
) -> tuple[Unit | None, list[UnitError]]:
    """Build the unit ``name`` from its entries (fragment first, then drop-ins in order).

    ``fragment`` is the file the unit comes from (``%y``/``%Y``); ``model_path`` what
    goes into the model's ``path`` (default: ``fragment``). ``verify`` False skips the
    load-time checks (after syntax errors they would only add noise). Returns the unit
    (None if any error) and every problem, warnings included. ``checks`` (checks.py) looks
    at the unit's processes against this machine (programs, users); its errors refuse the
    unit like any other. Never raises for bad input.
    """
    kind = name.rsplit(".", 1)[-1]
    b = _Builder(name, kind)
    # A template is read as the instance "test_instance", as systemd-analyze verify does:
    # with an empty %i, values like BindsTo=%i.device would not even be valid.
    spec_name = name.replace("@.", f"@{TEMPLATE_TEST_INSTANCE}.", 1) if "@." in name else name
    ctx = _Ctx(Specifiers(spec_name, fragment), b, is_template="@." in name)
    for entry in entries:
        b.feed(entry, ctx)
    b.summarise_ignored()
    if checks is not None and kind in ("service", "socket"):
        b.problems.extend(checks(_exec_facts(b, "@." in name)))
    section_name = _KIND_SECTION[kind]
    if kind == "target":
        return _target(name, b, model_path if model_path is not None else fragment, dropins)
    if kind == "service":
        svc_vals = b.values["Service"]
        # systemd: with neither Type= nor ExecStart=, Type=oneshot is implied.
        if "Type" not in svc_vals and not svc_vals.get("ExecStart"):
            svc_vals["Type"] = "oneshot"
    unit_sec = b.section_model("Unit")
    install = b.section_model("Install")
    main = b.section_model(section_name)
    if main is not None and verify:
        if kind == "socket":
            _verify_socket(b, main)
        else:
            _verify_service(b, main)
    if b.failed or unit_sec is None or install is None or main is None:
        return None, b.problems
    common = {
        "name": name,
        "path": model_path if model_path is not None else fragment,
        "dropins": tuple(dropins),
        "Unit": unit_sec,
        "Install": install,
    }
    unit: Unit
    if kind == "socket":
        unit = SocketUnit(Socket=main, **common)
    else:
        unit = ServiceUnit(Service=main, **common)
    return unit, b.problems


def field_origins(entries: Iterable[Entry]) -> dict[tuple[str, str], Entry]:
    """The last entry per (section, directive): where the loader points cross-unit errors."""
    return {(e.section, e.key): e for e in entries if e.key}


def _target(
    name: str, b: _Builder, path: str, dropins: Sequence[str]
) -> tuple[Unit | None, list[UnitError]]:
    """A .target: [Unit] and [Install] only (systemd.target(5))."""
    unit_sec = b.section_model("Unit")
    install = b.section_model("Install")
    if b.failed or unit_sec is None or install is None:
        return None, b.problems
    target = TargetUnit(
        name=name, path=path, dropins=tuple(dropins), Unit=unit_sec, Install=install
    )
    return target, b.problems

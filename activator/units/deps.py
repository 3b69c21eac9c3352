"""The dependency graph of a load: what each unit requires, wants, is ordered after …

Built once per UnitSet from three sources, as systemd builds a unit's dependency
hashmaps (src/core/unit.c, unit_add_dependency and friends):

- the [Unit] directives themselves (Requires=, Wants=, BindsTo=, PartOf=, Requisite=,
  Upholds=, Conflicts=, After=, Before=, OnFailure=, OnSuccess=);
- the ``NAME.wants/``, ``.requires/`` and ``.upholds/`` directories (``systemctl
  enable``'s symlinks; without --systemd also [Install] of units naming a boot target);
- the implicit ones: ``DefaultDependencies=yes`` (service_add_default_dependencies,
  socket_add_default_dependencies, target_add_default_dependencies), a socket's
  Before=/Triggers= on its service (socket_add_extras) and a service's Wants=/After=
  on its Sockets= (service_add_extras).

Every edge is stored both ways (Requires ↔ RequiredBy, After ↔ Before …), names
resolved through aliases. Templates have no edges: only their instances run. Pure
data: the manager's job engine and ``activatorctl list-dependencies`` (also offline)
read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

from .model import PlaceholderUnit, ServiceUnit, SocketUnit, TargetUnit
from .pairing import _implied_service
from .unitset import UnitSet

#: Each kind and its reverse, as systemd names them (systemctl show's properties).
REVERSE: Mapping[str, str] = MappingProxyType(
    {
        "Requires": "RequiredBy",
        "Requisite": "RequisiteOf",
        "Wants": "WantedBy",
        "BindsTo": "BoundBy",
        "PartOf": "ConsistsOf",
        "Upholds": "UpheldBy",
        "Conflicts": "ConflictedBy",
        "Before": "After",
        "After": "Before",
        "OnFailure": "OnFailureOf",
        "OnSuccess": "OnSuccessOf",
        "Triggers": "TriggeredBy",
    }
)
FORWARD = tuple(k for k in REVERSE if k != "After") + ("After",)
#: What a start pulls in (transaction_add_job_and_dependencies): jobs for these too.
PULLS = ("Requires", "BindsTo", "Wants", "Upholds", "Requisite")
#: Whose start fails when this one's does (UNIT_ATOM_PROPAGATE_START_FAILURE).
NEEDS = ("Requires", "BindsTo", "Requisite")

_SHUTDOWN = "shutdown.target"
_SYSINIT = "sysinit.target"


class Graph:
    """``deps(name, "Requires")`` → the names ``name`` requires; both directions kept."""

    def __init__(self, units: UnitSet) -> None:
        self._units = units
        # a unit's edges of one kind: a set, or — one edge, as most are (sysinit.target,
        # shutdown.target …) — a frozenset of one shared by every unit with that edge
        # (a set is 216 bytes: 2.7 KiB a socket+service pair were edges)
        self._edges: dict[str, dict[str, set[str] | frozenset[str]]] = {}
        self._ones: dict[str, frozenset[str]] = {}
        for unit in _runnable(units):
            self._add_unit(unit)
        for owner, directives in units.dep_dirs.items():
            for directive, members in directives.items():
                for m in members:
                    self.add(owner, directive, m)
        for unit in _runnable(units):
            if isinstance(unit, TargetUnit) and unit.Unit.DefaultDependencies:
                self._target_defaults(unit.name)

    # ------------------------------------------------------------ building
    def add(self, a: str, kind: str, b: str) -> None:
        """The edge ``a kind b`` and its reverse (names resolved through aliases)."""
        a, b = self._units.resolve(a), self._units.resolve(b)
        if a == b:
            return  # systemd ignores a dependency of a unit on itself
        self._edge(a, kind, b)
        self._edge(b, REVERSE[kind], a)

    def _edge(self, a: str, kind: str, b: str) -> None:
        kinds = self._edges.setdefault(a, {})
        have = kinds.get(kind)
        if have is None:
            one = self._ones.get(b)
            if one is None:
                one = self._ones[b] = frozenset((b,))
            kinds[kind] = one
        elif b not in have:
            if isinstance(have, frozenset):  # a second edge: a set of its own
                kinds[kind] = {*have, b}
            else:
                have.add(b)

    def _add_unit(self, unit: SocketUnit | ServiceUnit | TargetUnit) -> None:
        name, u = unit.name, unit.Unit
        for kind in REVERSE:
            for other in getattr(u, kind, ()):
                self.add(name, kind, other)
        if isinstance(unit, SocketUnit):
            if not unit.Socket.Accept:
                service = _implied_service(unit)
                self.add(name, "Before", service)
                self.add(name, "Triggers", service)
        elif isinstance(unit, ServiceUnit):
            for s in unit.Service.Sockets:
                self.add(name, "Wants", s)
                self.add(name, "After", s)
        if not u.DefaultDependencies:
            return
        if isinstance(unit, (SocketUnit, ServiceUnit)):
            self.add(name, "Requires", _SYSINIT)
            self.add(name, "After", _SYSINIT)
        if isinstance(unit, ServiceUnit):
            self.add(name, "After", "basic.target")
        elif isinstance(unit, SocketUnit):
            self.add(name, "Before", "sockets.target")
        self.add(name, "Conflicts", _SHUTDOWN)
        self.add(name, "Before", _SHUTDOWN)

    def _target_defaults(self, name: str) -> None:
        """A target is ordered after what it pulls in, unless that unit opted out of
        default dependencies or is ordered the other way already."""
        edges = self._edges.get(name, {})
        for kind in ("Requires", "Requisite", "Wants", "BindsTo"):
            for other in list(edges.get(kind, ())):
                o = self._units.get(other)
                if o is None or not o.Unit.DefaultDependencies or isinstance(o, PlaceholderUnit):
                    continue
                if other in edges.get("Before", ()):
                    continue
                self.add(name, "After", other)

    # ------------------------------------------------------------ reading
    def deps(self, name: str, kind: str) -> frozenset[str]:
        return frozenset(self._edges.get(self._units.resolve(name), {}).get(kind, ()))

    def any_of(self, name: str, kinds: Iterable[str]) -> set[str]:
        edges = self._edges.get(self._units.resolve(name), {})
        out: set[str] = set()
        for k in kinds:
            out |= edges.get(k, set())
        return out

    def names(self) -> Iterator[str]:
        return iter(self._edges)

    def tree(self, name: str, *, reverse: bool = False, all: bool = False) -> list[tuple[int, str]]:
        """``systemctl list-dependencies``: (depth, name) depth-first, each unit once per
        branch; what a unit pulls in (Requires, Requisite, Wants, BindsTo, ConsistsOf,
        Upholds), or with ``reverse`` what pulls it in (…, PartOf, UpheldBy). As systemctl,
        only targets are expanded below the first level unless ``all``, and siblings come
        in its order (targets last)."""
        kinds = (
            ("RequiredBy", "RequisiteOf", "WantedBy", "BoundBy", "PartOf", "UpheldBy")
            if reverse
            else ("Requires", "Requisite", "Wants", "BindsTo", "ConsistsOf", "Upholds")
        )
        out: list[tuple[int, str]] = []

        def walk(n: str, depth: int, path: frozenset[str]) -> None:
            out.append((depth, n))
            if depth and not all and not n.endswith(".target"):
                return
            for child in sorted(self.any_of(n, kinds), key=_tree_order):
                if child not in path:
                    walk(child, depth + 1, path | {child})

        root = self._units.resolve(name)
        walk(root, 0, frozenset({root}))
        return out


def _tree_order(name: str) -> tuple[bool, str]:
    """systemctl's list_dependencies_compare(): targets after the other units, then by
    name, case-insensitively."""
    return name.endswith(".target"), name.lower()


def _runnable(units: UnitSet) -> Iterator[SocketUnit | ServiceUnit | TargetUnit]:
    """Units that can be started: not templates (their instances are)."""
    for group in (units.sockets, units.services, units.targets):
        for name, unit in group.items():
            if "@." not in name:
                yield unit


def ordering_cycle(graph: Graph, starts: Iterable[str]) -> list[str] | None:
    """A circle of After= among the units of ``starts`` (each would wait for the next),
    as systemd's transaction_verify_order() finds one; None when there is none."""
    nodes = set(starts)
    color: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        color[n] = 1
        stack.append(n)
        for m in sorted(graph.deps(n, "After") & nodes):
            if color.get(m) == 1:
                return stack[stack.index(m) :]
            if m not in color:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        color[n] = 2
        return None

    for n in sorted(nodes):
        if n not in color:
            found = visit(n)
            if found:
                return found
    return None


def pulled_in(graph: Graph, name: str) -> dict[str, bool]:
    """What a start of ``name`` pulls in (PULLS, transitively), each with whether it is
    needed (reached through Requires=, BindsTo=, Requisite= only)."""
    out: dict[str, bool] = {}
    todo = [(graph._units.resolve(name), True)]
    while todo:
        n, needed = todo.pop()
        if n in out and (out[n] or not needed):
            continue
        out[n] = out.get(n, False) or needed
        for kind in PULLS:
            for dep in graph.deps(n, kind):
                todo.append((dep, needed and kind in NEEDS))
    return out


def check(units: UnitSet, graph: Graph) -> list[tuple[str, str, str]]:
    """What ``systemd-analyze verify`` says of starting each unit: a needed unit that
    does not exist (an error: "Failed to create NAME/start: Unit X not found.") and an
    ordering cycle (a warning). (unit, severity, message) triples."""
    out: list[tuple[str, str, str]] = []
    for unit in _runnable(units):
        name = unit.name
        pulled = pulled_in(graph, name)
        for dep, needed in sorted(pulled.items()):
            if needed and dep != name and units.get(dep) is None:
                why = "is masked" if dep in units.masked else "not found"
                out.append((name, "error", f"Failed to create {name}/start: Unit {dep} {why}."))
        circle = ordering_cycle(graph, pulled)
        if circle:
            shown = " → ".join(f"{n}/start" for n in [*circle, circle[0]])
            out.append((name, "warning", f"Found ordering cycle: {shown}"))
    return out

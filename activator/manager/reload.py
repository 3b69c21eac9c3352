"""Re-reading unit files without dropping a connection (SIGHUP, `activatorctl reload`).

The rules:

- The new files are read and checked first. If any unit has an error, nothing
  changes: the problems are logged and reported, the running units stay as they were.
- Removed units stop; new units are added (a new socket binds and listens).
- A changed service gets its new definition; if it was active it is restarted
  (stopped with the definition it was started with, started with the new one; one
  already on its way down just gets the new one once it is down). A change to
  ``Description=``/``Documentation=`` alone restarts nothing. Inactive services
  are not started. Templates (``echo@.service``) need nothing: the next connection
  instantiates the new text.
- A changed socket is rebound only when a setting that lives in the bound fds
  changed (``Listen*=``, ``Accept=``, modes, socket options …) or it triggers
  another service now. Anything else (``MaxConnections=``, trigger limits,
  ``FileDescriptorName=`` …) is applied to the live runtime: the listener keeps its
  fd, so the kernel keeps queueing connections through the whole reload, and the
  counters carry on. Rebinding closes the old listeners first (a socket an operator
  stopped is rebound but stays stopped); the connections an ``Accept=yes`` socket
  already accepted keep their instances.
- An active ``Accept=no`` service is restarted when the set of fds it would be
  handed changes (a socket of it added, removed, rebound, or renamed with
  ``FileDescriptorName=``), since it holds duplicates of the old ones.

Reloads, and the start/stop verbs of the control socket, take the manager's one lock
(``operation_lock``), so a SIGHUP during ``activatorctl restart`` waits its turn.

This module sees the manager as a ``Registry`` (declared below): manager.py imports
this one, never the other way round.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..core.errors import ActivatorError
from ..core.states import ServiceState, SocketState
from ..runtime.service import CONFIG_ATTRS as SERVICE_CONFIG_ATTRS
from ..runtime.service import Service
from ..runtime.socket import SocketContext, SocketRuntime
from ..runtime.target import Placeholder, Target
from ..units import Problem, UnitSet
from ..units.model import ExecContext, PlaceholderUnit, ServiceUnit, SocketUnit, TargetUnit


class Registry(SocketContext, Protocol):
    """What a reload uses of the manager (manager.Manager)."""

    unit_dirs: list[str]
    strict: bool
    problems: list[Problem]
    sockets: dict[str, SocketRuntime]
    services: dict[str, Service]
    operation_lock: asyncio.Lock

    targets: dict[str, Target]

    def add_service(self, unit: ServiceUnit) -> Service: ...
    def add_socket(self, sock: SocketRuntime) -> SocketRuntime: ...
    def add_target(self, target: Target) -> Target: ...
    def invalidate_prepared(self) -> None: ...
    def rewire(self) -> None: ...
    def load_units(self) -> tuple[UnitSet, list[Problem]]: ...


# [Socket] settings that do not touch the bound fds: a change to these is applied to
# the live socket. Everything else (Listen*=, Accept=, SocketMode=, Backlog=, socket
# options …, and any setting added to the model later) means a rebind — the safe side.
_RUNTIME_SOCKET_KEYS = frozenset(ExecContext.model_fields) | {
    "Service", "MaxConnections", "MaxConnectionsPerSource", "FlushPending", "RemoveOnStop",
    "FileDescriptorName", "TriggerLimitIntervalSec", "TriggerLimitBurst",
    "ExecStartPre", "ExecStartPost", "ExecStopPre", "ExecStopPost", "TimeoutSec",
    "UCSPI", "IPAddressAllow", "IPAddressDeny", "PerSourcePrefix", "ConnectionRate",
    "ConnectionRateTotal",
}  # fmt: skip

# What a runtime object derives from its unit (replaced on a change) as opposed to its
# run-time state (kept). tests/control/test_reload_rules.py checks that every attribute
# of SocketRuntime is in one list or the other, so a new one cannot be carried over stale.
SOCKET_CONFIG = (
    "unit",
    "section",
    "service_name",
    "fdname",
    "trigger_limit",
    "options_on_accept",
    "admission",  # a reload re-attaches the address filter (SocketRuntime.replan_lane)
)
SOCKET_STATE = (
    "ctx",
    "name",
    "state",
    "result",
    "since",
    "listeners",
    "observers",  # the manager's: they stay
    "books",  # the counters carry on
    "instances",  # connections already accepted keep their instances
    "exec",  # a control process (ExecStartPre= …) runs on; it reads the section anew
    "_watching",
    "_resume",
    "_loop_path",
    "lane",  # replanned after every reload (SocketRuntime.replan_lane)
    "_lane_unfit",
    "proxy",  # its relayed connections carry on; it reads the new [Socket] as it goes
    "_idle_traffic",
    "_idle_reading",
    "_idle_mark",
    "_idle_warned",
    "_filtered",
)
# service.py declares its own: everything but these is run-time state.
SERVICE_CONFIG = SERVICE_CONFIG_ATTRS

_background: set[asyncio.Task[Reload]] = set()


@dataclass
class Reload:
    """What a reload did (or, dry run, would do); ``applied`` False: nothing changed."""

    applied: bool = False
    dry_run: bool = False  # only the plan: nothing was changed
    errors: int = 0  # how many of the problems are errors (any error: nothing changes)
    problems: list[str] = field(default_factory=list)  # errors and warnings, as printed by verify
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # new definition in place
    rebound: list[str] = field(default_factory=list)  # sockets with new listeners
    restarted: list[str] = field(default_factory=list)  # active services stopped and started again
    failed: list[str] = field(default_factory=list)  # "unit: reason" for what could not start

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class _Interrupted(Exception):
    """The daemon began to shut down in the middle of a reload."""


def in_background(d: Registry) -> None:
    """SIGHUP: reload in a task the daemon keeps a reference to; a bug is logged, not lost."""
    task = asyncio.ensure_future(reload_units(d))
    _background.add(task)

    def done(t: asyncio.Task[Reload]) -> None:
        _background.discard(t)
        if not t.cancelled():
            t.exception()  # reload_units logged it already; this marks it retrieved

    task.add_done_callback(done)


async def reload_units(d: Registry, *, dry_run: bool = False) -> Reload:
    """Re-read the unit directories and apply the difference (the rules are above).

    Never raises for bad unit files (``applied`` is False and ``problems`` says why).
    ``dry_run``: only say what a reload would do (``applied`` stays False).
    Raises only on a bug in activator, after logging it with its traceback.
    """
    async with d.operation_lock:
        r = Reload()
        if d.stopping:
            r.problems.append("activator is shutting down")
            return r
        try:
            await _reload(d, r, dry_run)
        except _Interrupted:
            d.log("daemon-reload", None, applied=False, reason="interrupted by shutdown")
        except Exception as e:
            d.log("failed", None, reason=f"reload failed: {e!r}")
            d.log_exception(e)
            raise
        return r


@dataclass
class _Plan:
    """What a reload will do, worked out before anything changes."""

    services: dict[str, ServiceUnit]  # the new non-template services, by name
    gone_services: list[str]
    new_services: list[str]
    changed_services: list[str]
    changed_templates: list[str]
    gone_sockets: list[str]
    new_sockets: list[str]
    rebind: list[str]  # listen settings changed: new fds
    retune: list[str]  # changed otherwise: the live socket takes the new definition
    restart: list[str]  # active services: stop now, start again at the end
    settle: list[str]  # services on their way down: the new definition once they are down
    stopped: set[str]  # sockets to rebind that an operator stopped: they stay stopped

    def report(self, r: Reload) -> None:
        r.added = [*self.new_services, *self.new_sockets]
        r.removed = [*self.gone_sockets, *self.gone_services]
        r.changed = [*self.changed_services, *self.changed_templates, *self.retune]
        r.rebound = list(self.rebind)
        r.restarted = list(self.restart)


def _plan(d: Registry, new: UnitSet) -> _Plan:
    old = d.units

    def handover(units: UnitSet, service: str) -> tuple[tuple[str, dict[str, Any], str], ...]:
        """What an Accept=no service is handed: its sockets, their listen settings, fd names."""
        out = []
        for name in units.sockets_of(service):
            s = units.sockets.get(name)
            if s is not None and not s.Socket.Accept:
                out.append((name, _bind_part(s), s.Socket.FileDescriptorName or name))
        return tuple(out)

    services = {n: u for n, u in new.services.items() if not u.is_template}
    changed_services = [
        n for n, u in services.items() if n in d.services and d.services[n].unit != u
    ]
    rebind, retune = [], []
    for n, u in new.sockets.items():
        sock = d.sockets.get(n)
        if sock is None or sock.unit == u and sock.service_name == new.service_of(n):
            continue
        if _bind_part(sock.unit) != _bind_part(u) or sock.service_name != new.service_of(n):
            rebind.append(n)
        else:
            retune.append(n)
    restart: list[str] = []
    settle: list[str] = []
    for n in services:
        svc = d.services.get(n)
        if svc is None or not svc.active:
            continue
        if (
            n in changed_services
            and not _cosmetic(svc.unit, services[n])
            or handover(old, n) != handover(new, n)
        ):
            (settle if svc.state == ServiceState.DEACTIVATING else restart).append(n)
    return _Plan(
        services=services,
        gone_services=[n for n in d.services if n not in services],
        new_services=[n for n in services if n not in d.services],
        changed_services=changed_services,
        changed_templates=[
            n
            for n, u in new.services.items()
            if u.is_template and n in old.services and old.services[n] != u
        ],
        gone_sockets=[n for n in d.sockets if n not in new.sockets],
        new_sockets=[n for n in new.sockets if n not in d.sockets],
        rebind=rebind,
        retune=retune,
        restart=restart,
        settle=settle,
        stopped={n for n in rebind if d.sockets[n].state == SocketState.INACTIVE},
    )


async def _reload(d: Registry, r: Reload, dry_run: bool = False) -> None:
    new, problems = d.load_units()
    r.problems = [str(p) for p in problems]
    r.errors = errors = sum(p.severity == "error" for p in problems)
    r.dry_run = dry_run
    if dry_run:
        if not errors:
            _plan(d, new).report(r)
        return
    for p in problems:
        d.log("unit-" + p.severity, p.unit, problem=str(p))
    if errors:
        d.log(
            "daemon-reload",
            None,
            applied=False,
            errors=errors,
            reason="unit files have errors; nothing changed",
        )
        return
    plan = _plan(d, new)
    r.applied = True
    await _apply(d, new, problems, plan, r)
    d.log(
        "daemon-reload",
        None,
        applied=True,
        added=len(r.added),
        removed=len(r.removed),
        changed=len(r.changed),
        rebound=len(r.rebound),
        restarted=len(r.restarted),
        failed=len(r.failed),
    )


async def _apply(
    d: Registry, new: UnitSet, problems: list[Problem], plan: _Plan, r: Reload
) -> None:
    services = plan.services
    # ---- stop what goes away or has to be rebound; sockets first, so nothing triggers
    d.units = new
    d.problems = problems
    d.invalidate_prepared()
    for n in plan.gone_sockets:
        sock = d.sockets.pop(n)
        await sock.stop()
        d.log("removed", n)
        r.removed.append(n)
    for n in plan.rebind:
        # the instances of an Accept=yes socket are connections already accepted: they stay
        await d.sockets[n].stop(stop_instances=False)
    _check(d)
    gone = [d.services.pop(n) for n in plan.gone_services]
    await asyncio.gather(
        *(svc.stop() for svc in gone),
        *(_stop_reconfigure(d.services[n], services[n]) for n in (*plan.restart, *plan.settle)),
    )
    for n in plan.gone_services:
        d.log("removed", n)
        r.removed.append(n)
    _check(d)
    # A stop (ExecStop=, ExecStopPost=) may have cached the old users and limits again.
    d.invalidate_prepared()

    # ---- new definitions, new units
    for n in plan.changed_services:
        if n not in plan.restart and n not in plan.settle:  # inactive, or a cosmetic change
            _reconfigure(d.services[n], Service(d, services[n]), SERVICE_CONFIG)
        d.log("changed", n)
        r.changed.append(n)
    for n in plan.changed_templates:  # the next connection instantiates the new text
        d.log("changed", n)
        r.changed.append(n)
    for n in plan.new_services:
        d.add_service(services[n])
        d.log("added", n)
        r.added.append(n)
    for n in plan.retune:
        _reconfigure(d.sockets[n], SocketRuntime(d, new.sockets[n]), SOCKET_CONFIG)
        d.log("changed", n)
        r.changed.append(n)
    for n in plan.rebind:
        sock = d.sockets[n]
        _reconfigure(sock, SocketRuntime(d, new.sockets[n]), SOCKET_CONFIG)
        if n not in plan.stopped:
            _start_socket(d, sock, r)
        d.log("rebound", n)
        r.rebound.append(n)
    _retarget(d, new)
    d.rewire()
    for n in plan.new_sockets:
        sock = d.add_socket(SocketRuntime(d, new.sockets[n]))
        _start_socket(d, sock, r)
        d.log("added", n)
        r.added.append(n)
    for n in plan.restart:
        d.services[n].start()
        r.restarted.append(n)
    # An accept lane spawns from a plan of the template, the users and the socket's
    # settings, any of which may have changed: plan again (the listeners keep queueing).
    for sock in d.sockets.values():
        sock.replan_lane()


def _retarget(d: Registry, new: UnitSet) -> None:
    """Targets and placeholders take their new definitions; new ones are added (inactive:
    what starts them is a job), gone ones dropped. Nothing runs for them, so nothing
    stops or restarts."""
    fresh: dict[str, TargetUnit | PlaceholderUnit] = {
        **{n: t for n, t in new.targets.items() if "@." not in n},
        **new.placeholders,
    }
    for n in [n for n in d.targets if n not in fresh]:
        del d.targets[n]
    for n, unit in fresh.items():
        live = d.targets.get(n)
        if live is None:
            d.add_target(
                Placeholder(d, unit) if isinstance(unit, PlaceholderUnit) else Target(d, unit)
            )
        else:
            live.unit = unit


def _check(d: Registry) -> None:
    if d.stopping:
        raise _Interrupted


async def extend(d: Registry, new: UnitSet, problems: list[Problem]) -> list[str]:
    """Add the units of a load on demand (``start foo@bar.socket``; in systemd mode a unit
    no boot target wants): ``new`` is the current set with them. What is loaded already
    keeps its definition, and nothing starts. The names added."""
    async with d.operation_lock:
        d.units = new
        added = []
        for unit in new.services.values():
            if not unit.is_template and unit.name not in d.services:
                d.add_service(unit)
                added.append(unit.name)
        for name, sock in new.sockets.items():
            if name not in d.sockets:
                d.add_socket(SocketRuntime(d, sock))
                added.append(name)
        before = set(d.targets)
        _retarget(d, new)
        added += sorted(set(d.targets) - before)
        d.rewire()
        for p in problems:
            d.log("unit-" + p.severity, p.unit, problem=str(p))
        d.problems = [*d.problems, *problems]
        return added


def _start_socket(d: Registry, sock: SocketRuntime, r: Reload) -> None:
    try:
        sock.start()
    except ActivatorError as e:
        d.log("failed", sock.name, reason=str(e))
        r.failed.append(f"{sock.name}: {e}")


async def _stop_reconfigure(svc: Service, unit: ServiceUnit) -> None:
    """Stop with the definition it was started with, then take the new one.

    Nothing awaits between the end of the stop and the new definition, so a
    connection that arrives meanwhile starts the new definition, never the old one.
    """
    await svc.stop()
    _reconfigure(svc, Service(svc.ctx, unit), SERVICE_CONFIG)


def _reconfigure(live: object, fresh: object, config: tuple[str, ...]) -> None:
    """Give a live runtime object what ``fresh`` derived from the new unit; keep its state.

    A rate limit with unchanged settings is kept, so its count carries on.
    """
    for attr in config:
        value = getattr(fresh, attr)
        old = getattr(live, attr)
        if attr.endswith("_limit") and (old.interval, old.burst) == (value.interval, value.burst):
            continue
        setattr(live, attr, value)


def _bind_part(unit: SocketUnit) -> dict[str, Any]:
    """The [Socket] settings that live in the bound fds (see _RUNTIME_SOCKET_KEYS)."""
    return {k: v for k, v in unit.Socket.model_dump().items() if k not in _RUNTIME_SOCKET_KEYS}


def _cosmetic(old: ServiceUnit, new: ServiceUnit) -> bool:
    """True when only the description or documentation differ."""
    keep = {"Description": old.Unit.Description, "Documentation": old.Unit.Documentation}
    return old == new.model_copy(update={"Unit": new.Unit.model_copy(update=keep)})

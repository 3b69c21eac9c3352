"""activatorctl's verbs, carried out on the running manager.

Each verb finds its units, asks every one of them whether it may (``check``) before
acting on any, then acts through the unit interface (runtime/unit.py) — never by asking
what kind of unit it holds. A unit that refuses raises an error with the protocol's
code on it; the server turns it into the answer.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from typing import Any, Protocol

from ..core.log import EventLog
from ..runtime.socket import SocketRuntime
from ..runtime.unit import RuntimeUnit
from ..units import Problem, UnitSet
from ..units.listen import listen_type
from ..units.model import ServiceUnit, SocketUnit
from ..units.values import BadValue, parse_signal, signal_name
from . import protocol, views
from .protocol import ProtocolError


class ManagerView(Protocol):
    """What the control plane uses of the manager (manager.Manager)."""

    units: UnitSet
    problems: list[Problem]
    sockets: dict[str, SocketRuntime]
    started: float
    stopping: bool
    ready: bool
    log: EventLog
    operation_lock: asyncio.Lock

    def log_exception(self, e: BaseException) -> None: ...
    def find(self, name: str) -> RuntimeUnit | None: ...
    def all_units(self) -> list[RuntimeUnit]: ...
    async def reload_units(self, *, dry_run: bool = False) -> Any: ...


#: Verbs that change something: refused while activator stops, and logged.
MUTATING = frozenset({"start", "stop", "restart", "reload", "kill", "reset-failed"})


def full_name(name: str) -> str:
    """systemctl's rule: a name without a unit suffix is a service."""
    return name if name.endswith((".socket", ".service")) else name + ".service"


class Verbs:
    def __init__(self, manager: ManagerView) -> None:
        self.m = manager
        self._tasks: set[asyncio.Task[Any]] = set()  # --no-block operations still running
        self.table = {
            "ping": self.ping, "status": self.status, "list-units": self.list_units,
            "list-sockets": self.list_sockets, "start": self.start, "stop": self.stop,
            "restart": self.restart, "reload": self.reload, "kill": self.kill,
            "reset-failed": self.reset_failed, "cat": self.cat, "show": self.show,
            "is-system-running": self.is_system_running,
        }  # fmt: skip
        assert set(self.table) == set(protocol.VERBS)

    # ------------------------------------------------------------ lookup
    def _units(self, names: list[str]) -> list[RuntimeUnit]:
        """The runtime units, all of them or an unknown-unit error naming what is missing."""
        if not names:
            raise ProtocolError("bad-request", "this verb needs at least one unit")
        found = [(n, self.m.find(full_name(n))) for n in names]
        missing = [full_name(n) for n, t in found if t is None]
        if missing:
            templates = [
                n for n in missing if n.endswith("@.service") and n in self.m.units.services
            ]
            if templates:
                raise ProtocolError(
                    "refused",
                    f"{templates[0]} is a template: its instances are started "
                    "by connections to its socket",
                )
            raise ProtocolError(
                "unknown-unit",
                f"unit{'s' if len(missing) > 1 else ''} {', '.join(missing)} not found",
            )
        return [t for _, t in found if t is not None]

    def _path(self, unit: SocketUnit | ServiceUnit) -> str:
        """The file a unit came from; a generated instance, its template's."""
        if unit.path or "@" not in unit.name:
            return str(unit.path)
        template = self.m.units.services.get(unit.name[: unit.name.index("@") + 1] + ".service")
        return template.path if template is not None else ""

    def _describe(self, t: RuntimeUnit) -> dict[str, Any]:
        name = t.name
        at = name.find("@")
        key = name if at < 0 else name[: at + 1] + ".service"
        recent = list(self.m.log.recent.get(key, ()))
        return views.describe(t, path=self._path(t.unit), recent=recent)

    # ------------------------------------------------------------ reading
    async def ping(self, units: list[str], args: dict[str, Any]) -> dict[str, Any]:
        return {"pid": os.getpid(), "protocol": protocol.VERSION, "since": self.m.started}

    async def status(self, units: list[str], args: dict[str, Any]) -> list[dict[str, Any]]:
        if not units:
            return [self._describe(t) for t in self.m.all_units()]
        out = []
        for name in units:
            t = self.m.find(full_name(name))
            if t is not None:
                out.append(self._describe(t))
            else:
                problems = [
                    str(p)
                    for p in self.m.problems
                    if p.unit == full_name(name) and p.severity == "error"
                ]
                out.append(views.not_loaded(full_name(name), problems))
        return out

    async def is_system_running(self, units: list[str], args: dict[str, Any]) -> dict[str, str]:
        """systemd's states that fit activator: the probe of a health check (Kubernetes,
        HEALTHCHECK), so it only reads — no unit is found by name, none is woken."""
        return {"state": system_state(self.m)}

    async def list_units(self, units: list[str], args: dict[str, Any]) -> list[dict[str, Any]]:
        return [views.brief(t) for t in self.m.all_units()]

    async def list_sockets(self, units: list[str], args: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "listen": spec.text,
                "type": listen_type(spec),
                "unit": s.name,
                "activates": s.service_name,
                "fdname": s.fdname,
                "state": str(s.state),
            }
            for s in self.m.sockets.values()
            for spec in s.section.Listen
        ]

    async def cat(self, units: list[str], args: dict[str, Any]) -> list[dict[str, Any]]:
        if not units:
            raise ProtocolError("bad-request", "this verb needs at least one unit")
        out = []
        for name in units:
            t = self.m.find(full_name(name))
            unit = t.unit if t is not None else self.m.units.get(full_name(name))
            if unit is None:
                raise ProtocolError("unknown-unit", f"unit {full_name(name)} not found")
            path = self._path(unit)
            texts = []
            for p in [path, *unit.dropins] if path else list(unit.dropins):
                try:
                    with open(p) as f:
                        texts.append({"path": p, "text": f.read()})
                except OSError as e:
                    texts.append({"path": p, "text": f"# unable to read: {e.strerror}\n"})
            out.append({"unit": unit.name, "files": texts})
        return out

    async def show(self, units: list[str], args: dict[str, Any]) -> list[dict[str, Any]]:
        aliases = self.m.units.aliases
        return [
            views.properties(
                t, names=[t.name, *sorted(a for a, real in aliases.items() if real == t.name)]
            )
            for t in self._units(units)
        ]

    # ------------------------------------------------------------ changing
    def _checked(self, units: list[str], *verbs: str) -> list[RuntimeUnit]:
        targets = self._units(units)
        for t in targets:
            for verb in verbs:
                t.check(verb)
        return targets

    async def _outcome(
        self, targets: list[RuntimeUnit], args: dict[str, Any], verb: str
    ) -> list[dict[str, Any]]:
        """Wait for the units to settle (unless no_block), then say how each ended. A unit
        that ends failed fails the request, as a failed systemctl job does."""
        if not args.get("no_block"):
            failures = await asyncio.gather(*(t.settle(verb) for t in targets))
            if any(failures):
                raise ProtocolError("failed", "; ".join(f for f in failures if f))
        return [views.brief(t) for t in targets]

    async def start(self, units: list[str], args: dict[str, Any]) -> list[dict[str, Any]]:
        targets = self._checked(units, "start")
        async with self.m.operation_lock:
            for t in targets:
                t.start()
        return await self._outcome(targets, args, "start")

    async def stop(self, units: list[str], args: dict[str, Any]) -> list[dict[str, Any]]:
        targets = self._checked(units, "stop")
        if args.get("no_block"):
            self._background(asyncio.gather(*(t.stop() for t in targets), return_exceptions=True))
            return [views.brief(t) for t in targets]
        async with self.m.operation_lock:
            await asyncio.gather(*(t.stop() for t in targets))
        return [views.brief(t) for t in targets]

    async def restart(self, units: list[str], args: dict[str, Any]) -> list[dict[str, Any]]:
        targets = self._checked(units, "restart")
        async with self.m.operation_lock:
            await asyncio.gather(*(t.restart() for t in targets))
        return await self._outcome(targets, args, "restart")

    async def reload(self, units: list[str], args: dict[str, Any]) -> Any:
        if not units:
            return await self._reload_units(bool(args.get("dry_run")))
        targets = self._checked(units, "reload")
        async with self.m.operation_lock:
            await asyncio.gather(*(t.reload() for t in targets))
        return await self._outcome(targets, args, "reload")

    async def _reload_units(self, dry_run: bool) -> dict[str, Any]:
        r = await self.m.reload_units(dry_run=dry_run)
        if r.errors:
            raise ProtocolError(
                "refused", "\n".join(["unit files have errors; nothing was changed:", *r.problems])
            )
        if not r.applied and not r.dry_run:
            raise ProtocolError("refused", "\n".join(["nothing was changed:", *r.problems]))
        if r.failed:
            raise ProtocolError(
                "failed", "\n".join(["reloaded, but some units failed:", *r.failed])
            )
        out: dict[str, Any] = r.as_dict()
        return out

    async def kill(self, units: list[str], args: dict[str, Any]) -> list[dict[str, Any]]:
        signum = _signal_number(args.get("signal", "SIGTERM"))
        targets = self._checked(units, "kill")
        return [
            {"unit": t.name, "pid": t.kill(signum), "signal": signal_name(signum)} for t in targets
        ]

    async def reset_failed(self, units: list[str], args: dict[str, Any]) -> list[str]:
        targets = self._units(units) if units else self.m.all_units()
        return [t.name for t in targets if t.reset_failed()]

    def _background(self, aw: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(aw)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def system_state(m: ManagerView) -> str:
    """``starting`` until the manager is ready, ``stopping`` from SIGTERM on, else
    ``degraded`` while any unit is failed (``reset-failed`` clears it), else ``running``."""
    if m.stopping:
        return "stopping"
    if not m.ready:
        return "starting"
    if any(t.active_state == "failed" for t in m.all_units()):
        return "degraded"
    return "running"


def _signal_number(sig: object) -> int:
    """A signal name ("TERM", "sigkill", "RTMIN+3") or number, as ``kill --signal`` takes it."""
    try:
        return parse_signal(str(sig).strip().upper())
    except BadValue:
        raise ProtocolError("bad-request", f"unknown signal {str(sig)[:32]!r}") from None

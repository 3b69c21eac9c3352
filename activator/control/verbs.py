"""activatorctl's verbs, carried out on the running manager.

Each verb finds its units, asks every one of them whether it may (``check``) before
acting on any, then acts through the unit interface (runtime/unit.py) — never by asking
what kind of unit it holds. A unit that refuses raises an error with the protocol's
code on it; the server turns it into the answer.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any, Protocol

from ..core.log import EventLog, template_key
from ..manager.jobs import Job, JobResult
from ..runtime.socket import SocketRuntime
from ..runtime.unit import RuntimeUnit
from ..units import Problem, UnitSet
from ..units.deps import Graph
from ..units.listen import listen_type
from ..units.model import UnitBase
from ..units.values import BadValue, parse_signal, signal_name
from . import protocol, views
from .protocol import ProtocolError

if TYPE_CHECKING:
    from ..runtime.capture import Capture, Entry
    from ..units.install import Lookup  # loaded by the first status that asks


class ManagerView(Protocol):
    """What the control plane uses of the manager (manager.Manager)."""

    units: UnitSet
    unit_dirs: list[str]
    systemd: bool
    graph: Graph
    problems: list[Problem]
    sockets: dict[str, SocketRuntime]
    started: float
    stopping: bool
    ready: bool
    log: EventLog
    operation_lock: asyncio.Lock

    def log_exception(self, e: BaseException) -> None: ...
    def find(self, name: str) -> RuntimeUnit | None: ...
    async def load_more(self, names: list[str]) -> None:
        """Load units named that are not loaded yet (systemd's load on demand)."""
        ...

    def submit(self, verb: str, name: str) -> Job | None:
        """An operator's start/stop/restart as a job of the engine (manager/jobs.py)."""
        ...

    def all_units(self) -> list[RuntimeUnit]: ...
    def load_paths(self) -> list[str]: ...
    async def reload_units(self, *, dry_run: bool = False) -> Any: ...

    @property
    def capture(self) -> Capture | None:
        """What services wrote to stdout/stderr (runtime/capture.py)."""
        ...

    generation: int  # live re-execs so far

    def reexec(self) -> dict[str, int]:
        """Begin a live re-exec (manager/reexec.py); raises RefusedError."""
        ...


#: Verbs that change something: refused while activator stops, and logged.
MUTATING = frozenset(
    {"start", "stop", "restart", "reload", "kill", "reset-failed", "daemon-reexec"}
)


_SUFFIXES = tuple(
    f".{k}"
    for k in ("socket", "service", "target", "mount", "automount", "device", "swap", "path",
              "timer", "slice", "scope")
)  # fmt: skip


def full_name(name: str) -> str:
    """systemctl's rule: a name without a unit suffix is a service."""
    return name if name.endswith(_SUFFIXES) else name + ".service"


class Verbs:
    def __init__(self, manager: ManagerView) -> None:
        self.m = manager
        self._files: tuple[object, Lookup] | None = None  # (the unit set it was read for, …)
        self.table = {
            "ping": self.ping, "status": self.status, "list-units": self.list_units,
            "list-sockets": self.list_sockets, "start": self.start, "stop": self.stop,
            "restart": self.restart, "reload": self.reload, "kill": self.kill,
            "reset-failed": self.reset_failed, "cat": self.cat, "show": self.show,
            "is-system-running": self.is_system_running,
            "logs": self.logs,
            "daemon-reexec": self.daemon_reexec,
            "list-dependencies": self.list_dependencies,
        }  # fmt: skip
        assert set(self.table) == set(protocol.VERBS)

    # ------------------------------------------------------------ lookup
    async def _units(self, names: list[str]) -> list[RuntimeUnit]:
        """The runtime units, all of them or an unknown-unit error naming what is missing.
        A unit not loaded yet is loaded now (an instance of a template, a unit nothing
        wanted at boot), as systemd loads units on demand."""
        if not names:
            raise ProtocolError("bad-request", "this verb needs at least one unit")
        await self.m.load_more([full_name(n) for n in names])
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

    def _path(self, unit: UnitBase) -> str:
        """The file a unit came from; a generated instance, its template's."""
        if unit.path or "@" not in unit.name:
            return str(unit.path)
        template = self.m.units.services.get(unit.name[: unit.name.index("@") + 1] + ".service")
        return template.path if template is not None else ""

    def _describe(self, t: RuntimeUnit, files: Lookup) -> dict[str, Any]:
        recent = list(self.m.log.recent.get(template_key(t.name), ()))
        path = self._path(t.unit)
        state = views.unit_file(files, t, boot_enables=not self.m.systemd) if path else None
        return views.describe(t, path=path, recent=recent, unit_file=state)

    def _unit_files(self) -> Lookup:
        """Unit file states along the daemon's load path, read again after each reload
        of the unit files (a new unit set), as systemd keeps a unit's file state until
        daemon-reload: read per request, a status cost 38 ms at 10,000 units."""
        from ..units.install import Lookup, Paths

        if self._files is None or self._files[0] is not self.m.units:
            self._files = (self.m.units, Lookup(Paths.of(self.m.load_paths(), self.m.unit_dirs)))
        return self._files[1]

    # ------------------------------------------------------------ reading
    async def ping(self, units: list[str], args: dict[str, Any]) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "protocol": protocol.VERSION,
            "since": self.m.started,
            "generation": self.m.generation,
        }

    async def status(self, units: list[str], args: dict[str, Any]) -> list[dict[str, Any]]:
        files = self._unit_files()
        if not units:
            return [self._describe(t, files) for t in self.m.all_units()]
        out = []
        await self.m.load_more([full_name(n) for n in units])
        for name in units:
            t = self.m.find(full_name(name))
            if t is not None:
                out.append(self._describe(t, files))
            else:
                problems = [
                    str(p)
                    for p in self.m.problems
                    if p.unit == full_name(name) and p.severity == "error"
                ]
                out.append(views.not_loaded(full_name(name), problems, masked=_masked(files, name)))
        return out

    async def list_dependencies(
        self, units: list[str], args: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """units/deps.py's tree of one unit (default.target), each with its active state."""
        name = units[0] if units else "default.target"
        tree = self.m.graph.tree(name, reverse=bool(args.get("reverse")), all=bool(args.get("all")))
        out = []
        for depth, n in tree:
            t = self.m.find(n)
            out.append({"depth": depth, "unit": n, "active": t.active_state if t else "inactive"})
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
            for t in await self._units(units)
        ]

    # ------------------------------------------------------------ changing
    async def _checked(self, units: list[str], *verbs: str) -> list[RuntimeUnit]:
        targets = await self._units(units)
        for t in targets:
            for verb in verbs:
                t.check(verb)
        return targets

    async def _jobs(self, verb: str, targets: list[RuntimeUnit], args: dict[str, Any]) -> None:
        """Start/stop/restart through the job engine, so what the units need comes along
        (Requires=, Wants=, ordering), then — unless no_block — wait for the jobs and say
        how they ended, as systemctl does: a unit that refused answers with its error,
        a job that failed fails the request."""
        async with self.m.operation_lock:
            jobs = [self.m.submit(verb, t.name) for t in targets]
        if args.get("no_block"):
            return
        await asyncio.gather(*(j.done for j in jobs if j is not None))
        failures = []
        for t, job in zip(targets, jobs, strict=True):
            if job is None or verb == "stop":
                continue
            if job.error is not None:
                raise job.error  # the unit's own refusal (already active …), with its code
            if job.result == JobResult.DEPENDENCY:
                failures.append(
                    f"a dependency job for {t.name} failed; see 'activatorctl status {t.name}'"
                )
            elif (why := await t.settle(verb)) is not None:
                failures.append(why)
            elif job.result != JobResult.DONE:
                failures.append(f"{t.name} failed to {verb} (job result: {job.result})")
        if failures:
            raise ProtocolError("failed", "; ".join(failures))

    async def start(self, units: list[str], args: dict[str, Any]) -> list[dict[str, Any]]:
        targets = await self._checked(units, "start")
        await self._jobs("start", targets, args)
        return [views.brief(t) for t in targets]

    async def stop(self, units: list[str], args: dict[str, Any]) -> list[dict[str, Any]]:
        targets = await self._checked(units, "stop")
        await self._jobs("stop", targets, args)
        return [views.brief(t) for t in targets]

    async def restart(self, units: list[str], args: dict[str, Any]) -> list[dict[str, Any]]:
        targets = await self._checked(units, "restart")
        await self._jobs("restart", targets, args)
        return [views.brief(t) for t in targets]

    async def reload(self, units: list[str], args: dict[str, Any]) -> Any:
        if not units:
            return await self._reload_units(bool(args.get("dry_run")))
        targets = await self._checked(units, "reload")
        async with self.m.operation_lock:
            await asyncio.gather(*(t.reload() for t in targets))
        if not args.get("no_block"):
            failures = [
                f for f in await asyncio.gather(*(t.settle("reload") for t in targets)) if f
            ]
            if failures:
                raise ProtocolError("failed", "; ".join(failures))
        return [views.brief(t) for t in targets]

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
        targets = await self._checked(units, "kill")
        return [
            {"unit": t.name, "pid": t.kill(signum), "signal": signal_name(signum)} for t in targets
        ]

    async def logs(self, units: list[str], args: dict[str, Any]) -> list[dict[str, Any]]:
        """The last ``n`` lines each unit's processes wrote (the capture's ring), oldest
        first; a unit that wrote nothing (or is not loaded) has none."""
        n = args.get("n", 10)
        if type(n) is not int or n < 0:
            raise ProtocolError("bad-request", "'n' must be a number of lines, 0 or more")
        if not units:
            raise ProtocolError("bad-request", "this verb needs at least one unit")
        capture = self.m.capture
        if capture is None:
            return []
        lines = [e for name in units for e in capture.tail(full_name(name), n)]
        lines.sort(key=lambda e: e[0])
        return [entry_dict(e) for e in lines]

    async def daemon_reexec(self, units: list[str], args: dict[str, Any]) -> dict[str, int]:
        """Answered before the exec: the new program serves the next request (the control
        socket, its queue included, is handed over)."""
        if units:
            raise ProtocolError("bad-request", "daemon-reexec takes no units")
        return self.m.reexec()

    async def reset_failed(self, units: list[str], args: dict[str, Any]) -> list[str]:
        targets = await self._units(units) if units else self.m.all_units()
        return [t.name for t in targets if t.reset_failed()]


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


def entry_dict(e: Entry) -> dict[str, Any]:
    """One line of a service's output as the protocol carries it."""
    ts, unit, pid, stream, level, text = e
    return {"ts": ts, "unit": unit, "pid": pid, "stream": stream, "level": level, "text": text}


def _masked(files: Lookup, name: str) -> bool:
    from ..units.install import InstallFailure

    try:
        return files.state(full_name(name)).startswith("masked")
    except InstallFailure:
        return False


def _signal_number(sig: object) -> int:
    """A signal name ("TERM", "sigkill", "RTMIN+3") or number, as ``kill --signal`` takes it."""
    try:
        return parse_signal(str(sig).strip().upper())
    except BadValue:
        raise ProtocolError("bad-request", f"unknown signal {str(sig)[:32]!r}") from None

"""The registry of units: load them, bind every listener, serve, stop everything on SIGTERM.

Start-up order matters for privilege separation: all listeners are bound here, as
root, before any service runs; services only ever receive duplicates. The Manager is
the one implementation of the contexts the runtime declares (``ServiceContext``,
``SocketContext``): a unit asks it for what it may ask, and nothing else.

Servers such as the control socket are handed in by the command line (``run(control=…)``),
so this layer never imports the control plane.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from ..core.errors import ActivatorError, StartError
from ..core.exitstatus import exit_of
from ..core.log import EventLog
from ..core.loops import loop_name
from ..exec import _spawn, plan
from ..runtime.context import ServiceRef
from ..runtime.host import Host
from ..runtime.lane import Conn
from ..runtime.notify import NotifyServer, open_server
from ..runtime.reaper import Reaper
from ..runtime.service import Service
from ..runtime.socket import SocketRuntime
from ..runtime.unit import RuntimeUnit
from ..units import Problem, UnitSet, load_units
from ..units.model import ServiceUnit
from . import reload
from .upward import Upward


class Server(Protocol):
    """A server the manager runs beside its units (the control socket)."""

    path: str

    async def start(self) -> None:
        """Bind and serve. Raises ActivatorError naming what and why."""
        ...

    async def close(self) -> None: ...


class Manager:
    def __init__(
        self,
        unit_dirs: Sequence[str],
        *,
        control_path: str | None,
        log: EventLog,
        strict: bool = False,
        upward: Upward | None = None,
    ) -> None:
        self.unit_dirs = list(unit_dirs)
        self.control_path = control_path  # the notify socket goes beside it
        self.log = log
        self.strict = strict
        self.units: UnitSet
        self.problems: list[Problem] = []
        self.sockets: dict[str, SocketRuntime] = {}
        self.services: dict[str, Service] = {}  # non-template services
        self._reaper: Reaper | None = None
        self.stopping = False
        self.ready = False  # the `ready` line is out: is-system-running says running
        self.upward = upward if upward is not None else Upward(log)  # a supervisor above us
        self.started = time.time()
        self.notify_socket_path: str | None = None
        self.notify: NotifyServer | None = None
        self.host = Host()  # the services' clock, timers, spawner, signals (faked in tests)
        # id(section) -> (section, resolved); the section is kept so its id stays unique
        self._prepared: dict[int, tuple[object, plan.Prepared]] = {}
        self.operation_lock = asyncio.Lock()  # reloads and operators' start/stop/restart
        self._stopped = asyncio.Event()
        self._control: Server | None = None

    @property
    def reaper(self) -> Reaper:
        assert self._reaper is not None, "the reaper exists once run() has begun"
        return self._reaper

    # ------------------------------------------------------------ logging helpers
    def log_exception(self, e: BaseException) -> None:
        for line in traceback.format_exception(e):
            for part in line.rstrip().splitlines():
                self.log("traceback", None, line=part)

    # ------------------------------------------------------------ loading
    def load(self) -> None:
        self.units, self.problems = load_units(self.unit_dirs, strict=self.strict)
        for p in self.problems:
            self.log("unit-" + p.severity, p.unit, problem=str(p))

    def build(self) -> None:
        """Runtime objects for every loaded unit (templates get theirs per connection)."""
        for unit in self.units.services.values():
            if not unit.is_template:
                self.add_service(unit)
            # Resolve users and groups now, not on the first connection: the first lookup
            # loads the NSS modules and costs about half a millisecond of cold activation.
            # A unit whose user does not exist yet is resolved (and reported) at its start.
            with contextlib.suppress(StartError):
                self.prepared(unit)
        for name, sock in self.units.sockets.items():
            self.sockets[name] = SocketRuntime(self, sock)

    def add_service(self, unit: ServiceUnit) -> Service:
        svc = Service(self, unit)
        svc.listeners.append(self._service_changed)
        self.services[unit.name] = svc
        return svc

    def _service_changed(self, svc: Service) -> None:
        for sock_name in self.units.sockets_of(svc.name):
            sock = self.sockets.get(sock_name)
            if sock is not None and not sock.section.Accept:
                sock.service_changed(svc)

    # ------------------------------------------------------------ the contexts' side
    def prepared(self, unit: ServiceUnit) -> plan.Prepared:
        """Users, limits and capabilities, resolved once per [Service] section.

        Instances of a template whose section does not depend on the instance share the
        template's section object (units.UnitSet.instantiate), so Accept=yes resolves its
        user once; an instance with its own section (``User=%i``) gets its own entry.
        """
        section = unit.Service
        entry = self._prepared.get(id(section))
        if entry is None or entry[0] is not section:
            if len(self._prepared) >= 1024:  # instances with sections of their own: bounded
                self._prepared.clear()
            entry = self._prepared[id(section)] = (section, plan.prepare(section))
        return entry[1]

    def invalidate_prepared(self) -> None:
        """Users, limits or unit files changed (a reload): resolve again on next use."""
        self._prepared.clear()

    def collect_fds(self, svc: ServiceRef) -> plan.Handover:
        """Accept=no: the listeners of every started socket that triggers this service, in order."""
        h = plan.Handover()
        for sock_name in self.units.sockets_of(svc.name):
            sock = self.sockets.get(sock_name)
            if sock is None or sock.section.Accept or not sock.listeners:
                continue
            for lst in sock.listeners:
                h.fds.append(lst.fd)
                h.names.append(sock.fdname)
        return h

    def instance_done(self, svc: ServiceRef) -> None:
        c = svc.connection
        if c is not None:
            c.owner.instance_done(svc)

    def known_pids(self) -> set[int]:
        pids: set[int] = set()
        for s in (*self.services.values(), *self.instances()):
            pids.update(p for p in (s.main_pid, s.control_pid) if p)
        return pids

    def sockets_of(self, service: str) -> Iterable[str]:
        return self.units.sockets_of(service)

    def service(self, name: str) -> Service | None:
        return self.services.get(name)

    # ------------------------------------------------------------ finding units
    def instances(self) -> Iterator[Service]:
        """The Accept=yes instances that are Services (the lanes' records are not)."""
        for sock in self.sockets.values():
            yield from sock.instances.values()

    def find(self, name: str) -> RuntimeUnit | None:
        """A unit by name or alias; an instance an accept lane keeps as a record becomes a
        Service now (an operator is about to look at it or act on it)."""
        real = self.units.resolve(name)
        unit = self.sockets.get(real) or self.services.get(real)
        if unit is None and "@" in real:
            for sock in self.sockets.values():
                unit = sock.find_instance(real)
                if unit is not None:
                    break
        return unit

    def all_units(self) -> list[RuntimeUnit]:
        """Every unit: sockets, services, instances, and the lanes' records."""
        out: list[RuntimeUnit] = [*self.sockets.values(), *self.services.values()]
        out += self.instances()
        out += self.lane_records()
        return out

    def lane_records(self) -> Iterator[Conn]:
        """The instances accept lanes keep as records (lane.Conn)."""
        for sock in self.sockets.values():
            if sock.lane is not None:
                yield from sock.lane.conns.values()

    # ------------------------------------------------------------ orphans
    def _orphan(self, pid: int, status: int) -> None:
        how, value, _ = exit_of(status)
        self.log("reap", None, pid=pid, **{"status" if how == "exited" else "signal": value})
        self.host.orphan_exited()  # a service waiting for its process groups to empty

    # ------------------------------------------------------------ life
    async def run(self, control: Server | None = None) -> int:
        loop = asyncio.get_running_loop()
        self.log.nonblocking(loop)  # an unread log must not stop us
        self._reaper = Reaper(loop, on_orphan=self._orphan)
        self.host.become_subreaper()  # forking daemons and leftovers come back to the reaper
        self.notify = open_server(self.control_path, self.log, loop)
        self.notify_socket_path = self.notify.path if self.notify is not None else None
        self.upward.starting("loading units")
        self.load()
        self.build()
        self.upward.starting(f"binding sockets: {len(self.sockets)}")
        # Bind everything before anything runs.
        for name, sock in self.sockets.items():
            try:
                sock.start()
            except ActivatorError as e:
                self.log("failed", name, reason=str(e))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: reload.in_background(self))
        if control is not None:
            try:
                await control.start()
                self._control = control
            except ActivatorError as e:  # names the path or the group, and the cause
                self.log("failed", None, reason=str(e))
        release_startup_memory()
        self.log(
            "ready",
            None,
            pid=os.getpid(),
            units=len(self.sockets) + len(self.services),
            sockets=len(self.sockets),
            loop=loop_name(loop),
            control=self._control.path if self._control else None,
        )
        self.ready = True
        self.upward.ready(f"sockets: {len(self.sockets)}, services: {len(self.services)}")
        await self._stopped.wait()
        await self.shutdown()
        return 0

    def request_stop(self) -> None:
        if not self.stopping:
            self.log("shutdown", None, reason="signal")
            self.upward.stopping()
        self.stopping = True
        self._stopped.set()

    async def reload_units(self, *, dry_run: bool = False) -> reload.Reload:
        """Re-read unit files (SIGHUP, `activatorctl reload`); see reload.py for the rules."""
        return await reload.reload_units(self, dry_run=dry_run)

    async def shutdown(self) -> None:
        """Stop every service and instance (each bounded by its TimeoutStopSec=), close the
        sockets, reap."""
        for sock in self.sockets.values():
            sock.unwatch()
        for sock in self.sockets.values():
            sock.materialize_instances()
        await asyncio.gather(*(s.stop() for s in list(self.instances())), return_exceptions=True)
        await asyncio.gather(*(s.stop() for s in self.services.values()), return_exceptions=True)
        for sock in self.sockets.values():
            try:
                await sock.stop()
            except Exception as e:  # a bug: say so, and go on closing the others
                self.log("failed", sock.name, reason=f"unable to stop: {e!r}")
                self.log_exception(e)
        if self.notify is not None:
            self.notify.close()
        if self._control is not None:
            await self._control.close()
        if os.getpid() == 1:
            await self._reap_all()
        self.reaper.close()
        self.upward.close()
        self.log("exit", None, pid=os.getpid(), status=0)

    async def _reap_all(self) -> None:
        """As PID 1: whatever is left in the container gets SIGTERM, then SIGKILL; all reaped."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.reaper.wait_idle(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(-1, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.reaper.wait_idle(), 5)


def release_startup_memory() -> None:
    """Hand what parsing the unit files left over back to the system.

    The daemon idles for most of its life; its resident size is what a container
    budget sees. The garbage of start-up sits in malloc's free lists until trimmed.
    """
    gc.collect()
    _spawn.trim_memory()

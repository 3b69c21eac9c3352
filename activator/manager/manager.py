"""The composition root: load units, bind every listener, serve, stop everything on SIGTERM.

Start-up order matters for privilege separation: all listeners are bound here,
as root, before any service runs; services only ever receive duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import time
import traceback
from collections.abc import Sequence

from ..core.errors import ActivatorError, StartError
from ..core.log import EventLog
from ..core.loops import loop_name
from ..exec import _spawn, plan
from ..exec.bind import fmt_peer
from ..runtime.notify import NotifyServer, open_server
from ..runtime.reaper import Reaper, describe_status
from ..runtime.service import Handover, Host, Service
from ..runtime.socket import SocketRuntime
from ..units import Problem, UnitSet, load_units
from ..units.model import ServiceUnit


class Daemon:
    def __init__(
        self,
        unit_dirs: Sequence[str],
        *,
        control_path: str | None,
        log: EventLog,
        strict: bool = False,
        control_group: str | None = None,
    ) -> None:
        self.unit_dirs = list(unit_dirs)
        self.control_path = control_path
        self.control_group = control_group
        self.log = log
        self.strict = strict
        self.units: UnitSet
        self.problems: list[Problem] = []
        self.sockets: dict[str, SocketRuntime] = {}
        self.services: dict[str, Service] = {}
        self.instances: dict[str, Service] = {}  # Accept=yes instances, by name
        self.reaper: Reaper
        self.stopping = False
        self.started = time.time()
        self.notify_socket_path: str | None = None
        self.notify: NotifyServer | None = None
        self.host = (
            Host()
        )  # the services' clock, timers, spawner, signals (faked in tests/lifecycle)
        # id(section) -> (section, resolved); the section is kept so its id stays unique
        self._prepared: dict[int, tuple[object, plan.Prepared]] = {}
        self._stopped = asyncio.Event()
        self._control = None

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
                self._add_service(unit)
            # Resolve users and groups now, not on the first connection: the first lookup
            # loads the NSS modules and costs about half a millisecond of cold activation.
            # A unit whose user does not exist yet is resolved (and reported) at its start.
            with contextlib.suppress(StartError):
                self.prepared(unit)
        for name, unit in self.units.sockets.items():
            self.sockets[name] = SocketRuntime(self, unit)

    def _add_service(self, unit: ServiceUnit) -> Service:
        svc = Service(self, unit)
        svc.listeners.append(self._service_changed)
        self.services[unit.name] = svc
        return svc

    def _service_changed(self, svc: Service) -> None:
        for sock_name in self.units.sockets_of(svc.name):
            sock = self.sockets.get(sock_name)
            if sock is not None and not sock.section.Accept:
                sock.service_changed(svc)

    # ------------------------------------------------------------ what services need
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

    def collect_fds(self, svc: Service) -> Handover:
        """Accept=no: the listeners of every started socket that triggers this service, in order."""
        h = Handover()
        for sock_name in self.units.sockets_of(svc.name):
            sock = self.sockets.get(sock_name)
            if sock is None or sock.section.Accept or not sock.listeners:
                continue
            for lst in sock.listeners:
                h.fds.append(lst.fd)
                h.names.append(sock.fdname)
        return h

    # ------------------------------------------------------------ Accept=yes instances
    def spawn_instance(
        self,
        sock: SocketRuntime,
        instance: str,  # "0-127.0.0.1:7007-127.0.0.1:5555": the part between "@" and ".service"
        fd: int,
        env: dict[str, str],
        remote: str | None,
        rport: int,
    ) -> None:
        unit = self.units.instantiate(sock.service_name, instance)
        svc = Service(self, unit)
        svc.peer = fmt_peer(remote, rport)
        svc.socket = sock  # type: ignore[attr-defined]
        svc.remote = remote  # type: ignore[attr-defined]
        self.instances[unit.name] = svc
        svc.start_instance(Handover(connection=fd, extra_env=env))

    def instance_done(self, svc: Service) -> None:
        sock = getattr(svc, "socket", None)
        if sock is None:
            return
        if self.instances.pop(svc.name, None) is not None:
            sock.instance_gone(svc.remote, svc.remote is None)
            lane = getattr(svc, "lane", None)
            if lane is not None:  # an accept lane spawned it: its slot is free now
                lane.gone(svc)

    def instances_of(self, sock: SocketRuntime) -> list:
        """The running instances of an Accept=yes socket: Services, and the accept lane's
        `Conn` records (read-only views; find_instance() turns one into a Service)."""
        mine = [s for s in self.instances.values() if getattr(s, "socket", None) is sock]
        if sock.lane is not None:
            mine += sock.lane.conns.values()
        return mine

    def find_instance(self, name: str) -> Service | None:
        svc = self.instances.get(name)
        if svc is None and "@" in name:
            for sock in self.sockets.values():
                conn = sock.lane.find(name) if sock.lane is not None else None
                if conn is not None:
                    return sock.lane.materialize(conn)
        return svc

    def _materialize_lanes(self, sock: SocketRuntime | None = None) -> None:
        for s in self.sockets.values() if sock is None else (sock,):
            if s.lane is not None:
                s.lane.materialize_all()

    async def stop_instances(self, sock: SocketRuntime) -> None:
        self._materialize_lanes(sock)
        mine = [s for s in self.instances.values() if getattr(s, "socket", None) is sock]
        if mine:
            await asyncio.gather(*(s.stop() for s in mine), return_exceptions=True)

    # ------------------------------------------------------------ orphans
    def _orphan(self, pid: int, status: int) -> None:
        how, value = describe_status(status)
        self.log("reap", None, pid=pid, **{"status" if how == "exited" else "signal": value})
        self.host.orphan_exited()  # a service waiting for its process groups to empty

    # ------------------------------------------------------------ life
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self.log.nonblocking(loop)  # an unread log must not stop us
        self.reaper = Reaper(loop, on_orphan=self._orphan)
        self.host.become_subreaper()  # forking daemons and leftovers come back to the reaper
        self.notify = open_server(self.control_path, self.log, loop)
        self.notify_socket_path = self.notify.path if self.notify is not None else None
        self.load()
        self.build()
        # Bind everything before anything runs.
        for name, sock in self.sockets.items():
            try:
                sock.start()
            except ActivatorError as e:
                self.log("failed", name, reason=str(e))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        if self.control_path:
            from ..control.server import ControlServer

            self._control = ControlServer(self, self.control_path, self.control_group)
            try:
                await self._control.start()
            except ActivatorError as e:  # names the path or the group, and the cause
                self.log("failed", None, reason=str(e))
                self._control = None
        release_startup_memory()
        self.log(
            "ready",
            None,
            pid=os.getpid(),
            units=len(self.sockets) + len(self.services),
            sockets=len(self.sockets),
            loop=loop_name(loop),
            control=self.control_path if self._control else None,
        )
        await self._stopped.wait()
        await self.shutdown()
        return 0

    def request_stop(self) -> None:
        if not self.stopping:
            self.log("shutdown", None, reason="signal")
        self.stopping = True
        self._stopped.set()

    def _on_sighup(self) -> None:
        from .reload import reload_in_background

        reload_in_background(self)

    async def reload_units(self):
        """Re-read unit files (SIGHUP, `activatorctl reload`); see reload.py for the rules."""
        from .reload import reload_units

        return await reload_units(self)

    async def shutdown(self) -> None:
        """Stop every service and instance (each bounded by its TimeoutStopSec=), close the
        sockets, reap."""
        for sock in self.sockets.values():
            sock._unwatch()
        self._materialize_lanes()
        await asyncio.gather(
            *(s.stop() for s in list(self.instances.values())), return_exceptions=True
        )
        await asyncio.gather(*(s.stop() for s in self.services.values()), return_exceptions=True)
        for sock in self.sockets.values():
            with contextlib.suppress(Exception):
                await sock.stop()
        if self.notify is not None:
            self.notify.close()
        if self._control is not None:
            await self._control.close()
        if os.getpid() == 1:
            await self._reap_all()
        self.reaper.close()
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

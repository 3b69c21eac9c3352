"""The registry of units: load them, bind every listener, serve, stop everything on SIGTERM.

Start-up order matters for privilege separation: all listeners are bound here, as
root, before any service runs; services only ever receive duplicates. The Manager is
the one implementation of the contexts the runtime declares (``ServiceContext``,
``SocketContext``): a unit asks it for what it may ask, and nothing else.

What runs when is the job engine's (jobs.py): the boot is one start job for
default.target — in systemd mode the closure of what packages enabled, without it every
socket and every unit whose [Install] names a boot target — and shutdown stops
everything in the reverse of its order.

Servers such as the control socket are handed in by the command line (``run(control=…)``),
so this layer never imports the control plane.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import signal
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..core.errors import ActivatorError, RefusedError, StartError
from ..core.exitstatus import exit_fields, exit_of
from ..core.log import EventLog
from ..core.loops import loop_name
from ..core.rundir import run_dir
from ..exec import _spawn, plan
from ..exec.dynamic import DynamicCreds, DynamicUsers
from ..exec.preflight import Preflight
from ..runtime.context import ServiceRef
from ..runtime.hangup import HangupWatch
from ..runtime.host import Host
from ..runtime.lane import Conn
from ..runtime.notify import NotifyServer, open_server
from ..runtime.notify import default_path as notify_path
from ..runtime.reaper import Reaper
from ..runtime.service import Service
from ..runtime.socket import BuiltinServer, SocketRuntime
from ..runtime.tally import Tally
from ..runtime.target import Placeholder, Target
from ..runtime.unit import RuntimeUnit
from ..units import Problem, UnitSet, load_units
from ..units.deps import Graph
from ..units.discover import search_path
from ..units.model import ServiceUnit, SocketUnit
from ..units.names import parse_unit_name
from . import generation, reexec, reload
from .jobs import Engine, Job, JobType
from .policy import Policy, kill_left
from .upward import Upward

if TYPE_CHECKING:
    from ..runtime.capture import Capture


class Sidecar(Protocol):
    """A server beside the units that binds its own address (--metrics): started after
    the control socket, closed at the end; a re-exec binds it afresh."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...


class Server(Protocol):
    """The control socket's server: a re-exec hands its listening socket over."""

    path: str

    async def start(self, fd: int | None = None) -> None:
        """Bind and serve (``fd``: the listening socket a re-exec handed over). Raises
        ActivatorError naming what and why."""
        ...

    async def close(self) -> None: ...
    def hold(self) -> None: ...
    def release(self) -> None: ...
    async def detach(self, timeout: float) -> int | None: ...
    def reattach(self, fd: int) -> None: ...


class Manager:
    def __init__(
        self,
        unit_dirs: Sequence[str],
        *,
        control_path: str | None,
        log: EventLog,
        strict: bool = False,
        systemd: bool = False,
        upward: Upward | None = None,
        policy: Policy | None = None,
        argv: Sequence[str] = (),
        carried: dict[str, Any] | None = None,
    ) -> None:
        self.unit_dirs = list(unit_dirs)
        self.argv = reexec.strip_flag(list(argv))  # what a re-exec runs again
        self._carried = carried  # what the activator this process replaced handed over
        self.generation = carried["generation"] if carried else 0  # re-execs so far
        self.systemd = systemd  # systemd's search path, and only what default.target wants
        self.control_path = control_path  # the notify socket goes beside it
        self.log = log
        self.strict = strict
        # as root: a warning for each service that would run as root; rootless: units
        # that name another user are refused (exec/preflight.py)
        self.checks = Preflight.for_daemon()
        # DynamicUser=: the lock files of the uids held, beside the control socket
        run = os.path.dirname(os.path.abspath(control_path)) if control_path else run_dir()
        self.dynamic_users = DynamicUsers(os.path.join(run, "dynamic-uid"))
        self.units: UnitSet
        self.problems: list[Problem] = []
        self.sockets: dict[str, SocketRuntime] = {}
        self.services: dict[str, Service] = {}  # non-template services
        self.targets: dict[str, Target] = {}  # targets and placeholders
        self.asked: set[str] = set(carried["asked"]) if carried else set()  # named by operators
        self.graph: Graph
        self.engine: Engine
        self._reaper: Reaper | None = None
        self._hangups: HangupWatch | None = None
        self.stopping = False
        self.ready = False  # the `ready` line is out: is-system-running says running
        self.upward = upward if upward is not None else Upward(log)  # a supervisor above us
        self.started = time.time()
        self.notify_socket_path: str | None = None
        self.notify: NotifyServer | None = None
        self.run_id = generation.new_run_id()  # INVOCATION_IDs begin with it
        self._record: generation.Record | None = None  # ours, beside the control socket
        self.host = Host()  # the services' clock, timers, spawner, signals (faked in tests)
        self._capture: Capture | None = None  # services' stdout/stderr, made on first use
        self.tally = Tally()  # starts, ends, spawn times (metrics)
        self.builtin: BuiltinServer | None = None  # X-Activator-Metrics=yes sockets' server
        # id(section) -> (section, resolved); the section is kept so its id stays unique
        self._prepared: dict[int, tuple[object, plan.Prepared]] = {}
        self._creds: plan.CredsMemo = {}  # by User=, Group=, SupplementaryGroups= (prepare)
        self.operation_lock = asyncio.Lock()  # reloads and operators' start/stop/restart
        self._stopped = asyncio.Event()
        self._control: Server | None = None
        self._servers: list[Sidecar] = []  # beside the control socket: the metrics server
        self.policy = policy if policy is not None else Policy()
        self.booted = False  # the boot job is over
        self._force_stop = False  # FailureAction=exit-force: no stop timeouts
        self._reexec: asyncio.Task[None] | None = None

    @property
    def reaper(self) -> Reaper:
        assert self._reaper is not None, "the reaper exists once run() has begun"
        return self._reaper

    @property
    def hangups(self) -> HangupWatch | None:
        return self._hangups

    # ------------------------------------------------------------ logging helpers
    def log_exception(self, e: BaseException) -> None:
        for line in traceback.format_exception(e):
            for part in line.rstrip().splitlines():
                self.log("traceback", None, line=part)

    # ------------------------------------------------------------ loading
    def load_paths(self) -> list[str]:
        return search_path(self.unit_dirs) if self.systemd else self.unit_dirs

    def load_units(self) -> tuple[UnitSet, list[Problem]]:
        """Read the unit files: in systemd mode what default.target (and what operators
        asked for) needs; else everything in the --units directories, [Install] of boot
        targets honoured as if enabled."""
        return load_units(
            self.load_paths(),
            strict=self.strict,
            roots={"default.target"} if self.systemd else None,
            also=self.asked,
            install=not self.systemd,
            plumbing=self.systemd,
            checks=self.checks,
        )

    def load(self) -> None:
        self.units, self.problems = self.load_units()
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
        for sock in self.units.sockets.values():
            self.add_socket(SocketRuntime(self, sock))
        for name, target in self.units.targets.items():
            if "@." not in name:
                self.add_target(Target(self, target))
        for ph in self.units.placeholders.values():
            self.add_target(Placeholder(self, ph))
        self.rewire()

    def rewire(self) -> None:
        """The dependency graph of the current units, for the job engine; the log's
        LogLevelMax= filters."""
        levels = {u.name: u.Service.LogLevelMax for u in self.units.services.values()}
        levels.update((u.name, u.Socket.LogLevelMax) for u in self.units.sockets.values())
        self.log.limit_units({name: lv for name, lv in levels.items() if lv is not None})
        self.graph = Graph(self.units)
        if not self.systemd:  # today's rule without --systemd: every socket listens
            for name in self.units.sockets:
                self.graph.add("sockets.target", "Wants", name)
        if not hasattr(self, "engine"):
            self.engine = Engine(self, self.graph)
        self.engine.graph = self.graph

    def add_service(self, unit: ServiceUnit) -> Service:
        svc = Service(self, unit)
        svc.observe(self._service_changed)
        svc.observe(self._changed)
        self.services[unit.name] = svc
        return svc

    def add_socket(self, sock: SocketRuntime) -> SocketRuntime:
        sock.observe(self._changed)
        self.sockets[sock.name] = sock
        return sock

    def add_target(self, target: Target) -> Target:
        target.observe(self._changed)
        self.targets[target.name] = target
        return target

    def _changed(self, unit: RuntimeUnit) -> None:
        if hasattr(self, "engine"):
            self.engine.unit_changed(unit)
        self.policy.unit_changed(self, unit)

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
            if len(self._creds) >= 1024:  # (User=%i: as many users as instances)
                self._creds.clear()
            entry = self._prepared[id(section)] = (section, plan.prepare(section, self._creds))
        return entry[1]

    def acquire_dynamic(self, unit: ServiceUnit | SocketUnit) -> DynamicCreds | None:
        if self.checks.rootless_uid is not None:
            return None  # rootless: a user of its own is activator's (README)
        return self.dynamic_users.acquire(unit.name, unit.section)

    def invalidate_prepared(self) -> None:
        """Users, limits or unit files changed (a reload): resolve again on next use."""
        self._prepared.clear()
        self._creds.clear()

    def collect_fds(self, svc: ServiceRef) -> plan.Handover:
        """Accept=no: the listeners of every started socket that triggers this service, in order."""
        h = plan.Handover()
        for sock_name in self.units.sockets_of(svc.name):
            sock = self.sockets.get(sock_name)
            if sock is None or sock.section.Accept or not sock.listeners:
                continue
            if sock.section.ProxyTo is not None:  # activator accepts there and relays
                continue
            for lst in sock.listeners:
                h.fds.append(lst.fd)
                h.names.append(sock.fdname)
        return h

    def instance_done(self, svc: ServiceRef) -> None:
        c = svc.connection
        if c is not None:
            c.owner.instance_done(svc)
            self.policy.service_ended(self, svc.name, svc.active_state)

    @property
    def capture(self) -> Capture:
        """What services write to stdout/stderr (runtime/capture.py): imported and made when
        a first service needs it, so an idle daemon pays nothing for it."""
        if self._capture is None:
            from ..runtime.capture import Capture

            self._capture = Capture(self.log)
        return self._capture

    @property
    def captured(self) -> Capture | None:
        """The capture if a service ever needed it (metrics read it without making it)."""
        return self._capture

    def _exited(self, pid: int) -> None:
        if self._capture is not None:  # what the process wrote comes before its exit line
            self._capture.exited(pid)

    @property
    def default_timeout_stop(self) -> float:
        return self.policy.default_timeout_stop

    def stop_bound(self, post: bool) -> float:
        return self.policy.stop_bound(post) if self.stopping else math.inf

    def known_pids(self) -> set[int]:
        pids: set[int] = set()
        for s in (*self.services.values(), *self.instances()):
            pids.update(p for p in (s.main_pid, s.control_pid) if p)
        return pids

    def sockets_of(self, service: str) -> Iterable[str]:
        return self.units.sockets_of(service)

    def service(self, name: str) -> Service | None:
        unit = self.unit(name)
        return unit if isinstance(unit, Service) else None

    def activate(self, service: str, socket: str) -> None:
        self.engine.start_soon(service, socket)

    async def start_units(self, names: dict[str, bool]) -> list[str]:
        results = await asyncio.gather(*(self.engine.start(n) for n in names))
        return [
            n
            for (n, needed), r in zip(names.items(), results, strict=True)
            if needed and r != "done"
        ]

    def why_missing(self, name: str) -> str:
        real = self.units.resolve(name)
        if real in self.units.masked:
            return f"unit {real} is masked"
        errors = [p for p in self.problems if p.unit == real and p.severity == "error"]
        if errors:
            return f"unit {real} failed to load: {errors[0].message}"
        return f"unit {real} not found"

    def unit(self, name: str) -> RuntimeUnit | None:
        """The runtime unit of a name for the job engine: a loaded unit, an instance of a
        loaded template made now (foo@bar.service for foo@bar.socket), an Accept=yes
        instance that runs."""
        real = self.units.resolve(name)
        unit = (
            self.sockets.get(real)
            or self.services.get(real)
            or self.targets.get(real)
            or self.find(real)
        )
        if unit is None and "@" in real and "@." not in real and not self._accepting(real):
            model = self.units.get(real)
            if isinstance(model, ServiceUnit):
                unit = self.add_service(model)
        return unit

    def _accepting(self, instance: str) -> bool:
        """An instance of a template whose instances are made per connection."""
        template = instance[: instance.index("@") + 1] + instance[instance.rindex(".") :]
        return any(
            (s := self.sockets.get(n)) is not None and s.section.Accept
            for n in self.units.sockets_of(template)
        )

    # ------------------------------------------------------------ finding units
    def instances(self) -> Iterator[Service]:
        """The Accept=yes instances that are Services (the lanes' records are not)."""
        for sock in self.sockets.values():
            yield from sock.instances.values()

    def find(self, name: str) -> RuntimeUnit | None:
        """A unit by name or alias; an instance an accept lane keeps as a record becomes a
        Service now (an operator is about to look at it or act on it)."""
        real = self.units.resolve(name)
        unit: RuntimeUnit | None = (
            self.sockets.get(real) or self.services.get(real) or self.targets.get(real)
        )
        if unit is None and "@" in real and "@." not in real:
            # Only the sockets that trigger its template make instances of it: asking
            # every socket made a boot of N Accept=yes sockets O(N²).
            for sname in self.units.sockets_of(real):
                sock = self.sockets.get(sname)
                unit = sock.find_instance(real) if sock is not None else None
                if unit is not None:
                    break
        return unit

    def all_units(self) -> list[RuntimeUnit]:
        """Every unit: sockets, services, instances, the lanes' records, targets."""
        out: list[RuntimeUnit] = [*self.sockets.values(), *self.services.values()]
        out += self.instances()
        out += self.lane_records()
        out += self.targets.values()
        return out

    def lane_records(self) -> Iterator[Conn]:
        """The instances accept lanes keep as records (lane.Conn)."""
        for sock in self.sockets.values():
            if sock.lane is not None:
                yield from sock.lane.conns.values()

    # ------------------------------------------------------------ orphans
    def _orphan(self, pid: int, status: int) -> None:
        how, value, _ = exit_of(status)
        self.log("reap", None, pid=pid, **exit_fields(how, value))
        self.host.orphan_exited()  # a service waiting for its process groups to empty

    # ------------------------------------------------------------ life
    async def run(self, control: Server | None = None, servers: Sequence[Sidecar] = ()) -> int:
        """Load, bind, boot, serve until SIGTERM (or the failure policy), stop everything;
        the exit status (policy.py)."""
        # Start-up allocates tens of thousands of objects that live on (2 MiB a hundred
        # units): the collections their count triggers find nothing to free, traverse
        # all that came before and cost a third of a 10,000-unit start. One collection
        # once the boot is through (release_startup_memory) instead.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            status = await self._start(control, servers)
        finally:
            if gc_was_enabled:
                gc.enable()
        if status is not None:
            return status
        await self._stopped.wait()
        await self.shutdown()
        return self.policy.exit_status()

    async def _start(self, control: Server | None, servers: Sequence[Sidecar]) -> int | None:
        """Load, bind, boot until `ready`; None, or the exit status if it ended there."""
        loop = asyncio.get_running_loop()
        self.log.nonblocking(loop)  # an unread log must not stop us
        carried = self._carried
        if carried is None:
            # before anything binds: what an activator that died here left running goes first
            self.run_id, self._record = generation.begin(self.control_path, self.log)
        else:  # the same process, the same run: the record stands as it is
            self.run_id = carried["run_id"]
            if generation.record_path(self.control_path) is not None:
                self._record = generation.mine(self.run_id)
        self._reaper = Reaper(loop, on_orphan=self._orphan)
        self._reaper.before_exit = self._exited
        self._hangups = HangupWatch(loop)
        self.host.become_subreaper()  # forking daemons and leftovers come back to the reaper
        if self.checks.rootless_uid is not None:
            self._say_rootless()
        if carried is None:
            self.notify = open_server(self.control_path, self.log, loop)
        else:
            self.notify = NotifyServer(notify_path(self.control_path), self.log)
            reexec.adopt_notify(carried, self.notify)
            self.notify.start(loop)
        self.notify_socket_path = self.notify.path if self.notify is not None else None
        self.upward.starting("loading units")
        self.load()
        if carried is not None:
            self.units = reexec.add_instances(self.units, carried)
        elif self.policy.check_load(
            self, self.problems, len(self.units.sockets) + len(self.units.services)
        ):
            if self.notify is not None:
                self.notify.close()
            self.reaper.close()
            status = self.policy.exit_status()
            self.log("exit", None, pid=os.getpid(), command="activator", status=status)
            return status
        self.build()
        if any(any(plan.journal_streams(u.Service)) for u in self.units.services.values()):
            # The capture's module, made ready now: imported by a service's first start it
            # was ~3 ms of a cold activation (compiled, where no bytecode is cached)
            self.capture  # noqa: B018
        if carried is not None:
            reexec.restore(self, carried)  # before the reaper's first look: no exit is missed
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: reload.in_background(self))
        loop.add_signal_handler(signal.SIGUSR2, lambda: self._reexec_by_signal())
        if carried is not None:
            reexec.unblock_signals()
        if control is not None:
            try:
                await control.start(carried["control"] if carried is not None else None)
                self._control = control
            except ActivatorError as e:  # names the path or the group, and the cause
                self.log("failed", None, reason=str(e))
        for server in servers:
            try:
                await server.start()
                self._servers.append(server)
            except ActivatorError as e:
                self.log("failed", None, reason=str(e))
        self.upward.starting("starting default.target")
        if carried is None and not await self._boot():
            await self.shutdown()
            return self.policy.exit_status()
        self.booted = True
        release_startup_memory()
        self.log(
            "ready",
            None,
            pid=os.getpid(),
            units=len(self.sockets) + len(self.services),
            sockets=len(self.sockets),
            loop=loop_name(loop),
            control=self._control.path if self._control else None,
            generation=self.generation or None,
        )
        self.ready = True
        self.upward.ready(f"sockets: {len(self.sockets)}, services: {len(self.services)}")
        return None

    # ------------------------------------------------------------ re-exec
    def reexec(self) -> dict[str, int]:
        """Begin a live re-exec (reexec.py): checked now (raises RefusedError), carried out
        in the background once the caller has its answer."""
        if self._reexec is not None and not self._reexec.done():
            raise RefusedError("a daemon-reexec is already under way")
        reexec.check(self)
        if self._control is not None:
            # the answer to this request goes out, the next one is the new program's
            self._control.hold()
        self._reexec = asyncio.ensure_future(reexec.run(self, self._control))
        return {"pid": os.getpid(), "generation": self.generation + 1}

    def _reexec_by_signal(self) -> None:
        try:
            self.reexec()
        except ActivatorError as e:
            self.log("failed", None, reason=str(e))

    def _say_rootless(self) -> None:
        """Once at start-up: what not being root means (README, "Rootless")."""
        import pwd

        uid = os.geteuid()
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        self.log(
            "rootless",
            None,
            uid=uid,
            user=user,
            reason=f"not root: every service runs as {user}, a unit naming another user is "
            "refused, ports below net.ipv4.ip_unprivileged_port_start need "
            "CAP_NET_BIND_SERVICE",
        )

    async def _boot(self) -> bool:
        """The boot transaction: start default.target and what it needs, sockets before
        the services ordered after them. False: asked to stop meanwhile."""
        boot = asyncio.ensure_future(self.engine.start("default.target"))
        stop = asyncio.ensure_future(self._stopped.wait())
        await asyncio.wait({boot, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not boot.done():
            boot.cancel()
            return False
        result = boot.result()
        if result != "done":
            target = self.units.resolve("default.target")
            self.log("failed", target, result=result, reason="the boot did not reach it")
        return not self.stopping

    def submit(self, verb: str, name: str) -> Job | None:
        """An operator's start/stop/restart as a job (None: nothing to do)."""
        kind = {"start": JobType.START, "stop": JobType.STOP, "restart": JobType.RESTART}[verb]
        return self.engine.submit(name, kind)

    def request_stop(self, reason: str = "signal", *, force: bool = False) -> None:
        """Stop everything and exit: a signal, or the failure policy (which logged why)."""
        if not self.stopping and reason == "signal":
            self.log("shutdown", None, reason=reason)
        if not self.stopping:
            self.upward.stopping()
        self._force_stop = self._force_stop or force
        self.stopping = True
        self._stopped.set()

    async def load_more(self, names: list[str]) -> None:
        """Units an operator names that are not loaded yet, loaded now as systemd loads
        units on demand: an instance of a loaded template (``foo@bar.socket``), and in
        systemd mode a unit of the search path that no boot target wants. Nothing loaded
        changes (new or changed files need a reload), and instances an Accept=yes socket
        makes per connection are not made so."""
        units, problems = self.units, []
        for name in names:
            if self.find(name) is not None or name in self.asked:
                continue
            p = parse_unit_name(name)
            if p is not None and p.instance and self._accepting(name):
                continue
            model = units.get(name)
            if p is not None and p.instance and isinstance(model, (SocketUnit, ServiceUnit)):
                units = units.with_instance(model)
            elif self.systemd:
                self.asked.add(name)
                more, probs = load_units(
                    self.load_paths(),
                    strict=self.strict,
                    roots={name},
                    plumbing=True,
                    checks=self.checks,
                )
                units = units.with_units(more)
                problems += [x for x in probs if x.unit and self.units.get(x.unit) is None]
        if units is not self.units:
            await reload.extend(self, units, problems)

    async def reload_units(self, *, dry_run: bool = False) -> reload.Reload:
        """Re-read unit files (SIGHUP, `activatorctl reload`); see reload.py for the rules."""
        return await reload.reload_units(self, dry_run=dry_run)

    async def shutdown(self) -> None:
        """Stop every service and instance (each bounded by its TimeoutStopSec=, all of
        them by --stop-deadline), close the sockets, reap."""
        loop = asyncio.get_running_loop()
        end = self.policy.begin_stop(loop.time(), force=self._force_stop)
        for sock in self.sockets.values():
            sock.unwatch()
        try:
            await asyncio.wait_for(
                self._stop_units(), None if end == math.inf else max(0.0, end - loop.time())
            )
        except TimeoutError:
            late = True
            left = kill_left([*self.services.values(), *self.instances()])
            self.log(
                "timeout",
                None,
                phase="shutdown",
                deadline=0.0 if self._force_stop else self.policy.stop_deadline,
                reason=f"the stop deadline ran out: SIGKILL to {left} service(s) still stopping",
            )
            await self.engine.close()
        else:
            late = False
        for sock in self.sockets.values():
            try:
                await sock.stop(stop_instances=not late)  # past the deadline: no more waiting
            except Exception as e:  # a bug: say so, and go on closing the others
                self.log("failed", sock.name, reason=f"unable to stop: {e!r}")
                self.log_exception(e)
        if self.notify is not None:
            self.notify.close()
        if self._hangups is not None:
            self._hangups.close()
        if self._capture is not None:
            self._capture.close()
        if self._control is not None:
            await self._control.close()
        for server in self._servers:
            await server.close()
        if os.getpid() == 1:
            await self._reap_all()
        self.dynamic_users.close()
        self.reaper.close()
        self.upward.close()
        path = generation.record_path(self.control_path)
        if path is not None and self._record is not None:
            generation.remove(path, self._record)  # a clean stop: nothing left to find
        status = self.policy.exit_status()
        why = (
            f"services ended failed while stopping: {', '.join(self.policy.stop_failures)}"
            if status and self.policy.stop_failures and self.policy.status is None
            else None
        )
        self.log.closing()
        self.log("exit", None, pid=os.getpid(), command="activator", status=status, reason=why)

    async def _stop_units(self) -> None:
        # In the reverse of the order they started in: services before the sockets they
        # came from, what is ordered after a unit before that unit.
        await self.engine.stop_everything(
            [*self.services, *self.sockets, *(n for n, t in self.targets.items())]
        )
        await self.engine.close()
        for sock in self.sockets.values():
            sock.materialize_instances()
        await asyncio.gather(*(s.stop() for s in list(self.instances())), return_exceptions=True)
        await asyncio.gather(*(s.stop() for s in self.services.values()), return_exceptions=True)

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

"""One service unit at run time: systemd's service state machine.

A Service moves through systemd's sub-states (core/states.py): condition → start-pre →
start → start-post → running (or exited) → stop → stop-sigterm → stop-sigkill →
stop-post → final-sigterm → final-sigkill → dead, failed or auto-restart. Each state
runs at most one control process (ExecStartPre= …, one command line after the
other) and has at most one timer (TimeoutStartSec=, RuntimeMaxSec=, TimeoutStopSec=,
RestartSec=); the watchdog has its own (watchdog.py). Everything that happens to a
service is an event handled synchronously on the event loop: a start or stop request,
the exit of its main or control process (from the reaper), a timer, a notification
(notify.py). No task per service, no awaiting inside the machine; ``stop()`` and
``reload()`` merely wait until the machine has settled.

How the types become active (systemd.service(5), Type=):

- simple, exec, idle: once the main process has exec'd — the spawn core returns only
  after execve(), so a failed exec is a failed start for both (result exit-code);
- notify (and notify-reload): on ``READY=1`` from a process NotifyAccess= allows;
- forking: when the process started exits 0; the main pid is then read from
  PIDFile=, else guessed (our one new child);
- oneshot: when every ExecStart= line has exited (RemainAfterExit= keeps it active);
- dbus: there is no bus in a container; run as simple, with a warning.

The machine reaches the world only through its ``ServiceContext`` (declared here, the
manager implements it; tests/lifecycle fake it): ``ctx.host`` (clock, timers, spawn,
signals, readers), ``ctx.reaper`` and ``ctx.notify``. What needs root's authority on
paths a service controls (directories, PID files, conditions) is in ``exec``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from ..core.errors import NotActiveError, RefusedError, StartError
from ..core.exitstatus import exit_fields, exit_of, failure, main_result, matches, short_signal
from ..core.log import template_key
from ..core.ratelimit import RateLimit
from ..core.states import (
    EXEC_DIRECTIVE,
    PUBLIC,
    SERVICE_TRANSITIONS,
    SUB_TRANSITIONS,
    TIMEOUTS,
    Result,
    check,
)
from ..core.states import ServiceState as S
from ..core.states import ServiceSubState as U
from ..exec import plan
from ..exec.conditions import failed_condition
from ..exec.directories import make_directories, remove_runtime_directories
from ..exec.dynamic import DynamicCreds
from ..exec.pidfile import PidFileError, read_pidfile
from ..exec.plan import Handover
from ..units.model import ExecCommand, RestartPolicy, ServiceType, ServiceUnit
from ..units.values import signal_name
from . import notifying, status
from .context import Connection, ServiceContext
from .notify import FdStore
from .processes import ProcessGroups, orphan_children
from .spawning import SpawnFailed, spawn_command
from .unit import RuntimeUnitBase
from .watchdog import Watchdog

_NOTIFY_TYPES = (ServiceType.NOTIFY, ServiceType.NOTIFY_RELOAD)
_WATCHDOG_STATES = (U.START_POST, U.RUNNING, U.RELOAD)
_SETTLED = (U.DEAD, U.FAILED)
# While activator stops (--stop-deadline): timers of these states end at the point where
# SIGKILL goes out, those of the others (SIGKILL sent, ExecStopPost=, the leftovers) at
# the deadline itself.
_STOP_STEPS = (U.STOP, U.STOP_SIGTERM, U.STOP_WATCHDOG)
_POST_STEPS = (U.STOP_SIGKILL, U.STOP_POST, U.FINAL_SIGTERM, U.FINAL_SIGKILL)
_USEC = 1_000_000

#: What a Service derives from its unit (a reload of the unit files replaces these);
#: every other attribute is run-time state.
CONFIG_ATTRS = ("unit", "start_limit")
_NONE: frozenset[Any] = frozenset()  # the shared empty set of _tracked and _warned
_NO_WAITERS: list[Any] = []  # shared, never appended to: _wait_until makes a list of its own


class Service(RuntimeUnitBase):
    """One service's state machine; an Accept=yes instance has its ``connection``.

    Who calls what: the manager, sockets and operators call the requests (``start``,
    ``request_stop``/``stop``, ``restart``, ``reload``, ``kill``, ``reset_failed``); the
    reaper, timers and the notify server call the ``_on_*`` handlers; everything else is
    the machine's own. ``_enter`` is the only way the sub-state changes.
    """

    kind = "service"
    # An Accept=yes instance on the event loop is a Service: without an instance dict
    # (~50 attributes, 2.3 KiB) a held connection costs the supervisor a third as much.
    __slots__ = (
        "ctx", "unit", "name", "connection", "sub", "state", "result", "reload_result",
        "since", "main_pid", "control_pid", "last_exit", "n_restarts", "status_text",
        "status_errno", "invocation", "listeners", "idle_stop", "start_limit", "fd_store",
        "watchdog", "_handover", "_owned_fd", "_instance", "_prepared", "_dynamic", "_env",
        "_commands", "_control_cmd", "_main_cmd", "_main_exit", "_groups", "_tracked",
        "_pidfd", "_timer", "_deadline", "_cut_short", "_journal_key", "_by_deadline",
        "_runtime_deadline", "_forbid_restart", "_restarting", "_waiting_groups", "_warned",
        "_waiters",
    )  # fmt: skip

    def __init__(
        self, ctx: ServiceContext, unit: ServiceUnit, connection: Connection | None = None
    ) -> None:
        self.ctx = ctx
        self.unit = unit
        self.name = unit.name
        self.connection = connection
        self.sub = U.DEAD
        self.state = S.INACTIVE
        self.result = Result.SUCCESS
        self.reload_result = Result.SUCCESS
        self.since = time.time()
        self.main_pid: int | None = None
        self.control_pid: int | None = None
        self.last_exit: tuple[str, int] | None = None  # ("exited", code) | ("killed", sig)
        self.n_restarts = 0
        self.status_text = ""
        self.status_errno = 0
        self.invocation = ""
        # who hears of state changes (observe()); none for an Accept=yes instance, which then
        # has no list of its own
        self.listeners: tuple[Callable[[Service], None], ...] = ()
        self.idle_stop: Any = None  # X-Activator-IdleStopSec=: its sockets' watch (idle.py)
        u = unit.Unit
        host = ctx.host
        self.start_limit = RateLimit(u.StartLimitIntervalSec, u.StartLimitBurst, clock=host.clock)
        self.fd_store = FdStore(
            0, watch=host.add_reader, unwatch=host.remove_reader, on_drop=self._fd_hung_up
        )
        self.watchdog = Watchdog(host, self)
        # -- one start's worth of state
        self._handover: Handover | None = None
        self._owned_fd: int | None = None  # our duplicate of an Accept=yes connection
        self._instance = False
        self._prepared: plan.Prepared | None = None
        self._dynamic: DynamicCreds | None = None  # DynamicUser=: held until stopped for good
        self._env: dict[str, str] = {}  # INVOCATION_ID, NOTIFY_SOCKET, *_DIRECTORY, REMOTE_* …
        self._commands: list[ExecCommand] = []  # the rest of the current Exec*= list
        self._control_cmd: ExecCommand | None = None
        self._main_cmd: ExecCommand | None = None
        self._main_exit: tuple[str, int] | None = None  # this start's main process exit
        self._groups = ProcessGroups(host)  # sessions/process groups of this start's processes
        # pids registered with the notify server; warnings said once: a set of its own at
        # the first (an empty set is 216 bytes, an instance that tracks nothing has none)
        self._tracked: set[int] | frozenset[int] = _NONE
        self._pidfd: int | None = None  # main pid that is not our child
        self._timer: Any = None
        self._deadline = math.inf
        self._cut_short = False  # the armed timer ends at the stop deadline, not its own
        self._journal_key: str | None = None  # the capture's streams this start writes to
        self._by_deadline = False  # the timer that fired was the stop deadline
        self._runtime_deadline = math.inf
        self._forbid_restart = False  # an explicit stop: no Restart=
        self._restarting = False  # an operator's restart: keep the fd store, RestartKillSignal=
        self._waiting_groups = False
        self._warned: set[str] | frozenset[str] = _NONE
        self._waiters: list[asyncio.Future[None]] = _NO_WAITERS  # a list at the first

    # ------------------------------------------------------------ state
    def _enter(self, new: U, result: Result | None = None) -> None:
        check(SUB_TRANSITIONS, self.name, self.sub, new)
        public = PUBLIC[new]
        check(SERVICE_TRANSITIONS, self.name, self.state, public)
        changed = (
            new != self.sub
            or public != self.state
            or (result is not None and result != self.result)
        )
        if result is not None:
            self.result = result
        self.sub = new
        if public != self.state:
            self.state = public
            self.since = time.time()
        if new not in _WATCHDOG_STATES:
            self.watchdog.stop()
        if changed:  # failed → failed (start-limit-hit) is news to the sockets too
            # (Accept=yes instances have no listeners: nothing is called on the hot path)
            for cb in self.listeners:  # (a tuple: a callback that observes changes no loop)
                cb(self)
        if self._waiters:
            waiters, self._waiters = self._waiters, _NO_WAITERS
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def observe(self, callback: Callable[[Service], None]) -> None:
        self.listeners += (callback,)

    @property
    def active(self) -> bool:
        return self.state in (S.ACTIVATING, S.ACTIVE, S.RELOADING, S.DEACTIVATING)

    @property
    def active_state(self) -> str:
        return str(self.state)

    @property
    def sub_state(self) -> str:
        return str(self.sub)

    @property
    def svc(self):
        """The [Service] section of the current unit."""
        return self.unit.Service

    @property
    def stop_timeout(self) -> float:
        """TimeoutStopSec=, or activator's default (--default-timeout-stop-sec) when unset."""
        svc = self.unit.Service
        if "TimeoutStopSec" in svc.model_fields_set:
            return svc.TimeoutStopSec
        return self.ctx.default_timeout_stop

    @property
    def fast(self) -> bool:
        """Everything happens within start(): no control process may need the connection
        of an Accept=yes instance after the caller has closed its copy."""
        return self.unit.Service.single_exec

    @property
    def peer(self) -> str | None:
        return self.connection.peer if self.connection is not None else None

    @property
    def type(self) -> ServiceType:
        t = self.svc.Type
        return ServiceType.SIMPLE if t in (ServiceType.IDLE, ServiceType.DBUS) else t

    @property
    def wants_fds(self) -> bool:
        """Its notifications may carry fds for the fd store (the notify server then takes
        them; everyone else's are dropped unopened)."""
        return self.svc.FileDescriptorStoreMax > 0

    @property
    def notify_access(self) -> str:
        """NotifyAccess=, with systemd's default: main for notify, a watchdog or an fd store."""
        svc = self.svc
        if svc.NotifyAccess is not None:
            return svc.NotifyAccess
        if svc.Type in _NOTIFY_TYPES or svc.WatchdogSec > 0 or svc.FileDescriptorStoreMax > 0:
            return "main"
        return "none"

    async def _wait_until(self, done: Callable[[], bool]) -> None:
        while not done():
            fut = asyncio.get_running_loop().create_future()
            if self._waiters is _NO_WAITERS:
                self._waiters = []
            self._waiters.append(fut)
            await fut

    # ------------------------------------------------------------ requests
    def check(self, verb: str) -> None:
        """Refuse what cannot be done now: RefuseManual*=, a start while it stops, starting
        an instance again (its connection is gone), reloading or killing what does not run."""
        super().check(verb)
        if verb == "start" and self.state == S.DEACTIVATING:
            raise RefusedError(f"{self.name} is stopping; start it when it has stopped")
        if verb in ("start", "restart"):
            if self.connection is not None and self.state in (S.INACTIVE, S.FAILED):
                raise RefusedError(
                    f"{self.name} is an instance for one connection; it cannot be started again"
                )
        elif verb == "reload" and self.state not in (S.ACTIVE, S.RELOADING):
            raise NotActiveError(f"{self.name} is not active, cannot reload")
        elif verb == "kill" and self.main_pid is None:
            raise NotActiveError(f"{self.name} has no process to signal")

    def start(self, handover: Handover | None = None) -> None:
        """Begin a start (no-op unless inactive or failed). Errors end in FAILED, never raise.

        A service failed with start-limit-hit is started again only by a request like this
        one (an operator's: its Accept=no sockets stopped when it failed, so they send
        none), which resets the limit; its own Restart= never gets past the limit.
        """
        if self.ctx.stopping or self.sub not in _SETTLED:
            return
        if self.sub == U.FAILED and self.result == Result.START_LIMIT_HIT:
            self.start_limit.reset()
        self._begin(handover)

    def start_instance(self, handover: Handover) -> None:
        """Accept=yes: start an instance for one connection. The caller closes its copy of
        the connection when this returns; a service that still needs it keeps a duplicate."""
        self.start(handover)

    def adopt_instance(
        self, pid: int, invocation: str, since: float, *, watch: bool = True
    ) -> None:
        """Accept=yes: take over an instance an accept lane spawned (lane.py) as if
        start_instance() had spawned it: running, ``pid`` its main process. The lane only
        runs units whose start is that one exec (lane.unfit), so nothing is skipped.
        ``watch=False``: the caller has its exit already and hands it to _on_main_exit()."""
        self._instance = True
        self.invocation = invocation
        self._prepared = self.ctx.prepared(self.unit)
        if self.svc.DynamicUser and self._dynamic is None:
            # its own hold on the user it runs as (the lane holds it too: this only counts)
            with contextlib.suppress(StartError):
                self._dynamic = self.ctx.acquire_dynamic(self.unit)
        self._enter(U.START_PRE)
        self._enter(U.START)
        self._main_cmd = self.svc.ExecStart[0]
        if watch:
            self._set_main(pid, child=True, spawned=True)
        else:
            self.main_pid = pid
            self._groups.add(pid)
        self._enter_start_post()  # no ExecStartPost= here: straight on to running
        self.since = since

    def request_stop(self) -> None:
        """Begin the stop sequence (systemd's service_stop); no Restart= after it."""
        self._forbid_restart = True
        sub = self.sub
        if sub == U.AUTO_RESTART:
            self._disarm()
            self._release(restarting=False)
            self._enter(U.DEAD)
            self.ctx.instance_done(self)
            return
        if sub in (U.RUNNING, U.EXITED):
            self.ctx.log("stop", self.name, pid=self.main_pid)
            self._enter_stop(Result.SUCCESS)
        elif sub in (U.CONDITION, U.START_PRE, U.START, U.START_POST, U.RELOAD):
            self.ctx.log("stop", self.name, pid=self.main_pid)
            self._enter_signal(U.STOP_SIGTERM, Result.SUCCESS)
        # dead, failed: nothing to do; stopping already: on it

    async def stop(self, *, restart: bool = False) -> None:
        """Stop the service and everything it started; returns when all of it is gone.
        ``restart``: the stop half of an operator's restart (RestartKillSignal=; the fd
        store and a RuntimeDirectoryPreserve=restart directory survive it)."""
        self._restarting = restart
        try:
            self.request_stop()
            await self._wait_until(lambda: self.sub in _SETTLED)
        finally:
            self._restarting = False

    async def restart(self) -> None:
        """An operator's restart: stop (as a restart), start again."""
        await self.stop(restart=True)
        self.start()

    def request_reload(self) -> bool:
        """ExecReload= (or SIGHUP for Type=notify-reload); False when there is no way to reload."""
        if self.sub not in (U.RUNNING, U.EXITED):
            return False
        svc = self.svc
        if svc.ExecReload:
            self.reload_result = Result.SUCCESS
            self.ctx.log("reload", self.name, pid=self.main_pid)
            self._run_phase(U.RELOAD, svc.ExecReload, svc.TimeoutStartSec)
            return True
        if svc.Type == ServiceType.NOTIFY_RELOAD and self.main_pid is not None:
            self.reload_result = Result.SUCCESS
            self.ctx.log("reload", self.name, pid=self.main_pid, signal="SIGHUP")
            self.ctx.host.signal(self.main_pid, signal.SIGHUP, group=False)
            self._enter(U.RELOAD)
            self._arm(svc.TimeoutStartSec)  # until READY=1
            return True
        return False

    async def reload(self) -> None:
        if self.sub not in (U.RUNNING, U.EXITED):
            return
        if not self.request_reload():
            await self.restart()  # no ExecReload=: a reload is a restart
            return
        await self._wait_until(lambda: self.sub != U.RELOAD)

    def kill(self, sig: int) -> int | None:
        """`activatorctl kill`: the main process, and with KillMode=control-group its groups."""
        pid = self.main_pid
        if pid is None:
            return None
        host = self.ctx.host
        hit = self._groups.signal(sig) if self.svc.KillMode == "control-group" else set()
        if not self._groups.reached(pid, hit):
            host.signal(pid, sig, group=False)
        return pid

    def reset_failed(self) -> bool:
        """systemd's service_reset_failed(): the failure, the start limit and the restart count."""
        was = self.sub == U.FAILED
        if was:
            self._enter(U.DEAD, Result.SUCCESS)
        self.result = Result.SUCCESS
        self.start_limit.reset()
        self.n_restarts = 0
        return was

    async def settle(self, verb: str) -> str | None:
        """Until a start or stop has run its course, as a systemctl job: running or exited,
        or dead, failed or waiting to restart; bounded by TimeoutStartSec=. Then why the
        job failed: the service failed (or failed and waits for Restart=), or its
        ExecReload= failed."""
        done = (U.RUNNING, U.EXITED, U.DEAD, U.FAILED, U.AUTO_RESTART)
        timeout = self.svc.TimeoutStartSec
        with contextlib.suppress(TimeoutError):  # still on its way: report it as it is
            await asyncio.wait_for(
                self._wait_until(lambda: self.sub in done),
                None if timeout in (0, math.inf) else timeout,
            )
        if self.sub in (U.FAILED, U.AUTO_RESTART):
            result = self.result
        elif verb == "reload" and self.reload_result != Result.SUCCESS:
            result = self.reload_result
        else:
            return None
        return (
            f"{self.name} failed to {verb} (result: {result}); "
            f"see 'activatorctl status {self.name}'"
        )

    # ------------------------------------------------------------ what status and show say
    def _triggered_by(self) -> list[str]:
        c = self.connection
        return [c.owner.name] if c is not None else list(self.ctx.sockets_of(self.name))

    def describe(self) -> dict[str, Any]:
        return status.describe_service(self, self._triggered_by())

    def properties(self) -> dict[str, str]:
        return status.service_properties(self, " ".join(self._triggered_by()))

    # ------------------------------------------------------------ a re-exec (manager/reexec.py)
    def serialize(self, keep: Callable[[int], int]) -> dict[str, Any]:
        """What the next activator needs to carry on with this service as it is (systemd's
        service_serialize()): state, processes, timers as monotonic deadlines, the fds
        (``keep`` marks each to be handed over and returns its number)."""
        return {
            "sub": str(self.sub),
            "result": str(self.result),
            "reload_result": str(self.reload_result),
            "since": self.since,
            "main_pid": self.main_pid,
            "control_pid": self.control_pid,
            "pidfd": self._pidfd is not None,
            "last_exit": self.last_exit,
            "main_exit": self._main_exit,
            "n_restarts": self.n_restarts,
            "status_text": self.status_text,
            "status_errno": self.status_errno,
            "invocation": self.invocation,
            "instance": self._instance,
            "owned_fd": None if self._owned_fd is None else keep(self._owned_fd),
            "env": self._env,
            "commands": [self._command_ref(c) for c in self._commands],
            "control_cmd": self._command_ref(self._control_cmd),
            "main_cmd": self._command_ref(self._main_cmd),
            "groups": sorted(self._groups.ids),
            "deadline": None if self._deadline == math.inf else self._deadline,
            "runtime_deadline": None
            if self._runtime_deadline == math.inf
            else self._runtime_deadline,
            "forbid_restart": self._forbid_restart,
            "waiting_groups": self._waiting_groups,
            "watchdog": self.watchdog.carried(),
            "start_limit": [self.start_limit.begin, self.start_limit.count],
            "fd_store": [[keep(i.fd), i.name, i.poll] for i in self.fd_store.items],
            "dynamic": self._dynamic is not None,  # DynamicUser=: the user is held
        }

    def _command_ref(self, cmd: ExecCommand | None) -> tuple[str, int] | None:
        if cmd is None:
            return None
        for directive in EXEC_DIRECTIVE.values():
            for i, c in enumerate(getattr(self.svc, directive)):
                if c is cmd:
                    return directive, i
        return None

    def _command(self, ref: Any) -> ExecCommand | None:
        if not ref:
            return None
        commands = getattr(self.svc, ref[0], ())
        return commands[ref[1]] if 0 <= ref[1] < len(commands) else None

    def restore(self, d: dict[str, Any]) -> None:
        """Carry on from ``serialize()``'s record (made by the activator this process
        replaced): the same state, the same processes watched, the timers armed at the
        same deadlines, the fds (open in this process under the same numbers) taken back.
        Nothing is logged and no listener hears of it: nothing changed."""
        host, reaper = self.ctx.host, self.ctx.reaper
        self.sub = U(d["sub"])
        self.state = PUBLIC[self.sub]
        if d.get("dynamic"):  # hold the user again (reexec.py carried its lock over)
            self._dynamic = self.ctx.acquire_dynamic(self.unit)
        self.result = Result(d["result"])
        self.reload_result = Result(d["reload_result"])
        self.since = d["since"]
        self.last_exit = tuple(d["last_exit"]) if d["last_exit"] else None
        self._main_exit = tuple(d["main_exit"]) if d["main_exit"] else None
        self.n_restarts = d["n_restarts"]
        self.status_text, self.status_errno = d["status_text"], d["status_errno"]
        self.invocation = d["invocation"]
        self._instance = d["instance"]
        self._env = dict(d["env"])
        self._commands = [c for c in map(self._command, d["commands"]) if c is not None]
        self._control_cmd = self._command(d["control_cmd"])
        self._main_cmd = self._command(d["main_cmd"])
        self._forbid_restart = d["forbid_restart"]
        self.start_limit.begin, self.start_limit.count = d["start_limit"]
        self._prepared = self.ctx.prepared(self.unit)
        self.fd_store.limit = self.svc.FileDescriptorStoreMax
        for fd, name, poll in d["fd_store"]:
            os.set_inheritable(fd, False)
            _added, rest = self.fd_store.add([fd], name, poll)
            for extra in rest:
                os.close(extra)
        if d["owned_fd"] is not None:
            os.set_inheritable(d["owned_fd"], False)
            self._owned_fd = d["owned_fd"]
            self._handover = Handover(connection=self._owned_fd)
        elif self.active and self.connection is None:
            self._handover = self.ctx.collect_fds(self)  # the listeners, as handed over
        for g in d["groups"]:
            self._groups.add(g)
        pid = d["main_pid"]
        if pid is not None:
            self.main_pid = pid
            self._track(pid)
            reaper.watch(pid, self._on_main_exit)
            if d["pidfd"]:  # not our child: its pidfd says when it exits
                fd = host.open_pidfd(pid)
                if fd is None:
                    host.call_at(host.clock(), lambda: self._on_pidfd(pid))  # gone already
                else:
                    self._pidfd = fd
                    host.add_reader(fd, lambda: self._on_pidfd(pid))
        if d["control_pid"] is not None:
            self.control_pid = d["control_pid"]
            self._track(self.control_pid)
            reaper.watch(self.control_pid, self._on_control_exit)
        if d["deadline"] is not None:
            self._arm_at(d["deadline"])
        if d["runtime_deadline"] is not None:
            self._runtime_deadline = d["runtime_deadline"]
        if d["waiting_groups"]:
            self._wait_for_groups(True)
        if self.sub in _WATCHDOG_STATES:
            self.watchdog.carry_on(*d["watchdog"])

    # ------------------------------------------------------------ the start sequence
    def _begin(self, handover: Handover | None) -> None:
        if not self.start_limit.below():
            self._disarm()
            self.ctx.log(
                "failed",
                self.name,
                result=Result.START_LIMIT_HIT,
                reason="start request repeated too quickly",
            )
            self._release(restarting=False)
            self._enter(U.FAILED, Result.START_LIMIT_HIT)
            self.ctx.instance_done(self)
            return
        failed = failed_condition(self.unit.Unit.Conditions)
        if failed is not None:
            # Not started, and nothing changes; an Accept=no socket that triggered it
            # listens again (and its queued traffic repeats the trigger, up to the start
            # limit counted above, as systemd's: sd#3167).
            directive, value = failed
            if directive.startswith("Assert"):
                self.ctx.log("failed", self.name, reason=f"{directive}={value} failed")
            else:
                self.ctx.log("skipped", self.name, reason=f"{directive}={value} was not met")
            for cb in list(self.listeners):
                cb(self)
            self.ctx.instance_done(self)
            return
        svc = self.svc
        self.result = self.reload_result = Result.SUCCESS
        self._forbid_restart = False
        self._main_exit = None
        self._main_cmd = self._control_cmd = None
        self.status_text, self.status_errno = "", 0
        self.watchdog.override = None
        self._runtime_deadline = math.inf
        conn = handover.connection if handover is not None else None
        self._instance = conn is not None
        if handover is not None and conn is not None and not self.fast:
            handover.connection = self._owned_fd = os.dup(conn)
        self._enter(U.CONDITION if svc.ExecCondition else U.START_PRE)
        try:
            self._setup(handover)
        except StartError as e:
            self.ctx.log("failed", self.name, result=Result.RESOURCES, reason=str(e))
            self._enter_signal(U.STOP_SIGTERM, Result.RESOURCES)
            return
        if self.sub == U.CONDITION:
            self._run_phase(U.CONDITION, svc.ExecCondition, svc.TimeoutStartSec)
        else:
            self._enter_start_pre()

    def _setup(self, handover: Handover | None) -> None:
        """What every process of this start shares. Raises StartError."""
        svc = self.svc
        if svc.Type == ServiceType.DBUS:
            self.warn_once(
                "dbus",
                "Type=dbus: there is no D-Bus here; running it as Type=simple "
                "(BusName= is ignored)",
            )
        self.invocation = plan.invocation_id(self.ctx.run_id)
        env = {"INVOCATION_ID": self.invocation}
        self._prepared = None
        self._prepared = self.ctx.prepared(self.unit)
        if svc.DynamicUser:
            if self._dynamic is None:  # kept across automatic restarts, as in systemd
                self._dynamic = self.ctx.acquire_dynamic(self.unit)
            if self._dynamic is not None:
                dynamic = self._dynamic.credentials
                self._prepared = dataclasses.replace(self._prepared, creds=dynamic)
        if self.notify_access != "none":
            path = self.ctx.notify_socket_path
            notify = self.ctx.notify
            if notify is not None:
                # the socket of the user it runs as: nobody else may write to it
                creds = self._prepared.creds
                try:
                    path = notify.path_for(*((creds.uid, creds.gid) if creds else (0, 0)))
                except OSError as e:
                    raise StartError(f"unable to bind NOTIFY_SOCKET: {e.strerror}") from None
            if path:
                env["NOTIFY_SOCKET"] = path
            elif svc.Type in _NOTIFY_TYPES:
                self.warn_once(
                    "notify",
                    "Type=notify but activator has no NOTIFY_SOCKET; the start will time out",
                )
        if svc.PIDFile:
            env["PIDFILE"] = svc.PIDFile
        env.update(make_directories(svc, self._prepared.creds))
        if handover is None:
            handover = self.ctx.collect_fds(self)
        env.update(handover.extra_env)
        self._handover = handover
        self._env = env
        self.fd_store.limit = svc.FileDescriptorStoreMax

    def _enter_start_pre(self) -> None:
        self._run_phase(U.START_PRE, self.svc.ExecStartPre, self.svc.TimeoutStartSec)

    def _enter_start(self) -> None:
        svc = self.svc
        self._disarm()
        self._enter(U.START)
        t = self.type
        if t == ServiceType.ONESHOT:
            self._commands = list(svc.ExecStart)
            self._arm(svc.TimeoutStartSec)
            self._next_main()
            return
        cmd = svc.ExecStart[0]
        self._main_cmd = cmd
        try:
            pid = self._spawn(cmd, main=True)
        except SpawnFailed as f:
            self._enter_signal(U.STOP_SIGTERM, f.result)
            return
        if t == ServiceType.FORKING:
            # The process started is a control process; the daemon it forks is the main one.
            self._start_control(pid, cmd)
            self._arm(svc.TimeoutStartSec)
            return
        self._set_main(pid, child=True, spawned=True)
        if self._instance and self._owned_fd is None:
            self._handover = None  # the caller closes the connection: nothing may use it now
        if t in _NOTIFY_TYPES:
            self._arm(svc.TimeoutStartSec)  # until READY=1
        else:
            self._enter_start_post()  # simple, exec: up once exec'd

    def _next_main(self) -> None:
        """Type=oneshot: the next ExecStart= line, each one the main process in its turn."""
        while self._commands:
            cmd = self._commands.pop(0)
            self._main_cmd = cmd
            try:
                pid = self._spawn(cmd, main=True)
            except SpawnFailed as f:
                if cmd.ignore_failure:
                    continue
                self._enter_signal(U.STOP_SIGTERM, f.result)
                return
            self._set_main(pid, child=True, spawned=True)
            return
        self._enter_start_post()

    def _enter_start_post(self) -> None:
        self._disarm()
        self._enter(U.START_POST)
        self.watchdog.reset()
        self._run_phase(U.START_POST, self.svc.ExecStartPost, self.svc.TimeoutStartSec)

    def _enter_running(self, f: Result) -> None:
        """systemd's service_enter_running(): up, exited, or on the way down."""
        if self.result == Result.SUCCESS:
            self.result = f
        self._disarm()
        svc = self.svc
        was = self.sub
        if self.result != Result.SUCCESS:
            self._enter_signal(U.STOP_SIGTERM, self.result)
        elif self._main_alive():
            self._enter(U.RUNNING)
            if was == U.START_POST:
                self._runtime_deadline = self.ctx.host.clock() + svc.RuntimeMaxSec
                if self.type not in (ServiceType.SIMPLE, ServiceType.EXEC):
                    # up by its own word (READY=1, a PID file, its exit): worth a line
                    self.ctx.log("ready", self.name, pid=self.main_pid)
            if self._runtime_deadline != math.inf:
                self._arm_at(self._runtime_deadline)
        elif svc.RemainAfterExit:
            self._enter(U.EXITED)
            if was == U.START_POST:
                self.ctx.log("ready", self.name, pid=None, remain=True)
        else:
            self._enter_stop(Result.SUCCESS)

    def _main_alive(self) -> bool:
        if self.main_pid is not None:
            return True
        # Type=forking without a PIDFile= and no guess: up while its process groups are.
        return (
            self.svc.Type == ServiceType.FORKING
            and self._main_exit is None
            and self._groups.alive()
        )

    # ------------------------------------------------------------ the stop sequence
    def _enter_stop(self, f: Result) -> None:
        """ExecStop= (for a service that came up), then the signals."""
        if self.result == Result.SUCCESS:
            self.result = f
        self._disarm()
        if self.svc.ExecStop:
            self._run_phase(U.STOP, self.svc.ExecStop, self.stop_timeout)
        else:
            self._enter_signal(U.STOP_SIGTERM, Result.SUCCESS)

    def _enter_signal(self, state: U, f: Result) -> None:
        """Signal what runs (as KillMode= says) and wait for it, bounded by TimeoutStopSec=.

        stop-*: the main and control processes; final-*: also what is left in the
        unit's process groups, which activator (a subreaper) sees exit as orphans.
        """
        if self.result == Result.SUCCESS:
            self.result = f
        self._disarm()
        self._commands = []
        svc = self.svc
        host = self.ctx.host
        mode = svc.KillMode
        final = state in (U.FINAL_SIGTERM, U.FINAL_SIGKILL)
        killing = state in (U.STOP_SIGKILL, U.FINAL_SIGKILL)
        if state == U.STOP_WATCHDOG:
            sig = svc.WatchdogSignal
        elif killing:
            sig = svc.FinalKillSignal
        elif self._restarting and svc.RestartKillSignal is not None:
            sig = svc.RestartKillSignal
        else:
            sig = svc.KillSignal
        wait = False
        if mode != "none":
            hup = svc.SendSIGHUP and not killing and state != U.STOP_WATCHDOG
            by_group = mode == "control-group" or (mode == "mixed" and killing)
            hit = self._groups.signal(sig, hup) if by_group else set()
            for pid in (self.main_pid, self.control_pid):
                if pid is None:
                    continue
                wait = True
                if self._groups.reached(pid, hit):
                    continue  # it had the signal with its process group
                host.signal(pid, sig, group=False)
                if hup:
                    host.signal(pid, signal.SIGHUP, group=False)
            if killing and sig == signal.SIGKILL:
                self.ctx.log(
                    "kill",
                    self.name,
                    pid=self.main_pid or self.control_pid,
                    signal="SIGKILL",
                    reason="still running at the stop deadline"
                    if self._by_deadline
                    else f"still running after TimeoutStopSec={self.stop_timeout:g}s",
                )
            if final and mode in ("control-group", "mixed"):
                if not by_group:  # mixed: SIGTERM went to the main process only; wait for the rest
                    hit = self._groups.signal(0)
                if hit:
                    wait = True
                    self._wait_for_groups(True)
        if wait:
            self._enter(state)
            self._arm(self.stop_timeout)
        elif not final:
            self._enter_stop_post(Result.SUCCESS)
        else:
            self._enter_dead(Result.SUCCESS)

    def _enter_stop_post(self, f: Result) -> None:
        if self.result == Result.SUCCESS:
            self.result = f
        self._disarm()
        self._run_phase(U.STOP_POST, self.svc.ExecStopPost, self.stop_timeout)

    def _enter_dead(self, f: Result) -> None:
        if self.result == Result.SUCCESS:
            self.result = f
        self._disarm()
        self._wait_for_groups(False)
        result = self.result
        self.ctx.tally.ended(template_key(self.name), str(result))
        restart = self._shall_restart()
        self._release(restarting=restart or self._restarting)
        if restart:
            self.ctx.log(
                "restart",
                self.name,
                result=None if result == Result.SUCCESS else result,
                delay=f"{self.svc.RestartSec:g}s",
            )
            self._enter(U.AUTO_RESTART, result)
            self._arm(self.svc.RestartSec)
            return
        if result in (Result.SUCCESS, Result.EXEC_CONDITION):
            self._enter(U.DEAD, result)
        else:
            self.ctx.log("failed", self.name, result=result)
            self._enter(U.FAILED, result)
        self.ctx.instance_done(self)

    def _shall_restart(self) -> bool:
        """systemd's service_shall_restart()."""
        if self._forbid_restart or self.ctx.stopping or self._instance:
            return False  # an instance's connection is gone: nothing to restart with
        svc = self.svc
        r = self.result
        if r in (Result.START_LIMIT_HIT, Result.EXEC_CONDITION):
            return False
        if self._main_exit is not None:
            if matches(svc.RestartPreventExitStatus, self._main_exit):
                return False
            if matches(svc.RestartForceExitStatus, self._main_exit):
                return True
        p = svc.Restart
        clean = r == Result.SUCCESS
        return (
            p == RestartPolicy.ALWAYS
            or (p == RestartPolicy.ON_SUCCESS and clean)
            or (p == RestartPolicy.ON_FAILURE and not clean)
            or (
                p == RestartPolicy.ON_ABNORMAL
                and r in (Result.SIGNAL, Result.CORE_DUMP, Result.TIMEOUT, Result.WATCHDOG)
            )
            or (p == RestartPolicy.ON_ABORT and r in (Result.SIGNAL, Result.CORE_DUMP))
            or (p == RestartPolicy.ON_WATCHDOG and r == Result.WATCHDOG)
        )

    def _release(self, *, restarting: bool) -> None:
        """What a service lets go of when it is down: its connection, fd store, /run dir."""
        self.watchdog.stop()
        self._forget_main()
        if self._owned_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._owned_fd)
            self._owned_fd = None
        self._handover = None
        notify = self.ctx.notify
        if notify is not None:
            for pid in self._tracked:
                notify.untrack(pid, self)
        self._tracked = _NONE
        self._groups.clear()
        self.main_pid = self.control_pid = None
        if not restarting:
            self.fd_store.close()
        preserve = self.svc.RuntimeDirectoryPreserve
        if preserve == "no" or (preserve == "restart" and not restarting):
            remove_runtime_directories(self.svc)
        if not restarting and self._dynamic is not None:
            self._dynamic.release()  # after the directories: nothing runs as it now
            self._dynamic = None

    # ------------------------------------------------------------ control processes
    def _run_phase(self, state: U, commands, timeout: float) -> None:
        """Enter a state that runs a list of control commands, one after the other."""
        self._disarm()
        self._enter(state)
        self._commands = list(commands)
        if self._commands:
            self._arm(timeout)
        self._next_control()

    def _next_control(self) -> None:
        while self._commands:
            cmd = self._commands.pop(0)
            try:
                pid = self._spawn(cmd, main=False, extra=self._phase_env())
            except SpawnFailed as f:
                if cmd.ignore_failure:
                    continue
                self._commands = []
                self._control_done(f.result)
                return
            self._start_control(pid, cmd)
            return
        self._control_done(Result.SUCCESS)

    def _start_control(self, pid: int, cmd: ExecCommand) -> None:
        self.control_pid = pid
        self._control_cmd = cmd
        self.ctx.reaper.watch(pid, self._on_control_exit)

    def _phase_env(self) -> dict[str, str] | None:
        if self.sub not in (U.STOP, U.STOP_POST):
            return None
        how, value = self._main_exit or ("exited", 0)
        return {
            "SERVICE_RESULT": str(self.result),
            "EXIT_CODE": how,
            "EXIT_STATUS": str(value) if how == "exited" else short_signal(value),
        }

    def _on_control_exit(self, pid: int, status: int) -> None:
        if pid != self.control_pid:
            return  # one we gave up on (a reload that timed out)
        self.control_pid = None
        cmd = self._control_cmd
        how, value, dumped = exit_of(status)
        if self.sub == U.CONDITION:
            # ExecCondition=: 0 go on, 1-254 skip the start quietly, 255 or a signal fail it.
            if how == "exited" and 0 < value < 255:
                self.ctx.log(
                    "skipped", self.name, pid=pid, status=value, reason="ExecCondition= was not met"
                )
                self._commands = []
                self._control_done(Result.EXEC_CONDITION)
                return
        ok = how == "exited" and value == 0
        if not ok:
            self.ctx.log(
                "exit",
                self.name,
                pid=pid,
                command=EXEC_DIRECTIVE.get(self.sub, str(self.sub)),
                **exit_fields(how, value),
            )
        if ok or (cmd is not None and cmd.ignore_failure):
            self._next_control()
            return
        self._commands = []
        self._control_done(failure(how, dumped))

    def _control_done(self, f: Result) -> None:
        """A state's control commands are through (``f``: how), as service_sigchld_event()."""
        sub = self.sub
        ok = f == Result.SUCCESS
        if sub == U.CONDITION:
            self._enter_start_pre() if ok else self._enter_signal(U.STOP_SIGTERM, f)
        elif sub == U.START_PRE:
            self._enter_start() if ok else self._enter_signal(U.STOP_SIGTERM, f)
        elif sub == U.START:  # Type=forking: the parent has exited
            self._forked() if ok else self._enter_signal(U.STOP_SIGTERM, f)
        elif sub == U.START_POST:
            self._enter_running(Result.SUCCESS) if ok else self._enter_stop(f)
        elif sub == U.RELOAD:
            self.reload_result = f
            self.ctx.log("reloaded", self.name, result=None if ok else f)
            self._enter_running(Result.SUCCESS)
        elif sub == U.STOP:
            self._enter_signal(U.STOP_SIGTERM, f)
        elif sub in (U.STOP_WATCHDOG, U.STOP_SIGTERM, U.STOP_SIGKILL):
            if self.main_pid is None:
                self._enter_stop_post(f)
        elif sub == U.STOP_POST:
            self._enter_signal(U.FINAL_SIGTERM, f)
        elif sub in (U.FINAL_SIGTERM, U.FINAL_SIGKILL):
            self._final_check(f)

    # ------------------------------------------------------------ Type=forking
    def _forked(self) -> None:
        svc = self.svc
        pid = (
            self._read_pidfile()
            if svc.PIDFile
            else self._guess_main_pid()
            if svc.GuessMainPID
            else None
        )
        if svc.PIDFile and pid is None:
            self._enter_signal(U.STOP_SIGTERM, Result.PROTOCOL)
            return
        if pid is not None:
            self._set_main(pid, child=self.ctx.host.parent_of(pid) == os.getpid())
        self._enter_start_post()

    def _read_pidfile(self) -> int | None:
        """The main pid from PIDFile=; one written by anyone but root must name a process
        of this service (or an orphan of it, now activator's child), as systemd checks."""
        path = self.svc.PIDFile
        try:
            pid, trusted = read_pidfile(path)
        except PidFileError as e:
            why = f"unable to read PID file {path}: {e}"
        else:
            if pid <= 1 or pid == os.getpid() or self.ctx.host.parent_of(pid) is None:
                why = f"PID file {path} names {pid}, which is not a process of the service"
            elif not trusted and not self._groups.belongs(pid):
                why = (
                    f"PID file {path} is not owned by root and names {pid}, "
                    "which does not belong to the service: refused"
                )
            else:
                return pid
        self.ctx.log("failed", self.name, result=Result.PROTOCOL, reason=why)
        return None

    def _guess_main_pid(self) -> int | None:
        """GuessMainPID=: the one child of activator that no service owns (the daemon the
        start process left behind, re-parented to us); none when that is not clear."""
        found = orphan_children(self.ctx.host, self.ctx.known_pids(), self._groups.belongs)
        return found[0] if len(found) == 1 else None

    # ------------------------------------------------------------ the main process
    def _set_main(self, pid: int, *, child: bool, spawned: bool = False) -> None:
        """``pid`` is the main process now: one we spawned (it leads its own session), or
        one adopted from PIDFile=/MAINPID=/a guess, ``child`` if activator is its parent."""
        self._forget_main()
        self.main_pid = pid
        host = self.ctx.host
        if spawned:
            self._groups.add(pid)
        else:
            self._groups.adopt(pid)
        self._track(pid)
        self.ctx.reaper.watch(pid, self._on_main_exit)
        if not child:
            # Not our child (yet): waitpid() will not tell us when it exits; its pidfd will.
            fd = host.open_pidfd(pid)
            if fd is not None:
                self._pidfd = fd
                host.add_reader(fd, lambda: self._on_pidfd(pid))

    def _forget_main(self) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(Exception):
                self.ctx.host.remove_reader(self._pidfd)
            with contextlib.suppress(OSError):
                os.close(self._pidfd)
            self._pidfd = None

    def _on_pidfd(self, pid: int) -> None:
        self._forget_main()
        if pid != self.main_pid:
            return
        if self.ctx.host.parent_of(pid) == os.getpid():
            return  # it became our child before it died: the reaper has its exit status
        self.ctx.reaper.forget(pid)
        self._on_main_exit(pid, None)

    def _on_main_exit(self, pid: int, status: int | None) -> None:
        if pid != self.main_pid:
            return
        notify = self.ctx.notify
        if notify is not None and self._tracked:
            notify.drain()  # a READY=1 sent right before the exit comes first, as in systemd
            if pid != self.main_pid:
                return  # MAINPID= moved the main process elsewhere
        self._forget_main()
        self.main_pid = None
        how, value, dumped = exit_of(status)
        self.last_exit = self._main_exit = (how, value)
        cmd = self._main_cmd
        f = self._main_result(how, value, dumped)
        if cmd is not None and cmd.ignore_failure:
            f = Result.SUCCESS
        self.ctx.log(
            "exit",
            self.name,
            pid=pid,
            **exit_fields(how, value),
        )
        if self.result == Result.SUCCESS:
            self.result = f
        sub = self.sub
        t = self.type
        if sub == U.START and t == ServiceType.ONESHOT:
            self._next_main() if f == Result.SUCCESS else self._enter_signal(U.STOP_SIGTERM, f)
        elif sub == U.START and t in _NOTIFY_TYPES:
            if f != Result.SUCCESS:
                self._enter_signal(U.STOP_SIGTERM, f)
            elif not self.svc.RemainAfterExit or self.notify_access == "main":
                self.ctx.log(
                    "failed",
                    self.name,
                    result=Result.PROTOCOL,
                    reason="the main process exited before READY=1",
                )
                self._enter_signal(U.STOP_SIGTERM, Result.PROTOCOL)
        elif sub in (U.START, U.RUNNING):
            self._enter_running(f)
        elif sub in (U.STOP_WATCHDOG, U.STOP_SIGTERM, U.STOP_SIGKILL):
            if self.control_pid is None:
                self._enter_stop_post(f)
        elif sub == U.RELOAD and self.control_pid is None:
            self._enter_running(f)  # reloading by RELOADING=1: no READY=1 will come now
        elif sub in (U.FINAL_SIGTERM, U.FINAL_SIGKILL):
            self._final_check(f)
        # start-post, reload (ExecReload=), stop, stop-post: the operation in progress decides

    def _main_result(self, how: str, value: int, dumped: bool) -> Result:
        return main_result(self.svc, how, value, dumped, oneshot=self.type == ServiceType.ONESHOT)

    # ------------------------------------------------------------ leftovers of the process groups
    def _wait_for_groups(self, on: bool) -> None:
        listeners = self.ctx.host.orphan_listeners
        if on and not self._waiting_groups:
            listeners.add(self._on_orphan)
        elif not on and self._waiting_groups:
            listeners.discard(self._on_orphan)
        self._waiting_groups = on

    def _on_orphan(self) -> None:
        if self.sub in (U.FINAL_SIGTERM, U.FINAL_SIGKILL):
            self._final_check(Result.SUCCESS)

    def _final_check(self, f: Result) -> None:
        """final-*: dead once the control process and every process group are gone."""
        if self.result == Result.SUCCESS:
            self.result = f
        if self.control_pid is None and (
            self.svc.KillMode not in ("control-group", "mixed") or not self._groups.alive()
        ):
            self._enter_dead(Result.SUCCESS)

    # ------------------------------------------------------------ timers
    def _arm(self, seconds: float) -> None:
        if seconds == math.inf:
            self._disarm()
            return
        self._arm_at(self.ctx.host.clock() + max(0.0, seconds))

    def _arm_at(self, when: float) -> None:
        self._disarm()
        ctx = self.ctx
        if ctx.stopping and self.sub in _STOP_STEPS + _POST_STEPS:
            bound = ctx.stop_bound(self.sub in _POST_STEPS)
            if bound < when:
                when, self._cut_short = bound, True
        self._deadline = when
        self._timer = ctx.host.call_at(when, self._on_timer)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = math.inf
        self._cut_short = False

    def extend_timeout(self, usec: int) -> None:
        """EXTEND_TIMEOUT_USEC=: the current timeout ends no earlier than now + usec."""
        if self._timer is None or self.sub not in (
            U.START,
            U.START_POST,
            U.RUNNING,
            U.STOP,
            U.STOP_SIGTERM,
            U.STOP_POST,
            U.FINAL_SIGTERM,
        ):
            return
        when = self.ctx.host.clock() + usec / _USEC
        if when > self._deadline:
            if self.sub == U.RUNNING:
                self._runtime_deadline = when
            self._arm_at(when)

    def _on_timer(self) -> None:
        self._timer = None
        self._deadline = math.inf
        self._by_deadline, self._cut_short = self._cut_short, False
        svc = self.svc
        what = TIMEOUTS.get(self.sub)
        if what is None:
            return  # no timer is armed in this state
        phase, reason, step = what
        if phase is not None:
            why = "the stop deadline ran out" if self._by_deadline else reason
            self.ctx.log(
                "timeout", self.name, phase=phase, reason=why.format(svc, self.stop_timeout)
            )
        if step == "kill":
            self._enter_signal(U.STOP_SIGTERM, Result.TIMEOUT)
        elif step == "stop":
            self._enter_stop(Result.TIMEOUT)
        elif step == "final":
            self._enter_signal(U.FINAL_SIGTERM, Result.TIMEOUT)
        elif step == "reload":
            if self.control_pid is not None:
                self.ctx.host.signal(self.control_pid, signal.SIGKILL, group=True)
                self.control_pid = None  # its exit is of no interest any more
            self.reload_result = Result.TIMEOUT
            self._enter_running(Result.SUCCESS)
        elif step == "sigkill":
            if svc.SendSIGKILL:
                self._enter_signal(U.STOP_SIGKILL, Result.TIMEOUT)
            else:
                self.ctx.log(
                    "timeout",
                    self.name,
                    phase=str(self.sub),
                    reason="still running; SendSIGKILL=no",
                )
                self._enter_stop_post(Result.TIMEOUT)
        elif step == "give-up":
            self.ctx.log(
                "warning",
                self.name,
                pid=self.main_pid,
                reason="still there after SIGKILL; giving up on it",
            )
            self._enter_stop_post(Result.TIMEOUT)
        elif step == "final-sigkill":
            if svc.SendSIGKILL:
                self._enter_signal(U.FINAL_SIGKILL, Result.TIMEOUT)
            else:
                self._enter_dead(Result.TIMEOUT)
        elif step == "final-give-up":
            self.ctx.log(
                "warning",
                self.name,
                reason="processes still there after SIGKILL; giving up on them",
            )
            self._enter_dead(Result.TIMEOUT)
        elif step == "restart":
            if self.ctx.stopping:
                self._enter(U.DEAD)
                return
            self.n_restarts += 1
            self._begin(None)

    # ------------------------------------------------------------ the watchdog
    def watchdog_configured(self) -> float:
        return self.svc.WatchdogSec

    def watchdog_armed(self) -> bool:
        return self.sub in _WATCHDOG_STATES

    def watchdog_expired(self) -> None:
        self._on_watchdog(False)

    def _on_watchdog(self, forced: bool) -> None:
        sig = self.svc.WatchdogSignal
        reason = (
            "WATCHDOG=trigger" if forced else f"no WATCHDOG=1 within {self.watchdog.seconds:g}s"
        )
        self.ctx.log(
            "watchdog", self.name, pid=self.main_pid, signal=signal_name(sig), reason=reason
        )
        self._enter_signal(U.STOP_WATCHDOG, Result.WATCHDOG)

    # ------------------------------------------------------------ notifications
    def notify_message(
        self, pid: int, uid: int | None, fields: dict[str, str], fds: list[int]
    ) -> None:
        """One sd_notify() datagram from ``pid`` (a process of this service); takes ``fds``."""
        notifying.dispatch(self, pid, uid, fields, fds)

    def on_mainpid(self, text: str, uid: int | None) -> None:
        """MAINPID=: another process is the main one (from a non-root sender only one of
        the service's own)."""
        if self.sub not in (U.START, U.START_POST, U.RUNNING, U.RELOAD):
            return
        try:
            pid = int(text or "")
        except ValueError:
            self.warn_once("mainpid", f"MAINPID={text!r} is not a pid")
            return
        host = self.ctx.host
        if pid == self.main_pid:
            return
        if pid <= 1 or pid == os.getpid() or host.parent_of(pid) is None:
            self.warn_once(f"mainpid-{pid}", f"MAINPID={pid}: no such process, ignored")
            return
        if uid != 0 and not self._groups.belongs(pid):
            self.warn_once(
                f"mainpid-{pid}",
                f"MAINPID={pid} does not belong to the service and the sender is not root: refused",
            )
            return
        old = self.main_pid
        if old is not None:
            self.ctx.reaper.forget(old)  # no longer ours to judge; its exit is an orphan's
        self.ctx.log("mainpid", self.name, pid=pid, previous=old)
        self._set_main(pid, child=host.parent_of(pid) == os.getpid())

    def on_reloading(self) -> None:
        """RELOADING=1: reloading by itself until READY=1 (bounded by TimeoutStartSec=)."""
        if self.sub == U.RUNNING:
            self.ctx.log("reload", self.name, pid=self.main_pid, by="notify")
            self.reload_result = Result.SUCCESS
            self._disarm()
            self._enter(U.RELOAD)
            self._arm(self.svc.TimeoutStartSec)

    def on_ready(self) -> None:
        """READY=1: a notify service is up, or a reload announced by RELOADING=1 is done."""
        if self.svc.Type in _NOTIFY_TYPES and self.sub == U.START:
            self._enter_start_post()
        elif self.sub == U.RELOAD and self.control_pid is None:
            self.ctx.log("reloaded", self.name)
            self._enter_running(Result.SUCCESS)

    def on_stopping(self) -> None:
        """STOPPING=1: the service stops by itself: wait for it (TimeoutStopSec=), send
        nothing yet."""
        if self.sub == U.RUNNING:
            self.ctx.log("stop", self.name, pid=self.main_pid, by="notify")
            self._disarm()
            self._enter(U.STOP_SIGTERM)
            self._arm(self.stop_timeout)

    def on_watchdog_trigger(self) -> None:
        """WATCHDOG=trigger: as if the watchdog had run out."""
        if self.sub in _WATCHDOG_STATES:
            self.watchdog.stop()
            self._on_watchdog(forced=True)

    def _fd_hung_up(self, item) -> None:
        self.ctx.log(
            "fdstore",
            self.name,
            removed=1,
            name=item.name,
            stored=len(self.fd_store),
            reason="hung up",
        )

    def _track(self, pid: int) -> None:
        notify = self.ctx.notify
        if notify is not None and self.notify_access != "none":
            notify.track(pid, self)
            if not self._tracked:
                self._tracked = set()
            assert isinstance(self._tracked, set)
            self._tracked.add(pid)

    # ------------------------------------------------------------ spawning
    def _spawn(self, cmd: ExecCommand, *, main: bool, extra: dict[str, str] | None = None) -> int:
        """Spawn one process of this start; its pid. Raises SpawnFailed (logged)."""
        svc = self.svc
        generated = dict(self._env)
        try:
            passed = plan.pass_fds(
                svc, self._handover, self.fd_store.fds() if main else (), main=main
            )
            generated.update(passed.env)
            watchdog = False
            if main:
                wd = self.watchdog.seconds
                if 0 < wd < math.inf:
                    generated["WATCHDOG_USEC"] = str(int(wd * _USEC))
                    watchdog = True  # WATCHDOG_PID: the child's own pid, like LISTEN_PID
            elif self.main_pid is not None:
                generated["MAINPID"] = str(self.main_pid)
            if extra:
                generated.update(extra)
            prepared = self._prepared
            if prepared is None:
                prepared = self._prepared = self.ctx.prepared(self.unit)
            if not main and svc.PermissionsStartOnly:
                prepared = dataclasses.replace(prepared, creds=None)
        except StartError as e:
            self.ctx.log("failed", self.name, result=Result.RESOURCES, reason=str(e))
            raise SpawnFailed(Result.RESOURCES) from None
        try:
            pid = spawn_command(
                self.ctx,
                self.name,
                svc,
                prepared,
                cmd,
                generated,
                passed=passed,
                watchdog_pid=watchdog,
                nonblocking=svc.NonBlocking,
                peer=self.peer,
                journal=self._journal(),
            )
        except SpawnFailed as f:
            if main and f.exit_code is not None:
                self.last_exit = self._main_exit = ("exited", f.exit_code)
            raise
        if main:
            self.ctx.tally.started(template_key(self.name))
        if self._journal_key is not None and self.ctx.capture is not None:
            self.ctx.capture.attribute(pid, self.name, self._journal_key)
        self._groups.add(pid)  # it leads its own session and process group
        if not main or self.svc.Type == ServiceType.FORKING:
            self._track(pid)
        return pid

    def _journal(self) -> tuple[int, int]:
        """The capture's stdout/stderr for this start's processes (-1: not captured). An
        Accept=yes instance writes into its template's streams (the capture knows it by
        its pid), so a connection costs no pipe of its own."""
        self._journal_key = None
        capture = self.ctx.capture
        if capture is None:
            return (-1, -1)
        out, err = plan.journal_streams(self.svc)
        if not (out or err):
            return (-1, -1)
        key = template_key(self.name) if self.connection is not None else self.name
        self._journal_key = key
        return capture.fds(key, plan.syslog_identifier(self.svc), out, err)

    def warn_once(self, key: str, message: str) -> None:
        if key in self._warned:
            return
        if not self._warned or len(self._warned) > 64:
            self._warned = set()
        assert isinstance(self._warned, set)
        self._warned.add(key)
        self.ctx.log("warning", self.name, reason=message)

"""One service unit at run time: systemd's service state machine.

A Service moves through systemd's sub-states (states.py): condition → start-pre →
start → start-post → running (or exited) → stop → stop-sigterm → stop-sigkill →
stop-post → final-sigterm → final-sigkill → dead, failed or auto-restart. Each state
runs at most one control process (ExecStartPre= …, one command line after the
other) and has at most one timer (TimeoutStartSec=, RuntimeMaxSec=, TimeoutStopSec=,
RestartSec=); the watchdog has its own. Everything that happens to a service is an
event handled synchronously on the event loop: a start or stop request, the exit of
its main or control process (from the reaper), a timer, a notification
(notify.py). No task per service, no awaiting inside the machine; ``stop()`` and
``reload()`` merely wait until the machine has settled.

How the types become active (reference/systemd.md §3.2, §4):

- simple, exec, idle: once the main process has exec'd — the spawn core returns only
  after execve(), so a failed exec is a failed start for both (result exit-code);
- notify (and notify-reload): on ``READY=1`` from a process NotifyAccess= allows;
- forking: when the process started exits 0; the main pid is then read from
  PIDFile=, else guessed (our one new child);
- oneshot: when every ExecStart= line has exited (RemainAfterExit= keeps it active);
- dbus: there is no bus in a container; run as simple, with a warning.

The world is reached through ``daemon.host`` (a ``Host``: clock, timers, spawn,
signals, readers), ``daemon.reaper`` and ``daemon.notify``, so tests/lifecycle can
drive the machine with a fake clock and a fake spawner.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import signal
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..core.errors import StartError
from ..core.ratelimit import RateLimit
from ..core.states import PUBLIC, SERVICE_TRANSITIONS, SUB_TRANSITIONS, Result, check
from ..core.states import ServiceState as S
from ..core.states import ServiceSubState as U
from ..exec import _spawn, plan
from ..exec import spec as execcore
from ..exec.spec import SpawnError
from ..units.model import ExecCommand, ExitStatusSet, RestartPolicy, ServiceType, ServiceUnit
from .notify import FdStore

if TYPE_CHECKING:
    from ..manager.manager import Daemon

# Signals after which a daemon's exit counts as clean, as systemd's is_clean_exit().
_CLEAN_SIGNALS = {signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE}
_NOTIFY_TYPES = (ServiceType.NOTIFY, ServiceType.NOTIFY_RELOAD)
_WATCHDOG_STATES = (U.START_POST, U.RUNNING, U.RELOAD)
_SETTLED = (U.DEAD, U.FAILED)
_USEC = 1_000_000

#: What a Service derives from its unit (a reload of the unit files replaces these);
#: every other attribute is run-time state.
CONFIG_ATTRS = ("unit", "fast", "start_limit")


@dataclass
class Handover:
    """The fds a start hands to the main process, with their names (LISTEN_FDNAMES)."""

    fds: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    connection: int | None = None  # Accept=yes: the accepted connection
    extra_env: dict[str, str] = field(default_factory=dict)  # REMOTE_ADDR, UCSPI vars …


class Host:
    """The world as the state machine sees it: time, timers, processes, signals, fds.

    The daemon's Host is this one; tests/lifecycle give a Service a fake of the same
    shape (a clock moved by hand, a spawner that hands out pids, no processes).
    """

    def __init__(self) -> None:
        self.orphan_listeners: set[Callable[[], None]] = set()

    @staticmethod
    def spawn(spec: execcore.ExecSpec) -> int:
        return execcore.spawn(spec)

    @staticmethod
    def clock() -> float:
        return asyncio.get_running_loop().time()

    @staticmethod
    def call_at(when: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_at(when, callback)

    @staticmethod
    def add_reader(fd: int, callback: Callable[[], None]) -> None:
        asyncio.get_running_loop().add_reader(fd, callback)

    @staticmethod
    def remove_reader(fd: int) -> None:
        asyncio.get_running_loop().remove_reader(fd)

    @staticmethod
    def signal(pid: int, sig: int, *, group: bool) -> bool:
        """kill()/killpg(); False when there is no such process (group)."""
        try:
            (os.killpg if group else os.kill)(pid, sig)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # it exists
        return True

    @staticmethod
    def parent_of(pid: int) -> int | None:
        """The parent pid of a process, None when it is gone."""
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
        except OSError:
            return None
        try:
            return int(data[data.rindex(b")") + 2 :].split()[1])
        except (ValueError, IndexError):
            return None

    @staticmethod
    def groups_of(pid: int) -> set[int]:
        """The session and process group of a process (empty when it is gone)."""
        try:
            return {os.getsid(pid), os.getpgid(pid)}
        except OSError:
            return set()

    @staticmethod
    def open_pidfd(pid: int) -> int | None:
        try:
            return os.pidfd_open(pid)
        except OSError:
            return None

    def orphan_exited(self) -> None:
        """The reaper reaped a process nobody watched (a service's leftover, maybe)."""
        for cb in list(self.orphan_listeners):
            cb()

    @staticmethod
    def become_subreaper() -> bool:
        """Orphans of services come back to activator (a forking daemon, leftovers of a
        process group), so the reaper sees them exit. PID 1 is one anyway."""
        return _spawn.set_subreaper()


class _Failed(Exception):
    """A process of this start could not be spawned (already logged)."""

    def __init__(self, result: Result) -> None:
        super().__init__(str(result))
        self.result = result


class Service:
    def __init__(self, daemon: Daemon, unit: ServiceUnit) -> None:
        self.daemon = daemon
        self.unit = unit
        self.name = unit.name
        self.sub = U.DEAD
        self.state = S.INACTIVE
        self.result = Result.SUCCESS
        self.reload_result = Result.SUCCESS
        self.since = time.time()
        self.main_pid: int | None = None
        self.control_pid: int | None = None
        self.last_exit: tuple[str, int] | None = (
            None  # ("exited", code) | ("killed", sig), main process
        )
        self.n_restarts = 0
        self.status_text = ""
        self.status_errno = 0
        self.peer: str | None = None  # Accept=yes instances: who connected
        self.invocation = ""
        self.listeners: list[Callable[[Service], None]] = []
        svc = unit.Service
        # Everything happens within start(): no control process may need the connection
        # of an Accept=yes instance after the caller has closed its copy.
        self.fast = (
            len(svc.ExecStart) == 1
            and not svc.ExecCondition
            and not svc.ExecStartPre
            and not svc.ExecStartPost
            and not svc.ExecStop
            and not svc.ExecStopPost
            and not svc.ExecReload
        )
        u = unit.Unit
        self.start_limit = RateLimit(
            u.StartLimitIntervalSec, u.StartLimitBurst, clock=daemon.host.clock
        )
        host = daemon.host
        self.fd_store = FdStore(
            0, watch=host.add_reader, unwatch=host.remove_reader, on_drop=self._fd_hung_up
        )
        # -- one start's worth of state
        self._handover: Handover | None = None
        self._owned_fd: int | None = None  # our duplicate of an Accept=yes connection
        self._instance = False
        self._prepared: plan.Prepared | None = None
        self._env: dict[str, str] = {}  # INVOCATION_ID, NOTIFY_SOCKET, *_DIRECTORY, REMOTE_* …
        self._commands: list[ExecCommand] = []  # the rest of the current Exec*= list
        self._control_cmd: ExecCommand | None = None
        self._main_cmd: ExecCommand | None = None
        self._main_exit: tuple[str, int] | None = None  # this start's main process exit
        self._groups: set[int] = set()  # sessions/process groups of this start's processes
        self._tracked: set[int] = set()  # pids registered with the notify server
        self._pidfd: int | None = None  # main pid that is not our child
        self._timer = None
        self._deadline = math.inf
        self._runtime_deadline = math.inf
        self._watchdog = None
        self._watchdog_last = 0.0
        self._watchdog_override: float | None = None
        self._forbid_restart = False  # an explicit stop: no Restart=
        self._restarting = False  # an operator's restart: keep the fd store, RestartKillSignal=
        self._waiting_groups = False
        self._warned: set[str] = set()
        self._waiters: list[asyncio.Future[None]] = []

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
        if self._watchdog is not None and new not in _WATCHDOG_STATES:
            self._stop_watchdog()
        if changed:  # failed → failed (start-limit-hit) is news to the sockets too
            # (Accept=yes instances have no listeners: nothing is called on the hot path)
            for cb in list(self.listeners):
                cb(self)
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def _set(self, new: S, result: Result | None = None) -> None:
        """For callers that speak the public states: failed → inactive is reset-failed."""
        if new == S.INACTIVE and self.sub == U.FAILED:
            self.reset_failed()
        elif new != self.state:
            raise ValueError(f"{self.name}: cannot set {new} from {self.state}/{self.sub}")

    def reset_failed(self) -> None:
        if self.sub == U.FAILED:
            self._enter(U.DEAD, Result.SUCCESS)
        self.result = Result.SUCCESS
        self.start_limit.reset()

    @property
    def active(self) -> bool:
        return self.state in (S.ACTIVATING, S.ACTIVE, S.RELOADING, S.DEACTIVATING)

    @property
    def svc(self):
        return self.unit.Service

    @property
    def type(self) -> ServiceType:
        t = self.svc.Type
        return ServiceType.SIMPLE if t in (ServiceType.IDLE, ServiceType.DBUS) else t

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
            self._waiters.append(fut)
            await fut

    # ------------------------------------------------------------ requests
    def start(self, handover: Handover | None = None) -> None:
        """Begin a start (no-op unless inactive or failed). Errors end in FAILED, never raise.

        A service failed with start-limit-hit is started again only by a request like this
        one (an operator's: its Accept=no sockets stopped when it failed, so they send
        none), which resets the limit; its own Restart= never gets past the limit.
        """
        if self.daemon.stopping or self.sub not in _SETTLED:
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
        """Accept=yes: take over an instance an accept lane spawned (acceptlane.py) as if
        start_instance() had spawned it: running, ``pid`` its main process. The lane only
        runs units whose start is that one exec (acceptlane.unfit), so nothing is skipped.
        ``watch=False``: the caller has its exit already and hands it to _on_main_exit()."""
        self._instance = True
        self.invocation = invocation
        self._prepared = self.daemon.prepared(self.unit)
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
            self.daemon.instance_done(self)
            return
        if sub in (U.RUNNING, U.EXITED):
            self.daemon.log("stop", self.name, pid=self.main_pid)
            self._enter_stop(Result.SUCCESS)
        elif sub in (U.CONDITION, U.START_PRE, U.START, U.START_POST, U.RELOAD):
            self.daemon.log("stop", self.name, pid=self.main_pid)
            self._enter_signal(U.STOP_SIGTERM, Result.SUCCESS)
        # dead, failed: nothing to do; stopping already: on it

    async def stop(self) -> None:
        """Stop the service and everything it started; returns when all of it is gone."""
        self.request_stop()
        await self._wait_until(lambda: self.sub in _SETTLED)

    async def restart(self) -> None:
        """An operator's restart: stop (RestartKillSignal=), start again; the fd store and
        a RuntimeDirectoryPreserve=restart directory survive it."""
        self._restarting = True
        try:
            await self.stop()
        finally:
            self._restarting = False
        self.start()

    def request_reload(self) -> bool:
        """ExecReload= (or SIGHUP for Type=notify-reload); False when there is no way to reload."""
        if self.sub not in (U.RUNNING, U.EXITED):
            return False
        svc = self.svc
        if svc.ExecReload:
            self.reload_result = Result.SUCCESS
            self.daemon.log("reload", self.name, pid=self.main_pid)
            self._run_phase(U.RELOAD, svc.ExecReload, svc.TimeoutStartSec)
            return True
        if svc.Type == ServiceType.NOTIFY_RELOAD and self.main_pid is not None:
            self.reload_result = Result.SUCCESS
            self.daemon.log("reload", self.name, pid=self.main_pid, signal="SIGHUP")
            self.daemon.host.signal(self.main_pid, signal.SIGHUP, group=False)
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

    def kill(self, sig: int) -> bool:
        """`activatorctl kill`: the main process, and with KillMode=control-group its groups."""
        pid = self.main_pid
        if pid is None:
            return False
        host = self.daemon.host
        hit = self._signal_groups(sig) if self.svc.KillMode == "control-group" else set()
        if pid not in hit and not (hit and host.groups_of(pid) & hit):
            host.signal(pid, sig, group=False)
        return True

    # ------------------------------------------------------------ the start sequence
    def _begin(self, handover: Handover | None) -> None:
        if not self.start_limit.below():
            self._disarm()
            self.daemon.log(
                "failed",
                self.name,
                result=Result.START_LIMIT_HIT,
                reason="start request repeated too quickly",
            )
            self._release(restarting=False)
            self._enter(U.FAILED, Result.START_LIMIT_HIT)
            self.daemon.instance_done(self)
            return
        failed = failed_condition(self.unit.Unit.Conditions)
        if failed is not None:
            # Not started, and nothing changes; an Accept=no socket that triggered it
            # listens again (and its queued traffic repeats the trigger, up to the start
            # limit counted above, as systemd's: sd#3167).
            directive, value = failed
            if directive.startswith("Assert"):
                self.daemon.log("failed", self.name, reason=f"{directive}={value} failed")
            else:
                self.daemon.log("skipped", self.name, reason=f"{directive}={value} was not met")
            for cb in list(self.listeners):
                cb(self)
            self.daemon.instance_done(self)
            return
        svc = self.svc
        self.result = self.reload_result = Result.SUCCESS
        self._forbid_restart = False
        self._main_exit = None
        self._main_cmd = self._control_cmd = None
        self.status_text, self.status_errno = "", 0
        self._watchdog_override = None
        self._runtime_deadline = math.inf
        self._instance = handover is not None and handover.connection is not None
        if self._instance and not self.fast:
            handover.connection = self._owned_fd = os.dup(handover.connection)
        self._enter(U.CONDITION if svc.ExecCondition else U.START_PRE)
        try:
            self._setup(handover)
        except StartError as e:
            self.daemon.log("failed", self.name, result=Result.RESOURCES, reason=str(e))
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
            self._warn_once(
                "dbus",
                "Type=dbus: there is no D-Bus here; running it as Type=simple "
                "(BusName= is ignored)",
            )
        self.invocation = plan.invocation_id()
        env = {"INVOCATION_ID": self.invocation}
        self._prepared = None
        self._prepared = self.daemon.prepared(self.unit)
        if self.notify_access != "none":
            path = self.daemon.notify_socket_path
            if path:
                env["NOTIFY_SOCKET"] = path
            elif svc.Type in _NOTIFY_TYPES:
                self._warn_once(
                    "notify",
                    "Type=notify but activator has no NOTIFY_SOCKET; the start will time out",
                )
        if svc.PIDFile:
            env["PIDFILE"] = svc.PIDFile
        env.update(make_directories(svc, self._prepared.creds))
        if handover is None:
            handover = self.daemon.collect_fds(self)
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
        except _Failed as f:
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
            except _Failed as f:
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
        self._reset_watchdog()
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
                self._runtime_deadline = self.daemon.host.clock() + svc.RuntimeMaxSec
                if self.type not in (ServiceType.SIMPLE, ServiceType.EXEC):
                    # up by its own word (READY=1, a PID file, its exit): worth a line
                    self.daemon.log("ready", self.name, pid=self.main_pid)
            if self._runtime_deadline != math.inf:
                self._arm_at(self._runtime_deadline)
        elif svc.RemainAfterExit:
            self._enter(U.EXITED)
            if was == U.START_POST:
                self.daemon.log("ready", self.name, pid=None, remain=True)
        else:
            self._enter_stop(Result.SUCCESS)

    def _main_alive(self) -> bool:
        if self.main_pid is not None:
            return True
        # Type=forking without a PIDFile= and no guess: up while its process groups are.
        return (
            self.svc.Type == ServiceType.FORKING
            and self._main_exit is None
            and self._groups_alive()
        )

    # ------------------------------------------------------------ the stop sequence
    def _enter_stop(self, f: Result) -> None:
        """ExecStop= (for a service that came up), then the signals."""
        if self.result == Result.SUCCESS:
            self.result = f
        self._disarm()
        if self.svc.ExecStop:
            self._run_phase(U.STOP, self.svc.ExecStop, self.svc.TimeoutStopSec)
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
        host = self.daemon.host
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
            hit = self._signal_groups(sig, hup) if by_group else set()
            for pid in (self.main_pid, self.control_pid):
                if pid is None:
                    continue
                wait = True
                if pid in hit or (hit and host.groups_of(pid) & hit):
                    continue  # it had the signal with its process group
                host.signal(pid, sig, group=False)
                if hup:
                    host.signal(pid, signal.SIGHUP, group=False)
            if killing and sig == signal.SIGKILL:
                self.daemon.log(
                    "kill",
                    self.name,
                    pid=self.main_pid or self.control_pid,
                    signal="SIGKILL",
                    reason=f"still running after TimeoutStopSec={svc.TimeoutStopSec:g}s",
                )
            if final and mode in ("control-group", "mixed"):
                if not by_group:  # mixed: SIGTERM went to the main process only; wait for the rest
                    hit = self._groups = {g for g in self._groups if host.signal(g, 0, group=True)}
                if hit:
                    wait = True
                    self._wait_for_groups(True)
        if wait:
            self._enter(state)
            self._arm(svc.TimeoutStopSec)
        elif not final:
            self._enter_stop_post(Result.SUCCESS)
        else:
            self._enter_dead(Result.SUCCESS)

    def _signal_groups(self, sig: int, hup: bool = False) -> set[int]:
        """Signal the unit's process groups (every process activator spawns leads one; an
        adopted main process brings its own); the groups that exist, empty ones forgotten."""
        host = self.daemon.host
        alive = {g for g in self._groups if host.signal(g, sig, group=True)}
        if hup:
            for g in alive:
                host.signal(g, signal.SIGHUP, group=True)
        self._groups = alive
        return alive

    def _enter_stop_post(self, f: Result) -> None:
        if self.result == Result.SUCCESS:
            self.result = f
        self._disarm()
        self._run_phase(U.STOP_POST, self.svc.ExecStopPost, self.svc.TimeoutStopSec)

    def _enter_dead(self, f: Result) -> None:
        if self.result == Result.SUCCESS:
            self.result = f
        self._disarm()
        self._wait_for_groups(False)
        result = self.result
        restart = self._shall_restart()
        self._release(restarting=restart or self._restarting)
        if restart:
            self.daemon.log(
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
            self.daemon.log("failed", self.name, result=result)
            self._enter(U.FAILED, result)
        self.daemon.instance_done(self)

    def _shall_restart(self) -> bool:
        """systemd's service_shall_restart()."""
        if self._forbid_restart or self.daemon.stopping or self._instance:
            return False  # an instance's connection is gone: nothing to restart with
        svc = self.svc
        r = self.result
        if r in (Result.START_LIMIT_HIT, Result.EXEC_CONDITION):
            return False
        if self._main_exit is not None:
            if _matches(svc.RestartPreventExitStatus, self._main_exit):
                return False
            if _matches(svc.RestartForceExitStatus, self._main_exit):
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
        self._stop_watchdog()
        self._forget_main()
        if self._owned_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._owned_fd)
            self._owned_fd = None
        self._handover = None
        notify = self.daemon.notify
        if notify is not None:
            for pid in self._tracked:
                notify.untrack(pid, self)
        self._tracked.clear()
        self._groups.clear()
        self.main_pid = self.control_pid = None
        if not restarting:
            self.fd_store.close()
        preserve = self.svc.RuntimeDirectoryPreserve
        if preserve == "no" or (preserve == "restart" and not restarting):
            remove_runtime_directories(self.svc)

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
            except _Failed as f:
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
        self.daemon.reaper.watch(pid, self._on_control_exit)

    def _phase_env(self) -> dict[str, str] | None:
        if self.sub not in (U.STOP, U.STOP_POST):
            return None
        how, value = self._main_exit or ("exited", 0)
        return {
            "SERVICE_RESULT": str(self.result),
            "EXIT_CODE": how,
            "EXIT_STATUS": str(value) if how == "exited" else _signame(value, short=True),
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
                self.daemon.log(
                    "skipped", self.name, pid=pid, status=value, reason="ExecCondition= was not met"
                )
                self._commands = []
                self._control_done(Result.EXEC_CONDITION)
                return
        ok = how == "exited" and value == 0
        if not ok:
            self.daemon.log(
                "exit",
                self.name,
                pid=pid,
                command=_PHASE_NAMES.get(self.sub, str(self.sub)),
                **{"status" if how == "exited" else "signal": fmt_exit(how, value)},
            )
        if ok or (cmd is not None and cmd.ignore_failure):
            self._next_control()
            return
        self._commands = []
        self._control_done(_failure(how, dumped))

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
            self.daemon.log("reloaded", self.name, result=None if ok else f)
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
            self._set_main(pid, child=self.daemon.host.parent_of(pid) == os.getpid())
        self._enter_start_post()

    def _read_pidfile(self) -> int | None:
        """The main pid from PIDFile=; one written by anyone but root must name a process
        of this service (or an orphan of it, now activator's child), as systemd checks."""
        path = self.svc.PIDFile
        try:
            st = os.stat(path)
            with open(path) as f:
                pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError) as e:
            why = e.strerror if isinstance(e, OSError) else "no pid in it"
            self.daemon.log(
                "failed",
                self.name,
                result=Result.PROTOCOL,
                reason=f"unable to read PID file {path}: {why}",
            )
            return None
        host = self.daemon.host
        if pid <= 1 or pid == os.getpid() or host.parent_of(pid) is None:
            self.daemon.log(
                "failed",
                self.name,
                result=Result.PROTOCOL,
                reason=f"PID file {path} names {pid}, which is not a process of the service",
            )
            return None
        if st.st_uid != 0 and not self._belongs(pid):
            self.daemon.log(
                "failed",
                self.name,
                result=Result.PROTOCOL,
                reason=f"PID file {path} is not owned by root and names {pid}, "
                "which does not belong to the service: refused",
            )
            return None
        return pid

    def _guess_main_pid(self) -> int | None:
        """GuessMainPID=: the one child of activator that no service owns (the daemon the
        start process left behind, re-parented to us); none when that is not clear."""
        known = set()
        for s in (*self.daemon.services.values(), *self.daemon.instances.values()):
            known.update(p for p in (s.main_pid, s.control_pid) if p)
        me = os.getpid()
        found = []
        with contextlib.suppress(OSError):
            for entry in os.scandir("/proc"):
                if (
                    entry.name.isdigit()
                    and int(entry.name) not in known
                    and self.daemon.host.parent_of(int(entry.name)) == me
                    and self._belongs(int(entry.name))
                ):
                    found.append(int(entry.name))
        return found[0] if len(found) == 1 else None

    def _belongs(self, pid: int) -> bool:
        """A process of this service: in one of its sessions or groups, or an orphan of it."""
        host = self.daemon.host
        return bool(host.groups_of(pid) & self._groups) or host.parent_of(pid) == os.getpid()

    # ------------------------------------------------------------ the main process
    def _set_main(self, pid: int, *, child: bool, spawned: bool = False) -> None:
        """``pid`` is the main process now: one we spawned (it leads its own session), or
        one adopted from PIDFile=/MAINPID=/a guess, ``child`` if activator is its parent."""
        self._forget_main()
        self.main_pid = pid
        host = self.daemon.host
        if spawned:
            self._groups.add(pid)
        else:
            self._groups |= host.groups_of(pid)
        self._track(pid)
        self.daemon.reaper.watch(pid, self._on_main_exit)
        if not child:
            # Not our child (yet): waitpid() will not tell us when it exits; its pidfd will.
            fd = host.open_pidfd(pid)
            if fd is not None:
                self._pidfd = fd
                host.add_reader(fd, lambda: self._on_pidfd(pid))

    def _forget_main(self) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(Exception):
                self.daemon.host.remove_reader(self._pidfd)
            with contextlib.suppress(OSError):
                os.close(self._pidfd)
            self._pidfd = None

    def _on_pidfd(self, pid: int) -> None:
        self._forget_main()
        if pid != self.main_pid:
            return
        if self.daemon.host.parent_of(pid) == os.getpid():
            return  # it became our child before it died: the reaper has its exit status
        self.daemon.reaper.forget(pid)
        self._on_main_exit(pid, None)

    def _on_main_exit(self, pid: int, status: int | None) -> None:
        if pid != self.main_pid:
            return
        notify = self.daemon.notify
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
        self.daemon.log(
            "exit",
            self.name,
            pid=pid,
            **{"status" if how == "exited" else "signal": fmt_exit(how, value)},
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
                self.daemon.log(
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
    def _groups_alive(self) -> bool:
        host = self.daemon.host
        self._groups = {g for g in self._groups if host.signal(g, 0, group=True)}
        return bool(self._groups)

    def _wait_for_groups(self, on: bool) -> None:
        listeners = self.daemon.host.orphan_listeners
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
            self.svc.KillMode not in ("control-group", "mixed") or not self._groups_alive()
        ):
            self._enter_dead(Result.SUCCESS)

    # ------------------------------------------------------------ timers
    def _arm(self, seconds: float) -> None:
        if seconds == math.inf:
            self._disarm()
            return
        self._arm_at(self.daemon.host.clock() + max(0.0, seconds))

    def _arm_at(self, when: float) -> None:
        self._disarm()
        self._deadline = when
        self._timer = self.daemon.host.call_at(when, self._on_timer)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = math.inf

    def _extend_timeout(self, usec: int) -> None:
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
        when = self.daemon.host.clock() + usec / _USEC
        if when > self._deadline:
            if self.sub == U.RUNNING:
                self._runtime_deadline = when
            self._arm_at(when)

    def _on_timer(self) -> None:
        self._timer = None
        self._deadline = math.inf
        sub = self.sub
        svc = self.svc
        log = self.daemon.log
        if sub in (U.CONDITION, U.START_PRE, U.START):
            log(
                "timeout",
                self.name,
                phase=str(sub),
                reason=f"start did not finish within TimeoutStartSec={svc.TimeoutStartSec:g}s",
            )
            self._enter_signal(U.STOP_SIGTERM, Result.TIMEOUT)
        elif sub == U.START_POST:
            log(
                "timeout",
                self.name,
                phase=str(sub),
                reason=f"ExecStartPost= did not finish within "
                f"TimeoutStartSec={svc.TimeoutStartSec:g}s",
            )
            self._enter_stop(Result.TIMEOUT)
        elif sub == U.RUNNING:
            log(
                "timeout",
                self.name,
                phase="runtime",
                reason=f"RuntimeMaxSec={svc.RuntimeMaxSec:g}s reached",
            )
            self._enter_stop(Result.TIMEOUT)
        elif sub == U.RELOAD:
            log(
                "timeout",
                self.name,
                phase=str(sub),
                reason=f"reload did not finish within TimeoutStartSec={svc.TimeoutStartSec:g}s",
            )
            if self.control_pid is not None:
                self.daemon.host.signal(self.control_pid, signal.SIGKILL, group=True)
                self.control_pid = None  # its exit is of no interest any more
            self.reload_result = Result.TIMEOUT
            self._enter_running(Result.SUCCESS)
        elif sub == U.STOP:
            log(
                "timeout",
                self.name,
                phase=str(sub),
                reason=f"ExecStop= did not finish within TimeoutStopSec={svc.TimeoutStopSec:g}s",
            )
            self._enter_signal(U.STOP_SIGTERM, Result.TIMEOUT)
        elif sub in (U.STOP_WATCHDOG, U.STOP_SIGTERM):
            if svc.SendSIGKILL:
                self._enter_signal(U.STOP_SIGKILL, Result.TIMEOUT)
            else:
                log("timeout", self.name, phase=str(sub), reason="still running; SendSIGKILL=no")
                self._enter_stop_post(Result.TIMEOUT)
        elif sub == U.STOP_SIGKILL:
            log(
                "warning",
                self.name,
                pid=self.main_pid,
                reason="still there after SIGKILL; giving up on it",
            )
            self._enter_stop_post(Result.TIMEOUT)
        elif sub == U.STOP_POST:
            log(
                "timeout",
                self.name,
                phase=str(sub),
                reason=f"ExecStopPost= did not finish within "
                f"TimeoutStopSec={svc.TimeoutStopSec:g}s",
            )
            self._enter_signal(U.FINAL_SIGTERM, Result.TIMEOUT)
        elif sub == U.FINAL_SIGTERM:
            if svc.SendSIGKILL:
                self._enter_signal(U.FINAL_SIGKILL, Result.TIMEOUT)
            else:
                self._enter_dead(Result.TIMEOUT)
        elif sub == U.FINAL_SIGKILL:
            log(
                "warning",
                self.name,
                reason="processes still there after SIGKILL; giving up on them",
            )
            self._enter_dead(Result.TIMEOUT)
        elif sub == U.AUTO_RESTART:
            if self.daemon.stopping:
                self._enter(U.DEAD)
                return
            self.n_restarts += 1
            self._begin(None)

    # ------------------------------------------------------------ the watchdog
    def _watchdog_sec(self) -> float:
        return (
            self._watchdog_override if self._watchdog_override is not None else self.svc.WatchdogSec
        )

    def _reset_watchdog(self) -> None:
        self._watchdog_last = self.daemon.host.clock()
        self._start_watchdog()

    def _start_watchdog(self) -> None:
        self._stop_watchdog()
        sec = self._watchdog_sec()
        if sec <= 0 or sec == math.inf or self.sub not in _WATCHDOG_STATES:
            return
        self._watchdog = self.daemon.host.call_at(self._watchdog_last + sec, self._on_watchdog)

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _on_watchdog(self, forced: bool = False) -> None:
        self._watchdog = None
        sig = self.svc.WatchdogSignal
        reason = "WATCHDOG=trigger" if forced else f"no WATCHDOG=1 within {self._watchdog_sec():g}s"
        self.daemon.log(
            "watchdog", self.name, pid=self.main_pid, signal=_signame(sig), reason=reason
        )
        self._enter_signal(U.STOP_WATCHDOG, Result.WATCHDOG)

    # ------------------------------------------------------------ notifications
    def notify_message(
        self, pid: int, uid: int | None, fields: dict[str, str], fds: list[int]
    ) -> None:
        """One sd_notify() datagram from ``pid`` (a process of this service); takes ``fds``."""
        try:
            if self._notify_allowed(pid):
                self._notify(pid, uid, fields, fds)
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            fds.clear()

    def _notify_allowed(self, pid: int) -> bool:
        access = self.notify_access
        if access == "all":
            return True
        if access == "main" and pid == self.main_pid:
            return True
        if access == "exec" and pid in (self.main_pid, self.control_pid):
            return True
        who = {
            "none": "nobody",
            "main": "the main process",
            "exec": "the main and control processes",
        }[access]
        self._warn_once(
            f"notify-{pid}",
            f"notification from pid {pid} refused: NotifyAccess={access} lets {who} send",
        )
        return False

    def _notify(self, pid: int, uid: int | None, fields: dict[str, str], fds: list[int]) -> None:
        sub = self.sub
        t = self.svc.Type
        get = fields.get
        if "MAINPID" in fields and sub in (U.START, U.START_POST, U.RUNNING, U.RELOAD):
            self._notify_mainpid(get("MAINPID"), uid)
        if get("RELOADING") == "1" and self.sub == U.RUNNING:
            self.daemon.log("reload", self.name, pid=self.main_pid, by="notify")
            self.reload_result = Result.SUCCESS
            self._disarm()
            self._enter(U.RELOAD)
            self._arm(self.svc.TimeoutStartSec)
        if get("READY") == "1":
            if t in _NOTIFY_TYPES and self.sub == U.START:
                self._enter_start_post()
            elif self.sub == U.RELOAD and self.control_pid is None:
                self.daemon.log("reloaded", self.name)
                self._enter_running(Result.SUCCESS)
        if get("STOPPING") == "1" and self.sub == U.RUNNING:
            # The service stops by itself: wait for it (TimeoutStopSec=), send nothing yet.
            self.daemon.log("stop", self.name, pid=self.main_pid, by="notify")
            self._disarm()
            self._enter(U.STOP_SIGTERM)
            self._arm(self.svc.TimeoutStopSec)
        if "STATUS" in fields:
            self.status_text = get("STATUS")[:4096]
        if "ERRNO" in fields:
            with contextlib.suppress(ValueError):
                self.status_errno = max(0, int(get("ERRNO")))
        if "EXTEND_TIMEOUT_USEC" in fields:
            with contextlib.suppress(ValueError):
                self._extend_timeout(int(get("EXTEND_TIMEOUT_USEC")))
        wd = get("WATCHDOG")
        if wd == "1":
            self._reset_watchdog()
        elif wd == "trigger" and self.sub in _WATCHDOG_STATES:
            self._stop_watchdog()
            self._on_watchdog(forced=True)
        if "WATCHDOG_USEC" in fields:
            with contextlib.suppress(ValueError):
                usec = int(get("WATCHDOG_USEC"))
                self._watchdog_override = math.inf if usec <= 0 else usec / _USEC
                self._start_watchdog()  # from the last ping, with the new interval
        if get("FDSTOREREMOVE") == "1":
            name = get("FDNAME", "")
            n = self.fd_store.remove(name)
            if n:
                self.daemon.log(
                    "fdstore", self.name, removed=n, name=name, stored=len(self.fd_store)
                )
        if get("FDSTORE") == "1" and fds:
            self._notify_fdstore(fields, fds)

    def _notify_mainpid(self, text: str | None, uid: int | None) -> None:
        try:
            pid = int(text or "")
        except ValueError:
            self._warn_once("mainpid", f"MAINPID={text!r} is not a pid")
            return
        host = self.daemon.host
        if pid == self.main_pid:
            return
        if pid <= 1 or pid == os.getpid() or host.parent_of(pid) is None:
            self._warn_once(f"mainpid-{pid}", f"MAINPID={pid}: no such process, ignored")
            return
        if uid != 0 and not self._belongs(pid):
            self._warn_once(
                f"mainpid-{pid}",
                f"MAINPID={pid} does not belong to the service and the sender is not root: refused",
            )
            return
        old = self.main_pid
        if old is not None:
            self.daemon.reaper.forget(old)  # no longer ours to judge; its exit is an orphan's
        self.daemon.log("mainpid", self.name, pid=pid, previous=old)
        self._set_main(pid, child=host.parent_of(pid) == os.getpid())

    def _notify_fdstore(self, fields: dict[str, str], fds: list[int]) -> None:
        name = fields.get("FDNAME") or "stored"
        if not _fdname_ok(name):
            self._warn_once("fdname", f"FDNAME={name!r} is not a valid fd name; using 'stored'")
            name = "stored"
        if self.fd_store.limit <= 0:
            self._warn_once("fdstore", "FDSTORE=1 ignored: FileDescriptorStoreMax= is 0")
            return
        taken = list(fds)
        fds.clear()
        added, rest = self.fd_store.add(taken, name, poll=fields.get("FDPOLL") != "0")
        fds.extend(rest)  # closed by notify_message
        if rest:
            self._warn_once(
                "fdstore-full",
                f"fd store full (FileDescriptorStoreMax={self.fd_store.limit}) "
                "or fd already stored; extra fds closed",
            )
        if added:
            self.daemon.log("fdstore", self.name, added=added, name=name, stored=len(self.fd_store))

    def _fd_hung_up(self, item) -> None:
        self.daemon.log(
            "fdstore",
            self.name,
            removed=1,
            name=item.name,
            stored=len(self.fd_store),
            reason="hung up",
        )

    def _track(self, pid: int) -> None:
        notify = self.daemon.notify
        if notify is not None and self.notify_access != "none":
            notify.track(pid, self)
            self._tracked.add(pid)

    # ------------------------------------------------------------ spawning
    def _spawn(self, cmd: ExecCommand, *, main: bool, extra: dict[str, str] | None = None) -> int:
        """Spawn one process of this start; its pid. Raises _Failed (logged)."""
        svc = self.svc
        generated = dict(self._env)
        fds: list[int] = []
        socket_fd = None
        named: dict[str, int] = {}
        listen = False
        h = self._handover
        try:
            if h is not None:
                inetd = "socket" in (svc.StandardInput, svc.StandardOutput, svc.StandardError)
                if h.connection is not None:
                    socket_fd = h.connection
                    if main and not inetd:
                        fds = [h.connection]
                        generated["LISTEN_FDS"] = "1"
                        generated["LISTEN_FDNAMES"] = "connection"
                        listen = True
                else:
                    if inetd:
                        if len(h.fds) != 1:
                            raise StartError(
                                "StandardInput=socket: got more than one socket"
                                if h.fds
                                else "StandardInput=socket: got no socket"
                            )
                        socket_fd = h.fds[0]
                    named = dict(zip(h.names, h.fds, strict=False))
                    if main and not inetd:
                        stored = self.fd_store.fds()
                        fds = [*h.fds, *(fd for fd, _ in stored)]
                        if fds:
                            names = [*h.names, *(n for _, n in stored)]
                            generated["LISTEN_FDS"] = str(len(fds))
                            generated["LISTEN_FDNAMES"] = ":".join(names)
                            listen = True
            watchdog = False
            if main:
                wd = self._watchdog_sec()
                if 0 < wd < math.inf:
                    generated["WATCHDOG_USEC"] = str(int(wd * _USEC))
                    watchdog = True  # WATCHDOG_PID: the child's own pid, like LISTEN_PID
            elif self.main_pid is not None:
                generated["MAINPID"] = str(self.main_pid)
            if extra:
                generated.update(extra)
            prepared = self._prepared
            if prepared is None:
                prepared = self._prepared = self.daemon.prepared(self.unit)
            if not main and svc.PermissionsStartOnly:
                prepared = dataclasses.replace(prepared, creds=None)
            env = plan.build_environment(svc, prepared.creds, generated)
            stdio, opened = plan.open_stdio(svc, socket_fd, named)
        except StartError as e:
            self.daemon.log("failed", self.name, result=Result.RESOURCES, reason=str(e))
            raise _Failed(Result.RESOURCES) from None
        try:
            spec = plan.make_spec(
                svc,
                prepared,
                cmd,
                env,
                fds=fds,
                stdio=stdio,
                listen_pid=listen,
                watchdog_pid=watchdog,
                nonblocking=svc.NonBlocking,
            )
            pid = self.daemon.host.spawn(spec)
        except SpawnError as e:
            self.daemon.reaper.watch(e.pid, _ignore_exit)
            self.daemon.log(
                "failed", self.name, pid=e.pid, step=e.step, status=e.exit_code, reason=str(e)
            )
            if main:
                self.last_exit = self._main_exit = ("exited", e.exit_code)
            raise _Failed(Result.EXIT_CODE) from None
        except StartError as e:
            self.daemon.log("failed", self.name, result=Result.RESOURCES, reason=str(e))
            raise _Failed(Result.RESOURCES) from None
        except (OSError, ValueError) as e:
            self.daemon.log(
                "failed",
                self.name,
                result=Result.RESOURCES,
                reason=f"unable to spawn {cmd.path}: {e}",
            )
            raise _Failed(Result.RESOURCES) from None
        finally:
            for fd in opened:
                os.close(fd)
        self._groups.add(pid)  # it leads its own session and process group
        if not main or self.svc.Type == ServiceType.FORKING:
            self._track(pid)
        self.daemon.log("start", self.name, pid=pid, command=cmd.path, peer=self.peer)
        return pid

    def _warn_once(self, key: str, message: str) -> None:
        if key in self._warned:
            return
        if len(self._warned) > 64:
            self._warned.clear()
        self._warned.add(key)
        self.daemon.log("warning", self.name, reason=message)


# ---------------------------------------------------------------- directories


_DIRECTORIES = (
    ("RuntimeDirectory", "/run", "RUNTIME_DIRECTORY"),
    ("StateDirectory", "/var/lib", "STATE_DIRECTORY"),
    ("CacheDirectory", "/var/cache", "CACHE_DIRECTORY"),
    ("LogsDirectory", "/var/log", "LOGS_DIRECTORY"),
    ("ConfigurationDirectory", "/etc", "CONFIGURATION_DIRECTORY"),
)


def _directory(root: str, name: str) -> str:
    path = os.path.normpath(os.path.join(root, name))
    if not path.startswith(root + "/"):
        raise StartError(f"directory {name!r} is not below {root}")
    return path


def make_directories(svc, creds) -> dict[str, str]:
    """RuntimeDirectory= and friends, as systemd sets them up before a start.

    Missing parents are created 0755 root; the directory itself gets *DirectoryMode=
    and, except ConfigurationDirectory= (root's, left alone once it exists), is owned
    by User=/Group= — its whole tree, when the top was someone else's (a changed
    User=). Returns RUNTIME_DIRECTORY= … for the environment. Raises StartError.
    """
    env: dict[str, str] = {}
    uid, gid = (creds.uid, creds.gid) if creds is not None else (0, 0)
    for field_name, root, var in _DIRECTORIES:
        names = getattr(svc, field_name)
        if not names:
            continue
        mode = getattr(svc, field_name + "Mode")
        paths = []
        for name in names:
            path = _directory(root, name)
            try:
                os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
                try:
                    os.mkdir(path, 0o700)
                    created = True
                except FileExistsError:
                    created = False
                st = os.lstat(path)
                if not stat.S_ISDIR(st.st_mode):
                    raise StartError(
                        f"unable to create {field_name}= {path}: exists and is not a directory"
                    )
                if field_name != "ConfigurationDirectory":
                    os.chmod(path, mode)
                    if (st.st_uid, st.st_gid) != (uid, gid):
                        _chown_tree(path, uid, gid)
                elif created:
                    os.chmod(path, mode)
            except OSError as e:
                raise StartError(f"unable to create {field_name}= {path}: {e.strerror}") from None
            paths.append(path)
        env[var] = ":".join(paths)
    return env


def _chown_tree(path: str, uid: int, gid: int) -> None:
    """chown -R without following a symlink anywhere (the service may have planted some)."""
    os.chown(path, uid, gid, follow_symlinks=False)
    for _root, dirs, files, rootfd in os.fwalk(path, follow_symlinks=False):
        for name in (*dirs, *files):
            with contextlib.suppress(FileNotFoundError):
                os.chown(name, uid, gid, dir_fd=rootfd, follow_symlinks=False)


def remove_runtime_directories(svc) -> None:
    """RuntimeDirectory= goes when the service does (shutil.rmtree follows no symlink)."""
    for name in svc.RuntimeDirectory:
        with contextlib.suppress(StartError):
            import shutil  # here: its bz2/lzma imports are half a MiB of idle memory

            shutil.rmtree(_directory("/run", name), ignore_errors=True)


# ---------------------------------------------------------------- Condition*=, Assert*=

_SYS_UID_MAX = 999


def failed_condition(conditions) -> tuple[str, str] | None:
    """The first Condition*=/Assert*= that fails, as systemd's condition_test_list(): every
    plain one must hold, and of the "|" (triggering) ones at least one; "!" negates.
    Asserts are tested after the conditions. Conditions activator cannot judge in a
    container (Architecture=, Security=, …) hold."""
    for family in ("Condition", "Assert"):
        triggers: list[tuple[str, str]] = []
        any_trigger = False
        for directive, value in conditions:
            if not directive.startswith(family):
                continue
            trigger = value.startswith("|")
            v = value[1:] if trigger else value
            negate = v.startswith("!")
            v = v[1:] if negate else v
            ok = _test_condition(directive[len(family) :], v) != negate
            if trigger:
                triggers.append((directive, value))
                any_trigger = any_trigger or ok
            elif not ok:
                return directive, value
        if triggers and not any_trigger:
            return triggers[0]
    return None


def _test_condition(kind: str, v: str) -> bool:
    try:
        if kind == "PathExists":
            return os.path.exists(v)
        if kind == "PathExistsGlob":
            import glob

            return bool(glob.glob(v))
        if kind == "PathIsDirectory":
            return os.path.isdir(v)
        if kind == "PathIsSymbolicLink":
            return os.path.islink(v)
        if kind == "PathIsMountPoint":
            return os.path.ismount(v)
        if kind == "PathIsReadWrite":
            return not os.statvfs(v).f_flag & os.ST_RDONLY
        if kind == "DirectoryNotEmpty":
            return os.path.isdir(v) and any(True for _ in os.scandir(v))
        if kind == "FileNotEmpty":
            st = os.stat(v)
            return stat.S_ISREG(st.st_mode) and st.st_size > 0
        if kind == "FileIsExecutable":
            st = os.stat(v)
            return stat.S_ISREG(st.st_mode) and bool(st.st_mode & 0o111)
        if kind == "Virtualization":
            return _virtualization(v)
        if kind == "User":  # of the manager, as in systemd: activator's own
            uid = os.getuid()
            if v == "@system":
                return uid <= _SYS_UID_MAX
            return int(v) == uid if v.isdigit() else _user_name(uid) == v
        if kind == "Group":
            gids = {os.getgid(), *os.getgroups()}
            if v.isdigit():
                return int(v) in gids
            import grp

            return grp.getgrnam(v).gr_gid in gids
        if kind == "Environment":  # the manager's environment
            name, eq, value = v.partition("=")
            return os.environ.get(name) == value if eq else name in os.environ
        if kind == "Capability":
            return _has_capability(v)
        if kind == "Host":
            import socket

            return v in (socket.gethostname(), _read("/etc/machine-id").strip())
        if kind == "KernelCommandLine":
            words = _read("/proc/cmdline").split()
            return v in words or ("=" not in v and any(w.startswith(v + "=") for w in words))
        if kind == "FirstBoot":
            return v.lower() in ("no", "false", "0", "off")
    except (OSError, KeyError, ValueError):
        return False
    return True  # cannot be judged here: holds


def _user_name(uid: int) -> str | None:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _virtualization(v: str) -> bool:
    """ConditionVirtualization=: activator knows containers (not VMs) from what runtimes leave."""
    kind = ""
    env = _read("/proc/1/environ").split("\0")
    for item in env:
        if item.startswith("container="):
            kind = item[len("container=") :] or "container-other"
    if not kind and (os.path.exists("/run/.containerenv") or os.path.exists("/.dockerenv")):
        kind = "podman" if os.path.exists("/run/.containerenv") else "docker"
    if not kind:
        kind = _read("/run/systemd/container").strip()
    low = v.lower()
    if low in ("yes", "true", "1", "on"):
        return bool(kind)
    if low in ("no", "false", "0", "off"):
        return not kind
    if low == "container":
        return bool(kind)
    if low == "vm":
        return False
    return low == kind


def _has_capability(name: str) -> bool:
    key = name.upper() if name.upper().startswith("CAP_") else "CAP_" + name.upper()
    bit = plan.CAPABILITIES.get(key)
    if bit is None:
        return False
    for line in _read("/proc/self/status").splitlines():
        if line.startswith("CapBnd:"):
            return bool(int(line.split()[1], 16) >> bit & 1)
    return False


# ---------------------------------------------------------------- helpers


_PHASE_NAMES = {
    U.CONDITION: "ExecCondition",
    U.START_PRE: "ExecStartPre",
    U.START: "ExecStart",
    U.START_POST: "ExecStartPost",
    U.RELOAD: "ExecReload",
    U.STOP: "ExecStop",
    U.STOP_POST: "ExecStopPost",
}


def _ignore_exit(_pid: int, _status: int) -> None:
    pass


def exit_of(status: int | None) -> tuple[str, int, bool]:
    """("exited", code, False) or ("killed", signal, core dumped); None: unknown → exited 0."""
    if status is None:
        return "exited", 0, False
    if os.WIFSIGNALED(status):
        return "killed", os.WTERMSIG(status), os.WCOREDUMP(status)
    return "exited", os.WEXITSTATUS(status), False


def main_result(svc, how: str, value: int, dumped: bool, *, oneshot: bool = False) -> Result:
    """What the main process's exit means (systemd's service_sigchld_event): exit 0, a
    SuccessExitStatus=, or for all but oneshot SIGHUP/SIGINT/SIGTERM/SIGPIPE are success."""
    if how == "exited":
        return (
            Result.SUCCESS
            if value == 0 or value in svc.SuccessExitStatus.codes
            else Result.EXIT_CODE
        )
    if value in svc.SuccessExitStatus.signals or (not oneshot and value in _CLEAN_SIGNALS):
        return Result.SUCCESS
    return Result.CORE_DUMP if dumped else Result.SIGNAL


def _failure(how: str, dumped: bool) -> Result:
    if how == "exited":
        return Result.EXIT_CODE
    return Result.CORE_DUMP if dumped else Result.SIGNAL


def _matches(s: ExitStatusSet, exit: tuple[str, int]) -> bool:
    how, value = exit
    return value in s.codes if how == "exited" else value in s.signals


def _fdname_ok(name: str) -> bool:
    return 0 < len(name) <= 255 and name.isascii() and ":" not in name and name.isprintable()


def _signame(sig: int, *, short: bool = False) -> str:
    try:
        name = signal.Signals(sig).name
    except ValueError:
        return str(sig)
    return name[3:] if short else name


def fmt_exit(how: str, value: int) -> str:
    return str(value) if how == "exited" else _signame(value)

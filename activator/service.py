"""One service unit at run time: its state machine, its processes, its restarts.

A Service owns the pids it spawned (main and control processes). It is started
by a socket's traffic, by an operator, or by its restart policy, and stopped with
systemd's sequence: ExecStop=, KillSignal= to the process group (KillMode=), the
TimeoutStopSec= grace, SIGKILL, ExecStopPost=. Exits arrive from the reaper.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import plan
from .errors import StartError
from .execcore import SpawnError, spawn
from .ratelimit import RateLimit
from .reaper import describe_status
from .states import SERVICE_TRANSITIONS, Result, check
from .states import ServiceState as S
from .units.model import ExecCommand, RestartPolicy, ServiceType, ServiceUnit

if TYPE_CHECKING:
    from .daemon import Daemon

# Signals after which an exit counts as clean, as systemd's is_clean_exit().
_CLEAN_SIGNALS = {signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE}


@dataclass
class Handover:
    """The fds a start hands to the main process, with their names (LISTEN_FDNAMES)."""

    fds: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    connection: int | None = None  # Accept=yes: the accepted connection
    extra_env: dict[str, str] = field(default_factory=dict)  # REMOTE_ADDR, UCSPI vars …


class Service:
    def __init__(self, daemon: Daemon, unit: ServiceUnit) -> None:
        self.daemon = daemon
        self.unit = unit
        self.name = unit.name
        self.state = S.INACTIVE
        self.result = Result.SUCCESS
        self.since = time.time()
        self.main_pid: int | None = None
        self.control_pid: int | None = None
        self.last_exit: tuple[str, int] | None = None  # ("exited", code) | ("killed", sig)
        self.n_restarts = 0
        self.status_text = ""
        self.peer: str | None = None  # Accept=yes instances: who connected
        self.invocation = ""
        self._task: asyncio.Task | None = None
        self._restart_handle: asyncio.TimerHandle | None = None
        self._stop_requested = False
        self._pgid: int | None = None  # the main process leads its own process group
        self._main_status: int | None = None
        self._main_waiters: list[asyncio.Future[int]] = []
        self._owned_fd: int | None = None
        svc = unit.Service
        # Accept=yes instances that need no control processes are run without a task.
        self.fast = (len(svc.ExecStart) == 1 and not svc.ExecStartPre and not svc.ExecStartPost
                     and not svc.ExecStopPost and not svc.ExecStop
                     and svc.Type in (ServiceType.SIMPLE, ServiceType.EXEC, ServiceType.IDLE))
        u = unit.Unit
        self.start_limit = RateLimit(u.StartLimitIntervalSec, u.StartLimitBurst)
        self.listeners: list[Callable[[Service], None]] = []

    # ------------------------------------------------------------ state
    def _set(self, new: S, result: Result | None = None) -> None:
        check(SERVICE_TRANSITIONS, self.name, self.state, new)
        changed = new != self.state or (result is not None and result != self.result)
        if result is not None:
            self.result = result
        if new != self.state:
            self.state = new
            self.since = time.time()
        if changed:  # failed → failed (start-limit-hit) is news to the sockets too
            for cb in list(self.listeners):
                cb(self)

    @property
    def active(self) -> bool:
        return self.state in (S.ACTIVATING, S.ACTIVE, S.RELOADING, S.DEACTIVATING)

    @property
    def svc(self):
        return self.unit.Service

    # ------------------------------------------------------------ start
    def start(self, handover: Handover | None = None) -> None:
        """Begin a start (no-op when already active). Errors end in FAILED, never raise."""
        if self.active or self.daemon.stopping:
            return
        if self._restart_handle is not None:
            self._restart_handle.cancel()
            self._restart_handle = None
        self._stop_requested = False
        if not self.start_limit.below():
            self.daemon.log("failed", self.name, result=Result.START_LIMIT_HIT,
                            reason="start request repeated too quickly")
            self._set(S.FAILED, Result.START_LIMIT_HIT)
            return
        self.result = Result.SUCCESS
        self._set(S.ACTIVATING)
        self._task = asyncio.ensure_future(self._run_start(handover))

    async def _run_start(self, handover: Handover | None) -> None:
        try:
            await self._start_sequence(handover)
        except StartError as e:
            self.daemon.log("failed", self.name, result=Result.RESOURCES, reason=str(e))
            await self._enter_dead(Result.RESOURCES)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug: keep the supervisor alive, say what happened
            self.daemon.log("failed", self.name, result="internal", reason=repr(e))
            self.daemon.log_exception(e)
            await self._enter_dead(Result.RESOURCES)

    async def _start_sequence(self, handover: Handover | None) -> None:
        svc = self.svc
        if not svc.ExecStart:
            raise StartError("no ExecStart= to run")
        prepared = self.daemon.prepared(self.unit)
        self.invocation = plan.invocation_id()
        self.daemon.make_directories(self.unit, prepared)
        for cmd in svc.ExecStartPre:
            if not await self._run_control(cmd, prepared, "ExecStartPre"):
                return
        if handover is None:
            handover = self.daemon.collect_fds(self)
        main_cmds = svc.ExecStart
        if svc.Type == ServiceType.ONESHOT:
            for cmd in main_cmds:
                ok = await self._run_control(cmd, prepared, "ExecStart", handover=handover, main=True)
                if not ok:
                    return
            await self._after_start(prepared)
            if svc.RemainAfterExit:
                self._set(S.ACTIVE)
            else:
                await self._enter_dead(Result.SUCCESS)
            return
        pid = self._spawn(main_cmds[0], prepared, handover, main=True)
        if pid is None:
            await self._enter_dead(Result.RESOURCES)
            return
        self._track_main(pid)
        if svc.Type == ServiceType.FORKING:
            status = await self._wait_main()
            if describe_status(status) != ("exited", 0):
                return  # _main_exited handles the failure
            self._adopt(self._read_pidfile())
        self._set(S.ACTIVE)
        await self._after_start(prepared)

    async def _after_start(self, prepared) -> None:
        for cmd in self.svc.ExecStartPost:
            if not await self._run_control(cmd, prepared, "ExecStartPost"):
                return

    def _read_pidfile(self) -> int | None:
        path = self.svc.PIDFile
        if not path:
            return None
        try:
            with open(path) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            self.daemon.log("warning", self.name, reason=f"unable to read PID file {path}")
            return None

    def _spawn(self, cmd: ExecCommand, prepared, handover: Handover | None, *, main: bool,
               extra: dict[str, str] | None = None) -> int | None:
        """Spawn one process of this unit; None (logged) when it could not be started."""
        svc = self.svc
        generated: dict[str, str] = {"INVOCATION_ID": self.invocation}
        fds: list[int] = []
        socket_fd = None
        named: dict[str, int] = {}
        listen = False
        if handover is not None:
            generated.update(handover.extra_env)
            inetd = "socket" in (svc.StandardInput, svc.StandardOutput, svc.StandardError)
            if handover.connection is not None:
                socket_fd = handover.connection
                if main and not inetd:
                    fds = [handover.connection]
                    generated["LISTEN_FDS"] = "1"
                    generated["LISTEN_FDNAMES"] = "connection"
                    listen = True
            else:
                if inetd:
                    sockets = handover.fds
                    if len(sockets) != 1:
                        raise StartError("StandardInput=socket: got more than one socket" if sockets
                                         else "StandardInput=socket: got no socket")
                    socket_fd = sockets[0]
                elif main and handover.fds:
                    fds = list(handover.fds)
                    generated["LISTEN_FDS"] = str(len(fds))
                    generated["LISTEN_FDNAMES"] = ":".join(handover.names)
                    listen = True
                named = dict(zip(handover.names, handover.fds, strict=False))
        if extra:
            generated.update(extra)
        if self.daemon.notify_socket_path and (svc.NotifyAccess or "none") != "none" or (
            self.daemon.notify_socket_path and svc.Type == ServiceType.NOTIFY and svc.NotifyAccess is None
        ):
            generated["NOTIFY_SOCKET"] = self.daemon.notify_socket_path
        env = plan.build_environment(svc, prepared.creds, generated)
        stdio, opened = plan.open_stdio(svc, socket_fd, named)
        try:
            spec = plan.make_spec(svc, prepared, cmd, env, fds=fds, stdio=stdio,
                                  listen_pid=listen, nonblocking=svc.NonBlocking)
            pid = spawn(spec)
        except SpawnError as e:
            self.daemon.reaper.watch(e.pid, lambda *_: None)
            self.daemon.log("failed", self.name, pid=e.pid, step=e.step, status=e.exit_code, reason=str(e))
            self.last_exit = ("exited", e.exit_code)
            return None
        except (OSError, ValueError) as e:
            self.daemon.log("failed", self.name, reason=f"unable to spawn {cmd.path}: {e}")
            return None
        finally:
            for fd in opened:
                os.close(fd)
        self.daemon.log("start", self.name, pid=pid, command=cmd.path, peer=self.peer)
        return pid

    async def _run_control(self, cmd: ExecCommand, prepared, what: str, *,
                           handover: Handover | None = None, main: bool = False,
                           extra: dict[str, str] | None = None) -> bool:
        """Run a control command to its end; False (and the unit failed) when it failed."""
        pid = self._spawn(cmd, prepared, handover, main=main, extra=extra)
        if pid is None:
            if cmd.ignore_failure:
                return True
            await self._enter_dead(Result.EXIT_CODE)
            return False
        self.control_pid = pid
        try:
            status = await self.daemon.reaper.wait(pid)
        finally:
            self.control_pid = None
        how, value = describe_status(status)
        ok = (how == "exited" and (value == 0 or value in self.svc.SuccessExitStatus.codes)) \
            or cmd.ignore_failure
        if not ok:
            self.last_exit = (how, value)
            self.daemon.log("exit", self.name, pid=pid, command=what,
                            **{"status" if how == "exited" else "signal": _fmt_exit(how, value)})
            await self._enter_dead(Result.EXIT_CODE if how == "exited" else Result.SIGNAL)
            return False
        return True

    # ------------------------------------------------------------ the main process
    def _track_main(self, pid: int) -> None:
        self.main_pid = self._pgid = pid
        self._main_status = None
        self.daemon.reaper.watch(pid, self._main_exited)
        if self._owned_fd is not None:  # the instance has its copy of the connection now
            os.close(self._owned_fd)
            self._owned_fd = None

    def _adopt(self, pid: int | None) -> None:
        """Type=forking: the PIDFile= daemon is not our child; we can signal it, not wait for it."""
        self.main_pid = pid
        self._main_status = None

    def _wait_main(self) -> asyncio.Future[int]:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if self._main_status is not None:
            fut.set_result(self._main_status)
        else:
            self._main_waiters.append(fut)
        return fut

    def _main_exited(self, pid: int, status: int) -> None:
        self._main_status = status
        waiters, self._main_waiters = self._main_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(status)
        how, value = describe_status(status)
        if pid == self.main_pid:
            self.main_pid = None
        self.last_exit = (how, value)
        if self.svc.Type == ServiceType.FORKING and self.state == S.ACTIVATING and (how, value) == ("exited", 0):
            return  # the forking parent is done; the daemon it left is the main process now
        self.daemon.log("exit", self.name, pid=pid,
                        **{"status" if how == "exited" else "signal": _fmt_exit(how, value)})
        if self.state == S.DEACTIVATING:
            return  # stop() is waiting for this
        result = self._classify(how, value)
        if self.fast and self.state == S.ACTIVE:
            # Accept=yes instance without Exec*Post: finish synchronously, no task per connection.
            self._set(S.DEACTIVATING)
            self._kill_group_now()
            self._finish(result)
            return
        asyncio.ensure_future(self._after_main_exit(result, how, value))

    def start_instance(self, handover: Handover) -> None:
        """Accept=yes: start an instance for one connection, synchronously when possible.

        The caller closes its copy of the connection right after this returns, so the
        slow path (Exec*Pre=, Type=notify …) keeps a duplicate until the spawn.
        """
        svc = self.svc
        if not self.fast:
            assert handover.connection is not None
            handover.connection = os.dup(handover.connection)
            self._owned_fd = handover.connection
            self.start(handover)
            return
        self.result = Result.SUCCESS
        self._set(S.ACTIVATING)
        try:
            prepared = self.daemon.prepared(self.unit)
            self.invocation = plan.invocation_id()
            pid = self._spawn(svc.ExecStart[0], prepared, handover, main=True)
        except StartError as e:
            self.daemon.log("failed", self.name, result=Result.RESOURCES, reason=str(e))
            pid = None
        if pid is None:
            self._set(S.DEACTIVATING)
            self._finish(Result.RESOURCES)
            return
        self._track_main(pid)
        self._set(S.ACTIVE)

    def _kill_group_now(self) -> None:
        pgid, self._pgid = self._pgid, None
        if self.svc.KillMode == "control-group" and pgid:
            self._signal(pgid, self.svc.KillSignal, group=True)

    def _classify(self, how: str, value: int) -> Result:
        svc = self.svc
        if how == "exited":
            if value == 0 or value in svc.SuccessExitStatus.codes:
                return Result.SUCCESS
            return Result.EXIT_CODE
        if value in _CLEAN_SIGNALS or value in svc.SuccessExitStatus.signals:
            return Result.SUCCESS
        return Result.CORE_DUMP if value in (signal.SIGABRT, signal.SIGSEGV, signal.SIGQUIT) else Result.SIGNAL

    async def _after_main_exit(self, result: Result, how: str, value: int) -> None:
        if self.state not in (S.ACTIVATING, S.ACTIVE, S.RELOADING):
            return
        self._set(S.DEACTIVATING)
        await self._kill_remaining()
        await self._stop_post(result, how, value)
        restart = self._should_restart(result, how, value)
        self._finish(result)
        if restart:
            self._schedule_restart()

    def _should_restart(self, result: Result, how: str, value: int) -> bool:
        if self._stop_requested or self.daemon.stopping:
            return False
        svc = self.svc
        if how == "exited" and value in svc.RestartPreventExitStatus.codes or \
           how == "killed" and value in svc.RestartPreventExitStatus.signals:
            return False
        if how == "exited" and value in svc.RestartForceExitStatus.codes or \
           how == "killed" and value in svc.RestartForceExitStatus.signals:
            return True
        p = svc.Restart
        clean = result == Result.SUCCESS
        return (
            p == RestartPolicy.ALWAYS
            or (p == RestartPolicy.ON_SUCCESS and clean)
            or (p == RestartPolicy.ON_FAILURE and not clean)
            or (p == RestartPolicy.ON_ABNORMAL and result in (Result.SIGNAL, Result.CORE_DUMP, Result.TIMEOUT, Result.WATCHDOG))
            or (p == RestartPolicy.ON_ABORT and result in (Result.SIGNAL, Result.CORE_DUMP))
            or (p == RestartPolicy.ON_WATCHDOG and result == Result.WATCHDOG)
        )

    def _schedule_restart(self) -> None:
        delay = self.svc.RestartSec
        self.daemon.log("restart", self.name, delay=f"{delay:g}s")

        def fire() -> None:
            self._restart_handle = None
            if self.state in (S.INACTIVE, S.FAILED) and not self._stop_requested:
                self.n_restarts += 1
                self.start()

        self._restart_handle = asyncio.get_running_loop().call_later(delay, fire)

    def _finish(self, result: Result) -> None:
        if self._owned_fd is not None:
            os.close(self._owned_fd)
            self._owned_fd = None
        self._set(S.INACTIVE if result == Result.SUCCESS else S.FAILED, result)
        if result != Result.SUCCESS:
            self.daemon.log("failed", self.name, result=result)
        self.daemon.instance_done(self)

    async def _enter_dead(self, result: Result) -> None:
        """A start step failed: clean up what runs, ExecStopPost=, then failed."""
        if self.state == S.ACTIVATING:
            self._set(S.DEACTIVATING)
        if self.main_pid is not None:
            await self._kill_main_group()
        await self._kill_remaining()
        how, value = self.last_exit or ("exited", 0)
        await self._stop_post(result, how, value)
        restart = self._should_restart(result, how, value) if result != Result.START_LIMIT_HIT else False
        self._finish(result)
        if restart:
            self._schedule_restart()

    async def _stop_post(self, result: Result, how: str, value: int) -> None:
        if not self.svc.ExecStopPost:
            return
        prepared = self.daemon.prepared(self.unit)
        extra = {
            "SERVICE_RESULT": str(result),
            "EXIT_CODE": how,
            "EXIT_STATUS": str(value) if how == "exited" else signal.Signals(value).name[3:],
        }
        for cmd in self.svc.ExecStopPost:
            pid = self._spawn(cmd, prepared, None, main=False, extra=extra)
            if pid is not None:
                await self._wait_bounded(pid, self.svc.TimeoutStopSec)

    # ------------------------------------------------------------ stop
    async def stop(self) -> None:
        """Stop the service and everything it started; returns when all of it is gone."""
        self._stop_requested = True
        if self._restart_handle is not None:
            self._restart_handle.cancel()
            self._restart_handle = None
        if self.state in (S.INACTIVE, S.FAILED):
            return
        if self.state == S.DEACTIVATING:
            while self.state == S.DEACTIVATING:
                await self._state_change()
            return
        if self._task is not None and not self._task.done() and self.state == S.ACTIVATING:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            if self.control_pid is not None:
                self._signal(self.control_pid, signal.SIGKILL, group=True)
        self._set(S.DEACTIVATING)
        self.daemon.log("stop", self.name, pid=self.main_pid)
        svc = self.svc
        if svc.ExecStop and self.main_pid is not None:
            prepared = self.daemon.prepared(self.unit)
            for cmd in svc.ExecStop:
                pid = self._spawn(cmd, prepared, None, main=False, extra={"MAINPID": str(self.main_pid)})
                if pid is not None:
                    await self._wait_bounded(pid, svc.TimeoutStopSec)
        await self._kill_main_group()
        await self._kill_remaining()
        how, value = self.last_exit or ("exited", 0)
        await self._stop_post(Result.SUCCESS, how, value)
        self._finish(Result.SUCCESS)

    async def _kill_main_group(self) -> None:
        svc = self.svc
        pid = self.main_pid
        if pid is None:
            return
        mode = svc.KillMode
        if mode != "none":
            self._signal(pid, svc.KillSignal, group=mode == "control-group")
            if mode == "mixed":
                self._signal(pid, svc.KillSignal, group=False)
            if svc.SendSIGHUP:
                self._signal(pid, signal.SIGHUP, group=mode == "control-group")
        timeout = None if svc.TimeoutStopSec in (0, float("inf")) else svc.TimeoutStopSec
        if self._main_status is not None or self.main_pid != self._pgid:
            # Type=forking: not our child, nothing to wait on but its disappearance
            self.main_pid = None
            return
        exited = self._wait_main()
        try:
            await asyncio.wait_for(asyncio.shield(exited), timeout)
        except TimeoutError:
            if svc.SendSIGKILL:
                self.daemon.log("kill", self.name, pid=pid, signal="SIGKILL",
                                reason=f"still running after TimeoutStopSec={svc.TimeoutStopSec:g}s")
                self._signal(pid, svc.FinalKillSignal, group=mode in ("control-group", "mixed"))
                await exited
        self.main_pid = None

    async def _kill_remaining(self) -> None:
        """What the main process left in its process group (KillMode=control-group)."""
        svc = self.svc
        pgid, self._pgid = self._pgid, None
        if svc.KillMode == "control-group" and pgid:
            self._signal(pgid, svc.KillSignal, group=True)
            if svc.SendSIGKILL:
                self._signal(pgid, signal.SIGKILL, group=True)

    def _signal(self, pid: int, sig: int, *, group: bool) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(pid, sig)  # every service process leads its own group (setsid)
            else:
                os.kill(pid, sig)

    async def _wait_bounded(self, pid: int, timeout: float) -> None:
        fut = self.daemon.reaper.wait(pid)
        t = None if timeout in (0, float("inf")) else timeout
        try:
            await asyncio.wait_for(asyncio.shield(fut), t)
        except TimeoutError:
            self._signal(pid, signal.SIGKILL, group=True)
            await fut

    async def _state_change(self) -> None:
        fut = asyncio.get_running_loop().create_future()

        def cb(_svc: Service) -> None:
            if not fut.done():
                fut.set_result(None)
            with contextlib.suppress(ValueError):
                self.listeners.remove(cb)

        self.listeners.append(cb)
        await fut

    def kill(self, sig: int) -> bool:
        if self.main_pid is None:
            return False
        self._signal(self.main_pid, sig, group=self.svc.KillMode == "control-group")
        return True

    async def reload(self) -> None:
        if self.state != S.ACTIVE:
            return
        svc = self.svc
        if not svc.ExecReload:
            await self.stop()
            self._stop_requested = False
            self.start()
            return
        self._set(S.RELOADING)
        prepared = self.daemon.prepared(self.unit)
        for cmd in svc.ExecReload:
            pid = self._spawn(cmd, prepared, None, main=False, extra={"MAINPID": str(self.main_pid or "")})
            if pid is not None:
                await self._wait_bounded(pid, svc.TimeoutStartSec)
        if self.state == S.RELOADING:
            self._set(S.ACTIVE)


def _fmt_exit(how: str, value: int) -> str:
    if how == "exited":
        return str(value)
    try:
        return signal.Signals(value).name
    except ValueError:
        return str(value)

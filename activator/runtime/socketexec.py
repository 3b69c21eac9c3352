"""A socket unit's own ExecStartPre=/ExecStartPost=/ExecStopPre=/ExecStopPost=, as systemd's
socket.c runs them (Debian's cockpit.socket switches its motd with two of them).

    start-pre (ExecStartPre=, nothing bound yet) → bind → start-post (ExecStartPost=) →
    listening … stop-pre (ExecStopPre=, still bound) → close → stop-post (ExecStopPost=)
    → final-sigterm/-sigkill (what is left of their process groups) → inactive or failed

One control process at a time, each bounded by ``TimeoutSec=``; it runs with the socket's
exec settings (``User=``, ``Group=``, ``DynamicUser=``, ``Environment=`` …) and gets no fds.
Where systemd goes when a step fails (socket_sigchld_event(), socket_dispatch_timer()):
a failed or timed-out ExecStartPre= kills what is left and ends ``failed`` with its
result (``exit-code``, ``signal``, ``timeout``) — nothing was bound; a failed bind or
ExecStartPost= stops the socket, ExecStopPre= and ExecStopPost= included; a failed
ExecStopPre= or ExecStopPost= marks the result and the stop goes on. A control process
past its timeout gets ``KillSignal=`` (``*-sigterm``), then ``SIGKILL`` (``*-sigkill``),
each with ``TimeoutSec=`` to go.

The steps run in a task the socket owns (``SocketRuntime.settle()`` and ``stop()`` wait for
it); the spawning is every unit's (spawning.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
from collections.abc import Callable
from typing import Any, Protocol

from ..core.errors import ActivatorError, StartError
from ..core.exitstatus import exit_fields, exit_of, failure
from ..core.states import Result, SocketState
from ..exec import plan
from ..exec.directories import make_directories, remove_runtime_directories
from ..exec.dynamic import DynamicCreds
from ..units.model import ExecCommand, SocketSection, SocketUnit
from .context import ServiceContext
from .processes import ProcessGroups
from .spawning import SpawnFailed, spawn_command

K = SocketState


class ExecSocket(Protocol):
    """The socket whose commands run (socket.SocketRuntime)."""

    name: str
    unit: SocketUnit
    section: SocketSection
    state: SocketState

    def _set(self, new: SocketState, result: Result | None = None) -> None: ...


def has_commands(sec: SocketSection) -> bool:
    return bool(sec.ExecStartPre or sec.ExecStartPost or sec.ExecStopPre or sec.ExecStopPost)


class SocketExec:
    """The control processes of one socket and the states they run in."""

    def __init__(self, ctx: ServiceContext, sock: ExecSocket) -> None:
        self.ctx = ctx
        self.sock = sock
        self.control_pid: int | None = None
        self.task: asyncio.Task[None] | None = None
        self._groups = ProcessGroups(ctx.host)
        self._prepared: plan.Prepared | None = None
        self._dynamic: DynamicCreds | None = None
        self._env: dict[str, str] = {}

    @property
    def starting(self) -> bool:
        return self.task is not None and not self.task.done()

    # ------------------------------------------------------------ start
    def begin_start(
        self, bind: Callable[[], None], listen: Callable[[], None], close: Callable[[], None]
    ) -> None:
        """Run the start in a task: ExecStartPre=, ``bind()``, ExecStartPost=, ``listen()``;
        on a failure after the bind, the stop (``close()`` the listeners)."""
        self.task = asyncio.ensure_future(self._start(bind, listen, close))

    async def _start(
        self, bind: Callable[[], None], listen: Callable[[], None], close: Callable[[], None]
    ) -> None:
        sec = self.sock.section
        try:
            self._setup()
        except StartError as e:
            self.ctx.log("failed", self.sock.name, result=Result.RESOURCES, reason=str(e))
            await self._final(Result.RESOURCES)
            return
        if sec.ExecStartPre:
            self.sock._set(K.START_PRE)
            f = await self._run(K.START_PRE, sec.ExecStartPre)
            if f != Result.SUCCESS:
                await self._final(f)  # systemd: nothing bound, straight to final-sigterm
                return
        try:
            bind()
        except ActivatorError as e:
            self.ctx.log("failed", self.sock.name, result=Result.RESOURCES, reason=str(e))
            await self.stop(Result.RESOURCES, close)
            return
        if sec.ExecStartPost:
            self.sock._set(K.START_POST)
            f = await self._run(K.START_POST, sec.ExecStartPost)
            if f != Result.SUCCESS:
                await self.stop(f, close)
                return
        listen()

    def _setup(self) -> None:
        """Credentials and environment every command of this start shares."""
        sec = self.sock.section
        self._prepared = plan.prepare(sec)
        if sec.DynamicUser and self._dynamic is None:
            self._dynamic = self.ctx.acquire_dynamic(self.sock.unit)
        if self._dynamic is not None:
            self._prepared = _with_creds(self._prepared, self._dynamic)
        self._env = {"INVOCATION_ID": plan.invocation_id()}
        self._env.update(make_directories(sec, self._prepared.creds))  # RuntimeDirectory= …

    # ------------------------------------------------------------ stop
    async def stop(self, result: Result, close: Callable[[], None]) -> Result:
        """ExecStopPre= (still bound), ``close()`` the listeners, ExecStopPost=, what is
        left killed; the socket ends inactive or failed. The unit's result."""
        if self.starting and asyncio.current_task() is not self.task:
            assert self.task is not None
            self.task.cancel()  # its control process is killed as it goes
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self._prepared is None:
            with contextlib.suppress(StartError):
                self._setup()  # a start without commands: the stop ones need these too
        if self.control_pid is not None:
            await self._kill(K.STOP_PRE_SIGTERM, K.STOP_PRE_SIGKILL)
        sec = self.sock.section
        if sec.ExecStopPre and self.sock.state not in (K.INACTIVE, K.FAILED, K.START_PRE):
            self.sock._set(K.STOP_PRE)
            f = await self._run(K.STOP_PRE, sec.ExecStopPre)
            result = result if result != Result.SUCCESS else f
        close()
        if sec.ExecStopPost:
            self.sock._set(K.STOP_POST)
            f = await self._run(K.STOP_POST, sec.ExecStopPost)
            result = result if result != Result.SUCCESS else f
        return await self._final(result)

    async def _final(self, result: Result) -> Result:
        """What is left of the control processes' groups: KillSignal=, then SIGKILL."""
        sec = self.sock.section
        if sec.KillMode in ("control-group", "mixed") and self._groups.alive():
            for state, sig in (
                (K.FINAL_SIGTERM, sec.KillSignal),
                (K.FINAL_SIGKILL, sec.FinalKillSignal),
            ):
                self.sock._set(state)
                self._groups.signal(sig, sec.SendSIGHUP and state == K.FINAL_SIGTERM)
                if await self._groups_gone(sec.TimeoutSec):
                    break
                result = result if result != Result.SUCCESS else Result.TIMEOUT
                if not sec.SendSIGKILL:
                    break
        self._groups.clear()
        if sec.RuntimeDirectoryPreserve != "yes":
            remove_runtime_directories(sec)
        if self._dynamic is not None:
            self._dynamic.release()
            self._dynamic = None
        self._prepared = None
        if result != Result.SUCCESS:
            self.ctx.log("failed", self.sock.name, result=result)
            self.sock._set(K.FAILED, result)
        else:
            self.sock._set(K.INACTIVE, result)
        return result

    # ------------------------------------------------------------ control processes
    async def _run(self, state: SocketState, commands: tuple[ExecCommand, ...]) -> Result:
        """The command lines of ``state``, one after the other; how they went."""
        sec = self.sock.section
        directive = _DIRECTIVE[state]
        assert self._prepared is not None
        for cmd in commands:
            try:
                pid = spawn_command(
                    self.ctx, self.sock.name, sec, self._prepared, cmd, dict(self._env)
                )
            except SpawnFailed as f:
                if cmd.ignore_failure:
                    continue
                return f.result
            self.control_pid = pid
            self._groups.add(pid)
            exited = self.ctx.reaper.wait(pid)
            try:
                status = await asyncio.wait_for(asyncio.shield(exited), _timeout(sec.TimeoutSec))
            except TimeoutError:
                self.ctx.log(
                    "timeout",
                    self.sock.name,
                    phase=str(state),
                    reason=f"{directive}= did not finish within TimeoutSec={sec.TimeoutSec:g}s",
                )
                if state in (K.STOP_PRE, K.STOP_POST, K.START_PRE):
                    kill = (K.STOP_PRE_SIGTERM, K.STOP_PRE_SIGKILL)
                    await self._kill(*(kill if state == K.STOP_PRE else _FINAL))
                else:  # start-post: stopping the socket takes it down with the rest
                    await self._kill(None, None)
                return Result.TIMEOUT
            except asyncio.CancelledError:
                await self._kill(None, None)
                raise
            self.control_pid = None
            how, value, dumped = exit_of(status)
            if how == "exited" and value == 0:
                continue
            self.ctx.log(
                "exit",
                self.sock.name,
                pid=pid,
                command=directive,
                **exit_fields(how, value),
            )
            if not cmd.ignore_failure:
                return failure(how, dumped)
        return Result.SUCCESS

    async def _kill(self, term: SocketState | None, kill: SocketState | None) -> None:
        """The control process that outlived its time: KillSignal= (entering ``term``), then
        SIGKILL (``kill``), TimeoutSec= each; None states: SIGKILL at once, quietly."""
        pid = self.control_pid
        if pid is None:
            return
        sec = self.sock.section
        exited = self.ctx.reaper.wait(pid)
        steps: list[tuple[SocketState | None, int]] = (
            [(term, sec.KillSignal), (kill, sec.FinalKillSignal)]
            if term
            else [(None, signal.SIGKILL)]
        )
        for state, sig in steps:
            if state is not None:
                self.sock._set(state)
            self.ctx.host.signal(pid, sig, group=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(exited), _timeout(sec.TimeoutSec))
                break
        self.control_pid = None

    async def _groups_gone(self, timeout: float) -> bool:
        """Wait until no process is left in the groups (bounded); whether none is."""
        if not self._groups.alive():
            return True
        gone = asyncio.Event()

        def check() -> None:
            if not self._groups.alive():
                gone.set()

        listeners = self.ctx.host.orphan_listeners
        listeners.add(check)
        try:
            await asyncio.wait_for(gone.wait(), _timeout(timeout))
            return True
        except TimeoutError:
            return False
        finally:
            listeners.discard(check)


_DIRECTIVE = {
    K.START_PRE: "ExecStartPre",
    K.START_POST: "ExecStartPost",
    K.STOP_PRE: "ExecStopPre",
    K.STOP_POST: "ExecStopPost",
}
_FINAL = (K.FINAL_SIGTERM, K.FINAL_SIGKILL)


def _timeout(seconds: float) -> float | None:
    return None if seconds in (0, math.inf) else seconds


def _with_creds(prepared: plan.Prepared, dynamic: DynamicCreds) -> Any:
    import dataclasses

    return dataclasses.replace(prepared, creds=dynamic.credentials)

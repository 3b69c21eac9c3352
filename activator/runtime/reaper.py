"""The one reaper: the only code in activator that calls waitpid.

SIGCHLD is blocked and read from a signalfd (``activator/exec/_reap.c``) that the event
loop watches; when it is readable the loop reaps every zombie there is with
``waitpid(-1, WNOHANG)`` and dispatches by pid. No thread and no signal handler: the
same code under asyncio and uvloop (uvloop keeps SIGCHLD handlers for itself), one
wake-up per batch of exits (SIGCHLD does not queue: one pending signal stands for
any number of exits), none while idle, and orphans re-parented to us when activator
is PID 1 (or a subreaper) are reaped like our own children.

SIGCHLD must stay blocked in every thread: `Reaper` must be created before any
other thread exists (``Reaper.block_early()`` does the blocking part even earlier,
in cli.main); threads started later inherit the mask, and the spawn core gives
every child an empty one before exec.

A pid must be registered with ``watch()`` in the same loop iteration that spawned
it (or be found by a resolver: an accept lane's children, see acceptlane.py); exits
are dispatched on the loop, so a child that dies at once is still matched to its
owner. Exits of pids nobody watches are orphans: reaped, counted, logged.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
from collections.abc import Callable
from typing import Protocol

from ..exec import _spawn

ExitCallback = Callable[[int, int], None]  # (pid, wait status)

# After a batch of exits, SIGCHLD is looked at again only this much later: under load it
# comes once per exit, and every wake-up of the loop costs more than the reaping itself.
# Interrupt coalescing, as NICs do: the first exit after a quiet spell is reaped at once,
# the ones right behind it within this window; an idle daemon still never wakes.
HOLD_OFF = 0.005
_ONESHOT_IN = select.EPOLLIN | select.EPOLLONESHOT


class Lane(Protocol):
    """What the reaper needs of an accept lane (acceptlane.AcceptLane)."""

    def drain(self) -> None: ...
    def resolve(self, pid: int) -> bool: ...


class Reaper:
    """The books of our children: their exits (SIGCHLD), and the births an accept lane
    reports from its thread (``births_fd``). Both wake the loop through the same
    handler, so one wake-up (and one hold-off) serves a batch of each."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, on_orphan: ExitCallback | None = None
    ) -> None:
        self._loop = loop
        self._watched: dict[int, ExitCallback] = {}
        self._on_orphan = on_orphan
        self._lanes: list[Lane] = []
        self._unclaimed: dict[int, int] = {}  # pid -> status: exited before its lane said so
        self._settling = False
        self.orphans_reaped = 0
        self._idle_waiters: list[asyncio.Future[None]] = []
        # Called with each pid reaped before its exit is reported: the output capture reads
        # what the process wrote first, so its lines come before its exit line.
        self.before_exit: Callable[[int], None] | None = None
        self._fd = _spawn.sigchld_fd()
        self.births_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)  # lanes write here
        # Both fds sit one-shot in an epoll set of our own that the loop watches for good:
        # taking the events disarms them, so the hold-off costs one epoll_ctl per fd that
        # fired, where taking the fds out of the loop's own set and back cost four
        # (and, under uvloop, a poll handle made and closed per wake-up).
        self._ep = select.epoll(2)
        self._ep.register(self._fd, _ONESHOT_IN)
        self._ep.register(self.births_fd, _ONESHOT_IN)
        self._hold: asyncio.TimerHandle | None = None
        self._fired: list[int] = []
        loop.add_reader(self._ep.fileno(), self._on_wake)
        loop.call_soon(self._reap)  # whatever exited before the fd existed

    @staticmethod
    def block_early() -> None:
        """Block SIGCHLD in the calling (main) thread, before any thread is started."""
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})

    def watch(self, pid: int, callback: ExitCallback) -> None:
        """Call ``callback(pid, status)`` on the loop when ``pid`` exits."""
        self._watched[pid] = callback
        if self._unclaimed:
            status = self._unclaimed.pop(pid, None)
            if status is not None:  # reaped already: report it, as for any exit, on the loop
                self._loop.call_soon(self._dispatch, pid, status)

    def wait(self, pid: int) -> asyncio.Future[int]:
        """A future for the wait status of ``pid`` (registered like watch())."""
        fut: asyncio.Future[int] = self._loop.create_future()

        def done(_pid: int, status: int) -> None:
            if not fut.done():
                fut.set_result(status)

        self.watch(pid, done)
        return fut

    def wait_idle(self) -> asyncio.Future[None]:
        """A future that resolves the next time no child at all is left (orphans included)."""
        fut: asyncio.Future[None] = self._loop.create_future()
        self._idle_waiters.append(fut)
        self._loop.call_soon(self._reap)  # no child may be left already: no SIGCHLD to come
        return fut

    def _idle(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def add_lane(self, lane: Lane) -> None:
        """An accept lane whose records are drained on every wake-up. It spawns in its own
        thread and registers its pids from the loop, in batches, so its child may be
        reaped before its record has been drained: before a pid nobody watches is taken
        for an orphan, ``lane.resolve(pid)`` drains and says whether it may still be
        claimed (the exit is then kept until a watch() claims it, or settle())."""
        self._lanes.append(lane)

    def remove_lane(self, lane: Lane) -> None:
        if lane in self._lanes:
            self._lanes.remove(lane)

    def forget(self, pid: int) -> None:
        self._watched.pop(pid, None)

    @property
    def watched(self) -> int:
        return len(self._watched)

    def close(self) -> None:
        """Stop watching (SIGCHLD stays blocked: nobody else is meant to take it)."""
        if self._fd < 0:
            return
        if self._hold is not None:
            self._hold.cancel()
            self._hold = None
        self._loop.remove_reader(self._ep.fileno())
        self._ep.close()
        os.close(self._fd)
        os.close(self.births_fd)
        self._fd = self.births_fd = -1

    def _on_wake(self) -> None:
        fired = [fd for fd, _ in self._ep.poll(0)]  # disarms them (one-shot)
        for fd in fired:
            try:
                os.read(fd, 4096)  # siginfo records, an eventfd count: only the wake matters
            except BlockingIOError:
                pass
        for lane in list(self._lanes):  # births first: then every exit has its owner
            lane.drain()
        self._reap()
        # The one that did not fire stays armed, and may wake us within the hold-off.
        self._fired += fired
        if self._fired and self._hold is None:
            self._hold = self._loop.call_later(HOLD_OFF, self._rearm)

    def _rearm(self) -> None:
        self._hold = None
        fired, self._fired = self._fired, []
        if self._fd >= 0:  # readable already: the loop calls _on_wake at once
            for fd in fired:
                self._ep.modify(fd, _ONESHOT_IN)

    def reap_now(self) -> None:
        """Reap what has exited, now, on the loop (the accept path, at MaxConnections=)."""
        self._reap()

    def _reap(self) -> None:
        """On the loop: the only waitpid in activator. Reaps every zombie there is."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.settle()
                self._idle()
                return
            if pid == 0:
                self.settle()
                return
            self._dispatch(pid, status)

    def settle(self) -> None:
        """Exits kept while a lane was spawning: claimed by now, or orphans after all.
        (An accept lane calls this after each drain, the reaper after each batch.)"""
        if not self._unclaimed or self._settling:
            return
        self._settling = True
        try:
            for pid in list(self._unclaimed):
                status = self._unclaimed.pop(pid, None)
                if status is not None:
                    self._dispatch(pid, status)
        finally:
            self._settling = False

    def _dispatch(self, pid: int, status: int) -> None:
        callback = self._watched.pop(pid, None)
        if callback is None and self._lanes:
            pending = False
            for lane in list(self._lanes):
                pending = lane.resolve(pid) or pending
            callback = self._watched.pop(pid, None)
            if callback is None and pending:
                self._unclaimed[pid] = status
                return
        if self.before_exit is not None:
            self.before_exit(pid)
        if callback is not None:
            callback(pid, status)
            return
        self.orphans_reaped += 1
        if self._on_orphan is not None:
            self._on_orphan(pid, status)


def describe_status(status: int) -> tuple[str, int]:
    """("exited", code) or ("killed", signal number) — systemd's CLD_EXITED / CLD_KILLED."""
    if os.WIFSIGNALED(status):
        return "killed", os.WTERMSIG(status)
    return "exited", os.WEXITSTATUS(status)

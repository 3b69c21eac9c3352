"""The one reaper: the only code in activator that calls waitpid.

A single thread blocks in ``waitid(P_ALL, WNOWAIT)`` until a child has exited
and asks the event loop, with ``call_soon_threadsafe``, to reap every zombie there
is with ``waitpid(-1, WNOHANG)``. It is the same code under asyncio and uvloop
(uvloop keeps SIGCHLD for itself, so a SIGCHLD handler is not an option there),
wakes only when a child exits (no polling: zero wake-ups while idle), and reaps
orphans that are re-parented to us when activator is PID 1 (or a subreaper).

A pid must be registered with ``watch()`` in the same loop iteration that spawned
it (or be found by a resolver: an accept lane's children, see acceptlane.py); exits
are dispatched on the loop, so a child that dies at once is still matched to its
owner. Exits of pids nobody watches are orphans: reaped, counted, logged.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable

ExitCallback = Callable[[int, int], None]  # (pid, wait status)


class Reaper:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, on_orphan: ExitCallback | None = None
    ) -> None:
        self._loop = loop
        self._watched: dict[int, ExitCallback] = {}
        self._on_orphan = on_orphan
        self._wake = threading.Event()
        self._reaped = threading.Event()
        self._stopping = False
        self.orphans_reaped = 0
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._resolvers: list[Callable[[], None]] = []
        # The thread needs the GIL for a moment after each wake-up; under load the loop holds
        # it, and the interpreter hands it over only every switch interval (5 ms by default),
        # which would leave exited instances counted against MaxConnections= that long.
        sys.setswitchinterval(0.0005)
        self._thread = threading.Thread(target=self._run, name="activator-reaper", daemon=True)
        self._thread.start()

    def watch(self, pid: int, callback: ExitCallback) -> None:
        """Call ``callback(pid, status)`` on the loop when ``pid`` exits."""
        self._watched[pid] = callback
        self._wake.set()

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
        self._wake.set()  # let the thread look now
        return fut

    def _idle(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def add_resolver(self, resolve: Callable[[], None]) -> None:
        """``resolve()`` is called before a pid nobody watches is taken for an orphan: an
        accept lane spawns in its own thread and registers its pids from the loop, in
        batches, so its child may be reaped before its record has been drained."""
        self._resolvers.append(resolve)

    def remove_resolver(self, resolve: Callable[[], None]) -> None:
        if resolve in self._resolvers:
            self._resolvers.remove(resolve)

    def forget(self, pid: int) -> None:
        self._watched.pop(pid, None)

    @property
    def watched(self) -> int:
        return len(self._watched)

    def close(self) -> None:
        """Stop the thread once no child is left (it exits on the next ECHILD)."""
        self._stopping = True
        self._wake.set()

    # -- the thread only watches; the loop reaps
    def _run(self) -> None:
        # waitid(WNOWAIT) blocks (without the GIL) until some child is a zombie but leaves it
        # in place; the loop then reaps every zombie there is in one callback. One GIL hand-off
        # per batch, not per child: under load a thread that reaped one child per wake-up
        # would wait up to the interpreter's switch interval (5 ms) for each.
        while True:
            try:
                os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
            except ChildProcessError:
                try:
                    self._loop.call_soon_threadsafe(self._idle)
                except RuntimeError:
                    return
                if self._stopping:
                    return
                # No child at all: sleep until the next spawn. A spawn sets the event after
                # the fork, so a child that exists is never missed.
                self._wake.wait()
                self._wake.clear()
                continue
            except InterruptedError:
                continue
            self._reaped.clear()
            try:
                self._loop.call_soon_threadsafe(self._reap)
            except RuntimeError:
                return  # the loop is closed: the daemon is gone
            self._reaped.wait()

    def reap_now(self) -> None:
        """Reap what has exited, now, on the loop (the accept path, at MaxConnections=)."""
        self._reap()

    def _reap(self) -> None:
        """On the loop: the only waitpid in activator. Reaps every zombie, then lets the
        thread watch again."""
        try:
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid == 0:
                    return
                self._dispatch(pid, status)
        finally:
            self._reaped.set()

    def _dispatch(self, pid: int, status: int) -> None:
        callback = self._watched.pop(pid, None)
        if callback is None and self._resolvers:
            for resolve in list(self._resolvers):
                resolve()
            callback = self._watched.pop(pid, None)
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

"""The reaper (runtime/reaper.py) in-process, on both event loops: real children, exits
read from the SIGCHLD signalfd, reaped in batches."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
import pytest_asyncio

from activator.runtime.reaper import Reaper


@pytest_asyncio.fixture
async def reaper():
    """A Reaper on the test's loop; SIGCHLD blocked while it lives, as in the daemon."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    orphans: list[tuple[int, int]] = []
    r = Reaper(asyncio.get_running_loop(), on_orphan=lambda pid, st: orphans.append((pid, st)))
    r.orphans = orphans
    r.wakes = 0
    on_wake = r._on_wake

    def counted() -> None:
        r.wakes += 1
        on_wake()

    # count the wake-ups: every re-arm after the first registers the attribute anew
    r._on_wake = counted
    try:
        yield r
    finally:
        r.close()
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _children(n: int, gate: int, other_end: int) -> list[int]:
    """n children that exit together when ``gate`` (a pipe's read end) sees EOF, each with
    its index as exit code."""
    pids = []
    for i in range(n):
        pid = os.fork()
        if pid == 0:  # the child: wait for the gate, then exit at once
            try:
                signal.alarm(30)  # never outlive a test that failed
                os.close(other_end)  # only the test holds the write end
                os.read(gate, 1)
            finally:
                os._exit(i)
        pids.append(pid)
    return pids


@pytest.mark.asyncio
async def test_exits_are_dispatched_to_their_watchers_in_batches(reaper):
    r, w = os.pipe()
    try:
        pids = _children(32, r, w)
    finally:
        os.close(r)
    futures = [reaper.wait(pid) for pid in pids]  # registered before any can exit
    os.close(w)  # every child exits now
    statuses = await asyncio.wait_for(asyncio.gather(*futures), 20)
    assert [os.waitstatus_to_exitcode(s) for s in statuses] == list(range(32))
    # 32 exits at once: SIGCHLD does not queue and the reaper holds off after a batch, so
    # far fewer wake-ups than exits
    assert reaper.wakes < 16, reaper.wakes
    assert reaper.orphans == [] and reaper.watched == 0


@pytest.mark.asyncio
async def test_an_exit_nobody_watches_is_an_orphan(reaper):
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    await asyncio.wait_for(reaper.wait_idle(), 20)
    assert reaper.orphans and reaper.orphans[0][0] == pid
    assert os.waitstatus_to_exitcode(reaper.orphans[0][1]) == 7
    assert reaper.orphans_reaped == 1


@pytest.mark.asyncio
async def test_a_pid_watched_after_it_was_reaped_as_a_lanes_is_still_reported(reaper):
    """An accept lane registers its pids late: its pending exit is kept for watch()."""

    class Lane:
        def drain(self) -> None: ...

        def resolve(self, pid: int) -> bool:
            return True  # "mine, the record comes later"

    reaper.add_lane(Lane())
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    await asyncio.wait_for(reaper.wait_idle(), 20)
    fut = reaper.wait(pid)
    status = await asyncio.wait_for(fut, 10)
    assert os.waitstatus_to_exitcode(status) == 3 and reaper.orphans == []

"""The reaper (runtime/reaper.py) in-process, on both event loops: real children, exits
read from the SIGCHLD signalfd, reaped in batches."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
import pytest_asyncio

from activator.runtime.reaper import Reaper


class CountingReaper(Reaper):
    """The reaper, counting its wake-ups."""

    wakes = 0

    def _on_wake(self) -> None:
        self.wakes += 1
        super()._on_wake()


@pytest_asyncio.fixture
async def reaper():
    """A Reaper on the test's loop; SIGCHLD blocked while it lives, as in the daemon."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    orphans: list[tuple[int, int]] = []
    r = CountingReaper(
        asyncio.get_running_loop(), on_orphan=lambda pid, st: orphans.append((pid, st))
    )
    r.orphans = orphans
    try:
        yield r
    finally:
        r.close()
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _children(n: int, close: tuple[int, ...] = ()) -> tuple[list[int], int]:
    """n children that exit when the returned fd (a pipe's write end) is closed, each
    with its index as exit code. They close ``close`` (other children's gates)."""
    r, w = os.pipe()
    pids = []
    try:
        for i in range(n):
            pid = os.fork()
            if pid == 0:
                try:
                    signal.alarm(30)  # never outlive a test that failed
                    for fd in (w, *close):  # only the test holds the write ends
                        os.close(fd)
                    os.read(r, 1)
                finally:
                    os._exit(i)
            pids.append(pid)
    finally:
        os.close(r)
    return pids, w


def _exited(pids: list[int]) -> None:
    """Block (the loop too) until every pid has exited, reaping none (WNOWAIT)."""
    for pid in pids:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


@pytest.mark.asyncio
async def test_one_wake_up_reaps_a_whole_batch(reaper):
    await asyncio.sleep(0)  # the reaper's first look (at nothing) is behind us
    pids, gate = _children(32)
    futures = [reaper.wait(pid) for pid in pids]  # registered before any can exit
    os.close(gate)
    _exited(pids)  # 32 zombies before the loop looks: SIGCHLD does not queue
    wakes = reaper.wakes
    statuses = await asyncio.wait_for(asyncio.gather(*futures), 20)
    assert [os.waitstatus_to_exitcode(s) for s in statuses] == list(range(32))
    assert reaper.wakes - wakes == 1
    assert reaper.orphans == [] and reaper.watched == 0


@pytest.mark.asyncio
async def test_after_a_batch_the_reaper_holds_off(reaper):
    """An exit right after a batch waits for the hold-off (5 ms) instead of waking the
    loop at once: under load that is one wake-up per batch, not per connection."""
    loop = asyncio.get_running_loop()
    (first,), gate1 = _children(1)
    (second,), gate2 = _children(1, close=(gate1,))
    t: dict[str, float] = {}
    done = loop.create_future()
    reaper.watch(first, lambda pid, st: t.setdefault("first", loop.time()))
    reaper.watch(second, lambda pid, st: (t.setdefault("second", loop.time()), done.set_result(0)))
    os.close(gate1)
    while "first" not in t:
        await asyncio.sleep(0)  # (bounded by the test's timeout) the first batch is reaped
    os.close(gate2)
    _exited([second])
    await asyncio.wait_for(done, 20)
    assert t["second"] - t["first"] >= 0.004, t  # HOLD_OFF: 5 ms (uvloop counts ms)


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

"""The state machine's host (runtime/host.py), the real one, on both event loops: its
clock and timers are the loop's, its readers the loop's, its signals real."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from activator.core.loops import loop_name
from activator.runtime.host import Host


@pytest.mark.asyncio
async def test_both_loops_are_used(request):
    assert loop_name(asyncio.get_running_loop()) == request.node.callspec.id


@pytest.mark.asyncio
async def test_timers_run_on_the_loops_clock():
    host = Host()
    fired = asyncio.Event()
    t0 = host.clock()
    assert abs(t0 - asyncio.get_running_loop().time()) < 0.1  # the loop's own clock
    host.call_at(t0 + 0.02, fired.set)
    await asyncio.wait_for(fired.wait(), 10)
    assert host.clock() - t0 >= 0.019  # (uvloop's clock counts milliseconds)
    cancelled = host.call_at(host.clock(), lambda: pytest.fail("a cancelled timer ran"))
    cancelled.cancel()
    await asyncio.sleep(0)  # one turn of the loop: a due timer would run in it


@pytest.mark.asyncio
async def test_readers_are_the_loops():
    host = Host()
    r, w = os.pipe()
    ready = asyncio.Event()
    try:
        host.add_reader(r, ready.set)
        os.write(w, b"x")
        await asyncio.wait_for(ready.wait(), 10)
        host.remove_reader(r)
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.asyncio
async def test_signals_and_processes():
    host = Host()
    pid = os.fork()
    if pid == 0:
        os.setsid()
        signal.pause()
        os._exit(0)
    try:
        pidfd = host.open_pidfd(pid)
        assert pidfd is not None
        assert host.parent_of(pid) == os.getpid()
        readable = asyncio.Event()
        host.add_reader(pidfd, readable.set)  # a pidfd is readable once the process exits
        assert host.signal(pid, signal.SIGTERM, group=False)
        await asyncio.wait_for(readable.wait(), 10)
        host.remove_reader(pidfd)
        os.close(pidfd)
    finally:
        _, status = os.waitpid(pid, 0)
    assert os.WTERMSIG(status) == signal.SIGTERM
    assert not host.signal(pid, signal.SIGTERM, group=False)  # gone: False, no exception
    assert host.groups_of(pid) == set() and host.parent_of(pid) is None
    assert host.groups_of(os.getpid()) == {os.getsid(0), os.getpgid(0)}

"""Readiness upward (manager/upward.py) in-process, on both event loops: the messages and
their order, the watchdog's timer on the loop, the ready fd written once."""

from __future__ import annotations

import asyncio
import os

import pytest
from supervisor_side import NotifySocket

from activator.manager.upward import Upward


@pytest.mark.asyncio
async def test_messages_in_order_and_watchdog_on_the_loop(tmp_path):
    m = NotifySocket(str(tmp_path / "notify"))
    logged: list = []
    up = Upward(lambda *a, **kw: logged.append((a, kw)), notify_socket=m.sock.getsockname(),
                watchdog=0.01)  # fmt: skip
    try:
        up.starting("loading units")
        up.ready("sockets: 0, services: 0")
        # the pings come from the loop's timer while the loop runs; wait for three of them
        i = 0
        for _ in range(3):
            i = await asyncio.to_thread(m.wait_for, "WATCHDOG", "1", 10, i + 1)
        up.stopping()
        await asyncio.to_thread(m.wait_for, "STOPPING", "1", 10)
    finally:
        up.close()
        m.close()
    fields = [f for _, f in m.messages]
    assert fields[0] == {"STATUS": "loading units"} and fields[1] == {"WATCHDOG": "1"}
    assert {"READY": "1", "STATUS": "sockets: 0, services: 0"} in fields
    assert up.pings >= 3 and logged == []
    assert all(pid == os.getpid() for pid, _ in m.messages)


@pytest.mark.asyncio
async def test_a_supervisor_gone_is_said_once(tmp_path):
    m = NotifySocket(str(tmp_path / "notify"))
    path = m.sock.getsockname()
    m.close()
    os.unlink(path)
    logged: list = []
    up = Upward(lambda *a, **kw: logged.append(kw), notify_socket=path)
    try:
        up.starting("loading units")
        up.ready("ready")
        up.stopping()
    finally:
        up.close()
    assert len(logged) == 1 and "to the supervisor at NOTIFY_SOCKET" in logged[0]["reason"]


@pytest.mark.asyncio
async def test_ready_fd_once_and_closed_at_the_end_if_never_ready():
    r, w = os.pipe()
    up = Upward(lambda *a, **kw: None, ready_fd=w)
    up.ready("ready")
    up.ready("ready again")  # once
    up.close()
    assert os.read(r, 10) == b"\n" and os.read(r, 10) == b""
    os.close(r)
    r, w = os.pipe()
    up = Upward(lambda *a, **kw: None, ready_fd=w)
    up.close()  # never ready: the supervisor sees the pipe close, with no newline
    assert os.read(r, 10) == b""
    os.close(r)

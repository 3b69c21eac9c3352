"""The control server in-process, on both event loops: a real unix socket and real
clients, the manager faked (what control/verbs.py ManagerView declares)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat

import pytest
import pytest_asyncio

from activator.control import protocol
from activator.control.server import ControlServer
from activator.core.log import EventLog


class FakeUnit:
    def __init__(self, name: str, active_state: str) -> None:
        self.name = name
        self.active_state = active_state


class FakeManager:
    """A manager with no units, whose state the test sets."""

    def __init__(self) -> None:
        self.units = None
        self.problems: list = []
        self.sockets: dict = {}
        self.started = 1000.0
        self.generation = 0  # live re-execs so far
        self.stopping = False
        self.ready = False
        self.log = EventLog("json", stream=io.StringIO())
        self.operation_lock = asyncio.Lock()
        self.unit_list: list[FakeUnit] = []

    def log_exception(self, e: BaseException) -> None:
        self.log("traceback", None, line=repr(e))

    def find(self, name: str):
        return None

    def all_units(self) -> list:
        return self.unit_list

    async def reload_units(self, *, dry_run: bool = False):
        raise AssertionError("not asked here")


@pytest_asyncio.fixture
async def served(tmp_path):
    """(manager, socket path) of a ControlServer serving on the test's loop."""
    m = FakeManager()
    path = str(tmp_path / "ctl" / "control.sock")
    server = ControlServer(m, path)
    await server.start()
    try:
        yield m, path
    finally:
        await server.close()
    assert not os.path.exists(path)  # close() removes its own node


async def _ask(path: str, line: bytes) -> dict:
    reader, writer = await asyncio.open_unix_connection(path)
    try:
        writer.write(line)
        await writer.drain()
        answer = await asyncio.wait_for(reader.readline(), 10)
        assert await asyncio.wait_for(reader.read(), 10) == b""  # one answer, then closed
    finally:
        writer.close()
    return json.loads(answer)


@pytest.mark.asyncio
async def test_the_node_is_root_only_and_ping_answers(served):
    m, path = served
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    answer = await _ask(path, protocol.request("ping"))
    assert answer["ok"] and answer["result"]["pid"] == os.getpid()


@pytest.mark.asyncio
async def test_is_system_running_follows_the_manager(served):
    m, path = served

    async def state() -> str:
        answer = await _ask(path, protocol.request("is-system-running"))
        return answer["result"]["state"]

    assert await state() == "starting"
    m.ready = True
    assert await state() == "running"
    m.unit_list = [FakeUnit("a.service", "active"), FakeUnit("b.service", "failed")]
    assert await state() == "degraded"
    m.unit_list[1].active_state = "inactive"
    assert await state() == "running"
    m.stopping = True
    assert await state() == "stopping"


@pytest.mark.asyncio
async def test_many_clients_at_once(served):
    m, path = served
    m.ready = True
    answers = await asyncio.gather(
        *(_ask(path, protocol.request("is-system-running")) for _ in range(50))
    )
    assert {a["result"]["state"] for a in answers} == {"running"}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "line, code",
    [
        (b"not json\n", "bad-request"),
        (b'{"v": 2, "verb": "ping"}\n', "bad-version"),
        (b'{"v": 1, "verb": "frobnicate"}\n', "unknown-verb"),
        (b'{"v": 1, "verb": "start", "units": []}\n', "bad-request"),
        (b" " * (protocol.MAX_REQUEST + 10) + b"\n", "bad-request"),
    ],
)
async def test_bad_requests_get_codes(served, line, code):
    m, path = served
    answer = await _ask(path, line)
    assert (answer["ok"], answer["error"]) == (False, code)


@pytest.mark.asyncio
async def test_mutating_verbs_are_refused_while_stopping(served):
    m, path = served
    m.stopping = True
    answer = await _ask(path, protocol.request("start", ["web.service"]))
    assert answer["error"] == "refused" and "shutting down" in answer["message"]

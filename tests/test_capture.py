"""runtime/capture.py without services: lines, writers, rings and followers (issue 13 item 4).

The streams are real socket pairs; this process writes into them as a service would (the
kernel attaches our pid), and the capture reads them on a real event loop.
"""

from __future__ import annotations

import asyncio
import io
import json
import os

from activator.core.log import EventLog
from activator.runtime import capture as cap
from activator.runtime.capture import Capture


def _run(body):
    out = io.StringIO()
    log = EventLog("json", out)

    async def main():
        c = Capture(log)
        try:
            await body(c)
        finally:
            c.close()
        log.flush()

    asyncio.run(main())
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def _turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_lines_of_two_streams_with_the_writers_pid():
    async def body(c: Capture):
        out, err = c.fds("a.service", "prog", True, True)
        c.attribute(os.getpid(), "a.service", "a.service")
        os.write(out, b"one\ntwo\n")
        os.write(err, b"three\n")
        os.write(out, b"unfinished")
        c.exited(os.getpid())  # reads now, and the unfinished line goes out too

    lines = _run(body)
    got = [(e["stream"], e["msg"]) for e in lines if e["event"] == "output"]
    assert got == [("stdout", "one"), ("stdout", "two"), ("stderr", "three"),
                   ("stdout", "unfinished")]  # fmt: skip
    assert {e["pid"] for e in lines} == {os.getpid()} and lines[0]["ident"] == "prog"


def test_an_instance_writes_into_its_templates_stream_and_ring():
    async def body(c: Capture):
        out, _ = c.fds("t@.service", "t", True, False)
        c.attribute(os.getpid(), "t@1-x.service", "t@.service")
        os.write(out, b"hello\n")
        await _turns()
        assert [e[1] for e in c.tail("t@.service", 10)] == ["t@1-x.service"]
        assert [e[5] for e in c.tail("t@1-x.service", 10)] == ["hello"]
        assert c.tail("t@2-y.service", 10) == []

    lines = _run(body)
    assert [e["unit"] for e in lines] == ["t@1-x.service"]


def test_line_max_and_the_ring_bounds(monkeypatch):
    monkeypatch.setattr(cap, "RING_LINES", 3)

    async def body(c: Capture):
        out, _ = c.fds("b.service", "b", True, False)
        os.write(out, b"x" * (cap.LINE_MAX + 10) + b"\n")
        for i in range(5):
            os.write(out, f"n{i}\n".encode())
        await _turns()
        assert [e[5] for e in c.tail("b.service", 10)] == ["n2", "n3", "n4"]
        assert [e[5] for e in c.tail("b.service", 2)] == ["n3", "n4"]

    lines = _run(body)
    assert [len(e["msg"]) for e in lines[:2]] == [cap.LINE_MAX, 10]


def test_followers_get_new_lines_until_they_leave():
    async def body(c: Capture):
        seen: list = []
        out, _ = c.fds("f.service", "f", True, False)
        stop = c.follow("f.service", seen.append)
        os.write(out, b"first\n")
        await _turns()
        stop()
        os.write(out, b"second\n")
        await _turns()
        assert [e[5] for e in seen] == ["first"]

    _run(body)

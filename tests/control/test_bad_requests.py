"""Whatever a client sends, it gets an error code — never a traceback — and the daemon
keeps serving."""

from __future__ import annotations

import json
import socket
import threading

import pytest
from ctlhelp import raw_request, request, sync_log
from harness import Activator

from activator.control import protocol

pytestmark = pytest.mark.root

UNITS = {"x.service": "[Service]\nExecStart=/bin/true\n"}


def _ping(a) -> None:
    answer = raw_request(a.control, request("ping"))
    assert answer["ok"] and answer["result"]["pid"] == a.pid


CASES = [
    (b"hello\n", "bad-request"),
    (b"\xff\xfe\x00\n", "bad-request"),
    (b"[]\n", "bad-request"),
    (b"{}\n", "bad-request"),
    (b'{"v": 2, "verb": "status"}\n', "bad-version"),
    (b'{"v": 0.5, "verb": "status"}\n', "bad-version"),
    (b'{"v": 1, "verb": "format-disk"}\n', "unknown-verb"),
    (b'{"v": 1, "verb": "status", "units": {"a": 1}}\n', "bad-request"),
    (b'{"v": 1, "verb": "stop"}\n', "bad-request"),  # a verb that needs units
    (
        b'{"v": 1, "verb": "kill", "units": ["x.service"], "args": {"signal": ["HUP"]}}\n',
        "bad-request",
    ),
    (b'{"v": 1, "verb": "status", "units": ["nope.socket"]}\n', None),  # ok: not-found entry
    (b'{"v": 1, "verb": "show", "units": ["nope.socket"]}\n', "unknown-unit"),
    (b"[" * 30000 + b"\n", "bad-request"),  # nesting deeper than the parser goes
    (b"\n", "bad-request"),
    (b"", "bad-request"),  # connect, say nothing, close the sending side
]


def test_bad_request_gets_a_code(loop_kind):
    with Activator(UNITS, loop=loop_kind) as a:
        for data, code in CASES:
            answer = raw_request(a.control, data)
            if code is None:
                assert answer["ok"] is True
            else:
                assert answer == {
                    "v": 1,
                    "ok": False,
                    "error": code,
                    "message": answer["message"],
                }, data
                assert "Traceback" not in answer["message"] and len(answer["message"]) < 500
            _ping(a)
        sync_log(a)
        assert a.count("traceback") == 0


def test_many_bad_requests_one_daemon(loop_kind):
    """The same, back to back against one daemon under each loop, plus the oversized ones."""
    bad = [
        b"hello\n",
        b"[]\n",
        b'{"v": 9}\n',
        b'{"v": 1, "verb": 1}\n',
        b"\xff\n",
        b'{"v": 1, "verb": "status", "args": 5}\n',
    ]
    with Activator(UNITS, loop=loop_kind) as a:
        for data in bad * 5:
            answer = raw_request(a.control, data)
            assert answer["ok"] is False and answer["error"] in protocol.ERRORS
        # a request larger than MAX_REQUEST, with and without a newline at its end
        huge = (
            b'{"v": 1, "verb": "status", "units": ["' + b"a" * (2 * protocol.MAX_REQUEST) + b'"]}'
        )
        for data in (huge, huge + b"\n", b"x" * (4 << 20)):
            answer = raw_request(a.control, data)
            assert answer["error"] == "bad-request" and "larger than" in answer["message"]
        # a request without a newline, the sending side shut: accepted as it is
        answer = raw_request(a.control, b'{"v": 1, "verb": "ping"}', shut=True)
        assert answer["ok"]
        # a client that connects and leaves at once
        for _ in range(20):
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(a.control)
        _ping(a)
        assert a.ctl("status", "x.service").returncode == 3
        sync_log(a)
        assert a.count("traceback") == 0 and a.count("failed") == 0


def test_silent_client_does_not_block_others(loop_kind):
    """A client that connects and sends nothing holds only its own connection."""
    with Activator(UNITS, loop=loop_kind) as a:
        silent = [socket.socket(socket.AF_UNIX) for _ in range(10)]
        try:
            for s in silent:
                s.connect(a.control)
            _ping(a)
            assert a.ctl("list-units").returncode == 0
        finally:
            for s in silent:
                s.close()


def test_request_split_across_writes(loop_kind):
    with Activator(UNITS, loop=loop_kind) as a:
        data = request("status", ["x.service"])
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(a.control)
            for i in range(0, len(data), 3):
                s.sendall(data[i : i + 3])
            buf = b""
            while b"\n" not in buf:
                buf += s.recv(65536)
        assert json.loads(buf)["result"][0]["state"] == "inactive"


def test_concurrent_raw_clients(loop_kind):
    """Good and bad requests from many threads at once: each gets its own answer."""
    with Activator(UNITS, loop=loop_kind) as a:
        results: list = []

        def client(i: int) -> None:
            for _ in range(10):
                if i % 2:
                    results.append(raw_request(a.control, request("status", ["x.service"]))["ok"])
                else:
                    results.append(raw_request(a.control, b"junk\n")["error"] == "bad-request")

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(results) == 80 and all(results)

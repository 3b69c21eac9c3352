"""The wire format on its own: requests, answers, error codes (no daemon)."""

from __future__ import annotations

import json

import pytest

from activator.control import protocol
from activator.control.protocol import ProtocolError


def test_request_roundtrip():
    verb, units, args = protocol.decode_request(
        protocol.request("kill", ["web.service"], signal="HUP")
    )
    assert (verb, units, args) == ("kill", ["web.service"], {"signal": "HUP"})


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"not json\n", "bad-request"),
        (b"\xff\xfe\n", "bad-request"),
        (b"[1, 2]\n", "bad-request"),
        (b'{"verb": "status"}\n', "bad-request"),
        (b'{"v": 2, "verb": "status"}\n', "bad-version"),
        (b'{"v": true, "verb": "status"}\n', "bad-version"),
        (b'{"v": "1", "verb": "status"}\n', "bad-version"),
        (b'{"v": 1}\n', "bad-request"),
        (b'{"v": 1, "verb": 7}\n', "bad-request"),
        (b'{"v": 1, "verb": "explode"}\n', "unknown-verb"),
        (b'{"v": 1, "verb": "status", "units": "web.socket"}\n', "bad-request"),
        (b'{"v": 1, "verb": "status", "units": [""]}\n', "bad-request"),
        (b'{"v": 1, "verb": "status", "units": [1]}\n', "bad-request"),
        (b'{"v": 1, "verb": "status", "args": []}\n', "bad-request"),
        (b"[" * 50000 + b"]" * 50000, "bad-request"),  # deeper than the JSON parser goes
    ],
)
def test_bad_requests(line, code):
    with pytest.raises(ProtocolError) as e:
        protocol.decode_request(line)
    assert e.value.code == code
    assert code in protocol.ERRORS


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"v": 1, "verb": "status", "verb": "stop"}', "duplicate key 'verb'"),
        (b'{"v": 1, "verb": "kill", "args": {"signal": "HUP", "signal": "KILL"}}',
         "duplicate key 'signal'"),
        (b'{"v": NaN, "verb": "status"}', "NaN is not allowed (JSON numbers are finite)"),
        (b'{"v": 1, "verb": "status", "args": {"x": -Infinity}}',
         "-Infinity is not allowed (JSON numbers are finite)"),
        (b'{"v": 1, "verb": "status", "args": {"x": 1e999}}', "number 1e999 is out of range"),
        (b'{"v": 1, "verb": "status", "units": ["\\ud800.service"]}',
         "a string holds a lone surrogate (\\ud800-\\udfff): not valid UTF-8"),
        ('{"v": 1, "verb": "status"}'.encode("utf-16"), "request is not valid JSON"),
        (b'{"v": ' + b"1" * 5000 + b"}", "request is not valid JSON"),
    ],
)  # fmt: skip
def test_strict_json(line, message):
    """json takes the last of repeated keys and reads NaN: a request meaning two things,
    or holding what no JSON peer can read back, is a bad request."""
    with pytest.raises(ProtocolError) as e:
        protocol.decode_request(line)
    assert (e.value.code, e.value.message) == ("bad-request", message)


def test_a_deep_answer_is_an_error_not_a_traceback():
    with pytest.raises(ProtocolError) as e:
        protocol.decode_answer(b"[" * 100000 + b"]" * 100000)
    assert e.value.code == "internal"


def test_version_checked_before_verb():
    """A client from the future learns that the version is the problem, not its verb."""
    with pytest.raises(ProtocolError) as e:
        protocol.decode_request(b'{"v": 2, "verb": "frobnicate"}')
    assert e.value.code == "bad-version"


def test_answers():
    assert protocol.decode_answer(protocol.ok([1])) == [1]
    with pytest.raises(ProtocolError) as e:
        protocol.decode_answer(protocol.error("unknown-unit", "unit x.service not found"))
    assert (e.value.code, e.value.message) == ("unknown-unit", "unit x.service not found")
    for junk in (b"", b"garbage\n", b"[]\n", b'{"ok": false, "error": "made-up"}\n'):
        with pytest.raises(ProtocolError) as e:
            protocol.decode_answer(junk)
        assert e.value.code == "internal"


def test_one_line_each():
    for data in (
        protocol.request("status"),
        protocol.ok({"a": "x\ny"}),
        protocol.error("failed", "a\nb"),
    ):
        assert data.endswith(b"\n") and data.count(b"\n") == 1
        json.loads(data)


def test_documented_codes_match():
    """README's list of error codes is the protocol's."""
    import pathlib
    import re

    readme = (pathlib.Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### The control protocol", 1)[1].split("\n## ", 1)[0]
    documented = set(
        re.findall(r"`([a-z]+(?:-[a-z]+)*)`", section.split("Error codes", 1)[1].split("\n\n")[0])
    )
    assert documented == set(protocol.ERRORS)

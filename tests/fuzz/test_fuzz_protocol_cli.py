"""Fuzzing what a client can send (the control protocol) and the two command lines."""

from __future__ import annotations

import json

import pytest
from hypothesis import strategies as st

from activator.cli import ctl, daemon, verbtable
from activator.control import protocol

from .budget import fuzz
from .strategies import TOKENS, VALUES
from .targets import check_cli, check_protocol

# Hostile inputs are large: hypothesis warns when it writes one out, which is no failure.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
_FIELDS = st.sampled_from(['"v"', '"verb"', '"units"', '"args"', '"x"'])
_RAW = st.sampled_from([
    "1", "2", "1.0", "true", "null", "NaN", "-Infinity", "Infinity", "1e999", "-1e999",
    "1" * 5000, '"status"', '"stop"', '"x"', "[]", '["a.service"]', '["\\ud800"]', '[""]',
    "{}", '{"signal": "HUP"}', '{"a": 1, "a": 2}', "[" * 100000, '"\\u0000"', '"\\udcff"',
])  # fmt: skip


@st.composite
def _raw_request(draw: st.DrawFn) -> bytes:
    """An object written by hand, so keys can repeat and constants be invalid."""
    pairs = draw(st.lists(st.tuples(_FIELDS, _RAW), max_size=6))
    text = "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"
    return text.encode() + draw(st.sampled_from([b"", b"\n", b"\r\n", b"\x00", b" x"]))


@st.composite
def _mutated_request(draw: st.DrawFn) -> bytes:
    data = bytearray(protocol.request(draw(st.sampled_from(protocol.VERBS)), ["web.service"]))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(data)))
        data[i : i + draw(st.integers(0, 3))] = draw(st.binary(max_size=4))
    return bytes(data)


_REQUESTS = st.one_of(
    st.binary(max_size=200),
    _raw_request(),
    _mutated_request(),
    st.builds(lambda o: json.dumps(o).encode(), _JSON),
    st.builds(
        lambda v, verb, units, args: json.dumps(
            {"v": v, "verb": verb, "units": units, "args": args}
        ).encode(),
        st.sampled_from([1, 1.0, True, 2, "1"]),
        st.sampled_from([*protocol.VERBS, "x", 1]),
        _JSON,
        _JSON,
    ),  # fmt: skip
    st.builds(lambda t: t.encode("utf-16"), st.just('{"v":1,"verb":"status"}')),
)


def test_fuzz_control_protocol() -> None:
    fuzz("protocol", _REQUESTS, check_protocol)


def _argv(options: list[str]) -> st.SearchStrategy[list[str]]:
    words = st.one_of(
        st.sampled_from(options), st.sampled_from(TOKENS), VALUES,
        st.builds(lambda o, v: f"{o}={v}", st.sampled_from(options), VALUES),
    )  # fmt: skip
    return st.lists(words, max_size=8)


_DAEMON_OPTIONS = [
    "--units", "--control", "--control-group", "--loop", "--log-format", "--strict",
    "--help", "-h", "--", "-", "--unit", "--loop=uvloop", "auto", "asyncio", "json", "text",
    "--systemd", "--ready-fd", "--ready-fd=3", "--version",
]  # fmt: skip
_CTL_OPTIONS = [
    *protocol.VERBS, "verify", "import", "--control", "--json", "--no-block", "--dry-run",
    "-p", "--property", "--value", "-s", "--signal", "--strict", "-o", "--output", "--help",
    "-h", "--", "-", "web.service", "--cont",
    *(v.name for v in verbtable.VERBS), *(f for o in verbtable.OPTIONS for f in o.flags),
    "--state=failed,help", "-n", "0", "--lines=-1", "--version",
]  # fmt: skip


def test_fuzz_daemon_command_line() -> None:
    fuzz("cli-daemon", _argv(_DAEMON_OPTIONS), lambda argv: check_cli(daemon.parse_args, argv))


def test_fuzz_activatorctl_command_line() -> None:
    # ctl.parse: the parser made from the verb table, and the defaults main() relies on
    fuzz("cli-ctl", _argv(_CTL_OPTIONS), lambda argv: check_cli(ctl.parse, argv))

"""Fuzzing the two files activator reads of its own (issue 15): the state record of a
previous activator (manager/generation.py; /run/activator is root's, but a torn write or
a stray file must not stop a start) and the document of a live re-exec
(manager/reexec.py). Clean answers: a Record or None; the state, or ActivatorError."""

from __future__ import annotations

import json
import os
import tempfile

from hypothesis import strategies as st

from activator.core.errors import ActivatorError
from activator.manager import generation, reexec

from .budget import fuzz

_RECORDISH = st.fixed_dictionaries(
    {},
    optional={
        "pid": st.one_of(st.integers(), st.text(max_size=5), st.none(), st.floats()),
        "start": st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers())),
        "boot": st.one_of(st.text(max_size=40), st.integers()),
        "run": st.one_of(st.text(max_size=20), st.integers(), st.none()),
        "version": st.one_of(st.integers(), st.text(max_size=3)),
    },
).map(lambda d: json.dumps(d).encode())
_BYTES = st.one_of(st.binary(max_size=300), _RECORDISH, st.just(b"[" * 10000))


def _check(data: bytes) -> None:
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        got = generation.read(f.name)
        assert got is None or isinstance(got, generation.Record)
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    try:
        state = reexec.read_state(r)
        assert isinstance(state, dict) and state["version"] == reexec.VERSION
    except ActivatorError:
        pass


def test_fuzz_state_records() -> None:
    assert fuzz("records", _BYTES, _check) > 0

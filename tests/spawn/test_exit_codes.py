"""The exit codes of a child that failed before exec: one table in C (spawn_child.c's
steps[], read through _spawn.exit_codes()), mirrored by execcore.EXIT_CODES and by the
table in execcore's docstring. All three must agree, and with systemd."""

from __future__ import annotations

import re

import pytest

from activator.exec import _spawn
from activator.exec import spec as execcore

#: systemd.exec(5), "Process exit codes": what systemd's exec_child() exits with when the
#: step of that name fails (the symbolic names are systemd's).
SYSTEMD = {
    "chdir": 200,  # EXIT_CHDIR
    "nice": 201,  # EXIT_NICE
    "fds": 202,  # EXIT_FDS
    "exec": 203,  # EXIT_EXEC
    "setrlimit": 205,  # EXIT_LIMITS
    "oom_score_adj": 206,  # EXIT_OOM_ADJUST
    "signals": 207,  # EXIT_SIGNAL_MASK
    "stdin": 208,  # EXIT_STDIN
    "stdout": 209,  # EXIT_STDOUT
    "setgroups": 216,  # EXIT_GROUP
    "setgid": 216,  # EXIT_GROUP
    "setuid": 217,  # EXIT_USER
    "keepcaps": 217,  # EXIT_USER
    "capability_bounding": 218,  # EXIT_CAPABILITIES
    "ambient_capabilities": 218,  # EXIT_CAPABILITIES
    "setsid": 220,  # EXIT_SETSID
    "stderr": 222,  # EXIT_STDERR
    "no_new_privs": 227,  # EXIT_NO_NEW_PRIVILEGES
}


def docstring_table() -> dict[str, int]:
    """execcore's docstring table, "200 chdir  201 nice ... 216 setgroups, setgid ...",
    as {step: code}."""
    doc = execcore.__doc__ or ""
    table = doc[doc.index("Exit codes of a child") :]
    codes: dict[str, int] = {}
    for code, names in re.findall(r"\b(2\d\d) ([a-z_]+(?:, [a-z_]+)*)", table):
        for name in names.split(", "):
            assert name not in codes, f"{name} is listed twice in execcore's docstring"
            codes[name] = int(code)
    return codes


def test_every_c_step_is_in_execcore_and_every_execcore_step_in_c() -> None:
    c = _spawn.exit_codes()
    assert sorted(c.keys() - execcore.EXIT_CODES.keys()) == [], "steps only in C"
    assert sorted(execcore.EXIT_CODES.keys() - c.keys()) == [], "steps only in execcore"


@pytest.mark.parametrize("step", sorted(SYSTEMD))
def test_step_has_systemds_code_in_c_execcore_and_the_docstring(step: str) -> None:
    assert _spawn.exit_codes()[step] == SYSTEMD[step]
    assert execcore.EXIT_CODES[step] == SYSTEMD[step]
    assert docstring_table()[step] == SYSTEMD[step]


def test_the_three_tables_are_the_same_table() -> None:
    assert _spawn.exit_codes() == execcore.EXIT_CODES == docstring_table() == SYSTEMD

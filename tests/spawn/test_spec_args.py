"""spawn_args(): the last checks between a plan and the C spawn core, without processes.

Each refusal names the field and the value (the daemon logs it as the reason a start
failed), and each range is checked at both of its ends: one past the end is refused, the
end itself is carried through, as the C side expects it.
"""

from __future__ import annotations

import resource

import pytest

from activator.exec.spec import ExecSpec, spawn_args

OK = {"path": b"/bin/true", "argv": [b"true"], "env": []}


def args(**fields):
    return spawn_args(ExecSpec(**{**OK, **fields}))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"argv": []}, "argv must not be empty"),
        ({"path": b"relative"}, "path must be absolute: b'relative'"),
        ({"path": "/bin/true"}, "path must be bytes without NUL: '/bin/true'"),
        ({"path": b"/bin/t\0rue"}, "path must be bytes without NUL: b'/bin/t\\x00rue'"),
        ({"argv": [b"a\0b"]}, "argv item must be bytes without NUL: b'a\\x00b'"),
        ({"env": [b"A=1", b"B=\0"]}, "env item must be bytes without NUL: b'B=\\x00'"),
        ({"env": [b"NOEQUALS"]}, "env item must be KEY=VALUE: b'NOEQUALS'"),
        ({"env": [b"=x"]}, "env item must be KEY=VALUE: b'=x'"),
        ({"env": [b"LISTEN_PID=1"], "listen_pid": True}, "LISTEN_PID given twice"),
        ({"env": [b"WATCHDOG_PID=1"], "watchdog_pid": True}, "WATCHDOG_PID given twice"),
        ({"cwd": "/"}, "cwd must be bytes without NUL: '/'"),
        ({"cwd": b"relative"}, "cwd must be absolute: b'relative'"),
        ({"stdin": 2**31}, "stdio out of range: (2147483648, -1, -1)"),
        ({"stderr": -2}, "stdio out of range: (-1, -1, -2)"),
        ({"uid": 2**32 - 1}, "uid/gid out of range: (4294967295, -1)"),
        ({"groups": [-1]}, "groups out of range: (-1,)"),
        ({"rlimits": [(0, 1)]}, "rlimit must be (resource, soft, hard): (0, 1)"),
        ({"rlimits": [(64, 1, 1)]}, "rlimit resource out of range: (64,)"),
        ({"rlimits": [(7, -2, 1)]}, "rlimit out of range: (7, -2, 1)"),
        ({"rlimits": [(7, 1, 2**63)]}, f"rlimit out of range: (7, 1, {2**63})"),
        ({"nice": -21}, "nice out of range: (-21,)"),
        ({"nice": 20}, "nice out of range: (20,)"),
        ({"oom_score_adj": -1001}, "oom_score_adj out of range: (-1001,)"),
        ({"umask": 0o1000}, "umask out of range: (512,)"),
        ({"fds": [3, 2**31]}, "fds out of range: (3, 2147483648)"),
        ({"fds": [-1]}, "fds out of range: (-1,)"),
        ({"ambient_capabilities": [64]}, "capability out of range: 64"),
        ({"capability_bounding": [-1]}, "capability out of range: -1"),
    ],
)
def test_refusals_name_the_field_and_the_value(fields, message):
    with pytest.raises(ValueError) as e:
        args(**fields)
    assert str(e.value) == f"ExecSpec: {message}"


def test_the_ends_of_every_range_are_carried_through():
    top = 2**31 - 1
    got = args(
        stdin=top,
        stdout=-1,
        stderr=0,
        fds=[0, top],
        groups=[0, 2**32 - 2],
        uid=2**32 - 2,
        gid=-1,
        rlimits=[(0, -1, 2**63 - 1), (63, 0, resource.RLIM_INFINITY), (1, 2**64 - 1, 5)],
        nice=-20,
        oom_score_adj=-1000,
        umask=0o777,
        capability_bounding=[0, 63],
        ambient_capabilities=[0, 1, 63],
    )
    assert (got["stdin"], got["stdout"], got["stderr"]) == (top, -1, 0)
    assert got["fds"] == (0, top) and got["groups"] == (0, 2**32 - 2)
    assert (got["uid"], got["gid"]) == (2**32 - 2, -1)
    # RLIM_INFINITY, as Python (-1) or the kernel (2**64 - 1) spells it, goes down as -1
    assert got["rlimits"] == (0, -1, 2**63 - 1, 63, 0, -1, 1, -1, 5)
    assert (got["nice"], got["oom_score_adj"], got["umask"]) == (-20, -1000, 0o777)
    assert got["capability_bounding"] == 1 | 1 << 63
    assert got["ambient_capabilities"] == 0b11 | 1 << 63
    low = args(umask=0, nice=19, oom_score_adj=1000, rlimits=[(5, 0, 0)])
    assert (low["umask"], low["nice"], low["oom_score_adj"]) == (0, 19, 1000)
    assert low["rlimits"] == (5, 0, 0)


def test_keep_means_keep():
    got = args()
    assert got["groups"] is None and got["capability_bounding"] is None
    assert got["ambient_capabilities"] == 0 and got["rlimits"] == ()
    assert got["cwd"] is None and (got["uid"], got["gid"]) == (-1, -1)
    assert args(capability_bounding=[])["capability_bounding"] == 0  # drop every one
    assert args(groups=[])["groups"] == ()  # no supplementary group at all

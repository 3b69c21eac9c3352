"""Who may use the control socket: root by default; --control-group lets one group in.

The callers run as other users through subprocess (user=, group=, extra_groups=)
with Debian's python3 and a client that speaks the protocol by hand.
"""

from __future__ import annotations

import errno
import grp
import os
import stat

import pytest
from ctlhelp import request, request_as
from harness import Activator

pytestmark = pytest.mark.root

NOGROUP = grp.getgrnam("nogroup").gr_gid
OTHER_GID = grp.getgrnam("daemon").gr_gid  # a group that is not the control group


# ---------------------------------------------------------------- the peer check itself


def _server(group_gid: int | None):
    from activator.control.server import ControlServer

    srv = ControlServer.__new__(ControlServer)  # only the check: no manager, no socket
    srv.gid = group_gid
    return srv


def test_root_and_the_daemons_own_user_are_let_in_even_when_the_daemon_is_not_root(monkeypatch):
    """A daemon run as uid 1000 still lets root in, and its own user; nobody else without
    the group."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    a, b = __import__("socket").socketpair()
    with a, b:
        srv = _server(None)
        assert srv._allowed(a, os.getpid(), 0, 0)
        assert srv._allowed(a, os.getpid(), 1000, 1000)
        assert not srv._allowed(a, os.getpid(), 1, 1)
        assert not srv._allowed(a, os.getpid(), 65534, NOGROUP)
        grouped = _server(NOGROUP)
        assert grouped._allowed(a, os.getpid(), 65534, NOGROUP)  # primary group
        assert not grouped._allowed(a, os.getpid(), 65534, OTHER_GID)  # our groups lack it


def test_peer_groups_are_those_at_connect_time_not_what_proc_says_now():
    """SO_PEERGROUPS: a peer that drops the group after connecting is still judged by the
    groups it connected with (and a pid that is gone cannot change the answer)."""
    from activator.control.server import _peer_groups

    saved = os.getgroups()
    os.setgroups([NOGROUP, OTHER_GID])
    try:
        a, b = __import__("socket").socketpair()  # its peer credentials are taken now
    finally:
        os.setgroups(saved)
    with a, b:
        assert _peer_groups(a, os.getpid()) == {NOGROUP, OTHER_GID}
        assert _peer_groups(a, 2**22 + 1) == {NOGROUP, OTHER_GID}  # no such pid


def test_root_only_by_default(loop_kind):
    with Activator({}, loop=loop_kind) as a:
        st = os.stat(a.control)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        assert (st.st_uid, st.st_gid) == (0, 0)
        # the file system keeps nobody out …
        r = request_as(a.control, request("status"))
        assert r["errno"] == errno.EACCES
        # … and SO_PEERCRED does too, should the node be opened up by mistake
        os.chmod(a.control, 0o666)
        r = request_as(a.control, request("stop", ["x.socket"]))
        assert r["answer"]["ok"] is False and r["answer"]["error"] == "permission-denied"
        assert "Traceback" not in r["answer"]["message"]
        a.wait_for("reject", uid=65534)
        assert a.ctl("status").returncode == 0  # root still gets in


def test_control_group_member_gets_in(loop_kind):
    with Activator(
        {"x.service": "[Service]\nExecStart=/bin/true\n"},
        loop=loop_kind,
        extra_args=("--control-group", "nogroup"),
    ) as a:
        st = os.stat(a.control)
        assert stat.S_IMODE(st.st_mode) == 0o660 and (st.st_uid, st.st_gid) == (0, NOGROUP)
        # primary group
        r = request_as(a.control, request("status", ["x.service"]))
        assert r["answer"]["ok"] is True and r["answer"]["result"][0]["unit"] == "x.service"
        # supplementary group only
        r = request_as(a.control, request("list-units"), gid=OTHER_GID, groups=[NOGROUP])
        assert r["answer"]["ok"] is True
        # neither: the file system says no; past it, the daemon says no
        r = request_as(a.control, request("status"), gid=OTHER_GID)
        assert r["errno"] == errno.EACCES
        os.chmod(a.control, 0o666)
        r = request_as(a.control, request("status"), gid=OTHER_GID)
        assert r["answer"]["error"] == "permission-denied"
        assert "group nogroup" in r["answer"]["message"]


def test_unknown_control_group_is_reported(loop_kind):
    with Activator({}, loop=loop_kind, extra_args=("--control-group", "no-such-group-xyz")) as a:
        e = a.wait_for("failed")
        assert "no-such-group-xyz" in e["reason"] and "no such group" in e["reason"]
        assert a.ready.get("control") is None  # left out: there is none
        assert not os.path.exists(a.control)


def test_live_control_socket_is_not_stolen(loop_kind):
    """A second activator on the same control path leaves the first one's socket alone."""
    with Activator({}, loop=loop_kind) as a:
        with Activator({}, loop=loop_kind, extra_args=("--control", a.control)) as b:
            e = b.wait_for("failed")
            assert a.control in e["reason"] and "another activator" in e["reason"]
        assert a.ctl("status").returncode == 0
        assert os.path.exists(a.control)  # b's exit did not unlink it
        assert a.ctl("status").returncode == 0

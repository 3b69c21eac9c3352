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

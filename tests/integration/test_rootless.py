"""Rootless mode (issue 12, item 4): activator started as a user that is not root says so
once, binds what it may (a privileged port fails with what it needs), runs every service
as itself, refuses at load a unit that names another user, and keeps its sockets in the
user's run directory. Here the user is nobody, the interpreter Debian's /usr/bin/python3
with this checkout on PYTHONPATH (harness.rootless_env)."""

from __future__ import annotations

import os
import pwd

import pytest
from harness import SYSTEM_PYTHON, Activator, free_port, public_dir, read_report, rootless_env

pytestmark = pytest.mark.root  # becoming nobody takes root

NOBODY = pwd.getpwnam("nobody")


@pytest.fixture
def as_nobody():
    env = rootless_env()
    if env is None:
        pytest.skip("nobody cannot run this checkout (a clone under /root?) with Debian's python3")
    return {"user": NOBODY.pw_uid, "python": SYSTEM_PYTHON, "env": env}


def test_rootless_runs_services_as_itself_and_says_why_it_refuses(probe, as_nobody, loop_kind):
    port, dport, sport, low = free_port(), free_port(), free_port(), 7
    units = {
        "self.socket": f"[Socket]\nListenStream=127.0.0.1:{sport}\n",
        "self.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {probe} once\nUser=nobody\n",
        "probe.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
        "probe.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {probe} once\n",
        "dyn.socket": f"[Socket]\nListenStream=127.0.0.1:{dport}\n",
        "dyn.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {probe} once\n"
        "DynamicUser=yes\nUser=www-x\n",
        "other.service": "[Service]\nExecStart=/bin/true\nUser=root\n",
        "low.socket": f"[Socket]\nListenStream=127.0.0.1:{low}\nService=probe.service\n",
    }
    with Activator(units, loop=loop_kind, **as_nobody) as a:
        assert a.count("rootless") == 1
        rootless = a.wait_for("rootless")
        assert (rootless["uid"], rootless["user"]) == (NOBODY.pw_uid, "nobody")
        refused = a.wait_for("unit-error", unit="other.service")
        assert 'User=: cannot run as "root": activator runs as nobody' in refused["problem"]
        assert "remove User= or start activator as root" in refused["problem"]
        failed = a.wait_for("failed", unit="low.socket")
        assert f"unable to bind 127.0.0.1:{low}: Permission denied" in failed["reason"]
        assert "CAP_NET_BIND_SERVICE" in failed["reason"]
        assert "net.ipv4.ip_unprivileged_port_start (now 1024)" in failed["reason"]
        for p in (port, dport, sport):  # no User=, DynamicUser=yes, User= itself
            report = read_report(("127.0.0.1", p))
            ids = (NOBODY.pw_uid,) * 3
            assert tuple(report["uid"]) == ids and tuple(report["gid"]) == (NOBODY.pw_gid,) * 3
            assert report["groups"] == []  # activator's own (the harness gave it none)
        assert a.status("probe.service")["load"] == "loaded"
        assert a.ctl("status", "other.service").returncode != 0
    assert a.proc.returncode == 0


def test_rootless_control_socket_goes_to_the_users_run_directory(as_nobody):
    run = public_dir("activator-xdg-")
    os.chown(run, NOBODY.pw_uid, NOBODY.pw_gid)
    run.chmod(0o700)
    env = {**as_nobody.pop("env"), "XDG_RUNTIME_DIR": str(run)}
    control = str(run / "activator" / "control.sock")
    with Activator({}, env=env, default_control=control, **as_nobody) as a:
        assert a.ready["control"] == control
        assert a.ctl("status").returncode == 0
        st = os.stat(run / "activator")
        assert (st.st_uid, st.st_mode & 0o777) == (NOBODY.pw_uid, 0o700)
        assert os.path.exists(run / "activator" / "notify")

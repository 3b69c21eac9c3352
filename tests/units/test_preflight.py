"""What a unit will meet at run time, checked when it is loaded (issue 12, items 4–6):
exec/preflight.py through the loader's ``checks``; the daemon's and verify's sets."""

from __future__ import annotations

import io
import os
import pwd
from pathlib import Path

from activator.cli.offline import run_verify
from activator.exec.preflight import Preflight
from activator.units import load_units

from .conftest import write_units

VERIFY = Preflight(root_warning=True, users=True, programs=True)
ROOT = Preflight(root_warning=True)


def _messages(d: Path, checks: Preflight, strict: bool = False) -> list[str]:
    _, problems = load_units([d], checks=checks, strict=strict)
    return [f"{p.severity}: {p.directive}: {p.message}" for p in problems]


def test_a_service_without_user_warns_once_and_strict_refuses_it(tmp_path: Path) -> None:
    write_units(
        tmp_path,
        {
            "root.service": "[Service]\nExecStart=/bin/true\nExecStartPost=/bin/true\n",
            "user.service": "[Service]\nExecStart=/bin/true\nUser=nobody\n",
            "dyn.service": "[Service]\nExecStart=/bin/true\nDynamicUser=yes\n",
            "plus.service": "[Service]\nExecStart=+/bin/true\n",  # root by its own word
        },
    )
    msgs = _messages(tmp_path, ROOT)
    assert len(msgs) == 1 and msgs[0].startswith("warning: None: runs as root: it sets neither")
    units, problems = load_units([tmp_path], checks=ROOT, strict=True)
    assert "root.service" not in units.services and "user.service" in units.services
    assert [p.severity for p in problems] == ["error"]
    assert _messages(tmp_path, Preflight()) == []  # the plain loader does not judge


def test_verify_finds_what_fails_at_run_time_with_line_and_fix(tmp_path: Path) -> None:
    (tmp_path / "notexec").write_text("#!/bin/sh\n")
    (tmp_path / "notexec").chmod(0o644)
    write_units(
        tmp_path,
        {
            "a.service": (
                "[Service]\n"
                f"ExecStart={tmp_path}/notexec\n"  # 2
                f"ExecStartPre={tmp_path}\n"  # 3: a directory
                "ExecStartPost=no-such-program-here\n"  # 4: not in PATH
                "ExecStop=-/nonexistent/optional\n"  # 5: "-": may fail, not checked
                "ExecReload=true\n"  # 6: found in PATH
                "User=no-such-user-x\nGroup=no-such-group-x\nSupplementaryGroups=nogroup\n"
            ),
            "t@.service": "[Service]\nExecStart=/usr/bin/%i\nUser=%i\n",  # per instance
            "d.service": "[Service]\nExecStart=/bin/true\nDynamicUser=yes\nUser=www-x\n"
            "Group=www-x\n",
        },
    )
    msgs = _messages(tmp_path, VERIFY)
    assert msgs == [
        f"error: ExecStart: command {tmp_path}/notexec is not executable: Permission denied "
        f"(chmod +x {tmp_path}/notexec)",
        f"error: ExecStartPre: command {tmp_path} is not executable: not a regular file "
        "(correct the path)",
        "error: ExecStartPost: command no-such-program-here not found in "
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin (install it, or give "
        "its full path)",
        'error: User: unknown user "no-such-user-x" (create it with useradd --system '
        "no-such-user-x, or set DynamicUser=yes)",
        'error: Group: unknown group "no-such-group-x" (create it with groupadd --system '
        "no-such-group-x)",
    ]


def test_verify_reports_every_problem_of_one_unit_cause_first(tmp_path: Path) -> None:
    """A typo does not hide the missing program or the unknown user of the same unit,
    and the socket that fails because of them comes after them."""
    write_units(
        tmp_path,
        {
            "zz.service": "[Service]\nExecStart=/nonexistent/zz\nUser=no-such-user-x\n"
            "ExecStrat=/bin/true\n",
            "aa.socket": "[Socket]\nListenStream=127.0.0.1:1\nService=zz.service\n",
        },
    )
    out = io.StringIO()
    assert run_verify([str(tmp_path)], out=out) == 1
    lines = out.getvalue().splitlines()
    assert [ln.split(": ", 2)[:2] for ln in lines[:-1]] == [
        [f"{tmp_path}/zz.service:2", "ExecStart="],
        [f"{tmp_path}/zz.service:3", "User="],
        [f"{tmp_path}/zz.service:4", "ExecStrat="],
        [f"{tmp_path}/aa.socket:3", "Service="],
    ]
    assert lines[2].endswith("(did you mean ExecStart=?)")


def test_world_writable_unit_files_and_directories_warn(tmp_path: Path) -> None:
    d = write_units(tmp_path / "u", {"web.service": "[Service]\nExecStart=/bin/true\n"})
    (d / "web.service").chmod(0o666)
    d.chmod(0o777)
    _, problems = load_units([d])
    assert [(p.path, p.severity, p.message.split(":")[0]) for p in problems] == [
        (str(d), "warning", "unit directory is world-writable"),
        (f"{d}/web.service", "warning", "is marked world-writable"),
    ]
    units, _ = load_units([d])
    assert "web.service" in units.services  # proceeding anyway, as systemd
    d.chmod(0o755)
    (d / "web.service").chmod(0o644)
    assert load_units([d])[1] == []


def test_rootless_refuses_another_user_at_load(tmp_path: Path) -> None:
    """Checked as if activator ran as nobody: root and other users and groups are refused
    with the reason; nobody itself, DynamicUser= and no User= at all are fine."""
    nobody = pwd.getpwnam("nobody")
    write_units(
        tmp_path,
        {
            "other.service": "[Service]\nExecStart=/bin/true\nUser=root\n",
            "group.service": "[Service]\nExecStart=/bin/true\nGroup=root\n",
            "self.service": "[Service]\nExecStart=/bin/true\nUser=nobody\n",
            "none.service": "[Service]\nExecStart=/bin/true\n",
            "dyn.service": "[Service]\nExecStart=/bin/true\nDynamicUser=yes\nUser=www-x\n",
        },
    )
    groups = frozenset(os.getgrouplist("nobody", nobody.pw_gid))
    as_nobody = Preflight(rootless_uid=nobody.pw_uid, rootless_groups=groups)
    units, problems = load_units([tmp_path], checks=as_nobody)
    assert sorted(units.services) == ["dyn.service", "none.service", "self.service"]
    assert [str(p).split(": ", 1)[1] for p in problems] == [
        'Group=: cannot run in group "root": activator runs as nobody (uid 65534), not as '
        "root, and its services run as nobody; remove Group= or start activator as root",
        'User=: cannot run as "root": activator runs as nobody (uid 65534), not as root, and '
        "its services run as nobody; remove User= or start activator as root",
    ]

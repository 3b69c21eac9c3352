"""Enablement with a running activator (issue 11, item 5): enable/disable --now tell the
daemon, status shows the unit file state, list-dependencies, daemon-reload.

enable and disable change /etc/systemd/system, so the tests that run them on the root /
run in a mount namespace of their own: a test root's etc/ and lib/ are bound over
/etc/systemd/system and /usr/lib/systemd/system (/lib is /usr/lib here), where activator
--systemd reads them and activatorctl (entering that namespace with nsenter) writes them;
the host's are never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ctlhelp import echo_once, refused
from harness import Activator, free_port

from activator.cli.install import tree_lines

pytestmark = pytest.mark.root

TOOLS = [shutil.which(t) for t in ("unshare", "nsenter", "mount")]
needs_tools = pytest.mark.skipif(None in TOOLS, reason="needs unshare, nsenter, mount")
SYSTEM = "/usr/lib/systemd/system"


def _ctl(*args: str, wrapper: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """activatorctl, behind ``wrapper`` (a namespace) if given."""
    return subprocess.run(
        [*wrapper, sys.executable, "-m", "activator.cli.ctl", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _echo(port: int) -> dict[str, str]:
    return {
        "echo.socket": f"[Unit]\nDescription=Echo\n[Socket]\nListenStream=127.0.0.1:{port}\n"
        "Accept=yes\n[Install]\nWantedBy=sockets.target\n",
        "echo@.service": "[Service]\nExecStart=/bin/cat\nStandardInput=socket\nUser=nobody\n",
    }


def _root(tmp_path: Path, units: dict[str, str]) -> tuple[Path, Path]:
    """A test root: etc/ (empty) and lib/ with ``units``."""
    etc, lib = tmp_path / "etc", tmp_path / "lib"
    etc.mkdir()
    lib.mkdir()
    for name, text in units.items():
        (lib / name).write_text(text)
    return etc, lib


def _namespace(etc: Path, lib: Path) -> list[str]:
    """The argv prefix of a mount namespace with the test root bound over the system's."""
    script = f"set -e; mount --bind {etc} /etc/systemd/system; mount --bind {lib} {SYSTEM}; " + (
        'exec "$@"'
    )
    return ["unshare", "--mount", "--propagation", "private", "--fork", "--kill-child", "--",
            "/bin/sh", "-c", script, "sh"]  # fmt: skip


def _ctl_in(a: Activator, *args: str) -> subprocess.CompletedProcess:
    """activatorctl in activator's mount namespace (where / is the test root's)."""
    return _ctl("--control", a.control, *args, wrapper=("nsenter", "-t", str(a.pid), "-m", "--"))


@needs_tools
def test_enable_now_starts_and_disable_now_stops_in_systemd_mode(tmp_path, loop_kind):
    """enable --now: systemctl's link and message, the daemon re-reads its units and the
    socket listens; status says enabled; disable --now: the link goes, the socket stops."""
    port, tport = free_port(), free_port()
    units = {
        **_echo(port),
        "tpl@.socket": f"[Socket]\nListenStream=127.0.0.1:{tport}\n[Install]\n"
        "WantedBy=sockets.target\n",
        "tpl@.service": "[Service]\nExecStart=/bin/true\n",
    }
    etc, lib = _root(tmp_path, units)
    with Activator({}, loop=loop_kind, extra_args=["--systemd"], wrapper=_namespace(etc, lib)) as a:
        assert refused(port)  # not enabled: not part of the boot
        r = _ctl_in(a, "is-enabled", "echo.socket")
        assert (r.returncode, r.stdout) == (1, "disabled\n"), r.stderr
        start = len(a.events)
        r = _ctl_in(a, "enable", "--now", "echo.socket")
        assert r.returncode == 0, r.stderr
        assert r.stderr == (
            "Created symlink /etc/systemd/system/sockets.target.wants/echo.socket "
            "\N{RIGHTWARDS ARROW} /lib/systemd/system/echo.socket.\n"
        )
        assert os.readlink(etc / "sockets.target.wants/echo.socket") == (
            "/lib/systemd/system/echo.socket"
        )
        a.wait_for("daemon-reload", start=start, applied=True)
        assert echo_once(port) == b"ping\n"
        r = a.ctl("status", "echo.socket")
        assert r.returncode == 0, r.stderr
        assert f"Loaded: loaded ({SYSTEM}/echo.socket; enabled; preset: enabled)" in r.stdout
        assert _ctl_in(a, "is-enabled", "echo.socket").stdout == "enabled\n"

        r = _ctl_in(a, "disable", "--now", "echo.socket")
        assert r.returncode == 0, r.stderr
        assert r.stderr == 'Removed "/etc/systemd/system/sockets.target.wants/echo.socket".\n'
        assert not (etc / "sockets.target.wants").exists()
        assert refused(port)
        # as systemd: a unit an operator named stays loaded (its file is still there),
        # inactive and disabled — status exits 3, not 4
        r = a.ctl("status", "echo.socket")
        assert r.returncode == 3, r.stderr
        assert f"Loaded: loaded ({SYSTEM}/echo.socket; disabled; preset: enabled)" in r.stdout

        # a template, as Debian's uwsgi-app@.socket: enabled as the instance named
        inst = "tpl@web1.socket"
        start = len(a.events)
        r = _ctl_in(a, "enable", "--now", inst)
        assert r.returncode == 0, r.stderr
        assert os.readlink(etc / "sockets.target.wants" / inst) == "/lib/systemd/system/tpl@.socket"
        a.wait_for("listen", start=start, unit=inst)
        assert a.ctl("status", inst).returncode == 0


@needs_tools
def test_enable_tells_no_daemon_when_none_runs(tmp_path):
    """Offline on / (a Dockerfile's RUN line): the links and nothing else; --now needs a
    daemon and says so."""
    etc, lib = _root(tmp_path, _echo(free_port()))
    ns, control = tuple(_namespace(etc, lib)), str(tmp_path / "none.sock")
    r = _ctl("--control", control, "enable", "echo.socket", wrapper=ns)
    assert r.returncode == 0, r.stderr
    assert "Created symlink /etc/systemd/system/sockets.target.wants/echo.socket" in r.stderr
    assert os.path.islink(etc / "sockets.target.wants/echo.socket")
    r = _ctl("--control", control, "disable", "--now", "echo.socket", wrapper=ns)
    assert r.returncode == 1
    assert "--now: unable to reach activator at" in r.stderr
    assert not (etc / "sockets.target.wants").exists()  # the links went all the same


def test_now_needs_the_running_root(tmp_path):
    r = _ctl("enable", "--now", "x.socket", "--root", str(tmp_path))
    assert r.returncode == 2 and "--now needs the root /" in r.stderr


def test_status_shows_the_unit_file_state(loop_kind):
    """Without --systemd: a unit whose [Install] names a boot target starts at boot, so it
    is enabled; without [Install] static; wanted by another target disabled; masked."""
    port, port2 = free_port(), free_port()
    units = {
        **_echo(port),
        "plain.socket": f"[Socket]\nListenStream=127.0.0.1:{port2}\nAccept=yes\n",
        "plain@.service": "[Service]\nExecStart=/bin/cat\nStandardInput=socket\nUser=nobody\n",
        "later.service": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=other.target\n",
    }
    with Activator(units, loop=loop_kind) as a:
        os.symlink("/dev/null", a.unit_dir / "gone.service")
        unit_dir = a.unit_dir
        r = a.ctl("status", "echo.socket")
        assert f"Loaded: loaded ({unit_dir}/echo.socket; enabled; preset: enabled)" in r.stdout
        r = a.ctl("status", "plain.socket")
        assert f"Loaded: loaded ({unit_dir}/plain.socket; static)" in r.stdout
        r = a.ctl("status", "later.service")
        assert f"Loaded: loaded ({unit_dir}/later.service; disabled; preset: enabled)" in r.stdout
        r = a.ctl("status", "gone.service")
        assert r.returncode == 3, r.stderr
        assert "Loaded: masked (Reason: Unit gone.service is masked.)" in r.stdout
        assert "Active: inactive (dead)" in r.stdout
        status = a.status("echo.socket")
        assert (status["unit_file_state"], status["unit_file_preset"]) == ("enabled", "enabled")


def test_list_dependencies_of_the_running_daemon(loop_kind):
    """The daemon's dependency tree with each unit's state; --reverse; exit 0."""
    units = _echo(free_port())
    units["echo.socket"] = units["echo.socket"].replace(
        "[Socket]", "Wants=zz-aux.service\n[Socket]"
    )
    units["zz-aux.service"] = "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n"
    with Activator(units, loop=loop_kind) as a:
        a.wait_for("exit", unit="zz-aux.service")
        r = a.ctl("list-dependencies", "echo.socket")
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == [  # a target comes after the others, expanded
            "echo.socket",
            "● ├─zz-aux.service",
            "● └─sysinit.target",
            "●   ├─local-fs.target",
            "●   └─swap.target",
        ]
        r = a.ctl("list-dependencies", "--reverse", "echo.socket")
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == [
            "echo.socket",
            "● └─sockets.target",
            "●   └─basic.target",
            "●     └─multi-user.target",
        ]
        r = a.ctl("--json", "list-dependencies", "sockets.target")
        assert '"unit": "echo.socket"' in r.stdout and '"active": "active"' in r.stdout


def test_list_dependencies_offline_below_a_root(tmp_path):
    lib = tmp_path / "lib/systemd/system"
    lib.mkdir(parents=True)
    (lib / "a.target").write_text("[Unit]\nWants=b.service c.target\n")
    (lib / "b.service").write_text("[Service]\nExecStart=/bin/true\n[Unit]\nWants=d.service\n")
    (lib / "c.target").write_text("[Unit]\nRequires=e.service\nDefaultDependencies=no\n")
    (lib / "d.service").write_text("[Service]\nExecStart=/bin/true\n")
    (lib / "e.service").write_text(
        "[Service]\nExecStart=/bin/true\n[Unit]\nDefaultDependencies=no\n"
    )
    r = _ctl("list-dependencies", "a.target", "--root", str(tmp_path))
    assert r.returncode == 0, r.stderr
    # b.service is not a target: what it wants is not expanded (systemctl's rule)
    assert r.stdout.splitlines() == ["a.target", "○ ├─b.service", "○ └─c.target", "○   └─e.service"]


def test_tree_drawing_is_systemctls():
    tree = [(0, "a.target", "active"), (1, "b.service", "active"), (1, "c.target", "failed"),
            (2, "d.service", "inactive"), (3, "x.service", "active"), (2, "e.service", "active"),
            (1, "f.target", "active")]  # fmt: skip
    assert tree_lines(tree, lambda s: {"active": "●", "failed": "×"}.get(s, "○")) == [
        "a.target",
        "● ├─b.service",
        "× ├─c.target",
        "○ │ ├─d.service",
        "● │ │ └─x.service",
        "● │ └─e.service",
        "● └─f.target",
    ]


def test_daemon_reload_is_reload(loop_kind):
    with Activator(_echo(free_port()), loop=loop_kind) as a:
        r = a.ctl("daemon-reload")
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("reloaded: 0 added")

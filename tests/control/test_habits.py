"""systemctl's habits in activatorctl (issue 14): what scripts and health checks copied
from systemd call, with systemctl's exit codes. One test per verb or flag."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest
from ctlhelp import echo_units, probe_service
from harness import Activator, free_port

from activator import __version__
from activator.cli import verbtable

CTL = [sys.executable, "-m", "activator.cli.ctl"]


def _ctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CTL, *args], capture_output=True, text=True, timeout=30)


def _units(probe: str, port: int, eport: int) -> dict[str, str]:
    """web: lazy (Accept=no) and inactive; echo: an Accept=yes socket; bad: fails at start."""
    return {
        "web.socket": f"[Unit]\nDescription=the web socket with a rather long description\n"
        f"[Socket]\nListenStream=127.0.0.1:{port}\n",
        "web.service": probe_service(probe),
        **echo_units(eport),
        "bad.service": "[Service]\nType=oneshot\nExecStart=/bin/false\n",
    }


@pytest.fixture(scope="module")
def running(probe):
    """One activator for the read-only habits (the ones that change state have their own)."""
    with Activator(_units(probe, free_port(), free_port())) as a:
        yield a


def test_version_on_both_commands():
    for cmd in ([sys.executable, "-m", "activator"], CTL):
        r = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=30)
        assert (r.returncode, r.stdout) == (0, f"activator {__version__}\n"), cmd


def test_help_lists_every_verb_with_one_line():
    r = _ctl("--help")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    for v in verbtable.VERBS:
        (line,) = [ln for ln in lines if ln.startswith(f"  {v.name} ") or ln == f"  {v.name}"]
        assert line.rstrip().endswith(v.help), line
    r = _ctl("show", "--help")  # a verb's own help, although show needs a UNIT
    assert r.returncode == 0 and r.stdout.startswith("activatorctl show UNIT… [-p NAME]")


def test_every_daemon_verb_is_a_protocol_verb():
    from activator.control import protocol

    daemon = {v.name for v in verbtable.VERBS if v.where == "daemon"}
    assert daemon == set(protocol.VERBS) - {"ping"}


def test_default_verb_is_list_units(running):
    r = _ctl("--control", running.control)
    assert r.returncode == 0 and r.stdout == running.ctl("list-units").stdout
    assert r.stdout.splitlines()[0].split()[:2] == ["UNIT", "LOAD"]


def _ours(names) -> set[str]:
    """Our sockets and services (the boot's targets are listed too)."""
    return {n for n in names if n.endswith((".socket", ".service"))}


def test_list_units_hides_inactive_units_unless_all(running):
    shown = {ln.split()[0] for ln in running.ctl("list-units", "--no-legend").stdout.splitlines()}
    assert _ours(shown) == {"web.socket", "echo.socket"}  # the lazy web.service is inactive
    out = running.ctl("list-units").stdout
    assert "Pass --all to see loaded but inactive units, too." in out
    for flag in ("-a", "--all"):
        rows = running.ctl("list-units", flag, "--no-legend").stdout.splitlines()
        assert _ours(ln.split()[0] for ln in rows) == {
            "web.socket", "web.service", "echo.socket", "bad.service"
        }  # fmt: skip


def test_state_filters_by_load_active_or_sub_state(running):
    def names(*args: str) -> set[str]:
        rows = json.loads(running.ctl("--json", "list-units", *args).stdout)
        return _ours(u["unit"] for u in rows)

    assert names("--state=inactive") == {"web.service", "bad.service"}
    assert names("--state=listening") == {"web.socket", "echo.socket"}
    assert names("--state", "dead,listening") == {
        "web.socket", "web.service", "echo.socket", "bad.service"
    }  # fmt: skip
    assert names("--state=failed") == names("--failed") == set()
    socks = json.loads(running.ctl("--json", "list-sockets", "--state=failed").stdout)
    assert socks == []
    r = running.ctl("--state=help")
    assert r.returncode == 0 and {"listening", "failed", "not-found"} <= set(r.stdout.split())


def test_patterns_select_units(running):
    rows = json.loads(running.ctl("--json", "list-units", "--all", "web*").stdout)
    assert {u["unit"] for u in rows} == {"web.socket", "web.service"}


def test_no_legend(running):
    for verb in ("list-units", "list-sockets"):
        full = running.ctl(verb).stdout.splitlines()
        bare = running.ctl(verb, "--no-legend").stdout.splitlines()
        assert bare == [ln for ln in full[1:] if ln and "listed." not in ln], verb


def test_no_pager_is_accepted_and_changes_nothing(running):
    for verb in ("status", "list-units"):
        a, b = running.ctl(verb), running.ctl(verb, "--no-pager")
        assert b.returncode == a.returncode == 0
        assert len(b.stdout.splitlines()) == len(a.stdout.splitlines())
    assert _ctl("--no-pager", "--control", running.control, "is-system-running").returncode == 0


def _on_a_terminal(*args: str, columns: int = 40) -> str:
    """activatorctl with its stdout on a terminal of `columns` columns."""
    main, sub = pty.openpty()
    try:
        env = dict(os.environ, COLUMNS=str(columns))
        r = subprocess.run([*CTL, *args], stdout=sub, stderr=subprocess.PIPE, timeout=30, env=env)
        assert r.returncode == 0, r.stderr
        os.close(sub)
        sub = -1
        out = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the terminal's other side is closed and read to the end
                break
            if not chunk:
                break
            out += chunk
        return out.decode().replace("\r\n", "\n")
    finally:
        os.close(main)
        if sub >= 0:
            os.close(sub)


def test_full_does_not_cut_lines_to_the_terminal(running):
    cut = _on_a_terminal("--control", running.control, "list-units")
    table = cut.split("\n\n")[0].splitlines()  # the legend below it is prose: not cut
    assert any(ln.endswith("…") for ln in table)
    assert max(len(ln) for ln in table) <= 40
    for flag in ("-l", "--full"):
        full = _on_a_terminal("--control", running.control, "list-units", flag)
        assert "the web socket with a rather long description" in full
        assert not any(ln.endswith("…") for ln in full.splitlines())
    # piped, as in scripts, nothing is cut
    assert "rather long description" in running.ctl("list-units").stdout


def test_lines_limits_the_log_lines_of_status(running):
    def log_lines(*args: str) -> list[str]:
        u = running.ctl("status", "echo.socket", *args).stdout
        return u.split("\n\n", 1)[1].splitlines() if "\n\n" in u else []

    every = log_lines()
    assert len(every) >= 1  # event=listen
    assert log_lines("-n", "0") == []
    assert log_lines("--lines=1") == every[-1:]


def test_full_shows_every_instance(probe):
    """-l/--full: status lists every Accept=yes instance, not ten."""
    from activator.cli.ctl import _status_text

    inst = [{"unit": f"e@{i}.service", "pid": 100 + i, "peer": None} for i in range(12)]
    u = {
        "unit": "e.socket", "description": "", "active": "active", "sub": "listening",
        "since": 0, "listen": [], "refused": {"limit": 0, "per_source": 0, "trigger_limit": 0},
        "accept": True, "NAccepted": 12, "NConnections": 12, "NRefused": 0, "instances": inst,
        "max_connections": 64, "load": "loaded",
    }  # fmt: skip
    assert "e@11.service" not in _status_text(u, 0, False)
    assert "… 2 more" in _status_text(u, 0, False)
    assert "e@11.service" in _status_text(u, 0, False, every=True)


def test_is_active_and_is_failed_and_quiet(probe):
    port = free_port()
    with Activator(_units(probe, port, free_port())) as a:
        r = a.ctl("is-active", "web.socket")
        assert (r.returncode, r.stdout) == (0, "active\n")
        r = a.ctl("is-active", "web")  # a service, as systemctl names it
        assert (r.returncode, r.stdout) == (3, "inactive\n")
        r = a.ctl("is-active", "web.service", "web.socket")  # any of them active: 0
        assert (r.returncode, r.stdout) == (0, "inactive\nactive\n")
        r = a.ctl("is-active", "nosuch.service")
        assert (r.returncode, r.stdout) == (3, "inactive\n")
        r = a.ctl("is-failed", "bad.service")
        assert (r.returncode, r.stdout) == (1, "inactive\n")
        assert a.ctl("start", "bad.service").returncode == 1
        r = a.ctl("is-failed", "bad.service")
        assert (r.returncode, r.stdout) == (0, "failed\n")
        r = a.ctl("is-active", "bad.service")
        assert (r.returncode, r.stdout) == (3, "failed\n")
        for q in ("-q", "--quiet"):
            r = a.ctl("is-failed", q, "bad.service")
            assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
            r = a.ctl(q, "is-active", "web.service")
            assert (r.returncode, r.stdout) == (3, "")
        r = a.ctl("--json", "is-active", "web.socket")
        assert json.loads(r.stdout) == [{"unit": "web.socket", "active": "active"}]


def test_is_system_running(probe):
    with Activator(_units(probe, free_port(), free_port())) as a:
        r = a.ctl("is-system-running")
        assert (r.returncode, r.stdout) == (0, "running\n")
        assert a.status("web.service")["active"] == "inactive"  # asking woke nothing
        assert a.ctl("start", "bad.service").returncode == 1
        r = a.ctl("is-system-running")
        assert (r.returncode, r.stdout) == (1, "degraded\n")
        r = a.ctl("-q", "is-system-running")
        assert (r.returncode, r.stdout) == (1, "")
        assert json.loads(a.ctl("--json", "is-system-running").stdout) == {"state": "degraded"}
        a.ctl("reset-failed", check=True)
        assert a.ctl("is-system-running").stdout == "running\n"
        control = a.control
    r = _ctl("--control", control, "is-system-running")
    assert (r.returncode, r.stdout) == (1, "offline\n")  # as systemctl without systemd
    assert "unable to reach activator" in r.stderr

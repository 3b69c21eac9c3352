"""activatorctl on its own: what it imports, usage errors, an unreachable daemon, offline verbs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

CTL = [sys.executable, "-m", "activator.cli.ctl"]


def _run(*args, env=None):
    return subprocess.run([*CTL, *args], capture_output=True, text=True, timeout=30, env=env)


def test_client_imports_only_the_protocol():
    """Issue #5: activatorctl stays light — no pydantic, no unit model, no daemon modules."""
    code = (
        "import sys, json\n"
        "import activator.cli.ctl\n"
        "print(json.dumps(sorted(m for m in sys.modules)))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    mods = set(json.loads(r.stdout))
    ours = {m for m in mods if m.startswith("activator")}
    assert ours == {
        "activator",
        "activator.cli",
        "activator.cli.ctl",
        "activator.cli.install",
        "activator.cli.verbtable",  # the enablement verbs' parsers: standard library only
        "activator.control",
        "activator.control.protocol",
    }, ours
    for heavy in ("pydantic", "pydantic_core", "asyncio", "uvloop", "tomli_w"):
        assert heavy not in mods, heavy


def test_status_call_imports_no_more(tmp_path):
    """The same for a whole (failed) status call: the error path must not pull the model in."""
    code = (
        "import sys, json\n"
        "from activator.cli import ctl\n"
        f"rc = ctl.main(['--control', {str(tmp_path / 'none.sock')!r}, 'status'])\n"
        "mods = sorted(m for m in sys.modules if m.startswith(('activator', 'pydantic')))\n"
        "print(json.dumps([rc, mods]))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    rc, mods = json.loads(r.stdout.splitlines()[-1])
    assert rc == 1
    assert mods == [
        "activator",
        "activator.cli",
        "activator.cli.ctl",
        "activator.cli.install",
        "activator.cli.verbtable",
        "activator.control",
        "activator.control.protocol",
    ]


def test_usage_errors_exit_2():
    assert _run("frobnicate").returncode == 2
    assert _run("start").returncode == 2  # needs a unit
    assert _run("--help").returncode == 0


def test_unreachable_daemon_exits_1(tmp_path):
    r = _run("--control", str(tmp_path / "nothing.sock"), "status")
    assert r.returncode == 1
    assert "unable to reach activator" in r.stderr and "Traceback" not in r.stderr
    env = dict(os.environ, ACTIVATOR_CONTROL=str(tmp_path / "env.sock"))
    r = _run("--json", "list-units", env=env)
    assert r.returncode == 1 and str(tmp_path / "env.sock") in r.stderr
    assert json.loads(r.stdout)["error"] == "unreachable"


def test_offline_verbs_are_wired(tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    (units / "w.socket").write_text("[Socket]\nListenStream=127.0.0.1:9\n")
    (units / "w.service").write_text("[Service]\nExecStart=/bin/true\n")
    r = _run("verify", str(units))
    assert r.returncode == 0, r.stdout
    r = _run("verify", "--json", str(units))
    assert json.loads(r.stdout)["loaded"] == 2
    (units / "bad.socket").write_text("[Socket]\nListenStream=127.0.0.1:99999\n")
    r = _run("verify", str(units))
    assert r.returncode == 1 and "bad.socket" in r.stdout
    out = tmp_path / "toml"
    r = _run("import", str(units / "w.socket"), "-o", str(out))
    assert r.returncode == 0, r.stdout
    assert (out / "w.socket.toml").exists()

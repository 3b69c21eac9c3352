"""What tools/generate.py makes from one source (README.md, the verb table, activator's
argument parser) is current, renders, and follows its source: the manual pages
activator(8), activatorctl(1), activator.unit(5) and the bash completion."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import Activator, free_port

from activator.cli import verbtable

ROOT = Path(__file__).resolve().parents[1]
COMPLETION = ROOT / "contrib" / "bash-completion" / "activatorctl"


def _generate():
    spec = importlib.util.spec_from_file_location("generate", ROOT / "tools" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_files_are_current():
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "generate.py"), "--check"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(shutil.which("groff") is None, reason="needs groff (man-db)")
@pytest.mark.parametrize(
    "page", ["man1/activatorctl.1", "man5/activator.unit.5", "man8/activator.8"]
)
def test_manual_pages_render_without_warnings(page):
    r = subprocess.run(
        ["groff", "-man", "-ww", "-Tutf8", ROOT / "man" / page],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0 and r.stderr == "", r.stderr
    text = re.sub(".\b", "", r.stdout)  # the overstrike of bold
    assert "\nNAME\n" in text and "SEE ALSO" in text and len(text.splitlines()) > 30


def test_pages_follow_their_sources(monkeypatch):
    gen = _generate()
    readme = (ROOT / "README.md").read_text()
    ctl = gen.activatorctl_1(readme)
    for v in verbtable.VERBS:  # every verb with its line, every option
        assert v.help[:30] in ctl, v
    for o in verbtable.OPTIONS:
        assert o.long.replace("-", r"\-") in ctl, o
    daemon = gen.activator_8(readme)
    assert r"\-\-ready\-fd N" in daemon and "NOTIFY_SOCKET" in daemon
    unit = gen.activator_unit_5(readme)
    assert "DIFFERENCES FROM SYSTEMD" in unit and "TriggerLimitBurst=" in unit
    # a verb added to the table reaches the page and the completion, nothing else needed
    new = verbtable.Verb("frobnicate", "UNIT…", "frobnicate units", verbtable.UNITS)
    monkeypatch.setattr(verbtable, "VERBS", (*verbtable.VERBS, new))
    assert r"frobnicate units" in gen.activatorctl_1(readme)
    assert "frobnicate" in gen.bash_completion().split("local unit_verbs=")[1].splitlines()[0]


def _complete(line: str) -> list[str]:
    """What bash completes for `line` (the cursor at its end), with our script loaded."""
    words = line.split(" ")
    script = (
        f"source {COMPLETION}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_activatorctl\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    bindir = str(Path(sys.executable).parent)
    r = subprocess.run(
        ["bash", "--norc", "-c", script], capture_output=True, text=True, timeout=60,
        env={"PATH": f"{bindir}:/usr/bin:/bin"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return sorted(filter(None, r.stdout.splitlines()))


def test_bash_completes_verbs_options_and_values():
    assert _complete("activatorctl is-") == [
        "is-active", "is-enabled", "is-failed", "is-system-running"
    ]  # fmt: skip
    assert _complete("activatorctl --no-") == [
        "--no-block",
        "--no-legend",
        "--no-pager",
        "--no-reload",
    ]
    assert "listening" in _complete("activatorctl list-units --state ")
    assert "SIGKILL" in _complete("activatorctl kill -s ")


def test_bash_completes_unit_names_from_the_running_activator():
    port = free_port()
    units = {
        "web.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
        "web.service": "[Service]\nExecStart=/bin/true\n",
    }
    with Activator(units) as a:
        assert _complete(f"activatorctl --control {a.control} start w") == [
            "web.service", "web.socket"
        ]  # fmt: skip
        assert _complete(f"activatorctl --control {a.control} verify w") == []  # files there

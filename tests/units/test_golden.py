"""Golden error messages: one fixture directory per kind of failure.

Each directory under golden/ holds unit files and ``expected``: the exact output of
``activatorctl verify DIR`` (run from golden/) followed by ``exit N``. A change in
wording shows up here as a diff; update the fixture only when the new message is
better.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from activator.cli.offline import run_verify

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())


def test_every_kind_of_failure_has_a_fixture() -> None:
    for needed in (
        "unknown-directive", "bad-bool", "bad-timespan", "bad-size", "bad-mode", "bad-port",
        "bad-address", "bad-signal", "bad-rlimit", "bad-exec", "bad-user", "bad-environment",
        "unknown-section", "missing-execstart", "unpaired-socket", "accept-datagram",
        "accept-service", "symlinks-two-nodes", "no-listen", "unknown-specifier",
        "toml-errors", "accept-template-missing", "issue-12-runtime",
    ):  # fmt: skip
        assert needed in CASES


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOLDEN)
    out = io.StringIO()
    rc = run_verify([case], out=out)
    got = out.getvalue() + f"exit {rc}\n"
    assert got == (GOLDEN / case / "expected").read_text()


def test_strict_turns_warnings_into_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOLDEN)
    out = io.StringIO()
    assert run_verify(["ignored-sandboxing"], out=out) == 0
    out = io.StringIO()
    assert run_verify(["ignored-sandboxing"], strict=True, out=out) == 1
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "ignored-sandboxing/web.service:3: ignored, not carried out by activator: ProtectSystem=, "
        "PrivateTmp= (sandboxing); MemoryMax= (cgroup resource control); PAMName= (not supported)"
    )
    assert lines[-1] == "0 units loaded, 1 error, 0 warnings"


def test_one_bad_unit_does_not_stop_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    from activator.units import load_units

    monkeypatch.chdir(GOLDEN)
    units, problems = load_units(["bad-bool", "accept-datagram", "ignored-sandboxing"])
    # bad-bool/web.service, accept-datagram/syslog@.service and ignored-sandboxing/web.service
    # share names across directories: the first directory given wins, as in a load path.
    assert set(units.services) == {"web.service", "syslog@.service"}
    assert not units.sockets
    assert {p.unit for p in problems if p.severity == "error"} == {"web.socket", "syslog.socket"}

"""Compare verdicts with systemd 252's own loader (``systemd-analyze verify``).

systemd ignores a bad line with a warning where activator refuses the unit, so the
comparison is: where systemd refuses a unit, activator refuses it too; where systemd
complains about a line, activator reports a problem on the same line; where systemd
is silent, activator loads the unit without errors.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from activator.units import load_units

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="needs systemd-analyze"
)

OK_SERVICE = "[Service]\nExecStart=/bin/true\n"
OK_TEMPLATE = "[Service]\nExecStart=/bin/cat\nStandardInput=socket\n"

# name → (files, the unit systemd-analyze is pointed at)
CASES: dict[str, tuple[dict[str, str], str]] = {
    "good-pair": (
        {"t.socket": "[Socket]\nListenStream=127.0.0.1:8080\n", "t.service": OK_SERVICE},
        "t.socket",
    ),
    "good-scope-and-v6only": (
        {
            "t.socket": "[Socket]\nListenStream=[::1]:8081%%lo\nBindIPv6Only=yes\nListenStream=0x50\n",  # noqa: E501
            "t.service": OK_SERVICE,
        },
        "t.socket",
    ),
    "good-accept": (
        {"t.socket": "[Socket]\nListenStream=7007\nAccept=yes\n", "t@.service": OK_TEMPLATE},
        "t.socket",
    ),
    "accept-datagram": (
        {
            "t.socket": "[Socket]\nListenDatagram=127.0.0.1:5000\nAccept=yes\n",
            "t@.service": OK_TEMPLATE,
        },
        "t.socket",
    ),
    "accept-service": (
        {
            "t.socket": "[Socket]\nListenStream=7007\nAccept=yes\nService=t.service\n",
            "t.service": OK_SERVICE,
        },
        "t.socket",
    ),
    "symlinks-two-nodes": (
        {
            "t.socket": "[Socket]\nListenStream=/run/t/a\nListenStream=/run/t/b\nSymlinks=/run/t/c\n",  # noqa: E501
            "t.service": OK_SERVICE,
        },
        "t.socket",
    ),
    "no-listen": ({"t.socket": "[Socket]\nAccept=no\n", "t.service": OK_SERVICE}, "t.socket"),
    "bad-port": (
        {"t.socket": "[Socket]\nListenStream=1.2.3.4:99999\n", "t.service": OK_SERVICE},
        "t.socket",
    ),
    "bad-octal-port": (
        {"t.socket": "[Socket]\nListenStream=0080\n", "t.service": OK_SERVICE},
        "t.socket",
    ),
    "percent-trap": (
        {
            "t.socket": "[Socket]\nListenStream=80\nListenStream=[::1]:8081%e\n",
            "t.service": OK_SERVICE,
        },
        "t.socket",
    ),
    "bad-values": (
        {
            "t.socket": "[Socket]\nListenStream=80\nAccept=maybe\nSocketMode=0999\nReceiveBuffer=8Q\nTimeoutSec=5x\nFooBar=1\n",  # noqa: E501
            "t.service": OK_SERVICE,
        },
        "t.socket",
    ),
    "no-execstart": ({"t.service": "[Unit]\nDescription=x\n[Service]\nNice=1\n"}, "t.service"),
    "two-execstart": (
        {"t.service": "[Service]\nExecStart=/bin/true\nExecStart=/bin/false\n"},
        "t.service",
    ),
    "oneshot-restart": (
        {"t.service": "[Service]\nType=oneshot\nExecStart=/bin/true\nRestart=always\n"},
        "t.service",
    ),
    "dbus-no-busname": ({"t.service": "[Service]\nType=dbus\nExecStart=/bin/true\n"}, "t.service"),
    "relative-exec": ({"t.service": "[Service]\nExecStart=bin/true\n"}, "t.service"),
    "unknown-specifier": ({"t.service": "[Service]\nExecStart=/bin/echo %z\n"}, "t.service"),
    "unbalanced-quote": ({"t.service": '[Service]\nExecStart=/bin/echo "open\n'}, "t.service"),
    "unknown-section": (
        {"t.service": "[Service]\nExecStart=/bin/true\n[Servce]\nUser=x\n"},
        "t.service",
    ),
    # Robustness: systemd's verdicts on the inputs that crashed or fooled activator.
    "trailing-percent": (  # systemd keeps a lone "%" at the end of a value
        {"t.service": "[Unit]\nDescription=50%\n[Service]\nExecStart=/bin/echo 50%\n"},
        "t.service",
    ),
    "nul-ends-a-line": ({"t.service": "[Service]\nExecStart=/bin/echo a\0b\n"}, "t.service"),
    "nul-at-the-end-of-a-line": (
        {"t.service": "[Service]\nExecStart=/bin/echo a\0\n"},
        "t.service",
    ),
    "carriage-return-ends-a-line": (
        {"t.service": "[Service]\nExecStart=/bin/echo a\rb\nX\n"},
        "t.service",
    ),
    "numbers-out-of-range": (
        {
            "t.service": (
                "[Service]\nExecStart=/bin/true\nTimeoutStartSec=1000000y\n"
                "LimitNOFILE=99999999999999999999\nLimitCORE=99999E\nRuntimeMaxSec=\u0663s\n"
                "LimitNPROC=18446744073709551615\nLimitFSIZE=16E\nStartLimitBurst=4294967296\n"
                "TimeoutStopSec=1" + "0" * 400 + "\n"
            )
        },
        "t.service",
    ),
    "socket-numbers-out-of-range": (
        {
            "t.socket": (
                "[Socket]\nListenStream=80\nReceiveBuffer=99999E\nBacklog=4294967296\n"
                "ListenNetlink=route 4294967296\nKeepAliveProbes=4294967296\n"
                "Priority=2147483648\n"
            ),
            "t.service": OK_SERVICE,
        },
        "t.socket",
    ),
    "good-service-values": (
        {
            "t.service": (
                "[Unit]\nStartLimitIntervalSec=1min 30s\n[Service]\nType=notify\nExecStart=-/bin/true a 'b c'\n"  # noqa: E501
                'Environment="A=1 2" B=3\nTimeoutSec=0\nLimitNOFILE=1024:524288\nKillSignal=SIGINT\n'  # noqa: E501
                "RestartPreventExitStatus=255 SIGTERM\nUMask=0027\nRestart=on-failure\n"
            )
        },
        "t.service",
    ),
}


def _systemd(d: Path, target: str) -> tuple[bool, set[int]]:
    """(refused?, lines systemd complained about) for ``target`` in ``d``."""
    r = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", f"./{target}"],
        cwd=d, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    out = r.stdout + r.stderr
    refused = bool(re.search(r"Refusing|bad unit file setting|fatal error", out))
    lines = {int(m.group(2)) for m in re.finditer(rf"/({re.escape(target)}):(\d+):", out)}
    return refused, lines


@pytest.mark.parametrize("case", sorted(CASES))
def test_verdict_matches_systemd(case: str, tmp_path: Path) -> None:
    files, target = CASES[case]
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    sd_refused, sd_lines = _systemd(tmp_path, target)
    units, problems = load_units([tmp_path])
    ours = [p for p in problems if p.unit == target and p.severity == "error"]
    we_refused = units.get(target) is None
    if sd_refused:
        assert we_refused, f"systemd refuses {target}, activator loads it"
    if not sd_refused and not sd_lines:
        assert not ours and not we_refused, [str(p) for p in ours]
    our_lines = {p.where for p in ours if isinstance(p.where, int)}
    assert sd_lines <= our_lines, (
        f"systemd complains about lines {sd_lines}, activator about {our_lines}"
    )

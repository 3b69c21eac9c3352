"""Who really runs each command line: every exec prefix, end to end, as the kernel sees it.

systemd.service(5), "Command lines": ``-``, ``@`` and ``:`` change nothing about the
credentials of a line; ``+`` runs it with full privileges (no User=/Group=, no
NoNewPrivileges=, no CapabilityBoundingSet=); ``!`` keeps only root's user and groups
(the other restrictions still apply); ``!!`` has no effect on a kernel with ambient
capabilities. Each line below writes its own /proc/self/status; the test reads the ids,
groups, no_new_privs flag and bounding set the process really had.
"""

from __future__ import annotations

import grp
import os

import pytest
from harness import Activator, public_dir

pytestmark = pytest.mark.root

DAEMON_GID = grp.getgrnam("daemon").gr_gid
CAP_NET_BIND_SERVICE = 10

# name → the prefixes of its line; every line of the unit runs, in ExecStartPre=,
# ExecStart= (oneshot, so several), ExecStartPost= and ExecStopPost=
LINES = {
    "plain": "",
    "dash": "-",
    "at": "@",
    "colon": ":",
    "dash-at-colon": "-@:",
    "colon-dash": ":-",
    "plus": "+",
    "dash-plus": "-+",
    "plus-at-colon": "+@:",
    "bang": "!",
    "bang-dash": "!-",
    "colon-bang-at": ":!@",
    "bangbang": "!!",
    "dash-bangbang": "-!!",
    "bangbang-at-colon": "!!@:",
}
DIRECTIVES = ("ExecStartPre", "ExecStart", "ExecStartPost", "ExecStopPost")


def _line(directive: str, name: str, prefix: str, out: str) -> str:
    target = f"{out}/{directive}-{name}"
    script = f"'exec cat /proc/self/status > {target}'"
    if "@" in prefix:  # "@": the next word is argv[0]
        return f"{directive}={prefix}/bin/sh sh-{name} -c {script}\n"
    return f"{directive}={prefix}/bin/sh -c {script}\n"


def _status(path) -> dict[str, list[str]]:
    fields = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()
    return fields


def _expect(prefix: str) -> str:
    if "+" in prefix:
        return "full"
    if "!" in prefix and "!!" not in prefix:
        return "root-user"
    return "nobody"


def test_every_prefix_runs_with_its_credentials(loop_kind):
    out = public_dir()
    out.chmod(0o777)  # root and nobody write their reports here
    lines = "".join(
        _line(d, name, prefix, str(out)) for d in DIRECTIVES for name, prefix in LINES.items()
    )
    unit = (
        "[Service]\nType=oneshot\nUser=nobody\nGroup=nogroup\nSupplementaryGroups=daemon\n"
        "NoNewPrivileges=yes\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n" + lines
    )
    with Activator({"p.service": unit}, loop=loop_kind) as a:
        a.ctl("start", "p.service", check=True)  # oneshot: returns when every line has run
        a.ctl("stop", "p.service", check=True)
    root_groups = sorted(os.getgroups())
    seen = 0
    for d in DIRECTIVES:
        for name, prefix in LINES.items():
            st = _status(out / f"{d}-{name}")
            seen += 1
            what = f"{d}={prefix}… ({name})"
            kind = _expect(prefix)
            bounding = int(st["CapBnd"][0], 16)
            if kind == "nobody":
                assert st["Uid"] == ["65534"] * 4, what
                assert st["Gid"] == ["65534"] * 4, what
                assert sorted(int(g) for g in st["Groups"]) == sorted({65534, DAEMON_GID}), what
                assert st["NoNewPrivs"] == ["1"], what
                assert bounding == 1 << CAP_NET_BIND_SERVICE, what
            elif kind == "root-user":  # "!": root's user and groups, the rest still applies
                assert st["Uid"] == ["0"] * 4 and st["Gid"] == ["0"] * 4, what
                assert sorted(int(g) for g in st["Groups"]) == root_groups, what
                assert st["NoNewPrivs"] == ["1"], what
                assert bounding == 1 << CAP_NET_BIND_SERVICE, what
            else:  # "+": nothing of User=, NoNewPrivileges=, CapabilityBoundingSet=
                assert st["Uid"] == ["0"] * 4 and st["Gid"] == ["0"] * 4, what
                assert sorted(int(g) for g in st["Groups"]) == root_groups, what
                assert st["NoNewPrivs"] == ["0"], what
                assert bounding & ~(1 << CAP_NET_BIND_SERVICE), what
    assert seen == len(DIRECTIVES) * len(LINES)

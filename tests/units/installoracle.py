"""activatorctl's enablement beside Debian's systemctl (systemd 252), on twin roots.

``Twins`` keeps two copies of a test root: every step runs ``systemctl --root=A …`` on one
and ``activatorctl … --root B`` (in this process) on the other, then requires the same
exit code, the same output (each root's path written ROOT) and the same symlinks (path →
target) in both. ``random_root`` builds a root of made-up units from a seed — names,
templates, [Install] sections, masks, links and drop-ins drawn at random — with the
commands to run on it, so that a seed that finds a difference can be replayed.

Two differences are allowed, both on purpose (README, "How it differs"): for a unit
without a file, systemctl 252's is-enabled stops with "Failed to get unit file state for
X: No such file or directory" where activatorctl answers "not-found" (what later
systemctl does) — the comparison runs is-enabled one unit at a time and maps that
answer; and activatorctl does not call a target it has built in "non-existent" when the
root has no file for it — that warning of systemctl's is left out.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from activator.cli import ctl
from activator.units.targets import BUILTIN_TARGETS

SYSTEMCTL = "/usr/bin/systemctl"


def need_systemctl() -> None:
    if os.access(SYSTEMCTL, os.X_OK):
        return
    if os.environ.get("CI") == "true":  # .ci/run installs it
        pytest.fail("systemctl (Debian package systemd) is missing, and CI must run this")
    pytest.skip("needs Debian's systemctl (package systemd)")


def links(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            if os.path.islink(p):
                out[p[len(str(root)) :]] = os.readlink(p)
    return out


def systemctl(root: Path, args: list[str]) -> tuple[int, str, str]:
    r = subprocess.run(
        [SYSTEMCTL, f"--root={root}", *args], capture_output=True, text=True, timeout=60
    )
    return r.returncode, r.stdout.replace(str(root), "ROOT"), r.stderr.replace(str(root), "ROOT")


def activatorctl(root: Path, args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = ctl.main(["--control", "/nonexistent/control.sock", *args, "--root", str(root)])
    norm = str(root)
    return rc, out.getvalue().replace(norm, "ROOT"), err.getvalue().replace(norm, "ROOT")


class Twins:
    """Two copies of ``src``: ``a`` for systemctl, ``b`` for activatorctl."""

    def __init__(self, src: Path, work: Path) -> None:
        self.a, self.b = work / "systemctl", work / "activatorctl"
        for d in (self.a, self.b):
            shutil.rmtree(d, ignore_errors=True)
            shutil.copytree(src, d, symlinks=True)

    def step(self, *args: str) -> tuple[int, str, str]:
        """Run one command on both; AssertionError naming the command if they differ."""
        argv = list(args)
        if argv[0] == "is-enabled" and len(argv) > 2:
            for name in argv[1:]:
                self.step("is-enabled", name)
            return 0, "", ""
        want = systemctl(self.a, argv)
        got = activatorctl(self.b, argv)
        if argv[0] == "is-enabled":
            missing = f"Failed to get unit file state for {argv[1]}: No such file or directory\n"
            if want == (1, "", missing):
                want = (1, "not-found\n", "")
        want = (want[0], want[1], _builtin_targets_present(want[2]))
        assert got == want, f"{' '.join(argv)}:\n systemctl:   {want}\n activatorctl: {got}"
        la, lb = links(self.a), links(self.b)
        assert la == lb, (
            f"{' '.join(argv)}: links differ\n only systemctl's: "
            f"{ {k: v for k, v in la.items() if lb.get(k) != v} }\n only activatorctl's: "
            f"{ {k: v for k, v in lb.items() if la.get(k) != v} }"
        )
        return got


def _builtin_targets_present(stderr: str) -> str:
    lines = stderr.splitlines(keepends=True)
    return "".join(
        line
        for line in lines
        if not (
            " is added as a dependency to a non-existent unit " in line
            and line.rstrip().rstrip(".").rsplit(" ", 1)[-1] in BUILTIN_TARGETS
        )
    )


# ---------------------------------------------------------------- made-up roots

_TYPES = ("service", "socket", "target", "timer")
_DIRS = (*["lib/systemd/system"] * 6, "etc/systemd/system", "run/systemd/system",
         "usr/local/lib/systemd/system", "run/systemd/generator", "usr/lib/systemd/system")  # fmt: skip
_TARGETS = ("multi-user.target", "sockets.target", "x.target", "nope.target", "cont@.target",
            "cont@v.target")  # fmt: skip


def random_root(root: Path, seed: int) -> list[list[str]]:
    """A root of made-up units for ``seed``; returns the commands to compare on it."""
    rnd = random.Random(seed)
    names = []
    for i in range(rnd.randint(3, 9)):
        t = rnd.choice(_TYPES)
        base = rnd.choice("abcdefg") + str(i)
        template = (t != "target" and rnd.random() < 0.3) or rnd.random() < 0.1
        names.append(f"{base}@.{t}" if template else f"{base}.{t}")
    for t in ("multi-user.target", "sockets.target", "x.target", "cont@.target"):
        if rnd.random() < 0.7:
            _write(root / "lib/systemd/system" / t, "[Unit]\nDescription=t\n")
    files: dict[str, str] = {}
    for n in names:
        d = "opt" if rnd.random() < 0.08 else rnd.choice(_DIRS)
        path = root / d / n
        path.parent.mkdir(parents=True, exist_ok=True)
        if rnd.random() < 0.08:
            path.symlink_to("/dev/null")
            continue
        _write(path, _install_section(rnd, n, names))
        files[n] = d
        if rnd.random() < 0.15:
            _write(root / rnd.choice(_DIRS) / f"{n}.d/x.conf",
                   f"[Install]\nWantedBy={rnd.choice(_TARGETS)}\n")  # fmt: skip
    for _ in range(rnd.randint(0, 4)):
        _random_link(rnd, root, names, files)
    pool = [*names, "missing.service", "alias0.service", "alias1.socket"]
    pool += [n.replace("@.", f"@{i}.") for n in names if "@." in n for i in ("q", "inst")]
    cmds: list[list[str]] = []
    for _ in range(rnd.randint(2, 8)):
        verb = rnd.choice(["enable", "enable", "disable", "is-enabled", "is-enabled"])
        args = rnd.sample(pool, rnd.randint(1, 2))
        if verb == "enable" and files and rnd.random() < 0.1:
            n = rnd.choice(sorted(files))
            args = [f"/{files[n]}/{n}"]
        cmds.append([verb, *args])
        if rnd.random() < 0.3:
            cmds.append(["list-unit-files"])
    cmds.append(["list-unit-files"])
    return cmds


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _install_section(rnd: random.Random, n: str, names: list[str]) -> str:
    lines = ["[Unit]", "Description=x", "[Install]"]
    typ = n.rsplit(".", 1)[1]
    pre = n.split("@")[0].split(".")[0]
    for _ in range(rnd.randint(0, 3)):
        k = rnd.choice(["WantedBy", "WantedBy", "RequiredBy", "Alias", "Also", "DefaultInstance"])
        if k in ("WantedBy", "RequiredBy"):
            v = " ".join(rnd.sample(_TARGETS, rnd.randint(1, 2)))
        elif k == "Alias":
            v = rnd.choice([f"{pre}-al.{typ}", f"al%i.{typ}", f"{pre}al@.{typ}", f"%p-x.{typ}",
                            f"other.{rnd.choice(_TYPES)}", n, f"x.target.wants/{n}",
                            f"al@%i.{typ}"])  # fmt: skip
        elif k == "Also":
            v = " ".join(rnd.sample([*names, "missing.service"], rnd.randint(1, 2)))
        else:
            v = rnd.choice(["inst", "", "bad/inst", "%H"])
        lines.append(f"{k}={v}")
    return "\n".join(lines) + "\n"


def _random_link(rnd: random.Random, root: Path, names: list[str], files: dict[str, str]) -> None:
    """A link an admin or a package left: in a .wants/, an alias, or a same-name link."""
    n = rnd.choice(names)
    if n not in files:
        return
    target_in_root = f"/{files[n]}/{n}"
    where = rnd.choice(["etc/systemd/system", "run/systemd/system", "lib/systemd/system",
                        "etc/systemd/system"])  # fmt: skip
    kind = rnd.random()
    if kind < 0.5:
        inst = n.replace("@.", "@q.") if "@." in n and rnd.random() < 0.7 else n
        link = root / where / f"{rnd.choice(_TARGETS)}.wants" / inst
    elif kind < 0.8:
        typ = n.rsplit(".", 1)[1]
        link = root / where / (f"alias{rnd.randint(0, 3)}" + ("@" if "@." in n else "") + f".{typ}")
    else:
        link = root / where / n
    link.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(link):
        return
    relative = os.path.relpath(root / target_in_root.lstrip("/"), link.parent)
    link.symlink_to(rnd.choice([target_in_root, relative, f"/nonexistent/{n}"]))

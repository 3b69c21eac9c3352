"""enable, disable, is-enabled and list-unit-files as Debian's systemctl 252 does them
(issue 11, item 5): on twin roots (installoracle.Twins), the same links, answers, exit
codes and messages, step by step.

The roots hold real Debian units (systemd's own from /lib/systemd/system, and the
packages' of tests/units/real/system: Alias=, Also=, WantedBy= of every kind), made-up
ones for the corners (templates with DefaultInstance=, aliases of instances, RequiredBy=,
masks, drop-ins, specifiers, a unit outside the search path, an alias already taken),
and seeded random roots. systemctl --root needs no running systemd; what it reads of the
host is its hostname (%H) and the preset files under the root only.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .installoracle import Twins, activatorctl, need_systemctl, random_root, systemctl

REAL = Path(__file__).parent / "real" / "system"
VENDOR = Path("/lib/systemd/system")
#: systemd's own units (package systemd) and two of Debian's essential packages.
DEBIAN_UNITS = (
    "getty@.service", "serial-getty@.service", "container-getty@.service",
    "console-getty.service", "autovt@.service", "debug-shell.service",
    "systemd-networkd.service", "systemd-networkd.socket",
    "systemd-networkd-wait-online.service", "systemd-hostnamed.service",
    "dbus-org.freedesktop.hostname1.service", "systemd-pstore.service", "remote-fs.target",
    "systemd-journald.socket", "fstrim.timer", "fstrim.service", "e2scrub_reap.service",
    "multi-user.target", "sockets.target", "sysinit.target", "timers.target",
    "getty.target", "basic.target", "graphical.target", "default.target", "network.target",
    "network-online.target", "printer.target",
)  # fmt: skip
VENDOR_WANTS = ("sockets.target.wants", "multi-user.target.wants", "getty.target.wants")

SVC = "[Service]\nExecStart=/bin/true\n"
MADE_UP = {
    "web@.socket": "[Socket]\nListenStream=%i\n[Install]\nWantedBy=sockets.target\n"
    "DefaultInstance=8080\n",
    "web@.service": SVC,
    "app.service": f"{SVC}[Install]\nWantedBy=multi-user.target\nRequiredBy=x.target\n"
    "Alias=app-alias.service\nAlso=app.socket\n",
    "app.socket": "[Socket]\nListenStream=81\n[Install]\nWantedBy=sockets.target\n",
    "x.target": "[Unit]\nDescription=x\n",
    "worker@.service": f"{SVC}[Install]\nWantedBy=multi-user.target\nAlias=wk@.service\n"
    "DefaultInstance=one\n",
    "named@.service": f"{SVC}[Install]\nWantedBy=multi-user.target\nAlias=n-%i.service\n",
    "cont@.target": "[Unit]\n",
    "mon@.service": f"{SVC}[Install]\nWantedBy=cont@.target\n",
    "spec@.service": f"{SVC}[Install]\nWantedBy=%p.target cont@%i.target\nDefaultInstance=%j\n",
    "dropin.service": SVC,
    "dropin.service.d/install.conf": "[Install]\nWantedBy=multi-user.target\n",
    "static.service": SVC,
    "masked2.service": f"{SVC}[Install]\nWantedBy=multi-user.target\n",
    "claims.service": f"{SVC}[Install]\nAlias=taken.service\nWantedBy=multi-user.target\n",
    "other.service": SVC,
    "onlyalso.service": f"{SVC}[Install]\nAlso=app.socket missing.socket masked.socket\n",
    "alsolinked.service": f"{SVC}[Install]\nWantedBy=x.target\nAlso=linked.service\n",
}


def debian_root(root: Path) -> Path:
    lib = root / "lib/systemd/system"
    lib.mkdir(parents=True)
    for name in DEBIAN_UNITS:
        src = VENDOR / name
        if os.path.lexists(src):
            shutil.copy(src, lib / name, follow_symlinks=False)
    for d in VENDOR_WANTS:
        if (VENDOR / d).is_dir():
            shutil.copytree(VENDOR / d, lib / d, symlinks=True)
    for f in REAL.iterdir():
        shutil.copy(f, lib / f.name)
    for name, text in MADE_UP.items():
        (lib / name).parent.mkdir(parents=True, exist_ok=True)
        (lib / name).write_text(text)
    (lib / "masked.socket").symlink_to("/dev/null")
    etc = root / "etc/systemd/system"
    etc.mkdir(parents=True)
    (etc / "masked2.service").symlink_to("/dev/null")  # an admin's mask of a vendor unit
    (etc / "taken.service").symlink_to("/lib/systemd/system/other.service")
    (etc / "local.service").write_text(f"{SVC}[Install]\nWantedBy=multi-user.target\n")
    run = root / "run/systemd/system"
    run.mkdir(parents=True)
    (run / "runtime.service").write_text(f"{SVC}[Install]\nWantedBy=multi-user.target\n")
    (root / "opt/outside").mkdir(parents=True)
    (root / "opt/outside/ext.service").write_text(
        f"{SVC}[Install]\nWantedBy=multi-user.target\nAlias=ext-alias.service\n"
    )
    (root / "opt/outside/linked.service").write_text(f"{SVC}[Install]\nWantedBy=x.target\n")
    (etc / "linked.service").symlink_to("/opt/outside/linked.service")  # systemctl link
    gen = root / "run/systemd/generator"
    gen.mkdir(parents=True)
    (gen / "gen.service").write_text(f"{SVC}[Install]\nWantedBy=multi-user.target\n")
    (etc / "genalias.service").symlink_to("/run/systemd/generator/gen.service")
    presets = root / "lib/systemd/system-preset"
    presets.mkdir(parents=True)
    (presets / "90-test.preset").write_text("disable docker.*\nenable getty@.service\n")
    return root


PACKAGES_ASKED = """
ssh.service sshd.service ssh.socket uuidd.socket syslog.service getty@.service
getty@tty1.service getty@tty2.service serial-getty@ttyS0.service serial-getty@.service
autovt@.service autovt@tty3.service cups.service cups.path systemd-journald.socket
dbus-org.freedesktop.hostname1.service systemd-hostnamed.service console-getty.service
acpid.service systemd-networkd.socket nonexistent.service
""".split()
CORNERS_ASKED = """
web@.socket web@8080.socket web@9090.socket web@1.socket app app-alias.service
app.socket worker@.service worker@one.service wk@one.service mon@.service
mon@a.service spec@.service dropin.service static.service masked.socket
masked2.service claims.service taken.service onlyalso.service local.service
runtime.service ext.service ext-alias.service linked.service genalias.service
gen.service alsolinked.service
""".split()

STEPS = [
    ["list-unit-files"],
    # what packages do after installing (deb-systemd-helper), and an admin after them
    ["enable", "ssh.service", "uuidd.service", "rsyslog.service"],
    ["enable", "cups.service"],  # Also= a .path unit that is not there
    ["enable", "avahi-daemon.service", "libvirtd.service"],
    ["enable", "getty@.service"],  # DefaultInstance=tty1
    ["enable", "serial-getty@ttyS0.service"],
    ["enable", "systemd-networkd.service", "systemd-pstore.service", "remote-fs.target"],
    ["enable", "fstrim.timer", "e2scrub_reap.service"],
    ["is-enabled", *PACKAGES_ASKED],
    ["list-unit-files"],
    # the corners
    ["enable", "web@.socket"],
    ["enable", "web@9090.socket"],
    ["enable", "app"],  # a name without a suffix is a service
    ["enable", "worker@.service", "worker@two.service"],
    ["enable", "named@.service"],  # a template's plain alias: refused
    ["enable", "named@x.service"],
    ["enable", "mon@.service", "mon@a.service"],
    ["enable", "spec@.service"],
    ["enable", "dropin.service", "static.service"],
    ["enable", "masked.socket"],
    ["enable", "masked2.service"],
    ["enable", "claims.service"],  # Alias= a name already linked elsewhere
    ["enable", "onlyalso.service"],
    ["enable", "local.service", "runtime.service"],
    ["enable", "/opt/outside/ext.service"],
    ["enable", "app-alias.service"],  # an alias in /etc: refused, as systemctl does
    ["enable", "genalias.service"],  # … but followed first: to a generated unit
    ["enable", "linked.service"],  # a linked unit by its name: followed
    ["enable", "alsolinked.service"],  # … but not as another's Also=
    ["enable", "missing.service"],
    ["is-enabled", *CORNERS_ASKED],
    ["list-unit-files"],
    ["list-unit-files", "--state=enabled,indirect", "--type=socket,target"],
    ["list-unit-files", "web*", "*.timer"],
    ["list-unit-files", "nothing-matches*"],
    ["disable", "app-alias.service"],
    ["disable", "web@9090.socket"],
    ["disable", "web@.socket", "worker@.service"],
    ["disable", "ssh.service", "getty@.service", "masked.socket", "missing.service"],
    ["disable", "/opt/outside/ext.service"],
    ["disable", "cups.service", "avahi-daemon.service", "libvirtd.service", "mon@.service"],
    ["is-enabled", "ssh.socket", "cups.socket", "serial-getty@ttyS0.service", "web@8080.socket"],
    ["list-unit-files"],
]


def test_debian_units_enable_disable_as_systemctl(tmp_path):
    need_systemctl()
    twins = Twins(debian_root(tmp_path / "src"), tmp_path)
    for step in STEPS:
        twins.step(*step)


def test_is_enabled_exit_code_of_several_units(tmp_path):
    """0 if any of them is enabled (static, alias … count), as systemctl's."""
    need_systemctl()
    twins = Twins(debian_root(tmp_path / "src"), tmp_path)
    twins.step("enable", "ssh.service")
    for names in (["ssh.service", "cups.service"], ["cups.service", "acpid.service"],
                  ["masked.socket", "static.service"], ["cups.service", "masked.socket"]):  # fmt: skip
        want = systemctl(twins.a, ["is-enabled", *names])
        got = activatorctl(twins.b, ["is-enabled", *names])
        assert got == want, names
        q = activatorctl(twins.b, ["is-enabled", "-q", *names])
        assert q == (want[0], "", ""), names


def test_a_missing_unit_is_not_found_where_systemctl_252_stops(tmp_path):
    """The one answer that differs, on purpose: systemctl 252 stops at a missing unit with
    an error (later systemctl answers not-found); activatorctl answers not-found and goes
    on. The exit code is the same when nothing else is enabled."""
    need_systemctl()
    twins = Twins(debian_root(tmp_path / "src"), tmp_path)
    want = systemctl(twins.a, ["is-enabled", "nope.service", "cups.service"])
    assert want == (1, "", "Failed to get unit file state for nope.service: No such file or "
                    "directory\n")  # fmt: skip
    assert activatorctl(twins.b, ["is-enabled", "nope.service", "cups.service"]) == (
        1, "not-found\ndisabled\n", "")  # fmt: skip


@pytest.mark.parametrize("seed", range(25))
def test_random_roots_as_systemctl(tmp_path, seed):
    need_systemctl()
    cmds = random_root(tmp_path / "src", seed)
    twins = Twins(tmp_path / "src", tmp_path)
    for c in cmds:
        twins.step(*c)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_many_random_roots_as_systemctl(tmp_path):
    """150 more seeds (bounded: a minute or two); a failure names its seed."""
    need_systemctl()
    for seed in range(1000, 1150):
        work = tmp_path / str(seed)
        cmds = random_root(work / "src", seed)
        twins = Twins(work / "src", work)
        try:
            for c in cmds:
                twins.step(*c)
        except AssertionError as e:
            raise AssertionError(f"seed {seed}: {e}") from None
        shutil.rmtree(work)


def test_loops_of_links_as_systemctl(tmp_path):
    """Links that lead in circles: reported where systemctl reports them, removed where it
    removes them (by their own name), never a traceback."""
    need_systemctl()
    src = tmp_path / "src"
    etc, lib = src / "etc/systemd/system", src / "lib/systemd/system"
    etc.mkdir(parents=True)
    lib.mkdir(parents=True)
    (etc / "b.service").symlink_to("a.service")
    (etc / "a.service").symlink_to("b.service")
    (lib / "c.service").write_text("[Install]\nWantedBy=x.target\nAlias=l1.service\n")
    (etc / "l1.service").symlink_to("l2.service")
    (etc / "l2.service").symlink_to("l1.service")
    (lib / "d@.service").write_text("[Install]\nWantedBy=x.target\nDefaultInstance=i\n")
    (lib / "d@i.service").symlink_to("d@i.service")
    twins = Twins(src, tmp_path)
    for step in (["is-enabled", "a.service", "c.service", "d@.service"], ["list-unit-files"],
                 ["enable", "a.service"], ["enable", "c.service"], ["enable", "d@.service"],
                 ["disable", "c.service"], ["disable", "l1.service"], ["disable", "b.service"],
                 ["list-unit-files"]):  # fmt: skip
        twins.step(*step)

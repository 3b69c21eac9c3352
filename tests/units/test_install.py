"""units/install.py where there is nothing of systemctl 252's to compare with: activator's
additions (UpheldBy=, TOML units, --units directories, built-in targets), presets, and
the root's walls. The rest is held to systemctl itself (test_install_oracle.py)."""

from __future__ import annotations

import os
from pathlib import Path

from activator.units import install
from activator.units.install import Lookup, Paths

from .installoracle import activatorctl, links

SVC = "[Service]\nExecStart=/bin/true\n"


def _lib(root: Path, files: dict[str, str]) -> Path:
    lib = root / "lib/systemd/system"
    lib.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (lib / name).write_text(text)
    return lib


def test_upheld_by_links_into_upholds(tmp_path):
    """[Install] UpheldBy= (which systemctl 252 ignores with a warning) makes
    NAME.upholds/ links, the directory activator's loader reads as Upholds=."""
    _lib(tmp_path, {"keep.service": f"{SVC}[Install]\nUpheldBy=multi-user.target\n"})
    rc, out, err = activatorctl(tmp_path, ["enable", "keep.service"])
    assert (rc, out) == (0, "")
    assert err == (
        "Created symlink ROOT/etc/systemd/system/multi-user.target.upholds/keep.service "
        "\N{RIGHTWARDS ARROW} /lib/systemd/system/keep.service.\n"
    )
    assert activatorctl(tmp_path, ["is-enabled", "keep.service"])[:2] == (0, "enabled\n")
    activatorctl(tmp_path, ["disable", "keep.service"])
    assert links(tmp_path) == {}
    assert activatorctl(tmp_path, ["is-enabled", "keep.service"])[:2] == (1, "disabled\n")


def test_toml_units_in_a_units_dir(tmp_path):
    """A unit in activator's TOML form, in a --units directory (inside the root)."""
    units = tmp_path / "srv/units"
    units.mkdir(parents=True)
    (units / "web.socket.toml").write_text(
        '[Socket]\nListenStream = "80"\n[Install]\nWantedBy = ["sockets.target"]\n'
    )
    rc, _, err = activatorctl(tmp_path, ["enable", "web.socket", "--units", "/srv/units"])
    assert rc == 0, err
    assert links(tmp_path) == {
        "/etc/systemd/system/sockets.target.wants/web.socket": "/srv/units/web.socket.toml"
    }
    paths = Paths.system(str(tmp_path), ["/srv/units"])
    assert Lookup(paths).state("web.socket") == "enabled"
    assert Lookup(Paths.system(str(tmp_path))).unit_files() == []  # not on systemd's path


def test_links_in_a_units_dir_enable_for_the_daemon(tmp_path):
    """For a running activator its --units directories are configuration: a unit their
    NAME.wants/ pull in starts at boot, so it is enabled (systemctl would say static)."""
    d = tmp_path / "units"
    (d / "sockets.target.wants").mkdir(parents=True)
    (d / "a.socket").write_text("[Socket]\nListenStream=1\n[Install]\nWantedBy=sockets.target\n")
    (d / "b.socket").write_text("[Socket]\nListenStream=2\n[Install]\nWantedBy=sockets.target\n")
    (d / "sockets.target.wants/a.socket").symlink_to("../a.socket")
    lookup = Lookup(Paths.of([str(d)], [str(d)]))
    assert (lookup.state("a.socket"), lookup.state("b.socket")) == ("enabled", "disabled")
    vendor = Lookup(Paths.of([str(d)]))  # the same directory as a vendor's: not enabling
    assert vendor.state("a.socket") == "disabled"


def test_builtin_targets_count_as_present(tmp_path):
    """No "non-existent unit sockets.target" in an image without systemd's target files:
    activator has it; a target that exists nowhere is still reported."""
    _lib(tmp_path, {"a.socket": "[Socket]\nListenStream=1\n[Install]\nWantedBy=sockets.target\n",
                    "b.service": f"{SVC}[Install]\nWantedBy=nowhere.target\n"})  # fmt: skip
    err = activatorctl(tmp_path, ["enable", "a.socket"])[2]
    assert "non-existent" not in err
    err = activatorctl(tmp_path, ["enable", "b.service"])[2]
    assert "Unit ROOT/lib/systemd/system/b.service is added as a dependency to a " \
        "non-existent unit nowhere.target." in err  # fmt: skip


def test_presets_first_file_wins_first_rule_decides(tmp_path):
    etc, lib = tmp_path / "etc/systemd/system-preset", tmp_path / "usr/lib/systemd/system-preset"
    etc.mkdir(parents=True)
    lib.mkdir(parents=True)
    (lib / "10-vendor.preset").write_text(
        "# comment\ndisable ssh.*\nenable getty@.service tty1 tty2\nignore x.service\n"
    )
    (lib / "20-masked.preset").write_text("disable *\n")
    (etc / "20-masked.preset").symlink_to("/dev/null")  # the admin masks the vendor's file
    (etc / "05-admin.preset").write_text("enable ssh.socket\n")
    log: list[str] = []
    presets = install.read_presets(str(tmp_path), log)
    assert [(p, on) for p, on, _ in presets.rules] == [
        ("ssh.socket", True), ("ssh.*", False), ("getty@.service", True)
    ]  # fmt: skip
    assert presets.query("ssh.socket") and not presets.query("ssh.service")
    assert presets.query("anything.service")  # no rule: enabled (Debian's default)
    assert log == [f"{lib}/10-vendor.preset:4: Couldn't parse line 'ignore x.service'. Ignoring."]


def test_links_stay_inside_the_root(tmp_path):
    """chase() resolves .. and absolute links against the root, never above it."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/up").symlink_to("../../../../../../etc")
    (root / "etc/abs").symlink_to("/etc/up/passwd")
    assert install.chase(str(root), f"{root}/etc/abs") == f"{root}/etc/passwd"
    assert install.chase(str(root), f"{root}/../../x") == f"{root}/x"
    assert install.chase("/", "/usr/../etc/./hostname", follow_last=False) == "/etc/hostname"


def test_a_dangling_alias_is_bad_and_disable_removes_it(tmp_path):
    etc = tmp_path / "etc/systemd/system"
    etc.mkdir(parents=True)
    (etc / "gone.service").symlink_to("/lib/systemd/system/vanished.service")
    _lib(tmp_path, {})
    assert Lookup(Paths.system(str(tmp_path))).unit_files() == [(f"{etc}/gone.service", "bad")]
    rc, _, err = activatorctl(tmp_path, ["disable", "gone.service"])
    assert rc == 0
    assert err == (
        f"Unit {etc}/gone.service is an alias to a unit that is not present, ignoring.\n"
        "Failed to disable unit, unit vanished.service does not exist.\n"  # as systemctl
        'Removed "ROOT/etc/systemd/system/gone.service".\n'
    ).replace(str(tmp_path), "ROOT")
    assert not os.path.lexists(etc / "gone.service")

"""Real socket units from Debian 12 packages: each loads, or is refused with a clear message.

Downloads the packages with ``apt-get download`` (Debian's registry only), unpacks their
systemd unit directories, loads every unit of the package set, and looks at each
socket unit with the service it activates (from the same set). At least 95% must load.
Downloads are cached under the system's temporary directory between runs.

Run alone with ``pytest -m network tests/units/test_debian_units.py -s`` to see the
report (counts, what is refused and why).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from activator.units import load_units
from activator.units.loader import load_one

from .test_roundtrip import roundtrip

pytestmark = pytest.mark.network

# Packages that ship socket units (and the services they activate). Names missing from
# the archive are skipped; the test needs enough of them to mean something.
PACKAGES = """
openssh-server cups-daemon dbus-daemon dbus-system-bus-common dbus-user-session
avahi-daemon docker.io pcscd sane-utils uuid-runtime libvirt-daemon-system gpg-agent
dirmngr scdaemon systemd systemd-coredump systemd-journal-remote systemd-oomd
systemd-container systemd-userdbd systemd-homed udev rsyslog dovecot-core cockpit-ws
tang oidentd atftpd lxd-agent gpsd mpd sssd-common pipewire pulseaudio p11-kit uucp
acpid rpcbind lvm2 multipath-tools open-iscsi lldpad cloud-init podman
speech-dispatcher knot-resolver snapd dbus gnome-keyring gcr pipewire-pulse clamav-daemon
libvirt-daemon libvirt-daemon-driver-qemu mariadb-server fcgiwrap
""".split()

CACHE = Path(tempfile.gettempdir()) / "activator-debian-units"
UNIT_DIRS = ("lib/systemd/system", "usr/lib/systemd/system", "usr/lib/systemd/user")


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)  # type: ignore[call-overload]


def _available(pkgs: list[str]) -> list[str]:
    """The packages the archive knows (one apt-cache call; it lists those it finds)."""
    r = _run(["apt-cache", "show", "--no-all-versions", *pkgs])
    found = {
        line.split(":", 1)[1].strip()
        for line in r.stdout.splitlines()
        if line.startswith("Package:")
    }
    return [p for p in pkgs if p in found]


@pytest.fixture(scope="module")
def debian_root() -> Path:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("needs apt-get and dpkg-deb")
    debs = CACHE / "debs"
    root = CACHE / "root"
    debs.mkdir(parents=True, exist_ok=True)
    pkgs = _available(PACKAGES)
    if len(pkgs) < len(PACKAGES) // 2 and os.geteuid() == 0:
        _run(["apt-get", "update", "-qq"])  # no package lists yet (fresh machine)
        pkgs = _available(PACKAGES)
    if len(pkgs) < 20:
        pytest.skip(f"the Debian archive lists only {len(pkgs)} of the packages")
    have = {f.split("_", 1)[0] for f in os.listdir(debs) if f.endswith(".deb")}
    missing = [p for p in pkgs if p not in have]
    if missing:
        r = _run(["apt-get", "download", "-q", *missing], cwd=debs)
        if r.returncode != 0:
            pytest.skip(f"apt-get download failed: {r.stderr.strip()[-500:]}")
    stamp = root / ".extracted"
    debfiles = sorted(glob.glob(str(debs / "*.deb")))
    if not stamp.exists() or stamp.read_text() != "\n".join(debfiles):
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        for deb in debfiles:
            # Only the unit directories: dpkg-deb -x of docker.io alone is 100 MB.
            with subprocess.Popen(
                ["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE
            ) as deb_tar:
                subprocess.run(
                    ["tar", "-x", "-C", str(root), "--wildcards", "--no-wildcards-match-slash",
                     *[f"./{d}/*" for d in UNIT_DIRS]],
                    stdin=deb_tar.stdout, capture_output=True, timeout=600,
                )  # fmt: skip
                assert deb_tar.stdout is not None
                deb_tar.stdout.close()
        stamp.write_text("\n".join(debfiles))
    return root


def _unit_dirs(root: Path) -> tuple[list[str], list[str]]:
    system = [str(root / d) for d in UNIT_DIRS[:2] if (root / d).is_dir()]
    user = [str(root / UNIT_DIRS[2])] if (root / UNIT_DIRS[2]).is_dir() else []
    return system, user


def test_debian_socket_units_load(debian_root: Path) -> None:
    system, user = _unit_dirs(debian_root)
    loaded: list[str] = []
    refused: dict[str, list[str]] = {}
    total = 0
    for dirs in (system, user):
        if not dirs:
            continue
        units, problems = load_units(dirs)
        sockets = sorted(
            {os.path.basename(f) for d in dirs for f in glob.glob(os.path.join(d, "*.socket"))}
        )
        for name in sockets:
            total += 1
            if name in units.sockets or name in units.socket_templates:
                loaded.append(name)
                continue
            mine = [p for p in problems if p.unit == name and p.severity == "error"]
            # "Clear message": every refusal names a file and says something.
            assert mine, f"{name} was refused without an error naming it"
            for p in mine:
                assert p.path and p.message and "Traceback" not in p.message
            refused[name] = [str(p) for p in mine]
    print(f"\nDebian 12 socket units: {total}, loaded {len(loaded)}, refused {len(refused)}")
    for name, why in sorted(refused.items()):
        print(f"  refused {name}:")
        for line in why:
            print(f"    {line}")
    assert total >= 40, f"only {total} socket units found; the download went wrong"
    assert len(loaded) >= 0.95 * total, f"only {len(loaded)}/{total} socket units load"


def test_debian_units_roundtrip_through_toml(debian_root: Path, tmp_path: Path) -> None:
    """Every real socket/service that loads converts to TOML and back to an equal model."""
    system, user = _unit_dirs(debian_root)
    count = 0
    for d in system + user:
        for path in sorted(
            glob.glob(os.path.join(d, "*.socket")) + glob.glob(os.path.join(d, "*.service"))
        ):
            unit, _ = load_one(path)
            if unit is None:
                continue
            work = tmp_path / f"{count}"
            work.mkdir()
            roundtrip(path, str(work))
            count += 1
    assert count >= 100

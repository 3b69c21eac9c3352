"""A Debian root filesystem for tests, built once with mmdebstrap and cached outside the repo.

``build(recipe)`` returns a directory holding a bookworm root filesystem with the
recipe's packages installed by apt (their maintainer scripts run, so
``deb-systemd-helper`` leaves its ``*.wants/`` links behind), and, for
``recipe.download``, the packages only downloaded into apt's cache, so that an
``apt-get install`` inside it works without a network (as a Dockerfile's ``RUN`` line in
``podman build --network=none``). The mirrors are the ones this machine's apt uses.

The cache lives in ``/var/cache/activator-tests/<key>`` (``ACTIVATOR_TEST_CACHE``
overrides the parent), keyed by a hash of everything that shapes the result: suite,
variant, both package lists, the mirrors. A finished build is renamed into place in one
step, so a reader never sees half a tree; a lock file serialises builders (two test
sessions, two engineers). The first build takes about half a minute, later ones none.
Treat the directory as read-only: tests mount an overlay over it (see ``namespace.py``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness import run_session

CACHE = Path(os.environ.get("ACTIVATOR_TEST_CACHE", "/var/cache/activator-tests"))
SUITE = "bookworm"

#: Bump when the way a tree is built changes, so old caches are not taken for new ones.
FORMAT = 1


#: This checkout (tests bind it into a rootfs, the image is built from it).
REPO = Path(__file__).resolve().parents[2]


class RootfsError(RuntimeError):
    """mmdebstrap is missing, failed, or did not finish in time."""


@dataclass(frozen=True)
class Recipe:
    """What a root filesystem holds.

    include: installed with apt, maintainer scripts and all.
    download: only downloaded into /var/cache/apt/archives (apt's lists are kept too), for
        an offline ``apt-get install`` later.
    """

    name: str
    include: tuple[str, ...]
    download: tuple[str, ...] = ()
    variant: str = "apt"

    def key(self) -> str:
        spec = {
            "format": FORMAT,
            "suite": SUITE,
            "variant": self.variant,
            "include": sorted(self.include),
            "download": sorted(self.download),
            "mirrors": host_mirrors(),
        }
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
        return f"{self.name}-{digest[:16]}"


#: Packages whose maintainer scripts enable units the Debian way (deb-systemd-helper):
#: sockets (rpcbind, uuidd, cups, dbus) and services started at boot (ssh, cups, rpcbind,
#: dbus; nginx: Type=forking with PIDFile=; cron: simple; rsyslog: Requires=syslog.socket,
#: which only the systemd package ships). Issue 11's real-packages criterion.
BOOT = Recipe(
    "boot",
    include=(
        "rpcbind", "uuid-runtime", "cups-daemon", "openssh-server", "dbus", "nginx-light",
        "cron", "rsyslog",
    ),
)  # fmt: skip


#: The base of the image test (contrib/docker/Dockerfile), standing in for Docker's
#: debian:bookworm-slim, which no registry here serves: nothing installed beyond apt, and
#: what the Dockerfile's `apt-get install` lines ask for waiting in apt's cache, since
#: `podman build --network=none` fetches nothing (its `apt-get update` warns and keeps the
#: lists it has). With no init system, invoke-rc.d starts no daemon during the build.
IMAGE_BASE = Recipe(
    "image-base",
    include=(),
    download=("gcc", "libc6-dev", "python3-dev", "python3-venv", "python3", "rpcbind"),
)


def host_mirrors() -> str:
    """The Debian entries of this machine's apt sources, in deb822 form ('' if none).

    Other vendors' repositories (a cloud SDK, node) are left out: the tree is Debian's.
    """
    stanzas: list[str] = []
    sources = Path("/etc/apt/sources.list.d")
    for f in sorted(sources.glob("*.sources")) if sources.is_dir() else []:
        for stanza in f.read_text().split("\n\n"):
            lines = [ln for ln in stanza.splitlines() if ln and not ln.startswith("#")]
            text = "\n".join(lines)
            if "debian-archive-keyring" in text or "debian.org/debian" in text:
                stanzas.append(text)
    lists = [Path("/etc/apt/sources.list")]
    lists += sorted(sources.glob("*.list")) if sources.is_dir() else []
    for f in lists:
        if not f.is_file():
            continue
        for line in f.read_text().splitlines():
            words = line.split()
            if words[:1] == ["deb"] and any(w.endswith("/debian") for w in words) and SUITE in line:
                stanzas.append(line)
    return "\n\n".join(stanzas)


def build(recipe: Recipe, timeout: float = 900) -> Path:
    """The cached tree for recipe, built first if need be (bounded by timeout seconds).

    Raises RootfsError when mmdebstrap is missing, fails or overruns; what it printed is
    in the message.
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    key = recipe.key()
    final = CACHE / key
    with open(CACHE / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():
            return final
        if shutil.which("mmdebstrap") is None:
            raise RootfsError("unable to build a Debian rootfs: mmdebstrap is not installed")
        work = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=CACHE))
        try:
            _mmdebstrap(recipe, work / "root", timeout)
            (work / "root").rename(final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        _prune(recipe.name, key)
    return final


def _prune(name: str, key: str) -> None:
    """Trees (and their tarballs) of older versions of the recipe: a changed package list
    must not leave ~200 MB behind each time."""
    for old in CACHE.glob(f"{name}-*"):
        if old.name.startswith(key) or old.suffix == ".lock":
            continue
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def _mmdebstrap(recipe: Recipe, target: Path, timeout: float) -> None:
    argv = ["mmdebstrap", f"--variant={recipe.variant}", "--mode=root"]
    if recipe.include:
        argv.append("--include=" + ",".join(recipe.include))
    if recipe.download:
        # Keep apt's lists and cache so that `apt-get install` finds these offline.
        argv += [
            "--skip=cleanup/apt",
            '--customize-hook=chroot "$1" apt-get install --download-only -y -q '
            + "--no-install-recommends "
            + " ".join(recipe.download),
        ]
    mirrors = host_mirrors()
    argv += [SUITE, str(target)]
    if mirrors:
        argv.append("-")
    try:
        r = run_session(argv, timeout, input=mirrors)
    except subprocess.TimeoutExpired as e:
        raise RootfsError(
            f"unable to build the {recipe.name} rootfs: mmdebstrap ran over {timeout:.0f}s"
        ) from e
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).splitlines()[-30:])
        raise RootfsError(
            f"unable to build the {recipe.name} rootfs: mmdebstrap exited {r.returncode}\n{tail}"
        )

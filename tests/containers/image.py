"""Building and running contrib/docker/Dockerfile with podman, offline.

``base_image()`` imports a cached rootfs (rootfs.IMAGE_BASE) as a local image once;
``fill_wheelhouse()`` puts activator's dependencies and build requirements, as wheels
built by ``pip wheel`` on the host (cached), into contrib/docker/wheelhouse/;
``build_image()`` runs ``podman build --network=none``. Podman runs with runc and
cgroupfs: crun refuses this kernel's hybrid cgroups, and there is no systemd to manage
cgroups. Every podman call is bounded (harness.run_session kills its whole session).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tomllib

from harness import run_session
from rootfs import CACHE, IMAGE_BASE, REPO, build

PODMAN = ["podman", "--cgroup-manager=cgroupfs", "--events-backend=file"]
RUNTIME = ["--runtime=runc"]
#: podman run's options here: runc, and limits within the host's (runc may not raise them).
RUN = [*RUNTIME, "--ulimit=nofile=1024:1024", "--ulimit=nproc=1024:1024"]
WHEELHOUSE = REPO / "contrib/docker/wheelhouse"
DOCKERFILE = REPO / "contrib/docker/Dockerfile"


class PodmanError(RuntimeError):
    pass


def podman(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    r = run_session([*PODMAN, *args], timeout)
    if check and r.returncode != 0:
        raise PodmanError(f"podman {' '.join(args[:3])} exited {r.returncode}:\n{r.stderr[-3000:]}")
    return r


def base_image(timeout: float = 900) -> str:
    """The local image made of IMAGE_BASE's tree (imported once per tree)."""
    tree = build(IMAGE_BASE, timeout=timeout)
    tag = f"localhost/activator-test-base:{IMAGE_BASE.key()}"
    if podman("image", "exists", tag, check=False).returncode == 0:
        return tag
    tar = CACHE / f"{IMAGE_BASE.key()}.tar"
    if not tar.exists():
        part = tar.with_suffix(".part")
        r = run_session(["tar", "-C", str(tree), "--numeric-owner", "-cf", str(part), "."], 300)
        if r.returncode != 0:
            raise PodmanError(f"unable to pack {tree}: {r.stderr[-2000:]}")
        part.rename(tar)
    podman("import", str(tar), tag, timeout=300)
    tar.unlink()  # the image holds it now
    listed = podman("images", "--format", "{{.Repository}}:{{.Tag}}", tag.partition(":")[0])
    for old in set(listed.stdout.split()) - {tag}:  # bases of older recipes
        podman("rmi", old, check=False)
    return tag


def requirements() -> list[str]:
    """What the image's pip needs: the build requirements and the dependencies."""
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    project = meta["project"]
    extras = project.get("optional-dependencies", {}).get("uvloop", [])  # the image's extra
    return [*meta["build-system"]["requires"], *project["dependencies"], *extras]


def fill_wheelhouse(timeout: float = 600) -> list[str]:
    """Wheels of requirements() for this interpreter (Debian's python3 in the image is the
    same minor version), cached by the list; copied into contrib/docker/wheelhouse/."""
    reqs = requirements()
    key = hashlib.sha256(json.dumps([reqs, sys.version_info[:2]]).encode()).hexdigest()[:16]
    cached = CACHE / f"wheelhouse-{key}"
    if not cached.is_dir():
        part = CACHE / f".wheelhouse-{key}"
        shutil.rmtree(part, ignore_errors=True)
        r = run_session(
            [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(part), *reqs], timeout
        )
        if r.returncode != 0:
            raise PodmanError(f"pip wheel failed: {r.stderr[-3000:]}")
        part.rename(cached)
    names = []
    for whl in sorted(cached.glob("*.whl")):
        shutil.copy2(whl, WHEELHOUSE / whl.name)
        names.append(whl.name)
    return names


def build_image(tag: str, base: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """podman build of contrib/docker/Dockerfile from this checkout, with no network."""
    return podman(
        "build", *RUNTIME, "--network=none", "--format=docker", "--pull=never",
        "-f", str(DOCKERFILE), "-t", tag,
        "--build-arg", f"BASE={base}",
        "--build-arg", "PIP_OPTS=--no-index --find-links=/wheelhouse",
        str(REPO),
        timeout=timeout,
    )  # fmt: skip

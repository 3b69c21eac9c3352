"""Running a command as PID 1 of a new PID+mount+network namespace, chrooted into a rootfs.

``pid1_wrapper()`` returns an argv prefix for tests/harness.py's ``Activator(wrapper=…)``:

    unshare --pid --fork --mount --net --propagation private --kill-child -- /bin/sh -c SCRIPT sh

SCRIPT runs as PID 1 of the new namespaces, on the host's filesystem still: it mounts an
overlay over the cached rootfs (the cache stays untouched; what the services write lands
in ``scratch/upper``), a fresh /proc of the new PID namespace, tmpfs on /run, /tmp and
/dev (with the host's null, zero, full, random, urandom and tty nodes bound in, a private
devpts), binds the host's Python and this checkout read-only at the same paths (so the
venv's ``python -m activator`` runs inside), binds the Activator's own directory (units,
control socket) read-write, brings ``lo`` up, then ``exec chroot ROOT "$@"`` — so the
command is PID 1 itself, as in a container.

From the host: the control socket answers at its usual path (a bind mount shares the
socket's inode), files under the namespace's /run are at ``/proc/PID/root/run/…``, and
``in_netns(pid, argv)`` runs a client in the namespace's network.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")


def pid1_wrapper(
    rootfs: Path, scratch: Path, ro_binds: Sequence[Path]
) -> Callable[[Path], list[str]]:
    """The wrapper for Activator: called with the Activator's directory, which it binds too."""

    def wrapper(workdir: Path) -> list[str]:
        root = scratch / "root"
        for d in ("upper", "work", "root"):
            (scratch / d).mkdir(parents=True, exist_ok=True)
        r = shlex.quote(str(root))
        lines = [
            "set -e",
            f"mount -t overlay overlay -o lowerdir={shlex.quote(str(rootfs))},"
            f"upperdir={shlex.quote(str(scratch / 'upper'))},"
            f"workdir={shlex.quote(str(scratch / 'work'))} {r}",
            f"mount -t proc -o nosuid,nodev,noexec proc {r}/proc",
            f"mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs {r}/run",
            f"mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs {r}/tmp",
            f"mount -t tmpfs -o mode=0755,nosuid tmpfs {r}/dev",
        ]
        for node in DEV_NODES:
            lines += [f"touch {r}/dev/{node}", f"mount --bind /dev/{node} {r}/dev/{node}"]
        lines += [
            f"mkdir -p {r}/dev/pts {r}/dev/shm",
            f"mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts {r}/dev/pts",
            f"ln -s pts/ptmx {r}/dev/ptmx",
            f"mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs {r}/dev/shm",
        ]
        for src in ro_binds:
            dst = f"{r}{shlex.quote(str(src))}"
            lines += [
                f"mkdir -p {dst}",
                f"mount --bind {shlex.quote(str(src))} {dst}",
                f"mount -o remount,bind,ro {dst}",
            ]
        w = shlex.quote(str(workdir))
        lines += [
            f"mkdir -p {r}{w}",
            f"mount --bind {w} {r}{w}",
            "ip link set lo up",
            f'exec chroot {r} "$@"',
        ]
        script = "; ".join(lines)
        return [
            "unshare", "--pid", "--fork", "--mount", "--net", "--propagation", "private",
            "--kill-child", "--", "/bin/sh", "-c", script, "sh",
        ]  # fmt: skip

    return wrapper


def python_binds(repo: Path) -> list[Path]:
    """What the venv's interpreter needs inside the rootfs: its installation and the checkout."""
    return [Path(sys.base_prefix), repo]


def in_netns(pid: int, argv: Sequence[str]) -> list[str]:
    """argv run in the network namespace of pid (the host's filesystem, the namespace's lo)."""
    return ["nsenter", f"--target={pid}", "--net", "--", *argv]

"""Running a command as root the way Docker runs a container's PID 1, without Docker.

`wrapper()` builds an argv prefix from util-linux alone (unshare, prlimit, setpriv):

    unshare --mount --propagation private --fork --kill-child -- /bin/sh -c \\
        'set -e; mount --bind -o ro /proc/sys /proc/sys; exec "$@"' sh \\
    prlimit --nofile=1024:1024 -- \\
    setpriv --bounding-set -all,+chown,+dac_override,… --inh-caps -all -- COMMAND…

The command runs as uid 0 with Docker's default capabilities (moby's
`oci/caps/defaults.go`) as its bounding set, hence, as root execs a program without file
capabilities, as its permitted and effective sets too: CapBnd = CapPrm = CapEff =
0xa80425fb. Since moby 20.10.14 (CVE-2022-24769) Docker leaves the inheritable set empty,
and so does this (``legacy_inheritable=True`` gives older Docker's, the same 14 again).
Docker mounts /proc/sys read-only; so does this, in a mount namespace of the command's own
(unshare, as full root, before the capabilities go). Docker's seccomp and AppArmor profiles
are not applied. `--fork` keeps a parent outside, as tests/harness.py's ``wrapper=`` expects,
and `--kill-child` takes the command down with it.
"""

from __future__ import annotations

import shutil
import subprocess

from harness import run_session

#: Docker's default capabilities, as setpriv names them.
DOCKER_DEFAULT_CAPS = (
    "chown",
    "dac_override",
    "fsetid",
    "fowner",
    "mknod",
    "net_raw",
    "setgid",
    "setuid",
    "setfcap",
    "setpcap",
    "net_bind_service",
    "sys_chroot",
    "kill",
    "audit_write",
)
#: The same as a mask: what /proc/PID/status shows for them.
DOCKER_DEFAULT_MASK = 0xA80425FB

#: The RLIMIT_NOFILE hard limit of the tests' containers: below what their units ask for.
NOFILE_HARD = 1024

TOOLS = ("unshare", "prlimit", "setpriv", "mount")


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def wrapper(
    *,
    caps: tuple[str, ...] = DOCKER_DEFAULT_CAPS,
    nofile: int | None = None,
    nice_limit: int | None = None,
    ro_proc_sys: bool = True,
    ro_proc: bool = False,
    tmpfs: tuple[str, ...] = (),
    binds: tuple[tuple[str, str], ...] = (),
    net: bool = False,
    legacy_inheritable: bool = False,
) -> list[str]:
    """The argv prefix that runs a command as Docker would (see the module docstring).

    nofile: hard and soft RLIMIT_NOFILE (Docker takes it from its daemon's, or --ulimit);
    nice_limit: RLIMIT_NICE, soft and hard (raising it needs CAP_SYS_RESOURCE here);
    ro_proc: all of /proc read-only (not Docker's; for the OOM score's failure);
    tmpfs: directories to hide under an empty tmpfs (e.g. /run, for a service's socket);
    binds: (source, target) directories to bind over existing ones (a package's config);
    net: a network namespace of its own with only loopback up, as a container has one
    (for daemons that bind every address: reach them with ``nsenter --net``).
    """
    mounts = ["mount --bind -o ro /proc/sys /proc/sys"] if ro_proc_sys else []
    if ro_proc:
        mounts.append("mount --bind -o ro /proc /proc")
    mounts += [f"mount -t tmpfs -o mode=0755 tmpfs {d}" for d in tmpfs]
    mounts += [f"mount --bind {src} {dst}" for src, dst in binds]
    if net:
        mounts.append("ip link set lo up")
    script = "set -e; " + "".join(m + "; " for m in mounts) + 'exec "$@"'
    limits = [f"--nofile={nofile}:{nofile}"] if nofile is not None else []
    if nice_limit is not None:
        limits.append(f"--nice={nice_limit}:{nice_limit}")
    capset = ",".join(["-all", *("+" + c for c in caps)])
    return [
        "unshare", "--mount", *(["--net"] if net else []), "--propagation", "private",
        "--fork", "--kill-child", "--",
        "/bin/sh", "-c", script, "sh",
        *(["prlimit", *limits, "--"] if limits else []),
        "setpriv", "--bounding-set", capset,
        "--inh-caps", capset if legacy_inheritable else "-all", "--",
    ]  # fmt: skip


def userns_wrapper() -> list[str]:
    """A user namespace whose root maps to ours and that denies setgroups() (unshare -r),
    as some rootless containers are."""
    return ["unshare", "--user", "--map-root-user", "--fork", "--kill-child", "--"]


def run(argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    """Run argv in a session of its own; on timeout kill the whole session, then raise."""
    return run_session(argv, timeout)


def can_raise_rlimit_nice() -> bool:
    """Whether prlimit may raise RLIMIT_NICE's hard limit here (needs CAP_SYS_RESOURCE)."""
    return run(["prlimit", "--nice=25:25", "--", "true"]).returncode == 0

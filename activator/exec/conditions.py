"""Condition*= and Assert*=: whether a start goes ahead (systemd's condition.c).

Tested as root, before anything of the start runs, against the container activator
runs in. Conditions that cannot be judged in a container (Architecture=, Security= …)
hold, so a unit written for a host is not skipped for what we cannot see.
"""

from __future__ import annotations

import os
import stat

from ..core.procfs import read_text as _read
from ..units.directives import UNJUDGED_CONDITIONS
from .plan import CAPABILITIES

_SYS_UID_MAX = 999


def failed_condition(conditions) -> tuple[str, str] | None:
    """The first Condition*=/Assert*= that fails, as systemd's condition_test_list(): every
    plain one must hold, and of the "|" (triggering) ones at least one; "!" negates.
    Asserts are tested after the conditions. Conditions activator cannot judge in a
    container (Architecture=, Security=, …) hold."""
    for family in ("Condition", "Assert"):
        triggers: list[tuple[str, str]] = []
        any_trigger = False
        for directive, value in conditions:
            if not directive.startswith(family):
                continue
            trigger = value.startswith("|")
            v = value[1:] if trigger else value
            negate = v.startswith("!")
            v = v[1:] if negate else v
            ok = _test_condition(directive[len(family) :], v) != negate
            if trigger:
                triggers.append((directive, value))
                any_trigger = any_trigger or ok
            elif not ok:
                return directive, value
        if triggers and not any_trigger:
            return triggers[0]
    return None


def _test_condition(kind: str, v: str) -> bool:
    if kind in UNJUDGED_CONDITIONS:
        return True  # cannot be judged here: holds (the load said so)
    try:
        if kind == "PathExists":
            return os.path.exists(v)
        if kind == "PathExistsGlob":
            import glob

            return bool(glob.glob(v))
        if kind == "PathIsDirectory":
            return os.path.isdir(v)
        if kind == "PathIsSymbolicLink":
            return os.path.islink(v)
        if kind == "PathIsMountPoint":
            return os.path.ismount(v)
        if kind == "PathIsReadWrite":
            return not os.statvfs(v).f_flag & os.ST_RDONLY
        if kind == "DirectoryNotEmpty":
            if not os.path.isdir(v):
                return False
            with os.scandir(v) as entries:
                return any(True for _ in entries)
        if kind == "FileNotEmpty":
            st = os.stat(v)
            return stat.S_ISREG(st.st_mode) and st.st_size > 0
        if kind == "FileIsExecutable":
            st = os.stat(v)
            return stat.S_ISREG(st.st_mode) and bool(st.st_mode & 0o111)
        if kind == "Virtualization":
            return _virtualization(v)
        if kind == "User":  # of the manager, as in systemd: activator's own
            uid = os.getuid()
            if v == "@system":
                return uid <= _SYS_UID_MAX
            return int(v) == uid if v.isdigit() else _user_name(uid) == v
        if kind == "Group":
            gids = {os.getgid(), *os.getgroups()}
            if v.isdigit():
                return int(v) in gids
            import grp

            return grp.getgrnam(v).gr_gid in gids
        if kind == "Environment":  # the manager's environment
            name, eq, value = v.partition("=")
            return os.environ.get(name) == value if eq else name in os.environ
        if kind == "Capability":
            return _has_capability(v)
        if kind == "Host":
            import socket

            return v in (socket.gethostname(), _read("/etc/machine-id").strip())
        if kind == "KernelCommandLine":
            words = _read("/proc/cmdline").split()
            return v in words or ("=" not in v and any(w.startswith(v + "=") for w in words))
        if kind == "FirstBoot":
            return v.lower() in ("no", "false", "0", "off")
    except (OSError, KeyError, ValueError):
        return False
    raise AssertionError(f"Condition{kind}= is neither judged nor in UNJUDGED_CONDITIONS")


def _user_name(uid: int) -> str | None:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _virtualization(v: str) -> bool:
    """ConditionVirtualization=: activator knows containers (not VMs) from what runtimes leave."""
    kind = ""
    env = _read("/proc/1/environ").split("\0")
    for item in env:
        if item.startswith("container="):
            kind = item[len("container=") :] or "container-other"
    if not kind and (os.path.exists("/run/.containerenv") or os.path.exists("/.dockerenv")):
        kind = "podman" if os.path.exists("/run/.containerenv") else "docker"
    if not kind:
        kind = _read("/run/systemd/container").strip()
    low = v.lower()
    if low in ("yes", "true", "1", "on"):
        return bool(kind)
    if low in ("no", "false", "0", "off"):
        return not kind
    if low == "container":
        return bool(kind)
    if low == "vm":
        return False
    return low == kind


def _has_capability(name: str) -> bool:
    key = name.upper() if name.upper().startswith("CAP_") else "CAP_" + name.upper()
    bit = CAPABILITIES.get(key)
    if bit is None:
        return False
    for line in _read("/proc/self/status").splitlines():
        if line.startswith("CapBnd:"):
            return bool(int(line.split()[1], 16) >> bit & 1)
    return False

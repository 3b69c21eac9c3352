"""User and group resolution for User=, Group=, SupplementaryGroups=, SocketUser= …

Names or numeric ids, as systemd accepts them. Lookups go through the C library
(pwd, grp), so NSS modules work as they do for systemd.
"""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass

from ..core.errors import StartError


@dataclass(frozen=True, slots=True)
class Credentials:
    uid: int
    gid: int
    groups: tuple[int, ...] | None  # None: keep activator's own (rootless: it may not set them)
    user: str
    home: str
    shell: str
    dynamic: bool = False  # DynamicUser= (dynamic.py): no passwd entry, so no HOME/SHELL


def lookup_user(name: str) -> pwd.struct_passwd:
    try:
        if name.isdigit():
            return pwd.getpwuid(int(name))
        return pwd.getpwnam(name)
    except KeyError:
        raise StartError(f"unknown user {name!r}") from None


def lookup_group(name: str) -> int:
    try:
        if name.isdigit():
            return grp.getgrgid(int(name)).gr_gid
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise StartError(f"unknown group {name!r}") from None


def resolve(
    user: str | None, group: str | None, supplementary: tuple[str, ...] = ()
) -> Credentials | None:
    """The credentials a process runs with, or None to keep the supervisor's (root).

    As systemd: Group= defaults to the user's primary group; the user's groups come
    from the group database (initgroups) when User= is set and the gid is not 0;
    SupplementaryGroups= are added. Raises StartError naming an unknown user/group.
    """
    if user is None and group is None and not supplementary:
        return None
    if user is not None:
        pw = lookup_user(user)
        uid, gid, uname, home, shell = pw.pw_uid, pw.pw_gid, pw.pw_name, pw.pw_dir, pw.pw_shell
    else:
        uid, gid, uname, home, shell = os.getuid(), os.getgid(), "root", "/root", "/bin/sh"
    if group is not None:
        gid = lookup_group(group)
    groups: list[int] = []
    if user is not None and gid != 0:
        groups.extend(os.getgrouplist(uname, gid))
    else:
        groups.append(gid)
    for g in supplementary:
        gg = lookup_group(g)
        if gg not in groups:
            groups.append(gg)
    if os.geteuid() != 0:
        # Rootless: setgroups() needs CAP_SETGID, and the load refused any group but ours
        # (preflight.py); the process keeps activator's groups.
        return Credentials(uid, gid, None, uname, home, shell)
    return Credentials(uid, gid, tuple(dict.fromkeys(groups)), uname, home, shell)

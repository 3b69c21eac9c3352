"""The client side of systemd's socket activation protocol, standard library only.

Same algorithm as libsystemd's sd_listen_fds() (reference/systemd.md §1.5): fds are
ours only if LISTEN_PID is our pid; they start at 3; names come from LISTEN_FDNAMES.
"""

from __future__ import annotations

import fcntl
import os
import socket

SD_LISTEN_FDS_START = 3


def listen_fds(unset_environment: bool = True) -> list[tuple[int, str]]:
    """[(fd, name)] passed to this process, or [] when it was not socket-activated."""
    try:
        pid = int(os.environ.get("LISTEN_PID", ""))
        n = int(os.environ.get("LISTEN_FDS", ""))
    except ValueError:
        return []
    finally:
        if unset_environment:
            names_env = os.environ.pop("LISTEN_FDNAMES", None)
            os.environ.pop("LISTEN_PID", None)
            os.environ.pop("LISTEN_FDS", None)
        else:
            names_env = os.environ.get("LISTEN_FDNAMES")
    if pid != os.getpid() or n <= 0:
        return []
    names = names_env.split(":") if names_env else ["unknown"] * n
    if len(names) != n:
        names = ["unknown"] * n
    fds = list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + n))
    for fd in fds:
        # Don't leak the listeners into anything we might spawn.
        flags = fcntl.fcntl(fd, fcntl.F_GETFD)
        fcntl.fcntl(fd, fcntl.F_SETFD, flags | fcntl.FD_CLOEXEC)
    return list(zip(fds, names, strict=True))


def socket_from_fd(fd: int) -> socket.socket:
    """A socket object for an inherited fd (family and type are read from the fd)."""
    return socket.socket(fileno=fd)

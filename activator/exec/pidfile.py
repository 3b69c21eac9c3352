"""Reading PIDFile= as root: the file read is the file whose owner is checked.

systemd's service_load_pid_file(): a PID file written by anyone but root may only name
a process of the service. The owner is taken from the opened fd (fstat), never from a
separate stat of the path, and a PID file reached through a symbolic link counts as not
root's whoever owns its target: the link may be the service's own, swapped in at any
moment (systemd's chase() with CHASE_SAFE refuses such a transition).
"""

from __future__ import annotations

import errno
import os
import stat

#: More than any pid needs; a PID file is one line.
_MAX = 4096


class PidFileError(Exception):
    """The PID file cannot be used; the text says why (``No such file or directory``)."""


def read_pidfile(path: str) -> tuple[int, bool]:
    """(pid, trusted): the pid the file names and whether root wrote it (then it may name
    any process). Raises PidFileError."""
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
    trusted = True
    try:
        try:
            fd = os.open(path, flags | os.O_NOFOLLOW)
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            fd = os.open(path, flags)
            trusted = False
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise PidFileError("not a regular file")
            data = os.read(fd, _MAX)
        finally:
            os.close(fd)
    except OSError as e:
        raise PidFileError(e.strerror or str(e)) from None
    try:
        pid = int(data.split()[0])
    except (ValueError, IndexError):
        raise PidFileError("no pid in it") from None
    return pid, trusted and st.st_uid == 0

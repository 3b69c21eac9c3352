"""Reading a configuration file whole, safely: regular files only, with a size cap.

Unit files, drop-ins and EnvironmentFile= are named by whoever writes the units
directory, and activator may run as PID 1: a FIFO there must not hang the loader, a
character device (/dev/zero) must not be read until memory runs out, and opening a
terminal must not make it activator's controlling terminal. So a file is ``stat()``-ed
before it is opened (opening some devices has side effects), opened with
``O_NONBLOCK|O_CLOEXEC|O_NOCTTY``, checked again with ``fstat()`` on the descriptor (the
path may have been swapped meanwhile), and read up to a cap.
"""

from __future__ import annotations

import errno
import os
import stat

# A unit file is a few KiB (Debian's largest, systemd-networkd.service, is 2.4 KiB).
# 4 MiB is the cap older systemd releases put on a file read whole (READ_FULL_BYTES_MAX)
# and four of its longest lines (LONG_LINE_MAX, 1 MiB); it bounds what one file can make
# a load hold. An environment file never needs more either: execve() takes at most
# ARG_MAX (2 MiB by default) of arguments and environment together.
MAX_FILE_SIZE = 4 * 1024 * 1024

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileRefused(OSError):
    """A file that is not read: not a regular file, or over the size cap.

    An OSError, so that callers which report ``e.strerror`` for unreadable files
    report these the same way ("cannot read: not a regular file (a FIFO)").
    """

    def __init__(self, code: int, reason: str, path: str) -> None:
        super().__init__(code, reason, path)


def _check(st: os.stat_result, path: str, limit: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        kind = next((what for test, what in _KINDS if test(st.st_mode)), "a special file")
        raise FileRefused(errno.EINVAL, f"not a regular file ({kind})", path)
    if st.st_size > limit:
        raise FileRefused(errno.EFBIG, f"larger than {_mib(limit)}, not read", path)


def _mib(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n} bytes"


def read_regular_file(path: str, limit: int = MAX_FILE_SIZE) -> bytes:
    """The bytes of the regular file at ``path`` (symlinks followed), at most ``limit``.

    Raises ``FileRefused`` (an OSError) for anything but a regular file and for a file
    over ``limit`` bytes, OSError when it cannot be opened or read. Closes what it opens.
    """
    return read_regular_file_st(path, limit)[0]


def read_regular_file_st(path: str, limit: int = MAX_FILE_SIZE) -> tuple[bytes, os.stat_result]:
    """``read_regular_file()``, and the file's status as read (its descriptor's fstat)."""
    _check(os.stat(path), path, limit)
    fd = os.open(path, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        _check(st, path, limit)
        chunks: list[bytes] = []
        size = 0
        # st_size can lie (a file growing meanwhile, procfs): read to EOF, up to the cap.
        while True:
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise FileRefused(errno.EFBIG, f"larger than {_mib(limit)}, not read", path)
        return b"".join(chunks), st
    finally:
        os.close(fd)

"""What /proc says about a process: its parent, a status field, memory, command name.

Every reader returns None (or an empty string) for a process that is gone or a file
that cannot be read: a process can exit between any two looks at it.
"""

from __future__ import annotations

import os


def read_text(path: str) -> str:
    """The whole of a small file, "" when it cannot be read."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def stat_fields(pid: int, *which: int) -> tuple[int, ...] | None:
    """Numeric fields of /proc/PID/stat, counted from the state (0) after the command
    name: 1 the parent, 2 the process group, 3 the session, 19 the start time in ticks
    after boot. None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        # the command name may hold anything, ")" included: parse from the last ")"
        fields = data[data.rindex(b")") + 2 :].split()
        return tuple(int(fields[i]) for i in which)
    except (OSError, ValueError, IndexError):
        return None


def parent_of(pid: int) -> int | None:
    """The parent pid of a process, None when it is gone."""
    fields = stat_fields(pid, 1)
    return None if fields is None else fields[0]


def status_field(pid: int | None, field: str) -> str | None:
    """One field of /proc/PID/status ("VmRSS", "Name", "Groups" …), without its label."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return line.split(None, 1)[1].strip() if line.split(None, 1)[1:] else ""
    except OSError:
        return None
    return None


def memory(pid: int | None) -> int | None:
    """Resident memory of a process in bytes (VmRSS), while it runs."""
    rss = status_field(pid, "VmRSS")
    return int(rss.split()[0]) * 1024 if rss else None


def comm(pid: int | None) -> str | None:
    """The command name of a process (its Name: line)."""
    return status_field(pid, "Name")


def groups(pid: int) -> set[int]:
    """The supplementary groups of a process, as /proc says now (empty when it is gone)."""
    text = status_field(pid, "Groups")
    try:
        return {int(g) for g in text.split()} if text else set()
    except ValueError:
        return set()


def open_fds() -> int:
    """How many fds this process has open (the listing's own included)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0

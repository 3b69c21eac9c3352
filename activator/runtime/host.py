"""The world as the runtime sees it: time, timers, processes, signals, fds.

The manager's Host is this one; tests/lifecycle give a Service a fake of the same shape
(a clock moved by hand, a spawner that hands out pids, no processes). Nothing here
knows about units.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from ..core import procfs
from ..exec import _spawn
from ..exec.spec import ExecSpec, Spawned, spawn_detailed


class Host:
    def __init__(self) -> None:
        self.orphan_listeners: set[Callable[[], None]] = set()

    @staticmethod
    def spawn(spec: ExecSpec) -> Spawned:
        """The process, with what the spawn core let pass as systemd does in a container
        (``notes``: logged at debug level by the caller). Raises as spec.spawn()."""
        return spawn_detailed(spec)

    @staticmethod
    def clock() -> float:
        return asyncio.get_running_loop().time()

    @staticmethod
    def call_at(when: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_at(when, callback)

    @staticmethod
    def add_reader(fd: int, callback: Callable[[], None]) -> None:
        asyncio.get_running_loop().add_reader(fd, callback)

    @staticmethod
    def remove_reader(fd: int) -> None:
        asyncio.get_running_loop().remove_reader(fd)

    @staticmethod
    def signal(pid: int, sig: int, *, group: bool) -> bool:
        """kill()/killpg(); False when there is no such process (group)."""
        try:
            (os.killpg if group else os.kill)(pid, sig)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # it exists
        return True

    @staticmethod
    def parent_of(pid: int) -> int | None:
        """The parent pid of a process, None when it is gone."""
        return procfs.parent_of(pid)

    @staticmethod
    def groups_of(pid: int) -> set[int]:
        """The session and process group of a process (empty when it is gone)."""
        try:
            return {os.getsid(pid), os.getpgid(pid)}
        except OSError:
            return set()

    @staticmethod
    def open_pidfd(pid: int) -> int | None:
        try:
            return os.pidfd_open(pid)
        except OSError:
            return None

    def orphan_exited(self) -> None:
        """The reaper reaped a process nobody watched (a service's leftover, maybe)."""
        for cb in list(self.orphan_listeners):
            cb()

    @staticmethod
    def become_subreaper() -> bool:
        """Orphans of services come back to activator (a forking daemon, leftovers of a
        process group), so the reaper sees them exit. PID 1 is one anyway."""
        return _spawn.set_subreaper()

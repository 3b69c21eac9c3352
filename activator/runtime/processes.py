"""The processes of one start, without cgroups: sessions and process groups.

Every process activator spawns leads its own session (setsid in the spawn core), so
``KillMode=control-group`` reaches what a service started through the process groups
of its processes; an adopted main process (PIDFile=, MAINPID=, a guess) brings its
own. A process that leaves with setsid() escapes, which is the README's documented
difference from systemd. activator is a subreaper, so orphans of a service come back
to it: a process whose parent is activator and that no service owns is the one a
forking daemon left behind.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterable
from typing import Protocol


class _Host(Protocol):
    def signal(self, pid: int, sig: int, *, group: bool) -> bool: ...
    def parent_of(self, pid: int) -> int | None: ...
    def groups_of(self, pid: int) -> set[int]: ...


class ProcessGroups:
    __slots__ = ("_host", "ids")

    def __init__(self, host: _Host) -> None:
        self._host = host
        # a tuple, not a set: an instance has one group (48 bytes, a set is 216)
        self.ids: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.ids)

    def add(self, pid: int) -> None:
        """A process activator spawned: it leads its own group."""
        if pid not in self.ids:
            self.ids += (pid,)

    def adopt(self, pid: int) -> None:
        """A process activator did not spawn: its session and group become the unit's."""
        self.ids += tuple(self._host.groups_of(pid).difference(self.ids))

    def clear(self) -> None:
        self.ids = ()

    def belongs(self, pid: int) -> bool:
        """A process of this start: in one of its groups, or an orphan re-parented to us."""
        host = self._host
        return not host.groups_of(pid).isdisjoint(self.ids) or host.parent_of(pid) == os.getpid()

    def alive(self) -> bool:
        """Whether any group still has a process (empty ones are forgotten)."""
        self.signal(0)
        return bool(self.ids)

    def signal(self, sig: int, hup: bool = False) -> set[int]:
        """Signal every group (and SIGHUP after it with ``hup``); the groups that exist."""
        host = self._host
        alive = {g for g in self.ids if host.signal(g, sig, group=True)}
        if hup:
            for g in alive:
                host.signal(g, signal.SIGHUP, group=True)
        self.ids = tuple(alive)
        return alive

    def reached(self, pid: int, hit: set[int]) -> bool:
        """Whether signalling the groups ``hit`` reached ``pid`` already."""
        return pid in hit or bool(hit and self._host.groups_of(pid) & hit)


def orphan_children(host: _Host, known: Iterable[int], belongs: Callable[[int], bool]) -> list[int]:
    """Children of activator that no service owns and that ``belongs`` claims: the
    daemons a forking start left behind (GuessMainPID=)."""
    me = os.getpid()
    skip = set(known)
    try:
        pids = [int(e.name) for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return []
    return [p for p in pids if p not in skip and host.parent_of(p) == me and belongs(p)]

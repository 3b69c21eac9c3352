"""WatchdogSec= for one service: a deadline that WATCHDOG=1 pushes back.

Counted from the service's start-post (its READY=1), reset by every ``WATCHDOG=1``;
``WATCHDOG_USEC=`` replaces the configured interval until the next start. When it
runs out the service is told (``watchdog_expired``), which sends WatchdogSignal= and fails
it with result ``watchdog``. The timer lives only while the service is in a state
where it is watched (``watchdog_armed()``: start-post, running, reload).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol


class Clock(Protocol):
    def clock(self) -> float: ...
    def call_at(self, when: float, callback: Callable[[], None]) -> Any: ...


class Watched(Protocol):
    """The service a watchdog watches (one reference, not three closures per service)."""

    def watchdog_configured(self) -> float:
        """WatchdogSec= of the current unit (a reload may change it)."""
        ...

    def watchdog_armed(self) -> bool:
        """In a state where it is watched."""
        ...

    def watchdog_expired(self) -> None: ...


class Watchdog:
    __slots__ = ("_host", "_owner", "_timer", "_last", "override")

    def __init__(self, host: Clock, owner: Watched) -> None:
        self._host = host
        self._owner = owner
        self._timer: Any = None
        self._last = 0.0
        self.override: float | None = None  # WATCHDOG_USEC=, until the next start

    @property
    def seconds(self) -> float:
        return self.override if self.override is not None else self._owner.watchdog_configured()

    def reset(self) -> None:
        """WATCHDOG=1 (or the start-post of a start): the interval begins again now."""
        self._last = self._host.clock()
        self.start()

    def start(self) -> None:
        """(Re)arm from the last ping, with the current interval."""
        self.stop()
        sec = self.seconds
        if sec <= 0 or sec == math.inf or not self._owner.watchdog_armed():
            return
        self._timer = self._host.call_at(self._last + sec, self._expired)

    def set_usec(self, usec: int) -> None:
        """WATCHDOG_USEC=: a new interval (0: off), counted from the last ping."""
        self.override = math.inf if usec <= 0 else usec / 1_000_000
        self.start()

    def carried(self) -> list[float | None]:
        """The last ping and WATCHDOG_USEC= (what a re-exec hands over)."""
        return [self._last, self.override]

    def carry_on(self, last: float, override: float | None) -> None:
        """Go on from ``carried()`` of the activator this process replaced."""
        self._last, self.override = last, override
        self.start()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        self._owner.watchdog_expired()

"""X-Activator-IdleStopSec=: scale to zero — an Accept=no service with no connection for that
long is stopped; its sockets listen on, and the next connection starts it again.

Nothing is lost by the stop: the listeners never leave activator, so a connection that
arrives while the service stops waits in the kernel's queue (or, proxied, in activator)
and triggers the next start. A service that accepts its connections itself may still take
one between the decision and SIGTERM: a server that finishes what it accepted before it
exits (most do on SIGTERM) loses nothing; a proxied service cannot race at all.

What "no connection" means, per socket of the service (``IdleSource``):

- proxied (X-Activator-ProxyTo=): activator relays every connection, so it knows: none
  waiting or relayed, and none came since the last look;
- the service accepts itself: the kernel's count of connections on the listener's address
  (core/sockdiag.py), and whether the listener became readable since the last look (a
  reader on it while the service runs catches connections that came and went between
  two looks, at most one wake-up per look).

The watch looks every IdleStopSec=/4 (20 ms to 30 s) while the service is active, and
never while it is not; the service stops between IdleStopSec= and 1.25× that after its
last connection. Each start counts toward StartLimitBurst=, as any start does.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from ..core.log import EventLog

_MIN_LOOK, _MAX_LOOK = 0.02, 30.0


class IdleSource(Protocol):
    """A socket of the service (socket.SocketRuntime)."""

    name: str

    def idle_busy(self) -> bool:
        """Whether it had or has a connection since the last call (and look again from now)."""
        ...

    def idle_connections(self) -> int:
        """Its connections now (for status)."""
        ...


class IdleService(Protocol):
    """The service watched (service.Service)."""

    name: str
    idle_stop: Any

    @property
    def unit(self) -> Any: ...
    def request_stop(self) -> None: ...


class IdleStop:
    """The idle watch of one service, shared by the sockets that trigger it."""

    def __init__(self, svc: IdleService, log: EventLog) -> None:
        self.svc = svc
        self.log = log
        self.sources: dict[str, IdleSource] = {}
        self.last_busy = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def of(cls, svc: IdleService, log: EventLog) -> IdleStop:
        """The service's watch, made on first use."""
        if svc.idle_stop is None:
            svc.idle_stop = cls(svc, log)
        watch: IdleStop = svc.idle_stop
        return watch

    @property
    def after(self) -> float:
        return float(self.svc.unit.Service.IdleStopSec)

    @property
    def armed(self) -> bool:
        return self._timer is not None

    def attach(self, source: IdleSource) -> None:
        self.sources[source.name] = source

    def detach(self, source: IdleSource) -> None:
        self.sources.pop(source.name, None)
        if not self.sources:
            self.disarm()

    def arm(self) -> None:
        """The service is active: start looking (a no-op when looking already)."""
        if self._timer is not None or self.after <= 0:
            return
        self.last_busy = time.monotonic()
        self._schedule()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        t = self.after
        look = min(max(t / 4, _MIN_LOOK), _MAX_LOOK)
        left = t - (time.monotonic() - self.last_busy)
        self._timer = asyncio.get_running_loop().call_later(max(min(look, left), 0.001), self._look)

    def _look(self) -> None:
        self._timer = None
        now = time.monotonic()
        busy = [s.name for s in list(self.sources.values()) if s.idle_busy()]
        if busy:
            self.last_busy = now
        elif now - self.last_busy >= self.after:
            self.log(
                "idle",
                self.svc.name,
                reason=f"no connection for {now - self.last_busy:.1f}s "
                f"(X-Activator-IdleStopSec={self.after:g}s); stopping, sockets listen on",
            )
            self.svc.request_stop()
            return
        self._schedule()

    def report(self) -> dict[str, Any]:
        """What status shows: when it stops without a connection, and how many there are."""
        left = None
        if self._timer is not None:
            left = max(0.0, self.after - (time.monotonic() - self.last_busy))
        return {
            "after": self.after,
            "stop_in": left,
            "connections": sum(s.idle_connections() for s in self.sources.values()),
        }

"""systemd's ratelimit_below(): at most ``burst`` events per ``interval`` seconds."""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimit:
    __slots__ = ("interval", "burst", "clock", "begin", "count")

    def __init__(
        self, interval: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self.burst = burst
        self.clock = clock
        self.begin = 0.0
        self.count = 0

    @property
    def enabled(self) -> bool:
        return self.interval > 0 and self.burst > 0

    def below(self) -> bool:
        """Count one event; False when it is over the limit (the event should be refused)."""
        if not self.enabled:
            return True
        now = self.clock()
        if self.begin == 0.0 or now - self.begin >= self.interval:
            self.begin, self.count = now, 0
        self.count += 1
        return self.count <= self.burst

    def remaining(self) -> float:
        """Seconds until the current interval is over."""
        return max(0.0, self.interval - (self.clock() - self.begin))

    def reset(self) -> None:
        self.begin, self.count = 0.0, 0

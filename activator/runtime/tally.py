"""Counters the metrics need that no unit keeps: starts, ends by result, spawn latency.

Kept per unit — per template for the instances of an Accept=yes socket, so a busy socket
is one series, not one per connection. Plain dict increments: the accept lane's books
call these once per connection.
"""

from __future__ import annotations

import bisect
from collections import Counter

#: Upper bounds (seconds) of the spawn latency histogram's buckets.
SPAWN_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1, 0.5)


class Tally:
    def __init__(self) -> None:
        self.starts: Counter[str] = Counter()
        self.ends: Counter[tuple[str, str]] = Counter()  # (unit, result)
        self.spawn_counts = [0] * (len(SPAWN_BUCKETS) + 1)  # the last: +Inf
        self.spawn_sum = 0.0

    def started(self, unit: str) -> None:
        """A main process started (an instance counts under its template)."""
        self.starts[unit] += 1

    def ended(self, unit: str, result: str) -> None:
        """A run of the unit is over: success, exit-code, signal, timeout …"""
        self.ends[(unit, result)] += 1

    def spawned(self, seconds: float) -> None:
        """One spawn by the event loop: from the call until the child had exec'd."""
        self.spawn_counts[bisect.bisect_left(SPAWN_BUCKETS, seconds)] += 1
        self.spawn_sum += seconds

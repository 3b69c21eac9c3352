"""Who may connect to a socket activator accepts on itself: address rules, sources by
prefix, connection rates.

Used where activator holds the connection before anything runs for it — the event
loop's Accept=yes path (acceptloop.py) and the proxy (proxy.py). The accept lane checks
the address rules in C (ipfilter.table(), _lane.c) and takes no unit with the others.

- ``IPAddressAllow=``/``IPAddressDeny=``: the BPF filter on the listener drops denied
  peers in the kernel; this is the check for connections queued before it was attached.
- ``X-Activator-PerSourcePrefix=V4/V6``: a source is its address's first V4 or V6 bits
  (default 32/64: one IPv6 client owns a /64), for ``MaxConnectionsPerSource=`` and
  ``X-Activator-ConnectionRate=``.
- ``X-Activator-ConnectionRate=N/T`` (per source) and ``…Total=`` (per socket): token
  buckets of N tokens refilled at N per T; a connection without a token is reset at once.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..units.model import Rate, SocketSection

if TYPE_CHECKING:
    from ..exec.ipfilter import AddressRules

#: Sources whose buckets are kept at most; past it full buckets are forgotten (they hold
#: nothing a new one would not), and if that is not enough, all of them.
MAX_SOURCES = 1 << 16

IP_DENY, RATE, RATE_TOTAL = "ip-deny", "rate", "rate-total"


class TokenBucket:
    """``rate.count`` tokens, refilled continuously at ``count`` per ``interval``."""

    __slots__ = ("count", "per_second", "tokens", "stamp")

    def __init__(self, rate: Rate, now: float) -> None:
        self.count = float(rate.count)
        self.per_second = rate.count / rate.interval
        self.tokens = self.count
        self.stamp = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.count, self.tokens + (now - self.stamp) * self.per_second)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def full_at(self, now: float) -> bool:
        return self.tokens + (now - self.stamp) * self.per_second >= self.count


class Admission:
    """One socket's admission rules (built from its [Socket] section; a reload builds anew)."""

    def __init__(self, sec: SocketSection, clock: Callable[[], float] = time.monotonic) -> None:
        self.rules: AddressRules | None = None
        if sec.IPAddressAllow or sec.IPAddressDeny:  # the compiler loads only where used
            from ..exec.ipfilter import AddressRules

            self.rules = AddressRules.from_lists(sec.IPAddressAllow, sec.IPAddressDeny)
        self.clock = clock
        self.v4_host = 32 - sec.PerSourcePrefix[0]
        self.v6_host = 128 - sec.PerSourcePrefix[1]
        self.rate = sec.ConnectionRate
        self.buckets: dict[str, TokenBucket] = {}
        self.total = (
            TokenBucket(sec.ConnectionRateTotal, clock()) if sec.ConnectionRateTotal else None
        )
        #: whether check() has anything to do (the hot path skips it otherwise)
        self.active = self.rules is not None or self.rate is not None or self.total is not None

    def source(self, remote: str) -> str:
        """The source a peer counts as: its address, or its prefix ("2001:db8:0:1::/64")."""
        v6 = ":" in remote
        host = self.v6_host if v6 else self.v4_host
        if host == 0:
            return remote
        fam, width = (socket.AF_INET6, 128) if v6 else (socket.AF_INET, 32)
        value = int.from_bytes(socket.inet_pton(fam, remote)) >> host << host
        net = socket.inet_ntop(fam, value.to_bytes(width // 8, "big"))
        return f"{net}/{width - host}"

    def check(self, remote: str | None) -> str | None:
        """Why a connection from ``remote`` is refused (IP_DENY, RATE_TOTAL, RATE), or None;
        takes its tokens when it is admitted. A unix peer (None) passes: the rules speak of
        IP addresses."""
        if remote is None:
            return None
        if self.rules is not None and self.rules.denied(remote):
            return IP_DENY
        now = self.clock()
        if self.total is not None and not self.total.take(now):
            return RATE_TOTAL
        if self.rate is None:
            return None
        key = self.source(remote)
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= MAX_SOURCES:
                self._forget(now)
            bucket = self.buckets[key] = TokenBucket(self.rate, now)
        return None if bucket.take(now) else RATE

    def _forget(self, now: float) -> None:
        full = [k for k, b in self.buckets.items() if b.full_at(now)]
        for k in full:
            del self.buckets[k]
        if len(self.buckets) >= MAX_SOURCES:  # that many sources all busy: start afresh
            self.buckets.clear()

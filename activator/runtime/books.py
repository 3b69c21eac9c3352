"""The books of an Accept=yes socket: what it accepted, refused and has running.

One ``AcceptBooks`` per socket, kept by whichever path accepts its connections — the
event loop (acceptloop.py) or an accept lane (lane.py) — so ``status`` reads one set of
counters and the log has the same ``start``/``reject`` lines whoever accepted. The lane
keeps the books on the hot path: the counters are plain attributes it updates in place,
no call per connection; refusals (rare by nature) go through methods that also log.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..core.log import EventLog
from ..core.ratelimit import RateLimit

#: Refusals by the admission rules (admission.py) come in floods (a scanner, a client in a
#: loop): at most this many log lines per interval per socket, then one that says how many
#: were left out.
_LINES, _LINES_INTERVAL = 10, 10.0


class AcceptBooks:
    def __init__(self, unit: str, log: EventLog) -> None:
        self.unit = unit
        self.log = log
        self.n_accepted = 0  # also the number of the next connection's instance
        self.n_connections = 0  # instances running
        self.n_refused = 0
        self.refused_limit = 0  # MaxConnections=
        self.refused_per_source = 0  # MaxConnectionsPerSource=
        self.refused_trigger = 0  # pauses by the trigger limit
        self.refused_by: Counter[str] = Counter()  # admission.py's reasons: ip-deny, rate …
        self.n_triggered = 0  # Accept=no: traffic that started (or found) the service
        self.per_source: Counter[str] = Counter()
        self._lines = RateLimit(_LINES_INTERVAL, _LINES)
        self._unlogged = 0

    def refuse_limit(self, peer: str | None, active: int) -> None:
        """A connection closed at MaxConnections= (systemd's accept-and-close)."""
        self.n_refused += 1
        self.refused_limit += 1
        self.log("reject", self.unit, peer=peer, reason=f"too many incoming connections ({active})")

    def refuse_source(self, remote: str) -> None:
        """A connection closed at MaxConnectionsPerSource= (``remote``: its source, an
        address or, with X-Activator-PerSourcePrefix=, a prefix)."""
        self.n_refused += 1
        self.refused_per_source += 1
        self.log(
            "reject",
            self.unit,
            peer=remote,
            reason=f"too many connections from {remote} ({self.per_source[remote]})",
        )

    def refuse(self, reason: str, peer: str | None, source: str | None = None) -> None:
        """A connection reset by an admission rule (``reason``: ip-deny, rate, rate-total);
        logged, at most _LINES lines per _LINES_INTERVAL seconds."""
        self.n_refused += 1
        self.refused_by[reason] += 1
        if not self._lines.below():
            self._unlogged += 1
            return
        left_out, self._unlogged = self._unlogged, 0
        self.log(
            "reject",
            self.unit,
            peer=peer,
            reason=reason,
            source=source,
            suppressed=left_out or None,
        )

    def connected(self, remote: str | None) -> None:
        """An instance runs for a connection from ``remote`` (None: a unix peer)."""
        self.n_connections += 1
        if remote is not None:
            self.per_source[remote] += 1

    def gone(self, remote: str | None) -> None:
        """That instance is done."""
        self.n_connections -= 1
        if remote is not None:
            left = self.per_source[remote] - 1
            if left > 0:
                self.per_source[remote] = left
            else:
                del self.per_source[remote]

    def counters(self) -> dict[str, Any]:
        """The counters as ``status`` shows them."""
        return {
            "NAccepted": self.n_accepted,
            "NConnections": self.n_connections,
            "NRefused": self.n_refused,
            "refused": {
                "limit": self.refused_limit,
                "per_source": self.refused_per_source,
                "trigger_limit": self.refused_trigger,
                "ip_deny": self.refused_by["ip-deny"],
                "rate": self.refused_by["rate"],
                "rate_total": self.refused_by["rate-total"],
            },
        }

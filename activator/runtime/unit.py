"""The one interface every unit has at run time (systemd's UnitVTable).

Sockets, services and the accept lane's per-connection records implement it; the
control plane and the manager call it and never ask which kind of unit they hold. A
unit that refuses an operation raises (``RefusedError`` and its kinds, with the
control protocol's code on them), so a refusal reads the same whoever asked.

An operation is checked for every unit named (``check``) before it is carried out on
any, as systemctl's jobs are: ``reload a.service b.socket`` reloads nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..core.errors import RefusedError
from ..units.model import ServiceUnit, SocketUnit


class RuntimeUnit(Protocol):
    name: str
    kind: str  # "socket" | "service"
    since: float  # when the public state last changed (time.time())

    @property
    def unit(self) -> SocketUnit | ServiceUnit: ...
    @property
    def active_state(self) -> str:
        """systemd's ActiveState: active, reloading, inactive, failed, activating, deactivating."""
        ...

    @property
    def sub_state(self) -> str:
        """systemd's SubState: listening, running, dead, start-pre …"""
        ...

    @property
    def state(self) -> Any:
        """The unit's own state (ServiceState, SocketState)."""
        ...

    @property
    def result(self) -> Any: ...

    def check(self, verb: str) -> None:
        """Raise RefusedError (or a kind of it) if ``verb`` may not be carried out now."""
        ...

    def observe(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(unit)`` whenever the unit's public state may have changed."""
        ...

    def start(self) -> None:
        """Begin a start; its outcome is awaited with settle()."""
        ...

    async def stop(self, *, restart: bool = False) -> None:
        """Stop; returns when the unit is down. ``restart``: the stop half of a restart (a
        service keeps its fd store, sends RestartKillSignal=), whose start follows."""
        ...

    async def restart(self) -> None: ...
    async def reload(self) -> None: ...
    def kill(self, sig: int) -> int | None:
        """Send ``sig`` (as KillMode= says); the main pid, None when nothing runs."""
        ...

    def reset_failed(self) -> bool:
        """Forget a failure (and the start limit); whether the unit was failed."""
        ...

    async def settle(self, verb: str) -> str | None:
        """Wait until a start/stop/restart/reload has run its course (bounded by the
        unit's own timeouts); why it failed, None when it did not."""
        ...

    def describe(self) -> dict[str, Any]:
        """What ``status`` shows of this kind of unit (the generic part is the caller's)."""
        ...

    def properties(self) -> dict[str, str]:
        """``show``'s run-time properties of this kind of unit, before its directives."""
        ...


class RuntimeUnitBase:
    """What every kind of unit shares: refusing a manual start or stop as the unit asks."""

    __slots__ = ()
    name: str
    unit: Any  # SocketUnit | ServiceUnit

    def check(self, verb: str) -> None:
        u = self.unit.Unit
        for refused in {"start": ("start",), "stop": ("stop",), "restart": ("stop", "start")}.get(
            verb, ()
        ):
            if u.RefuseManualStart if refused == "start" else u.RefuseManualStop:
                raise RefusedError(
                    f"{self.name}: manual {refused} refused (RefuseManual{refused.title()}=yes)"
                )

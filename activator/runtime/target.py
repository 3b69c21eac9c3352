"""Targets and placeholders at run time: units with nothing to run.

A target (systemd.target(5)) only groups and orders: it is active once its start job
runs — which the job engine lets happen only after the jobs it is ordered after — and
inactive once stopped. A placeholder stands for a unit type a container does not have
(.mount, .device, .timer …): it is always active, so what depends on it is satisfied.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from ..core.errors import NotActiveError, RefusedError
from ..core.log import EventLog
from ..core.states import Result, TargetState
from ..units.model import PlaceholderUnit, TargetUnit
from .unit import RuntimeUnitBase


class TargetContext(Protocol):
    log: EventLog


class Target(RuntimeUnitBase):
    kind = "target"

    def __init__(self, ctx: TargetContext, unit: TargetUnit) -> None:
        self.ctx = ctx
        self.unit = unit
        self.name = unit.name
        self.state = TargetState.INACTIVE
        self.result = Result.SUCCESS
        self.since = time.time()
        self.listeners: list[Callable[[Target], None]] = []

    def _set(self, state: TargetState) -> None:
        if state != self.state:
            self.state = state
            self.since = time.time()
            for cb in list(self.listeners):
                cb(self)

    def observe(self, callback: Callable[[Target], None]) -> None:
        self.listeners.append(callback)

    @property
    def active_state(self) -> str:
        return str(self.state)

    @property
    def sub_state(self) -> str:
        return "active" if self.state == TargetState.ACTIVE else "dead"

    def restore(self, state: str, since: float) -> None:
        """As the activator this process replaced had it (a re-exec); nobody is told."""
        self.state = TargetState(state)
        self.since = since

    def check(self, verb: str) -> None:
        super().check(verb)
        if verb == "reload":
            raise RefusedError(f"{self.name}: a target cannot be reloaded")
        if verb == "kill":
            raise NotActiveError(f"{self.name} has no process to signal")

    def start(self) -> None:
        if self.state == TargetState.INACTIVE:
            self.ctx.log("reached", self.name)  # systemd: "Reached target …"
            self._set(TargetState.ACTIVE)

    async def stop(self, *, restart: bool = False) -> None:
        if self.state == TargetState.ACTIVE:
            self.ctx.log("stop", self.name)
            self._set(TargetState.INACTIVE)

    async def restart(self) -> None:
        await self.stop()
        self.start()

    async def reload(self) -> None:
        self.check("reload")

    def kill(self, sig: int) -> int | None:
        self.check("kill")
        return None

    def reset_failed(self) -> bool:
        return False

    async def settle(self, verb: str) -> str | None:
        return None

    def describe(self) -> dict[str, Any]:
        return {}

    def properties(self) -> dict[str, str]:
        return {}


class Placeholder(Target):
    """A .mount, .device, .timer … unit: present and active for its whole life."""

    def __init__(self, ctx: TargetContext, unit: PlaceholderUnit) -> None:
        self.ctx = ctx
        self.unit = unit
        self.name = unit.name
        self.kind = unit.kind
        self.state = TargetState.ACTIVE
        self.result = Result.SUCCESS
        self.since = time.time()
        self.listeners = []

    def start(self) -> None:
        pass

    async def stop(self, *, restart: bool = False) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"note": f".{self.kind} units do not exist in a container: counted as present"}

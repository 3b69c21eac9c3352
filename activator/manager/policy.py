"""What ends activator, with which exit status, and how long its shutdown may take.

- **The failure policy** (``--on-failure``): ``continue`` (systemd's way, the default) logs
  a failed unit and goes on; ``exit`` stops everything, in order, and exits when a unit
  fails to load (or the units directory is missing or holds no unit: 3) or a unit fails
  while running (a service, a socket that cannot bind, a start limit hit: 4). Instances
  of an Accept=yes socket do not count: they are one connection's, and a peer can make
  one fail at will.
- **A unit's own** ``FailureAction=``/``SuccessAction=`` (systemd.unit(5)): ``exit`` stops
  everything and exits with ``FailureActionExitStatus=``/``SuccessActionExitStatus=`` (by
  default a failed service's exit status, else 4; 0 for success); ``exit-force`` stops
  everything at once (SIGKILL, no stop timeouts). A container has no machine to reboot or
  power off: ``reboot``, ``poweroff``, ``halt``, ``kexec``, ``soft-reboot`` mean ``exit``,
  their ``-force``/``-immediate`` forms ``exit-force``.
- **After SIGTERM** the exit status is 5 when a service ended failed during the stop (a stop
  that needed SIGKILL ends ``failed (timeout)``), unless a reason above came first.
- **The stop deadline** (``--stop-deadline D``): the whole shutdown gets D seconds. At
  D − min(D/4, 2 s) every service still stopping gets SIGKILL (systemd's stop-sigkill, so
  ``ExecStopPost=`` still runs), at D what is left is killed and activator exits.

``system_state()`` is systemd's ``is-system-running`` view of the same books: a failed unit
makes the system ``degraded``.
"""

from __future__ import annotations

import asyncio
import math
import signal
from collections.abc import Iterable
from typing import Any, Protocol

from ..core.errors import EXIT_LOAD, EXIT_OK, EXIT_STOP, EXIT_UNIT
from ..core.log import EventLog
from ..runtime.unit import RuntimeUnit

#: Actions that skip the orderly stop (systemd's *-force and *-immediate).
_FORCE = frozenset(
    {
        "exit-force",
        "reboot-force",
        "reboot-immediate",
        "poweroff-force",
        "poweroff-immediate",
        "halt-force",
        "halt-immediate",
        "kexec-force",
        "soft-reboot-force",
    }
)
_DOWN = ("inactive", "failed")


class Host(Protocol):
    """What the policy uses of the manager."""

    log: EventLog
    stopping: bool

    def request_stop(self, reason: str = "signal", *, force: bool = False) -> None: ...


class Policy:
    def __init__(
        self,
        *,
        on_failure: str = "continue",
        default_timeout_stop: float = 90.0,
        stop_deadline: float | None = None,
    ) -> None:
        self.on_failure = on_failure
        self.default_timeout_stop = default_timeout_stop
        self.stop_deadline = stop_deadline
        self.status: int | None = None  # the first reason to exit, when there is one
        self.stop_failures: list[str] = []  # services that ended failed during the stop
        self._states: dict[str, str] = {}
        self._kill_at = math.inf  # loop time: stop-* states end here (SIGKILL)
        self._end_at = math.inf  # loop time: everything ends here

    # ------------------------------------------------------------ exit status
    def exit_status(self) -> int:
        if self.status is not None:
            return self.status
        return EXIT_STOP if self.stop_failures else EXIT_OK

    def _exit(self, host: Host, status: int, reason: str, *, force: bool = False) -> None:
        if host.stopping or self.status is not None:
            return
        self.status = status
        # On the next turn of the loop: the failure's own lines (logged after the state
        # change that brought us here) come before the shutdown's.
        asyncio.get_running_loop().call_soon(self._stop, host, status, reason, force)

    @staticmethod
    def _stop(host: Host, status: int, reason: str, force: bool) -> None:
        if not host.stopping:
            host.log("shutdown", None, reason=reason, status=status)
            host.request_stop(reason, force=force)

    # ------------------------------------------------------------ load
    def check_load(self, host: Host, problems: Iterable[Any], loaded: int) -> bool:
        """After loading the unit files: True when activator must not run (exit 3)."""
        if self.on_failure != "exit":
            return False
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            why = f"{len(errors)} unit file problem(s), the first: {errors[0]}"
        elif not loaded:
            why = "no unit to run"
        else:
            return False
        self.status = EXIT_LOAD
        host.log("shutdown", None, reason=f"--on-failure=exit: {why}", status=EXIT_LOAD)
        return True

    # ------------------------------------------------------------ run time
    def unit_changed(self, host: Host, unit: RuntimeUnit) -> None:
        """A loaded unit's state changed (instances of Accept=yes sockets are not here)."""
        name, now = unit.name, unit.active_state
        was = self._states.get(name, "inactive")
        if now == was:
            return
        self._states[name] = now
        if now == "failed" and host.stopping:
            self._stopped_failed(name)
        if host.stopping or unit.kind not in ("service", "socket"):
            return
        u = unit.unit.Unit
        if now == "failed":
            if u.FailureAction != "none":
                status = u.FailureActionExitStatus
                if status is None:
                    status = _exit_code(unit)
                self._act(host, u.FailureAction, status, f"{name} failed (FailureAction=)")
            elif self.on_failure == "exit":
                self._exit(host, EXIT_UNIT, f"--on-failure=exit: {name} failed ({unit.result})")
        elif now == "inactive" and was not in _DOWN and u.SuccessAction != "none":
            status = u.SuccessActionExitStatus
            self._act(
                host,
                u.SuccessAction,
                EXIT_OK if status is None else status,
                f"{name} finished (SuccessAction=)",
            )

    def _act(self, host: Host, action: str, status: int, reason: str) -> None:
        self._exit(host, status, f"{reason}: {action}", force=action in _FORCE)

    def service_ended(self, host: Host, name: str, state: str) -> None:
        """An Accept=yes instance is done (they are not observed one by one)."""
        if host.stopping and state == "failed":
            self._stopped_failed(name)

    def _stopped_failed(self, name: str) -> None:
        if name not in self.stop_failures and len(self.stop_failures) < 100:
            self.stop_failures.append(name)

    # ------------------------------------------------------------ the stop deadline
    def begin_stop(self, now: float, *, force: bool) -> float:
        """The shutdown begins (loop time ``now``): when it must be over (inf: no bound)."""
        deadline = 0.0 if force else self.stop_deadline
        if deadline is None:
            return math.inf
        self._end_at = now + deadline
        self._kill_at = self._end_at - min(deadline / 4, 2.0)
        return self._end_at

    def stop_bound(self, post: bool) -> float:
        """The latest a stop step's timer may run to: ``post`` (stop-sigkill, ExecStopPost=,
        final-*) the deadline itself, else the point where SIGKILL goes out."""
        return self._end_at if post else self._kill_at


def _exit_code(unit: Any) -> int:
    """A failed service's main exit status when it exited with one, else 4."""
    last = getattr(unit, "last_exit", None)
    if last is not None and last[0] == "exited" and 0 < last[1] < 256:
        return int(last[1])
    return EXIT_UNIT


def kill_left(services: Iterable[Any]) -> int:
    """At the deadline: SIGKILL to what is left of these services (main and control
    processes, and their process groups); how many had something left."""
    n = 0
    for svc in services:
        if svc.active_state in _DOWN:
            continue
        n += 1
        if svc.main_pid is not None:
            svc.kill(signal.SIGKILL)
        if svc.control_pid is not None:
            svc.ctx.host.signal(svc.control_pid, signal.SIGKILL, group=True)
    return n


def system_state(starting: bool, stopping: bool, units: Iterable[RuntimeUnit]) -> str:
    """systemd's is-system-running: starting, running, degraded (a unit failed), stopping."""
    if stopping:
        return "stopping"
    if starting:
        return "starting"
    return "degraded" if any(u.active_state == "failed" for u in units) else "running"

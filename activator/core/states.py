"""Named states of services and sockets, and the transitions each may take.

Every state change goes through ``check()``: a transition that is not in the
table is a bug in activator, not a runtime condition, so it raises.

A service has systemd's sub-states (``ServiceSubState``: start-pre, start,
start-post, running, stop-sigterm, auto-restart …), which is what its state
machine moves through; each maps to one of the six states the control plane
shows (``ServiceState``: inactive, activating, active, reloading, deactivating,
failed), as systemd maps SubState to ActiveState. Both tables are checked on
every change.
"""

from __future__ import annotations

from collections.abc import Set
from enum import StrEnum


class ServiceState(StrEnum):
    INACTIVE = "inactive"
    ACTIVATING = "activating"  # Exec*Pre, the main start, waiting for READY=1 / the fork / oneshot
    ACTIVE = "active"
    RELOADING = "reloading"
    DEACTIVATING = "deactivating"  # ExecStop, KillSignal, the stop timeout, ExecStopPost
    FAILED = "failed"


class ServiceSubState(StrEnum):
    """systemd's service sub-states (service.c), the ones a container can have."""

    DEAD = "dead"
    CONDITION = "condition"  # ExecCondition=
    START_PRE = "start-pre"  # ExecStartPre=
    START = "start"  # notify: waiting for READY=1; forking: for the parent; oneshot: the commands
    START_POST = "start-post"  # ExecStartPost=
    RUNNING = "running"
    EXITED = "exited"  # RemainAfterExit=yes, the main process is gone
    RELOAD = "reload"  # ExecReload=, or RELOADING=1 until READY=1
    STOP = "stop"  # ExecStop=
    STOP_WATCHDOG = "stop-watchdog"  # WatchdogSignal= sent
    STOP_SIGTERM = "stop-sigterm"  # KillSignal= sent, TimeoutStopSec= running
    STOP_SIGKILL = "stop-sigkill"
    STOP_POST = "stop-post"  # ExecStopPost=
    FINAL_SIGTERM = "final-sigterm"  # what is left of the unit's process groups
    FINAL_SIGKILL = "final-sigkill"
    FAILED = "failed"
    AUTO_RESTART = "auto-restart"  # waiting RestartSec= before the next start


class TargetState(StrEnum):
    """A target's (and a placeholder's) two states: nothing runs for it."""

    INACTIVE = "inactive"
    ACTIVE = "active"


class SocketState(StrEnum):
    INACTIVE = "inactive"  # not bound (stopped, or never started)
    LISTENING = "listening"  # watched by activator
    RUNNING = "running"  # Accept=no: handed to a running service, not watched
    PAUSED = "paused"  # trigger limit hit: not watched until the interval is over
    FAILED = "failed"


S = ServiceState
SERVICE_TRANSITIONS: dict[ServiceState, frozenset[ServiceState]] = {
    S.INACTIVE: frozenset({S.ACTIVATING, S.FAILED}),
    S.ACTIVATING: frozenset({S.ACTIVE, S.DEACTIVATING, S.INACTIVE, S.FAILED}),
    S.ACTIVE: frozenset({S.RELOADING, S.DEACTIVATING, S.INACTIVE, S.FAILED, S.ACTIVATING}),
    S.RELOADING: frozenset({S.ACTIVE, S.DEACTIVATING, S.INACTIVE, S.FAILED, S.ACTIVATING}),
    S.DEACTIVATING: frozenset({S.INACTIVE, S.FAILED, S.ACTIVATING}),
    S.FAILED: frozenset({S.ACTIVATING, S.INACTIVE}),
}

U = ServiceSubState
#: ActiveState of each sub-state, as systemd's state_translation_table. auto-restart
#: counts as activating: the service is on its way up again, and a socket leaves its
#: listeners to it (traffic queues in the kernel until the restart takes it).
PUBLIC: dict[ServiceSubState, ServiceState] = {
    U.DEAD: S.INACTIVE,
    U.CONDITION: S.ACTIVATING,
    U.START_PRE: S.ACTIVATING,
    U.START: S.ACTIVATING,
    U.START_POST: S.ACTIVATING,
    U.RUNNING: S.ACTIVE,
    U.EXITED: S.ACTIVE,
    U.RELOAD: S.RELOADING,
    U.STOP: S.DEACTIVATING,
    U.STOP_WATCHDOG: S.DEACTIVATING,
    U.STOP_SIGTERM: S.DEACTIVATING,
    U.STOP_SIGKILL: S.DEACTIVATING,
    U.STOP_POST: S.DEACTIVATING,
    U.FINAL_SIGTERM: S.DEACTIVATING,
    U.FINAL_SIGKILL: S.DEACTIVATING,
    U.FAILED: S.FAILED,
    U.AUTO_RESTART: S.ACTIVATING,
}

# The stop sequence only ever moves forward (a step may be skipped when it has nothing
# to do: no ExecStop=, nothing left to kill, no ExecStopPost=), and ends in one of _END.
_STOPPING = (
    U.STOP,
    U.STOP_WATCHDOG,
    U.STOP_SIGTERM,
    U.STOP_SIGKILL,
    U.STOP_POST,
    U.FINAL_SIGTERM,
    U.FINAL_SIGKILL,
)
_END = frozenset({U.DEAD, U.FAILED, U.AUTO_RESTART})
_BEGIN = frozenset({U.CONDITION, U.START_PRE})
# A start or a running service that fails is stopped from stop-sigterm on (ExecStop=
# runs only for a service that came up: start-post, running, exited, reload).
_KILL = frozenset(_STOPPING[1:]) | _END


def _after(state: ServiceSubState) -> frozenset[ServiceSubState]:
    return frozenset(_STOPPING[_STOPPING.index(state) + 1 :]) | _END


SUB_TRANSITIONS: dict[ServiceSubState, Set[ServiceSubState]] = {
    U.DEAD: _BEGIN | {U.FAILED},  # failed: the start limit refused the start
    U.FAILED: _BEGIN | {U.DEAD, U.FAILED},  # dead: reset-failed
    U.AUTO_RESTART: _BEGIN | {U.DEAD, U.FAILED},  # dead: stopped during the hold-off
    U.CONDITION: {U.START_PRE} | _KILL,
    U.START_PRE: {U.START} | _KILL,
    U.START: {U.START_POST} | _KILL,
    U.START_POST: {U.RUNNING, U.EXITED, U.STOP} | _KILL,
    U.RUNNING: {U.RELOAD, U.EXITED, U.STOP} | _KILL,
    U.EXITED: {U.RELOAD, U.STOP} | _KILL,
    U.RELOAD: {U.RUNNING, U.EXITED, U.STOP} | _KILL,
    **{s: _after(s) for s in _STOPPING},
}

#: What a timer that runs out means in each sub-state (systemd's service_dispatch_timer()):
#: the phase and reason of the ``timeout`` line (None: no line; the reason is formatted
#: with the [Service] section) and the step the machine takes (service.Service._on_timer).
_START_LATE = "start did not finish within TimeoutStartSec={0.TimeoutStartSec:g}s"
TIMEOUTS: dict[ServiceSubState, tuple[str | None, str, str]] = {
    U.CONDITION: ("condition", _START_LATE, "kill"),
    U.START_PRE: ("start-pre", _START_LATE, "kill"),
    U.START: ("start", _START_LATE, "kill"),
    U.START_POST: (
        "start-post",
        "ExecStartPost= did not finish within TimeoutStartSec={0.TimeoutStartSec:g}s",
        "stop",
    ),
    U.RUNNING: ("runtime", "RuntimeMaxSec={0.RuntimeMaxSec:g}s reached", "stop"),
    U.RELOAD: (
        "reload",
        "reload did not finish within TimeoutStartSec={0.TimeoutStartSec:g}s",
        "reload",
    ),
    U.STOP: (
        "stop",
        "ExecStop= did not finish within TimeoutStopSec={1:g}s",
        "kill",
    ),
    U.STOP_WATCHDOG: (None, "", "sigkill"),
    U.STOP_SIGTERM: (None, "", "sigkill"),
    U.STOP_SIGKILL: (None, "", "give-up"),
    U.STOP_POST: (
        "stop-post",
        "ExecStopPost= did not finish within TimeoutStopSec={1:g}s",
        "final",
    ),
    U.FINAL_SIGTERM: (None, "", "final-sigkill"),
    U.FINAL_SIGKILL: (None, "", "final-give-up"),
    U.AUTO_RESTART: (None, "", "restart"),
}

#: The directive whose command lines run in a sub-state (for log lines).
EXEC_DIRECTIVE = {
    U.CONDITION: "ExecCondition",
    U.START_PRE: "ExecStartPre",
    U.START: "ExecStart",
    U.START_POST: "ExecStartPost",
    U.RELOAD: "ExecReload",
    U.STOP: "ExecStop",
    U.STOP_POST: "ExecStopPost",
}

K = SocketState
SOCKET_TRANSITIONS: dict[SocketState, frozenset[SocketState]] = {
    K.INACTIVE: frozenset({K.LISTENING, K.FAILED}),
    K.LISTENING: frozenset({K.RUNNING, K.PAUSED, K.INACTIVE, K.FAILED}),
    K.RUNNING: frozenset({K.LISTENING, K.PAUSED, K.INACTIVE, K.FAILED}),
    K.PAUSED: frozenset({K.LISTENING, K.INACTIVE, K.FAILED}),
    K.FAILED: frozenset({K.LISTENING, K.INACTIVE}),
}


class TransitionError(AssertionError):
    pass


def check(table, unit: str, old, new) -> None:
    if new != old and new not in table[old]:
        raise TransitionError(f"{unit}: illegal transition {old} -> {new}")


class Result(StrEnum):
    """Why a unit is failed (systemd's result names)."""

    SUCCESS = "success"
    EXIT_CODE = "exit-code"
    SIGNAL = "signal"
    CORE_DUMP = "core-dump"
    TIMEOUT = "timeout"
    WATCHDOG = "watchdog"
    START_LIMIT_HIT = "start-limit-hit"
    RESOURCES = "resources"  # the start could not be set up: user, exec, environment file …
    PROTOCOL = "protocol"  # Type=notify exited before READY=1; a PIDFile= that names no process
    EXEC_CONDITION = "exec-condition"  # ExecCondition= said no: the start was skipped
    TRIGGER_LIMIT_HIT = "trigger-limit-hit"
    SERVICE_START_LIMIT_HIT = "service-start-limit-hit"

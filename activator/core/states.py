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
    """systemd's socket states (socket.c), those a container can have, and activator's
    ``paused``. The ones between a start and listening and between listening and the end
    run the socket's own Exec*= lines (runtime/socketexec.py), one control process at a
    time; ``*-sigterm``/``*-sigkill``: what is left of one that timed out is killed."""

    INACTIVE = "inactive"  # not bound (stopped, or never started): systemd's "dead"
    START_PRE = "start-pre"  # ExecStartPre=, not bound yet
    START_POST = "start-post"  # bound; ExecStartPost=
    LISTENING = "listening"  # watched by activator
    RUNNING = "running"  # Accept=no: handed to a running service, not watched
    PAUSED = "paused"  # trigger limit hit: not watched until the interval is over
    STOP_PRE = "stop-pre"  # ExecStopPre=, still bound
    STOP_PRE_SIGTERM = "stop-pre-sigterm"
    STOP_PRE_SIGKILL = "stop-pre-sigkill"
    STOP_POST = "stop-post"  # closed; ExecStopPost=
    FINAL_SIGTERM = "final-sigterm"
    FINAL_SIGKILL = "final-sigkill"
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
# Stopping moves forward only (stop-pre → its kills → stop-post → the final kills → the end),
# skipping what has nothing to do; a start that fails goes there from where it is.
_SOCKET_STOPPING = (
    K.STOP_PRE,
    K.STOP_PRE_SIGTERM,
    K.STOP_PRE_SIGKILL,
    K.STOP_POST,
    K.FINAL_SIGTERM,
    K.FINAL_SIGKILL,
)
_SOCKET_END = frozenset({K.INACTIVE, K.FAILED})


def _socket_after(state: SocketState) -> frozenset[SocketState]:
    return frozenset(_SOCKET_STOPPING[_SOCKET_STOPPING.index(state) + 1 :]) | _SOCKET_END


_SOCKET_UP = frozenset({K.LISTENING, K.RUNNING, K.PAUSED})
_SOCKET_BEGIN = frozenset({K.START_PRE, K.START_POST, K.LISTENING, K.FAILED})
# a start that fails before anything ran (its user, its bind) ends through the stop's tail
_SOCKET_TAIL = frozenset({K.STOP_POST, K.FINAL_SIGTERM, K.FINAL_SIGKILL})
SOCKET_TRANSITIONS: dict[SocketState, frozenset[SocketState]] = {
    K.INACTIVE: _SOCKET_BEGIN | _SOCKET_TAIL,
    K.FAILED: _SOCKET_BEGIN | _SOCKET_TAIL | {K.INACTIVE},
    # a failed ExecStartPre=: nothing bound, straight to the final kills or the end
    K.START_PRE: frozenset({K.START_POST, K.LISTENING, K.FINAL_SIGTERM, K.STOP_POST}) | _SOCKET_END,
    K.START_POST: frozenset({K.LISTENING, *_SOCKET_STOPPING}) | _SOCKET_END,
    K.LISTENING: frozenset({K.RUNNING, K.PAUSED, *_SOCKET_STOPPING}) | _SOCKET_END,
    K.RUNNING: frozenset({K.LISTENING, K.PAUSED, *_SOCKET_STOPPING}) | _SOCKET_END,
    K.PAUSED: frozenset({K.LISTENING, *_SOCKET_STOPPING}) | _SOCKET_END,
    **{s: _socket_after(s) for s in _SOCKET_STOPPING},
}
#: ActiveState of each socket state (systemd's socket state_translation_table).
SOCKET_PUBLIC: dict[SocketState, str] = {
    K.INACTIVE: "inactive",
    K.START_PRE: "activating",
    K.START_POST: "activating",
    **{s: "active" for s in _SOCKET_UP},
    **{s: "deactivating" for s in _SOCKET_STOPPING},
    K.FAILED: "failed",
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

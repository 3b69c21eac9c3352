"""Named states of services and sockets, and the transitions each may take.

Every state change goes through ``check()``: a transition that is not in the
table is a bug in activator, not a runtime condition, so it raises.
"""

from __future__ import annotations

from enum import StrEnum


class ServiceState(StrEnum):
    INACTIVE = "inactive"
    ACTIVATING = "activating"  # Exec*Pre, the main start, waiting for READY=1 / the fork / oneshot
    ACTIVE = "active"
    RELOADING = "reloading"
    DEACTIVATING = "deactivating"  # ExecStop, KillSignal, the stop timeout, ExecStopPost
    FAILED = "failed"


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
    S.RELOADING: frozenset({S.ACTIVE, S.DEACTIVATING, S.INACTIVE, S.FAILED}),
    S.DEACTIVATING: frozenset({S.INACTIVE, S.FAILED, S.ACTIVATING}),
    S.FAILED: frozenset({S.ACTIVATING, S.INACTIVE}),
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
    PROTOCOL = "protocol"
    TRIGGER_LIMIT_HIT = "trigger-limit-hit"
    SERVICE_START_LIMIT_HIT = "service-start-limit-hit"

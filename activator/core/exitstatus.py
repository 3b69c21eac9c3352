"""What a wait status means: systemd's CLD_EXITED/CLD_KILLED, is_clean_exit() and results.

One place for decoding exits, shared by the state machine, the accept lane's books and
the reaper's orphan lines; signal names are the unit layer's (``signal_name``), so a
log line and ``SuccessExitStatus=`` spell signals alike.
"""

from __future__ import annotations

import os
import signal

from ..units.model import ExitStatusSet
from ..units.values import signal_name
from .states import Result

# Signals after which a daemon's exit counts as clean, as systemd's is_clean_exit().
CLEAN_SIGNALS = frozenset({signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE})


def exit_of(status: int | None) -> tuple[str, int, bool]:
    """("exited", code, False) or ("killed", signal, core dumped); None: unknown → exited 0."""
    if status is None:
        return "exited", 0, False
    if os.WIFSIGNALED(status):
        return "killed", os.WTERMSIG(status), os.WCOREDUMP(status)
    return "exited", os.WEXITSTATUS(status), False


def main_result(svc, how: str, value: int, dumped: bool, *, oneshot: bool = False) -> Result:
    """What the main process's exit means (systemd's service_sigchld_event): exit 0, a
    SuccessExitStatus=, or for all but oneshot SIGHUP/SIGINT/SIGTERM/SIGPIPE are success.
    ``svc`` is the [Service] section."""
    if how == "exited":
        return (
            Result.SUCCESS
            if value == 0 or value in svc.SuccessExitStatus.codes
            else Result.EXIT_CODE
        )
    if value in svc.SuccessExitStatus.signals or (not oneshot and value in CLEAN_SIGNALS):
        return Result.SUCCESS
    return Result.CORE_DUMP if dumped else Result.SIGNAL


def failure(how: str, dumped: bool) -> Result:
    """The result of a control process (ExecStartPre= …) that did not exit 0."""
    if how == "exited":
        return Result.EXIT_CODE
    return Result.CORE_DUMP if dumped else Result.SIGNAL


def matches(s: ExitStatusSet, exit: tuple[str, int]) -> bool:
    """Whether an exit is in RestartPreventExitStatus= / RestartForceExitStatus=."""
    how, value = exit
    return value in s.codes if how == "exited" else value in s.signals


def exit_fields(how: str, value: int) -> dict[str, int | str]:
    """The exit as log lines show it: ``status=1`` (an integer) or ``signal=SIGKILL``."""
    return {"status": value} if how == "exited" else {"signal": signal_name(value)}


def short_signal(value: int) -> str:
    """A signal as $EXIT_STATUS spells it for ExecStop=/ExecStopPost=: ``TERM``."""
    name = signal_name(value)
    return name[3:] if name.startswith("SIG") else name

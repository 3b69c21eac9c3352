"""Typed errors inside, exit codes at the edges (cli/daemon.py, cli/ctl.py).

Each error carries the control protocol's code for it (``code``), so the control
server answers any of them without knowing which part of activator raised it.
"""

from __future__ import annotations


class ActivatorError(Exception):
    """Base of every error activator raises on purpose; its text is a complete message."""

    code = "failed"


class BindError(ActivatorError):
    """A listener could not be created: names the unit, the address and the OS error."""


class StartError(ActivatorError):
    """A service could not be started (no such user, no socket, exec failed …)."""


class RefusedError(ActivatorError):
    """An operation that the unit's state or configuration does not allow."""

    code = "refused"


class AlreadyActiveError(RefusedError):
    """A start refused because the unit (or the service a socket triggers) is active."""

    code = "already-active"


class NotActiveError(RefusedError):
    """An operation that needs a running unit (reload, kill) on one that is not."""

    code = "not-active"


# Exit codes of the `activator` command (documented in README.md, manager/policy.py).
EXIT_OK = 0
EXIT_FAILURE = 1  # activator itself failed
EXIT_USAGE = 2  # a bad command line
EXIT_LOAD = 3  # --on-failure=exit: a unit failed to load, or there is no unit to run
EXIT_UNIT = 4  # --on-failure=exit: a unit failed while running (FailureAction=exit's default)
EXIT_STOP = 5  # a service ended failed while activator stopped

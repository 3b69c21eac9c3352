"""Typed errors inside, exit codes at the edges (cli.py, ctl.py)."""

from __future__ import annotations


class ActivatorError(Exception):
    """Base of every error activator raises on purpose; its text is a complete message."""


class BindError(ActivatorError):
    """A listener could not be created: names the unit, the address and the OS error."""


class StartError(ActivatorError):
    """A service could not be started (no such user, no socket, exec failed …)."""


class RefusedError(ActivatorError):
    """An operation that the unit's state or configuration does not allow."""


# Exit codes of the `activator` command (documented in README.md).
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

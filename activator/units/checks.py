"""Checks of a unit against the machine it will run on, declared here, made elsewhere.

Reading a unit needs no system: this layer turns text into a model. Some things only
the machine can say — whether ``ExecStart=``'s program exists, whether ``User=`` names a
user, whether activator (as root, or rootless) may run the service as that user. Those
checks are made by a ``UnitChecks`` the caller passes to the loader (exec/preflight.py:
the daemon's at load, ``activatorctl verify``'s); they get an ``ExecFacts`` per unit:
the process-related values it sets, each with the entry (file and line) it came from,
gathered even when the unit has other errors, so one pass reports everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from .errors import Severity, UnitError
from .ini import Entry
from .model import ExecCommand

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Located(Generic[T]):
    """A value and the entry that set it (None: not from a file, e.g. a default)."""

    value: T
    entry: Entry | None
    raw_specifiers: bool = False  # the text as written depends on the instance (%i …)


@dataclass(frozen=True, slots=True)
class ExecFacts:
    """What a unit says about the processes it runs (its [Service] or [Socket] section)."""

    unit: str  # "web.service"
    kind: str  # "service" | "socket"
    header: Entry | None  # the section's header line, for problems about the section
    user: Located[str] | None  # None: not set, or set to a value that was refused
    user_refused: bool
    group: Located[str] | None
    supplementary: tuple[Located[str], ...]
    dynamic_user: bool
    commands: tuple[tuple[str, Located[ExecCommand]], ...]  # (directive, command)

    @property
    def runs_anything(self) -> bool:
        return bool(self.commands)

    def problem(
        self, where: Entry | None, directive: str | None, message: str, severity: Severity
    ) -> UnitError:
        """A problem at ``where`` (falls back to the section header, then the file)."""
        at = where or self.header
        return UnitError(
            message,
            path=at.path if at else None,
            where=at.where if at else None,
            directive=directive,
            unit=self.unit,
            severity=severity,
        )


class UnitChecks(Protocol):
    """Checks of one unit's facts against this machine; the problems they find."""

    def __call__(self, facts: ExecFacts) -> list[UnitError]: ...

"""Typed errors of the unit readers, and the Problem lines they become.

Inside the package a bad value raises ``BadValue`` (the value parsers know only the
text they were given) or ``UnitError`` (which also knows where: file, line or TOML key
path, directive). The loader turns every one of them into a ``Problem``, so callers
get a list of printable lines and never a traceback. ``q`` quotes a value the way every
message of the package does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


class BadValue(ValueError):
    """A value that does not parse; the message says what was expected.

    Raised by the value parsers (``activator.units.values``) with just the message, e.g.
    ``"127.0.0.1:99999": port must be 1-65535``; the caller adds file, line and directive.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnitError(ValueError):
    """One problem in a unit, with as much location as is known where it is raised."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        where: int | str | None = None,
        directive: str | None = None,
        unit: str | None = None,
        severity: Severity = "error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.where = where
        self.directive = directive
        self.unit = unit
        self.severity = severity

    def problem(self, path: str = "", unit: str | None = None) -> Problem:
        return Problem(
            path=self.path or path,
            where=self.where,
            directive=self.directive,
            message=self.message,
            severity=self.severity,
            unit=self.unit or unit,
        )

    def __str__(self) -> str:
        return str(self.problem())


@dataclass(frozen=True)
class Problem:
    """One line of ``activatorctl verify`` output.

    ``where`` is the INI line number (1-based) or the TOML key path
    (``Socket.ListenStream[1]``, 0-based index), None when the problem is about the
    unit as a whole.
    """

    path: str
    where: int | str | None
    directive: str | None
    message: str
    severity: Severity
    unit: str | None
    cause: str | None = None  # a unit whose own problems this one follows from

    def __str__(self) -> str:
        loc = self.path if self.where is None else f"{self.path}:{self.where}"
        parts = [loc]
        if self.severity == "warning":
            parts.append("warning")
        if self.directive:
            parts.append(f"{self.directive}=")
        parts.append(self.message)
        return ": ".join(parts)

    def as_error(self) -> Problem:
        """The same problem as an error (``--strict``)."""
        if self.severity == "error":
            return self
        return dataclasses.replace(self, severity="error")

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "where": self.where,
            "directive": self.directive,
            "message": self.message,
            "severity": self.severity,
            "unit": self.unit,
        }


def in_causal_order(problems: list[Problem]) -> list[Problem]:
    """Problems by file and line, except that a file whose problems follow from another
    unit's (a socket whose service did not load) comes after that unit's file: the cause
    is read before its consequence."""
    by_path: dict[str, list[Problem]] = {}
    for p in sorted(problems, key=_order):
        by_path.setdefault(p.path, []).append(p)
    paths_of: dict[str, list[str]] = {}
    for path, probs in by_path.items():
        for p in probs:
            if p.unit is not None and path not in paths_of.setdefault(p.unit, []):
                paths_of[p.unit].append(path)
    out: list[Problem] = []
    done: set[str] = set()

    def emit(path: str) -> None:
        if path in done:
            return
        done.add(path)  # before the causes: a circle of causes ends here
        for p in by_path[path]:
            for cause_path in paths_of.get(p.cause or "", ()):
                emit(cause_path)
        out.extend(by_path[path])

    for path in by_path:
        emit(path)
    return out


def _order(p: Problem) -> tuple[str, int]:
    if isinstance(p.where, int):
        return (p.path, p.where)
    return (p.path, -1 if p.where is None else 1 << 30)


INTERNAL = "internal error"


def internal_problem(path: str, unit: str | None, exc: BaseException) -> Problem:
    """A bug met while loading, as a Problem: the loader's last resort, so that one file
    activator cannot handle is refused on its own instead of stopping the start or a
    reload. The message names the exception and the innermost frame for a bug report.
    """
    import traceback  # only on this path, which a correct loader never takes

    frames = traceback.extract_tb(exc.__traceback__)
    at = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    message = (
        f"{INTERNAL} while loading ({type(exc).__name__}{at}: {str(exc)[:200]}); "
        "the unit is left out (please report this activator bug)"
    )
    return Problem(path, None, None, message, "error", unit)


def q(text: str) -> str:
    """A value as it appears in messages: in double quotes, like systemd's logs."""
    return '"' + text + '"'

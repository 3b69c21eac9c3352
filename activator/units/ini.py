"""systemd's unit-file syntax (systemd.syntax(7)) → a flat list of entries.

Follows src/shared/conf-parser.c config_parse(): lines whose first non-blank character
is ``#`` or ``;`` are comments, even inside a continuation; a line ending in an odd
number of backslashes continues on the next one (the backslash becomes a space);
``[Section]`` headers; ``Key=Value`` with blanks around both stripped. The entry's line
is where the directive starts (systemd reports the line where it ends).

Lines end where systemd's read_line() ends them (src/basic/fileio.c): at ``\n``,
``\r``, either pair of them, or a NUL; so no NUL ever reaches a value, and line numbers
match systemd's. A logical line (continuations joined) longer than ``LONG_LINE_MAX`` is
an error, as in systemd.

Nothing here knows directives: unknown ones are the builder's business.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from .errors import UnitError

COMMENTS = "#;"
WHITESPACE = " \t\n\r"
# systemd's LONG_LINE_MAX (src/basic/fileio.h): config_parse() refuses a longer line,
# or a longer continuation, and with it the whole unit.
LONG_LINE_MAX = 1024 * 1024
# One end of line as read_line() sees it: "\n", "\r", "\r\n" or "\n\r", each optionally
# followed by one NUL; a NUL alone. (A kind seen twice, or anything after a NUL, starts
# the next line.)
_EOL = re.compile(r"(?:\r\n?|\n\r?)\0?|\0")


class Entry(NamedTuple):
    """One assignment as read: INI gives strings, TOML any scalar (or a table for Environment=).

    An entry with ``key == ""`` marks a section header, so the builder can refuse an
    unknown section once, at its header line, even when it is empty.
    """

    section: str
    key: str
    value: Any
    where: int | str  # INI line (1-based) or TOML key path
    path: str  # the file it comes from (fragment or drop-in)
    listed: bool = False  # TOML: the value was one element of a list


def _ends_escaped(raw: str) -> bool:
    """Whether a physical line continues: it ends in an odd number of backslashes.

    Only the physical line is looked at: a continuation collected so far ends in the
    space that replaced its backslash, so it cannot add to the count (and rescanning
    it for every line would make long continuations quadratic).
    """
    n = len(raw) - len(raw.rstrip("\\"))
    return n % 2 == 1


def _too_long(path: str, lineno: int) -> UnitError:
    return UnitError(
        f"line too long (more than {LONG_LINE_MAX // (1024 * 1024)} MiB, systemd's "
        "LONG_LINE_MAX): the rest of the file is not read",
        path=path,
        where=lineno,
    )


def _size(raw: str) -> int:
    """The line's length in bytes, as systemd counts it."""
    return len(raw) if raw.isascii() else len(raw.encode("utf-8", "surrogatepass"))


def read_ini(text: str, path: str) -> tuple[list[Entry], list[UnitError]]:
    """Parse one INI unit file or drop-in. Returns entries and syntax errors (never raises).

    Linear in the size of ``text``: a continued line is collected as a list of parts
    and joined once. A line over ``LONG_LINE_MAX`` ends the reading with an error, as
    systemd's config_parse() does (the unit is refused either way).
    """
    entries: list[Entry] = []
    errors: list[UnitError] = []
    section: str | None = None
    section_ignored = False
    if text.startswith("\ufeff"):
        text = text[1:]
    parts: list[str] = []  # the continued line so far (each backslash already a space)
    size = 0
    start_line = 0
    for lineno, raw in enumerate(_EOL.split(text), 1):
        stripped = raw.lstrip(WHITESPACE)
        if stripped and stripped[0] in COMMENTS:
            if _size(raw) > LONG_LINE_MAX:
                errors.append(_too_long(path, lineno))
                return entries, errors
            continue
        if not parts:
            start_line = lineno
        size += _size(raw)
        if size > LONG_LINE_MAX:
            errors.append(_too_long(path, start_line))
            return entries, errors
        if _ends_escaped(raw):
            parts.append(raw[:-1])
            parts.append(" ")
            continue
        parts.append(raw)
        line = "".join(parts)
        parts, size = [], 0
        section, section_ignored = _parse_line(
            line.strip(WHITESPACE), start_line, path, section, section_ignored, entries, errors
        )
    if parts:
        # A file ending in a backslash: systemd parses what it has.
        _parse_line("".join(parts).strip(WHITESPACE), start_line, path, section,
                    section_ignored, entries, errors)  # fmt: skip
    return entries, errors


def _parse_line(
    line: str,
    lineno: int,
    path: str,
    section: str | None,
    section_ignored: bool,
    entries: list[Entry],
    errors: list[UnitError],
) -> tuple[str | None, bool]:
    if not line:
        return section, section_ignored
    if line.startswith("["):
        if not line.endswith("]") or len(line) < 3:
            errors.append(UnitError(f"invalid section header {line!r}", path=path, where=lineno))
            return None, True
        name = line[1:-1]
        # Sections starting with X- are for other programs; systemd ignores them silently.
        if name.startswith("X-"):
            return name, True
        entries.append(Entry(name, "", None, lineno, path))
        return name, False
    if line.startswith(".include"):
        errors.append(
            UnitError(
                ".include is not supported (use drop-ins: NAME.d/*.conf)", path=path, where=lineno
            )
        )
        return section, section_ignored
    if section is None:
        errors.append(UnitError("assignment outside of a section", path=path, where=lineno))
        return section, section_ignored
    if section_ignored:
        return section, section_ignored
    key, eq, value = line.partition("=")
    key = key.strip(WHITESPACE)
    if not eq:
        errors.append(UnitError(f"missing '=' in {line!r}", path=path, where=lineno))
        return section, section_ignored
    if not key:
        errors.append(
            UnitError(f"missing directive name before '=' in {line!r}", path=path, where=lineno)
        )
        return section, section_ignored
    entries.append(Entry(section, key, value.strip(WHITESPACE), lineno, path))
    return section, section_ignored

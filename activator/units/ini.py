"""systemd's unit-file syntax (systemd.syntax(7)) → a flat list of entries.

Follows src/shared/conf-parser.c config_parse(): lines whose first non-blank character
is ``#`` or ``;`` are comments, even inside a continuation; a line ending in an odd
number of backslashes continues on the next one (the backslash becomes a space);
``[Section]`` headers; ``Key=Value`` with blanks around both stripped. The entry's line
is where the directive starts (systemd reports the line where it ends).

Nothing here knows directives: unknown ones are the builder's business.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .errors import UnitError

COMMENTS = "#;"
WHITESPACE = " \t\n\r"


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


def _ends_escaped(text: str) -> bool:
    n = len(text) - len(text.rstrip("\\"))
    return n % 2 == 1


def read_ini(text: str, path: str) -> tuple[list[Entry], list[UnitError]]:
    """Parse one INI unit file or drop-in. Returns entries and syntax errors (never raises)."""
    entries: list[Entry] = []
    errors: list[UnitError] = []
    section: str | None = None
    section_ignored = False
    if text.startswith("\ufeff"):
        text = text[1:]
    continuation: str | None = None
    start_line = 0
    for lineno, raw in enumerate(text.split("\n"), 1):
        if raw.endswith("\r"):
            raw = raw[:-1]
        stripped = raw.lstrip(WHITESPACE)
        if stripped and stripped[0] in COMMENTS:
            continue
        if continuation is not None:
            line = continuation + raw
        else:
            line = raw
            start_line = lineno
        if _ends_escaped(line):
            continuation = line[:-1] + " "
            continue
        continuation = None
        section, section_ignored = _parse_line(
            line.strip(WHITESPACE), start_line, path, section, section_ignored, entries, errors
        )
    if continuation is not None:
        # A file ending in a backslash: systemd parses what it has.
        _parse_line(continuation.strip(WHITESPACE), start_line, path, section, section_ignored,
                    entries, errors)  # fmt: skip
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

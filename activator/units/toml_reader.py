"""The TOML form of a unit → the same flat entries as the INI reader.

Tables are systemd's sections (``[Unit] [Socket] [Service] [Install]``), keys are
directive names. A list stands for the directive repeated once per element, in order
(an empty list is the empty assignment: it resets). Tables whose name starts with
``X-`` are ignored, as in INI. Locations are key paths: ``Socket.ListenStream[1]``
(0-based), ``Service.Environment``.

Beyond what tomllib checks, the reader refuses what no unit needs and later steps
should not have to think about: an integer outside TOML's 64-bit range (tomllib keeps
any size), a NUL character in a key or string (it could reach an argv or a path), and
nesting deeper than a unit's tables go (``MAX_DEPTH``). tomllib's own recursion
(about a hundred nested arrays) is reported as invalid TOML, not a traceback.

One TOML-only key exists because TOML cannot repeat a key: ``Listen`` in [Socket], a
list of one-key tables (``Listen = [{ListenStream = "80"}, {ListenDatagram = "80"}]``),
for listeners of different kinds interleaved in an order that matters (fd order).
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from .errors import UnitError
from .ini import Entry

_LINE = re.compile(r"\(at line (\d+), column \d+\)")
LISTEN_KEYS = frozenset(
    {
        "ListenStream", "ListenDatagram", "ListenSequentialPacket", "ListenFIFO",
        "ListenSpecial", "ListenNetlink", "ListenMessageQueue",
    }
)  # fmt: skip


# doc → [Section] → key → list → {ListenStream = …} → value: four levels below the
# document at most; anything deeper is no unit.
MAX_DEPTH = 8
_INT64 = range(-(2**63), 2**63)


def read_toml(text: str, path: str) -> tuple[list[Entry], list[UnitError]]:
    """Parse one TOML unit file or drop-in. Returns entries and errors (never raises)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = _LINE.search(msg)
        line = int(m.group(1)) if m else None
        return [], [UnitError(f"invalid TOML: {_LINE.sub('', msg).strip()}", path=path, where=line)]
    except RecursionError:
        return [], [UnitError("invalid TOML: nested too deeply", path=path)]
    except ValueError:
        # tomllib lets int() refuse a number of more than 4,300 digits.
        return [], [UnitError("invalid TOML: a number with thousands of digits", path=path)]
    refused = _refuse_odd_values(doc, path)
    if refused:
        return [], refused
    entries: list[Entry] = []
    errors: list[UnitError] = []
    for section, table in doc.items():
        if section.startswith("X-"):
            continue
        if not isinstance(table, dict):
            errors.append(
                UnitError(
                    f"top-level key {section!r}: expected a table "
                    "[Unit], [Socket], [Service] or [Install]",
                    path=path,
                    where=section,
                )
            )
            continue
        entries.append(Entry(section, "", None, section, path))
        for key, value in table.items():
            where = f"{section}.{key}"
            if section == "Socket" and key == "Listen":
                _listen_list(value, where, path, entries, errors)
            elif isinstance(value, list):
                if not value:
                    entries.append(Entry(section, key, "", where, path, True))
                for i, item in enumerate(value):
                    entries.append(Entry(section, key, item, f"{where}[{i}]", path, True))
            else:
                entries.append(Entry(section, key, value, where, path))
    return entries, errors


def _listen_list(
    value: Any, where: str, path: str, entries: list[Entry], errors: list[UnitError]
) -> None:
    bad = UnitError(
        'expected a list of one-key tables, e.g. [{ListenStream = "80"}, {ListenDatagram = "80"}]',
        path=path,
        where=where,
    )
    if not isinstance(value, list):
        errors.append(bad)
        return
    for i, item in enumerate(value):
        if not isinstance(item, dict) or len(item) != 1:
            errors.append(bad)
            return
        ((key, val),) = item.items()
        if key not in LISTEN_KEYS:
            errors.append(
                UnitError(f"{key!r} is not a Listen*= directive", path=path, where=f"{where}[{i}]")
            )
            continue
        entries.append(Entry("Socket", key, val, f"{where}[{i}].{key}", path, True))


def _refuse_odd_values(doc: dict[str, Any], path: str) -> list[UnitError]:
    """Errors for what TOML (or tomllib) allows but a unit must not hold; see the module
    docstring. Walks without recursion: the depth is what is being checked."""
    errors: list[UnitError] = []
    stack: list[tuple[str, Any, int]] = [("", doc, 0)]
    while stack:
        where, value, depth = stack.pop()
        if depth > MAX_DEPTH:
            msg = f"nested deeper than {MAX_DEPTH} levels"
            errors.append(UnitError(msg, path=path, where=where))
            continue
        if isinstance(value, dict):
            for key, item in value.items():
                sub = f"{where}.{key}" if where else key
                if "\0" in key:
                    shown = sub.replace("\0", "\\0")
                    errors.append(UnitError("a key with a NUL character", path=path, where=shown))
                    continue
                stack.append((sub, item, depth + 1))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item, depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str) and "\0" in value:
            errors.append(UnitError("a string with a NUL character", path=path, where=where))
        elif isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
            errors.append(
                UnitError("integer out of range (TOML integers are 64-bit)", path=path, where=where)
            )
    errors.sort(key=lambda e: str(e.where))
    return errors

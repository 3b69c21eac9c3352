"""The TOML form of a unit → the same flat entries as the INI reader.

Tables are systemd's sections (``[Unit] [Socket] [Service] [Install]``), keys are
directive names. A list stands for the directive repeated once per element, in order
(an empty list is the empty assignment: it resets). Tables whose name starts with
``X-`` are ignored, as in INI. Locations are key paths: ``Socket.ListenStream[1]``
(0-based), ``Service.Environment``.

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


def read_toml(text: str, path: str) -> tuple[list[Entry], list[UnitError]]:
    """Parse one TOML unit file or drop-in. Returns entries and errors (never raises)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = _LINE.search(msg)
        line = int(m.group(1)) if m else None
        return [], [UnitError(f"invalid TOML: {_LINE.sub('', msg).strip()}", path=path, where=line)]
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

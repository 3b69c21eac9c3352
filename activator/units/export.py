"""A unit file (with its drop-ins) → the same unit as TOML or INI (``activatorctl import``).

The export works on what the file *says*, its entries, not on the model built from them:
values keep their text (``Documentation=man:sshd(8)`` stays that string, ``%i`` stays a
specifier, so a template stays a template, ``$OPTIONS`` stays visible in a command line),
directives keep the order of the source. Only two things change, both without changing
the meaning:

- assignments that later ones undo are left out: an empty assignment that resets a list
  takes the items before it along, a value set again keeps only its last assignment
  (TOML cannot repeat a key; a drop-in's ``ExecStart=`` + ``ExecStart=/new`` merges into
  ``/new``);
- in TOML a boolean is a TOML boolean (``Accept = true``), and listeners of different
  kinds that interleave use the ``Listen = [{ListenStream = …}, …]`` form (fd order).

Reading the result gives the same model as reading the source (tests/units/test_roundtrip.py
holds it to that for every real unit the tests use). INI output refuses what an INI line
cannot hold (a TOML string with a line break, blanks at its ends, a final backslash).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from .directives import TABLES, Directive
from .directives.validators import v_bool
from .errors import UnitError
from .ini import Entry
from .toml_reader import LISTEN_KEYS
from .values import quote_word

Format = Literal["toml", "ini"]


def export_unit(
    name: str, entries: Sequence[Entry], fmt: Format = "toml", *, source: str | None = None
) -> str:
    """The unit ``name`` read from ``entries`` (fragment then drop-ins), as a TOML or INI
    file. ``source`` adds a comment naming the file it came from. Raises UnitError for a
    value the format cannot hold."""
    head = f"# {name}"
    if source:
        head += f", imported from {source} (drop-ins merged)"
    kept = _normalise(entries)
    sections = _sections(kept)
    position = {id(e): i for i, e in enumerate(kept)}
    if fmt == "ini":
        return head + "\n" + _ini(sections, position)
    import tomli_w  # only here: the daemon never writes TOML

    return head + "\n" + tomli_w.dumps(_toml(sections, position), multiline_strings=False)


# ---------------------------------------------------------------- what the entries mean


def _directive(e: Entry) -> Directive | None:
    return TABLES.get(e.section, {}).get(e.key)


def _is_reset(e: Entry) -> bool:
    return isinstance(e.value, str) and e.value == ""


def _targets(d: Directive, e: Entry) -> set[tuple[str, str]]:
    """The model fields an entry assigns (a scalar may set two: TimeoutSec=)."""
    sec = d.section or e.section
    return {(sec, f) for f in (d.field, *d.fields)}


def _undoes(e: Entry, d: Directive, o: Entry) -> bool:
    """Whether the later entry ``e`` (of directive ``d``) makes the earlier ``o`` moot:
    an empty assignment resets what came before it (a Condition*/Assert* one, its whole
    family); a scalar replaces every assignment of the fields it sets."""
    od = _directive(o) if o.key else None
    if od is None:
        return False
    if d.kind == "cond":
        return od.kind == "cond" and _is_reset(e) and _family(o.key) == _family(e.key)
    if d.kind == "scalar":
        return od.kind == "scalar" and _targets(od, o) <= _targets(d, e)
    return _is_reset(e) and od.kind == d.kind and _targets(od, o) == _targets(d, e)


def _normalise(entries: Sequence[Entry]) -> list[Entry]:
    """The entries without those a later one undoes (see the module docstring). Kept:
    every entry of an unknown or ignored directive (it means what it says)."""
    kept: list[Entry] = []
    for e in entries:
        d = _directive(e) if e.key else None
        if d is None:
            kept.append(e)
            continue
        kept = [o for o in kept if not _undoes(e, d, o)]
        # An empty assignment is itself kept only where it is a value: the empty
        # capability set (elsewhere it means the default, which is no assignment at all).
        if not _is_reset(e) or d.kind == "caps":
            kept.append(e)
    return kept


def _family(key: str) -> str:
    return "Assert" if key.startswith("Assert") else "Condition"


def _sections(entries: list[Entry]) -> dict[str, dict[str, list[Entry]]]:
    """Section → directive → its entries, both in the order they first appear."""
    out: dict[str, dict[str, list[Entry]]] = {}
    for e in entries:
        sec = out.setdefault(e.section, {})
        if e.key:
            sec.setdefault(e.key, []).append(e)
    return out


# ---------------------------------------------------------------- TOML


def _toml_value(e: Entry) -> Any:
    d = _directive(e)
    if d is not None and d.parse is v_bool and isinstance(e.value, str):
        try:
            return v_bool(e.value, None)  # type: ignore[arg-type]  # no context needed
        except ValueError:
            return e.value
    return e.value


def _listeners(directives: dict[str, list[Entry]], position: dict[int, int]) -> list[Entry]:
    """The Listen*= entries of [Socket] in the order of the source (the fds' order)."""
    found = [e for k, es in directives.items() if k in LISTEN_KEYS for e in es]
    return sorted(found, key=lambda e: position[id(e)])


def _toml(sections: dict[str, dict[str, list[Entry]]], position: dict[int, int]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for section, directives in sections.items():
        table: dict[str, Any] = {}
        listen = _listeners(directives, position) if section == "Socket" else []
        kinds = [e.key for e in listen]
        interleaved = len([k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]) > len(
            set(kinds)
        )
        for key, es in directives.items():
            if section == "Socket" and key in LISTEN_KEYS and interleaved:
                if "Listen" not in table:
                    table["Listen"] = [{e.key: e.value} for e in listen]
                continue
            values = [_toml_value(e) for e in es]
            table[key] = values[0] if len(values) == 1 else values
        doc[section] = table
    return doc


# ---------------------------------------------------------------- INI


def _ini_text(e: Entry) -> str:
    v = e.value
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "infinity" if math.isinf(v) else f"{v:.9f}".rstrip("0").rstrip(".")
    if isinstance(v, int):
        return str(v)
    if isinstance(v, dict):  # TOML's Environment table
        return " ".join(quote_word(f"{k}={val}") for k, val in v.items())
    text = str(v)
    if any(c in text for c in "\n\r\0") or text != text.strip() or text.endswith("\\"):
        raise UnitError(
            f"{text!r} cannot be written as an INI value (a line break, blanks at either "
            "end or a final backslash)",
            path=e.path,
            where=e.where,
            directive=e.key,
        )
    return text


def _ini(sections: dict[str, dict[str, list[Entry]]], position: dict[int, int]) -> str:
    lines: list[str] = []
    for section, directives in sections.items():
        if lines:
            lines.append("")
        lines.append(f"[{section}]")
        if section == "Socket":  # fd order follows line order across Listen*= kinds
            lines += [f"{e.key}={_ini_text(e)}" for e in _listeners(directives, position)]
        for key, es in directives.items():
            if section == "Socket" and key in LISTEN_KEYS:
                continue
            lines += [f"{key}={_ini_text(e)}" for e in es]
    return "\n".join(lines) + "\n"

"""What each fuzz target calls, and what counts as a clean answer.

A crash is anything but the documented outcome: for the unit layer, ``load_units``
returning problems (never raising, and never its "internal error" last resort); the
readers returning entries and errors; value parsers returning or raising ``BadValue``;
``decode_request`` returning or raising ``ProtocolError`` with a code of ``ERRORS``;
the command-line parsers returning or exiting with 2 (usage) or 0 (``--help``).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import tempfile
from pathlib import Path
from typing import Any

from activator.control import protocol
from activator.units import Problem, load_one, load_units
from activator.units.build import build_unit
from activator.units.errors import INTERNAL, BadValue, UnitError
from activator.units.ini import Entry, read_ini
from activator.units.toml_reader import read_toml

FRAGMENT = "/fuzz/units/fuzz.service"


def _kind_names(file_name: str) -> tuple[str, ...]:
    base = os.path.basename(file_name).removesuffix(".toml")
    if base.endswith(".socket"):
        return ("fuzz.socket", "fuzz@.socket")
    if base.endswith(".service"):
        return ("fuzz.service", "fuzz@.service")
    return ("fuzz.socket", "fuzz.service")


def _check_problems(problems: list[Any]) -> None:
    for p in problems:
        assert isinstance(p, (Problem, UnitError)), p
        # (only at the start: a hostile value may well say "internal error" itself)
        assert not p.message.startswith(f"{INTERNAL} while loading"), str(p)
        str(p)


def check_build(entries: list[Entry], names: tuple[str, ...]) -> None:
    """Every entry list builds to a unit or to problems."""
    for name in names:
        unit, problems = build_unit(name, entries, fragment=FRAGMENT)
        _check_problems(problems)
        assert (unit is None) == any(p.severity == "error" for p in problems)


def check_ini(item: tuple[str, str]) -> None:
    file_name, text = item
    entries, errors = read_ini(text, FRAGMENT)
    _check_problems(errors)
    for e in entries:
        assert e.value is None if not e.key else "\0" not in e.value
    check_build(entries, _kind_names(file_name))


def check_toml(item: tuple[str, str]) -> None:
    file_name, text = item
    entries, errors = read_toml(text, FRAGMENT)
    _check_problems(errors)
    check_build(entries, _kind_names(file_name))


def check_toml_doc(doc: dict) -> None:
    import tomli_w

    try:
        text = tomli_w.dumps(doc)
    except (ValueError, TypeError):
        return  # not expressible in TOML (e.g. a string key tomli-w refuses)
    check_toml(("fuzz.service.toml", text))
    check_toml(("fuzz.socket.toml", text))


def check_load(files: dict[str, str | bytes]) -> None:
    """``load_units`` and ``load_one`` on a directory holding ``files``."""
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for name, data in files.items():
            p = root / name
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, str):
                data = data.encode("utf-8", "surrogateescape")
            p.write_bytes(data)
        for strict in (False, True):
            units, problems = load_units([d], strict=strict)
            _check_problems(problems)
            for p in problems:
                assert p.path.startswith(d), p
        for name in files:
            if "/" not in name:
                unit, problems = load_one(str(root / name))
                _check_problems(problems)


_TEMPLATES = {
    "t@.service": (
        "[Unit]\nDescription=%i %I %f %j %J\n[Service]\nExecStart=/bin/echo %i %I %f\n"
        "WorkingDirectory=/srv/%I\nUser=%I\nGroup=%i\nEnvironment=A=%I B=%f\n"
        "EnvironmentFile=-%f\nPIDFile=%I\nStandardOutput=file:%f\nSupplementaryGroups=%I\n"
        "RuntimeDirectory=%I\n"
    ),
    "t@.socket": (
        "[Socket]\nListenStream=/run/%I\nFileDescriptorName=%I\nSymlinks=%f\nBindToDevice=%I\n"
    ),
}


@functools.cache
def _templates() -> Any:
    with tempfile.TemporaryDirectory() as d:  # instances are built from the cached entries
        for name, text in _TEMPLATES.items():
            Path(d, name).write_text(text)
        units, problems = load_units([d])
    assert not problems, problems
    return units


def check_instance(instance: str) -> None:
    """``UnitSet.instantiate``: a unit, or UnitError for an invalid instance or value."""
    for template in _TEMPLATES:
        try:
            unit = _templates().instantiate(template, instance)
        except UnitError:
            continue
        assert unit.name == template.replace("@.", f"@{instance}.")


def check_protocol(data: bytes) -> None:
    try:
        verb, units, args = protocol.decode_request(data)
    except protocol.ProtocolError as e:
        assert e.code in protocol.ERRORS, e.code
    else:
        assert verb in protocol.VERBS
        assert isinstance(units, list) and all(isinstance(u, str) for u in units)
        assert isinstance(args, dict)
        protocol.encode({"verb": verb, "units": units, "args": args})  # answerable
    try:
        protocol.decode_answer(data)
    except protocol.ProtocolError as e:
        assert e.code in protocol.ERRORS, e.code


def check_cli(parse: Any, argv: list[str]) -> None:
    """A command-line parser: a namespace, or SystemExit 2 (usage) / 0 (--help)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            parse(argv)
        except SystemExit as e:
            assert e.code in (0, 2), e.code


def clean(call: Any, *args: Any) -> Any:
    """``call(*args)``, where a BadValue is a clean refusal; anything else propagates."""
    try:
        return call(*args)
    except BadValue as e:
        assert isinstance(e.message, str) and e.message
        str(e)
        return None

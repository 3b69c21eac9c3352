"""Regressions for hostile unit files: each of these stopped activator with a traceback,
hung it, or made it read until memory ran out. A bad file is left out and reported
(file:line and the cause) while the rest load; load_units never raises.

tests/fuzz/ looks for more of the same; these pin the ones it (or the issue) found.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from activator.units import build as build_module
from activator.units import files, load_one, load_units
from activator.units.errors import INTERNAL, BadValue
from activator.units.ini import LONG_LINE_MAX, read_ini
from activator.units.listen import parse_listen
from activator.units.values import (
    c_strtol,
    parse_exit_status,
    parse_signal,
    parse_size,
    parse_timespan,
    read_environment_file,
)

from .conftest import write_units

GOOD = {"good.socket": "[Socket]\nListenStream=127.0.0.1:8080\n", "good.service": "[Service]\nExecStart=/bin/true\n"}  # fmt: skip


def _load_with_good(root: Path, files_: dict[str, str]) -> list[str]:
    """Load ``files_`` beside a good pair; the good pair must load. Returns the problems."""
    write_units(root, {**GOOD, **files_})
    units, problems = load_units([root])
    assert units.get("good.socket") is not None and units.get("good.service") is not None
    for p in problems:
        assert INTERNAL not in p.message, str(p)
    return [str(p) for p in problems]


# ---------------------------------------------------------------- 1. one bad value


def test_timespan_with_400_zeros_is_a_problem_not_an_overflow(tmp_path: Path) -> None:
    bad = "[Service]\nExecStart=/bin/true\nTimeoutSec=1" + "0" * 400 + "\n"
    problems = _load_with_good(tmp_path, {"bad.service": bad})
    assert problems == [
        f'{tmp_path}/bad.service:3: TimeoutSec=: "1{"0" * 400}": '
        "time span out of range (at most 584,542 years)"
    ]


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_timespan, "1" + "0" * 400),  # float() of a huge int: OverflowError
        (parse_timespan, "1" + "0" * 5000),  # int() of 5,000 digits: ValueError
        (parse_timespan, "0." + "1" * 5000 + "x"),
        (parse_timespan, "\u0663s"),  # an Arabic-Indic 3: \d took it, systemd does not
        (parse_size, "1" + "0" * 5000),
        (parse_size, "0." + "1" * 5000),
        (parse_size, "16E"),  # 2**64: out of range in systemd
        (parse_signal, "RTMIN+" + "1" * 5000),
        (parse_signal, "\u00b2"),  # "²".isdigit(), but int("²") raises
        (parse_exit_status, "\u00b2"),
        (parse_exit_status, "1" * 5000),
    ],
)
def test_value_parsers_refuse_huge_and_odd_numbers(parse, text: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadValue):
        parse(text)


def test_c_strtol_saturates_like_c() -> None:
    assert c_strtol("9" * 5000) == 2**64  # out of range for every check; was a ValueError
    assert c_strtol("-" + "9" * 5000) == -(2**64)
    assert c_strtol("0" * 5000 + "7") == 7  # leading zeros: octal 7, as strtol


def test_fractions_keep_their_value() -> None:
    """The caps above only refuse what systemd refuses; ordinary values read as before."""
    assert parse_timespan("1.5s") == 1.5
    assert parse_timespan("0." + "5" * 100) == pytest.approx(0.555556)
    assert parse_size("1.5K") == 1536
    assert parse_size("15E") == 15 * 1024**6


@pytest.mark.parametrize(
    "address", ["[::1\0]:80", "127.0.0.\0:80", "\0", "[\0]:1", "/run/\udcff" + "x" * 200]
)
def test_listen_refuses_nul_and_surrogates_cleanly(address: str) -> None:
    with pytest.raises(BadValue):
        parse_listen("ListenStream", address)


@pytest.mark.parametrize("value", ["\u00b2", "1" * 5000, "0" * 5000, "4294967295"])
def test_user_names_and_ids(tmp_path: Path, value: str) -> None:
    svc = f"[Service]\nExecStart=/bin/true\nUser={value}\n"
    problems = _load_with_good(tmp_path, {"bad.service": svc})
    if value == "\u00b2":
        assert problems == []  # a name, as systemd's relaxed user names allow
    elif value.startswith("0"):
        assert problems == []  # uid 0
    else:
        assert problems == [f'{tmp_path}/bad.service:3: User=: "{value}": user ID out of range']


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a = " + "1" * 5000, "invalid TOML: a number with thousands of digits"),
        ("a = " + "[" * 10000 + "]" * 10000, "invalid TOML: nested too deeply"),
        (
            "[Service]\nNice = 99999999999999999999999\n",
            "integer out of range (TOML integers are 64-bit)",
        ),
        ('[Service]\nExecStart = "/bin/echo a\\u0000b"\n', "a string with a NUL character"),
        ("[" + "a." * 10000 + "b]", "nested deeper than 8 levels"),
        (  # float() of a huge TOML number overflowed, 1e300 s was taken
            '[Service]\nExecStart = "/bin/true"\nTimeoutSec = 1e300\n',
            "time span out of range (at most 584,542 years)",
        ),
    ],
)
def test_toml_path_refuses_what_tomllib_lets_through(tmp_path: Path, text: str, message: str) -> None:  # fmt: skip
    problems = _load_with_good(tmp_path, {"bad.service.toml": text})
    assert len(problems) == 1 and problems[0].endswith(message), problems


def test_a_bug_refuses_one_unit_and_the_rest_load(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """load_units used to let anything but its own error type out: a reload answered
    "internal" and a start died. Now a bug costs the unit it meets, nothing more."""

    def explode(self, entry, ctx):  # type: ignore[no-untyped-def]
        if entry.key == "Nice":
            raise RuntimeError("boom")
        return feed(self, entry, ctx)

    feed = build_module._Builder.feed
    monkeypatch.setattr(build_module._Builder, "feed", explode)
    write_units(tmp_path, {**GOOD, "bad.service": "[Service]\nExecStart=/bin/true\nNice=1\n"})
    units, problems = load_units([tmp_path])
    assert units.get("good.socket") is not None and units.get("bad.service") is None
    (p,) = problems
    assert (p.path, p.unit, p.severity) == (f"{tmp_path}/bad.service", "bad.service", "error")
    assert p.message.startswith(f"{INTERNAL} while loading (RuntimeError at ")
    assert "boom" in p.message
    unit, (p1,) = load_one(str(tmp_path / "bad.service"))
    assert unit is None and p1.message.startswith(INTERNAL)


# ---------------------------------------------------------------- 2. what is read


@pytest.mark.timeout(20)
def test_a_fifo_named_like_a_unit_is_reported_not_read(tmp_path: Path) -> None:
    """It hung the loader: open() of a FIFO waits for a writer."""
    os.mkfifo(tmp_path / "x.service")
    os.makedirs(tmp_path / "other.service.d")
    os.mkfifo(tmp_path / "other.service.d" / "a.conf")
    problems = _load_with_good(tmp_path, {"other.service": GOOD["good.service"]})
    assert problems == [
        f"{tmp_path}/other.service.d/a.conf: cannot read: not a regular file (a FIFO)",
        f"{tmp_path}/x.service: cannot read: not a regular file (a FIFO)",
    ]


@pytest.mark.timeout(20)
def test_a_drop_in_linked_to_dev_zero_is_reported_not_read(tmp_path: Path) -> None:
    """It was read until memory ran out."""
    os.makedirs(tmp_path / "other.service.d")
    os.symlink("/dev/zero", tmp_path / "other.service.d" / "zero.conf")
    os.symlink("/dev/zero", tmp_path / "zero.service")
    problems = _load_with_good(tmp_path, {"other.service": GOOD["good.service"]})
    assert problems == [
        f"{tmp_path}/other.service.d/zero.conf: cannot read: not a regular file (a character device)",  # noqa: E501
        f"{tmp_path}/zero.service: symlink to /dev/zero: not a unit of the same type",
    ]


def test_unit_files_are_opened_nonblocking_without_a_controlling_tty(  # type: ignore[no-untyped-def]
    tmp_path: Path, monkeypatch
) -> None:
    seen: list[int] = []
    real_open = os.open

    def spy(path, flags, *args):  # type: ignore[no-untyped-def]
        seen.append(flags)
        return real_open(path, flags, *args)

    monkeypatch.setattr(files.os, "open", spy)
    _load_with_good(tmp_path, {})
    assert seen
    want = os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    assert all(f & want == want for f in seen)


def test_a_file_over_the_cap_is_reported_not_read(tmp_path: Path) -> None:
    big = "[Service]\nExecStart=/bin/true\n" + ("# padding\n" * (files.MAX_FILE_SIZE // 10))
    problems = _load_with_good(tmp_path, {"big.service": big})
    assert problems == [f"{tmp_path}/big.service: cannot read: larger than 4 MiB, not read"]


@pytest.mark.timeout(20)
def test_environment_files_are_regular_files_too(tmp_path: Path) -> None:
    """The runtime reads EnvironmentFile= at each start: a FIFO there hung the start."""
    os.mkfifo(tmp_path / "env")
    with pytest.raises(OSError) as e:
        read_environment_file(str(tmp_path / "env"))
    assert e.value.strerror == "not a regular file (a FIFO)"
    (tmp_path / "nul").write_bytes(b"A=1\nB=2\0C=3\n")
    assert read_environment_file(str(tmp_path / "nul")) == {"A": "1", "B": "2"}


# ---------------------------------------------------------------- 3. long lines


@pytest.mark.timeout(20)
def test_continuation_lines_parse_in_linear_time() -> None:
    """200,000 continuation lines took 41 s (each line copied the whole line so far)."""
    text = "[Service]\nExecStart=/bin/echo \\\n" + "a \\\n" * 200_000 + "b\n"
    entries, errors = read_ini(text, "t.service")
    assert not errors
    (value,) = [e.value for e in entries if e.key == "ExecStart"]
    assert value.split() == ["/bin/echo", *["a"] * 200_000, "b"]


def test_continuation_lines_are_looked_at_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The count behind the time above: each physical line is examined once, so the
    characters examined add up to the text's length, not to its square."""
    from activator.units import ini

    examined = 0
    ends_escaped = ini._ends_escaped

    def counting(text: str) -> bool:
        nonlocal examined
        examined += len(text)
        return ends_escaped(text)

    monkeypatch.setattr(ini, "_ends_escaped", counting)
    text = "[Service]\nExecStart=/bin/echo \\\n" + "a \\\n" * 2_000 + "b\n"
    ini.read_ini(text, "t.service")
    assert examined <= len(text)


def test_a_line_over_one_mib_is_an_error_at_its_line(tmp_path: Path) -> None:
    long_line = "[Service]\nExecStart=/bin/true\nDescription=" + "x" * LONG_LINE_MAX + "\n"
    continued = "[Service]\nExecStart=/bin/true\nDescription=\\\n" + "x\\\n" * (LONG_LINE_MAX // 2)
    problems = _load_with_good(tmp_path, {"a.service": long_line, "b.service": continued})
    why = "line too long (more than 1 MiB, systemd's LONG_LINE_MAX)"
    why += ": the rest of the file is not read"
    assert problems == [f"{tmp_path}/a.service:3: {why}", f"{tmp_path}/b.service:3: {why}"]


def test_lines_end_where_systemd_ends_them() -> None:
    """\\n, \\r, \\r\\n, \\n\\r and NUL end a line (systemd's read_line()), so the numbers
    of the lines agree with systemd's and no NUL reaches a value."""
    text = "[Service]\rA=1\r\nB=2\n\rC=3\0D=4\0\nE=5\n\nF=6"
    entries, _ = read_ini(text, "t")
    assert [(e.key, e.value, e.where) for e in entries if e.key] == [
        ("A", "1", 2), ("B", "2", 3), ("C", "3", 4), ("D", "4", 5), ("E", "5", 7), ("F", "6", 9),
    ]  # fmt: skip


# ---------------------------------------------------------------- 4. NUL and %


def test_nul_in_exec_start_never_reaches_the_command(tmp_path: Path) -> None:
    """INI: a NUL ends the line, as in systemd, so what follows is a line of its own.
    TOML: a NUL in a string is an error. A specifier that expands to a NUL (an instance
    named \\x00) is an error."""
    write_units(tmp_path, {
        "a.service": "[Service]\nExecStart=/bin/echo a\0b\n",
        "b.service": "[Service]\nExecStart=/bin/echo b\0\n",
        "c.service.toml": '[Service]\nExecStart = "/bin/echo c\\u0000"\n',
        "d@.service": "[Service]\nExecStart=/bin/echo %I\n",
    })  # fmt: skip
    units, problems = load_units([tmp_path])
    assert [str(p) for p in problems] == [
        f"{tmp_path}/a.service:3: missing '=' in 'b'",
        f"{tmp_path}/c.service.toml:Service.ExecStart: a string with a NUL character",
    ]
    assert units.services["b.service"].Service.ExecStart[0].argv == ("/bin/echo", "b")
    with pytest.raises(ValueError, match="a specifier expands to a NUL character"):
        units.instantiate("d@.service", "\\x00")

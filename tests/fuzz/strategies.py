"""Hypothesis strategies for hostile input: mutated seeds and structure-aware values.

Mutations are the kinds that found crashes before: huge numbers (Python refuses int()
of more than 4,300 digits; float() of a huge int overflows), NULs, Unicode digits that
str.isdigit() takes and int() refuses, deep nesting, long and continued lines, and
``%`` specifiers. Text strategies leave out lone surrogates: a unit file is decoded as
strict UTF-8, so they cannot come from one (the one way in, ``\\xNN`` in a unit name's
instance, is among the names below).
"""

from __future__ import annotations

import functools
import math

from hypothesis import strategies as st

from activator.units.directives import IGNORED, TABLES

from .seeds import seed_files, seed_groups

HUGE = "1" + "0" * 4400  # past Python's 4,300-digit int() limit
NUMBERS = [
    "0", "-0", "+1", "1", "-1", "08", "0x", "0x1F", "0b101", "0o17", "010", "1.5", ".5", "5.",
    "255", "256", "65535", "65536", "2147483647", "2147483648", "4294967295", "4294967296",
    "9223372036854775807", "9223372036854775808", "18446744073709551615",
    "18446744073709551616", "1" + "0" * 400, HUGE, "0." + "9" * 5000, "0" * 5000 + "1",
    "1e999", "nan", "inf", "infinity", "-infinity", "²", "٣", "１", "1_000",
]  # fmt: skip
SUFFIXES = ["", "s", "ms", "us", "µs", "min", "h", "d", "w", "M", "y", "K", "G", "E", "B", "x"]
TOKENS = [
    "\0", "%", "%%", "%z", "%i", "%I", "%f", "%n", "%N", "%p", "%j", "%J", "%y", "%Y", "%H",
    "%m", "% ", "%\\", "\\", "\\\n", "\n", "\r", "\r\n", "\n\r", "[", "]", "=", '"', "'", ";",
    "#", " ", "\t", "\v", "\f", ":", "/", "@", "-", "+", "!", "~", "|", "$", "${A}", "$A",
    "\\x00", "\\x", "\\xff", "\\u0000", "\\U0010FFFF", "\\U00110000", "\\n", "\\s", "\\;",
    "\\0", "\\377", "[::1]", "[::1]:80", "127.0.0.1:", "%%lo", "\ufeff", "\x7f", "\u2028",
    "\x85", "é", "\U0001f600", "yes", "no", "infinity", "-", "~CAP_", "CAP_NET_RAW",
    "SIGRTMIN+", "RTMAX-", "soft:hard", "1:", ":1", "=\\", "[X-A]", "[Socket]", "[Service]",
    "[Unit]", "[Install]", ".include /x", "a.socket", "b@.service", "c@\\x00.service",
    *NUMBERS, *(n + s for n in ("1", "1.5", HUGE) for s in SUFFIXES[1:]),
]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(TOKENS),
    st.builds("".join, st.lists(st.sampled_from(TOKENS), max_size=6)),
    st.builds(lambda n, s: n + s, st.sampled_from(NUMBERS), st.sampled_from(SUFFIXES)),
    st.text(max_size=20),
)
DIRECTIVES = sorted(
    {(sec, key) for sec, table in TABLES.items() for key in table}
    | {(sec, key) for sec, keys in IGNORED.items() for key in keys}
)
SECTIONS = ["Unit", "Socket", "Service", "Install", "X-Other", "Bogus"]

# Unit names, including the odd ones a directory or a client can hold: escapes in the
# instance (\xff is no UTF-8: a lone surrogate after unescaping; \x00 a NUL).
NAMES = st.sampled_from([
    "fuzz.service", "fuzz.socket", "fuzz@.service", "fuzz@.socket", "fuzz@a.service",
    "a-b-c@x-y.service", "fuzz@\\xff.socket", "fuzz@\\x00.service", "fuzz@\\x2d.service",
    "fuzz@\\x.service", "fuzz@-.socket", "f@@.service", "x" * 240 + ".service",
])  # fmt: skip


def _insert(text: str, pos: int, piece: str) -> str:
    pos %= len(text) + 1
    return text[:pos] + piece + text[pos:]


@st.composite
def mutate(draw: st.DrawFn, text: str) -> str:
    """``text`` with a few mutations: tokens inserted, characters flipped, spans cut,
    repeated or replaced, a directive's value swapped for a hostile one."""
    for _ in range(draw(st.integers(0, 6))):
        how = draw(st.integers(0, 7))
        pos = draw(st.integers(0, max(len(text), 1)))
        if how == 0:
            text = _insert(text, pos, draw(st.sampled_from(TOKENS)))
        elif how == 1 and text:
            i = pos % len(text)
            text = (
                text[:i]
                + chr(draw(st.integers(0, 0x10FFFF).filter(_not_surrogate)))
                + text[i + 1 :]
            )
        elif how == 2 and text:
            n = draw(st.integers(1, 64))
            text = text[:pos] + text[pos + n :]
        elif how == 3 and text:
            n = draw(st.integers(1, 64))
            text = _insert(text, pos, text[pos : pos + n] * draw(st.integers(2, 50)))
        elif how == 4:
            lines = text.split("\n")
            i = pos % len(lines)
            key = lines[i].partition("=")[0] or draw(st.sampled_from(DIRECTIVES))[1]
            lines[i] = f"{key}={draw(VALUES)}"
            text = "\n".join(lines)
        elif how == 5:
            section, key = draw(st.sampled_from(DIRECTIVES))
            text = _insert(text, pos, f"\n[{section}]\n{key}={draw(VALUES)}\n")
        elif how == 6:
            text = _insert(text, pos, draw(st.text(max_size=16)))
        else:
            piece = draw(st.sampled_from(["\\\n", "[", "{a=", "a.", "%", "x", "\n", "\0"]))
            text = _insert(text, pos, piece * draw(st.sampled_from([10, 100, 1000, 10000])))
    return text


def _not_surrogate(c: int) -> bool:
    return not 0xD800 <= c <= 0xDFFF


def mutated_seed() -> st.SearchStrategy[tuple[str, str]]:
    """(file name, mutated text) from one seed file."""
    return st.sampled_from(seed_files()).flatmap(lambda f: st.tuples(st.just(f[0]), mutate(f[1])))


@st.composite
def mutated_group(draw: st.DrawFn) -> dict[str, str]:
    """A seed group with one file mutated (and sometimes renamed)."""
    files = dict(draw(st.sampled_from(seed_groups())))
    name = draw(st.sampled_from(sorted(files)))
    text = draw(mutate(files[name]))
    if draw(st.integers(0, 9)) == 0:
        del files[name]
        suffix = ".toml" if name.endswith(".toml") else ""
        name = draw(NAMES) + suffix
    files[name] = text
    return files


@st.composite
def generated_ini(draw: st.DrawFn) -> str:
    """A unit built from the directive tables, each value hostile."""
    lines = []
    for _ in range(draw(st.integers(1, 12))):
        if draw(st.integers(0, 4)) == 0:
            lines.append(f"[{draw(st.sampled_from(SECTIONS))}]")
        section, key = draw(st.sampled_from(DIRECTIVES))
        if not lines or draw(st.booleans()):
            lines.append(f"[{section}]")
        lines.append(f"{key}={draw(VALUES)}")
    return draw(st.sampled_from(["\n", "\r\n", "\\\n"])).join(lines)


TOML_SCALARS = st.one_of(
    VALUES,
    st.integers(),
    st.sampled_from([2**63 - 1, -(2**63), 2**64, 10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.inf, -math.inf, math.nan, 1e308, -0.0]),
    st.booleans(),
)
TOML_VALUES = st.recursive(
    TOML_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(TOKENS[:40]), inner, max_size=3),
    ),
    max_leaves=8,
)


@st.composite
def generated_toml(draw: st.DrawFn) -> dict:
    """A TOML unit as a document: directive tables, each value of any TOML type."""
    doc: dict = {}
    for _ in range(draw(st.integers(1, 10))):
        section, key = draw(st.sampled_from(DIRECTIVES))
        if draw(st.integers(0, 7)) == 0:
            section = draw(st.sampled_from(SECTIONS))
        doc.setdefault(section, {})[key] = draw(TOML_VALUES)
    if draw(st.integers(0, 3)) == 0:
        doc.setdefault("Socket", {})["Listen"] = draw(
            st.lists(st.dictionaries(st.sampled_from(["ListenStream", "ListenFIFO", "X"]),
                                     TOML_VALUES, max_size=2), max_size=3)
        )  # fmt: skip
    return doc


@functools.cache
def toml_seeds() -> tuple[tuple[str, str], ...]:
    """The INI seeds in their TOML form (``export_unit``), for the TOML reader's fuzzing."""
    import tempfile
    from pathlib import Path

    from activator.units import export_unit
    from activator.units.loader import load_source

    out = [(n, t) for n, t in seed_files() if n.endswith(".toml")]
    with tempfile.TemporaryDirectory() as d:
        for name, text in seed_files():
            if name.endswith((".socket", ".service")) and "/" not in name:
                p = Path(d, name)
                p.write_text(text)
                unit, _, entries = load_source(str(p))
                p.unlink()
                if unit is not None:
                    out.append((name + ".toml", export_unit(unit.name, entries)))
    return tuple(out)

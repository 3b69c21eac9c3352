"""Fuzzing the value parsers, the directive validators, addresses, specifiers and names.

Each parser returns or raises ``BadValue``; the validators are driven through
``build_unit`` with one directive, given any TOML type, so that their results also
meet the models.
"""

from __future__ import annotations

import functools

import pytest
from hypothesis import strategies as st

from activator.units import names as unit_names
from activator.units import values
from activator.units.discover import dropin_dir_names
from activator.units.ini import Entry
from activator.units.listen import parse_listen
from activator.units.model import ExitStatusSet
from activator.units.specifiers import Specifiers, escape_percent, uses_instance

from .budget import fuzz
from .strategies import DIRECTIVES, NAMES, TOML_VALUES, VALUES
from .targets import FRAGMENT, check_build, clean

# Hostile inputs are large: hypothesis warns when it writes one out, which is no failure.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

_RLIMITS = sorted(values.RLIMITS)


def _rlimit(text: str, which: str) -> object:
    return values.parse_rlimit(text, which)


PARSERS = {
    "bool": values.parse_bool,
    "int": values.parse_int,
    "uint": values.parse_uint,
    "int-range": lambda t: values.parse_int(t, -5, 5),
    "timespan": values.parse_timespan,
    "timespan-us": lambda t: values.parse_timespan(t, 1e-6),
    "size": values.parse_size,
    "mode": values.parse_mode,
    "signal": values.parse_signal,
    "exit-status": values.parse_exit_status,
    "exit-status-add": lambda t: values.parse_exit_status(
        t, ExitStatusSet(codes=frozenset({1}), signals=frozenset())
    ),
    "split-words": values.split_words,
    "split-words-raw": lambda t: values.split_words(t, cunescape=False),
    "command-line": values.split_command_line,
    "exec": values.parse_exec,
    "environment": values.parse_environment_assignments,
    "environment-file": values.parse_environment_file,
    "environment-file-ref": values.parse_environment_file_ref,
    "env-name": values.env_name_is_valid,
    "c-strtol": values.c_strtol,
    **{f"rlimit-{r}": functools.partial(_rlimit, which=r) for r in _RLIMITS},
}
_LISTEN = [
    "ListenStream", "ListenDatagram", "ListenSequentialPacket", "ListenFIFO",
    "ListenSpecial", "ListenNetlink", "ListenMessageQueue",
]  # fmt: skip


def _value(item: tuple[str, str]) -> None:
    name, text = item
    out = clean(PARSERS[name], text)
    if name == "split-words" and out is not None and "\0" not in text:
        # quote_word is split_words' inverse: what the TOML export relies on (a NUL
        # cannot be written back, and no reader lets one through to a value)
        assert values.split_words(" ".join(values.quote_word(w) for w in out)) == out


def test_fuzz_value_parsers() -> None:
    fuzz("values", st.tuples(st.sampled_from(sorted(PARSERS)), VALUES), _value)


def _names_for(section: str) -> tuple[str, ...]:
    if section == "Socket":
        return ("fuzz.socket", "fuzz@.socket")
    if section == "Service":
        return ("fuzz.service", "fuzz@.service")
    return ("fuzz.socket", "fuzz.service")


def _directive(item: tuple[tuple[str, str], list[object]]) -> None:
    (section, key), vals = item
    entries = [Entry(section, "", None, 1, FRAGMENT)]
    entries += [Entry(section, key, v, i, FRAGMENT) for i, v in enumerate(vals, 2)]
    check_build(entries, _names_for(section))


def test_fuzz_directive_validators() -> None:
    values_ = st.lists(st.one_of(VALUES, TOML_VALUES), min_size=1, max_size=3)
    fuzz("directives", st.tuples(st.sampled_from(DIRECTIVES), values_), _directive)


def _listen(item: tuple[str, str]) -> None:
    directive, text = item
    clean(parse_listen, directive, text)


def test_fuzz_listen_addresses() -> None:
    addresses = st.one_of(
        VALUES,
        st.builds(
            lambda h, p: f"{h}:{p}",
            st.sampled_from(
                ["127.0.0.1", "[::1]", "[fe80::1%lo]", "[::1", "::1", "1.2.3", "[\0]", "0.0.0.0"]
            ),
            VALUES,
        ),  # fmt: skip
        st.builds(lambda p: "/run/" + p, VALUES),
        st.builds(lambda p: "@" + p, VALUES),
    )
    fuzz("listen", st.tuples(st.sampled_from(_LISTEN), addresses), _listen)


def _specifiers(item: tuple[str, str]) -> None:
    name, text = item
    spec = Specifiers(name, FRAGMENT)
    out = clean(spec.expand, text)
    uses_instance(text)
    if "\0" not in text:
        assert out is None or "\0" not in out  # no specifier expands to one
        assert spec.expand(escape_percent(text)) == text


def test_fuzz_specifiers() -> None:
    valid = NAMES.filter(lambda n: unit_names.parse_unit_name(n) is not None)
    fuzz("specifiers", st.tuples(valid, VALUES), _specifiers)


def _names(text: str) -> None:
    parsed = unit_names.parse_unit_name(text)
    if parsed is not None:
        dropin_dir_names(text)
        unit_names.unescape(parsed.prefix)
        unit_names.path_unescape(parsed.instance or parsed.prefix)
    unit_names.is_valid_instance(text)
    unit_names.fdname_ok(text)


def test_fuzz_unit_names() -> None:
    fuzz("names", st.one_of(NAMES, VALUES, st.builds(lambda v: f"a@{v}.service", VALUES)), _names)

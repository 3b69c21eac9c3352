"""Fuzzing the unit-file layer: the INI and TOML readers, the builder, load_units.

Seeded with the example units, the golden cases, the real units in the repo and the
machine's own (Debian's); see README.md for the budget and the figures.
"""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from .budget import fuzz
from .seeds import seed_files
from .strategies import (
    generated_ini,
    generated_toml,
    mutate,
    mutated_group,
    mutated_seed,
    toml_seeds,
)
from .targets import check_ini, check_instance, check_load, check_toml, check_toml_doc

# Hostile inputs are large: hypothesis warns when it writes one out, which is no failure.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


def test_fuzz_ini_reader_and_builder() -> None:
    assert seed_files()
    fuzz("ini", mutated_seed(), check_ini)


def test_fuzz_ini_from_the_directive_tables() -> None:
    names = st.sampled_from(["fuzz.service", "fuzz.socket"])
    fuzz("ini-generated", st.tuples(names, generated_ini()), check_ini)


def test_fuzz_toml_reader_and_builder() -> None:
    seeds = st.sampled_from(toml_seeds()).flatmap(lambda f: st.tuples(st.just(f[0]), mutate(f[1])))
    fuzz("toml", seeds, check_toml)


def test_fuzz_toml_documents() -> None:
    fuzz("toml-generated", generated_toml(), check_toml_doc)


def test_fuzz_load_units_with_one_mutated_file() -> None:
    fuzz("load-units", mutated_group(), check_load)


def test_fuzz_instances_of_templates() -> None:
    """Instance names come from clients (activatorctl start foo@….service) and from
    connections; their \\xNN escapes unescape to any byte (%I, %f)."""
    pieces = st.sampled_from(
        ["\\x00", "\\xff", "\\x2f", "\\x2d", "\\x25", "\\x0a", "\\x", "\\xzz", "-", "..", "@", ":"]
    )
    chars = st.sampled_from("abcXYZ09:_.\\@-x")
    instance = st.lists(st.one_of(pieces, chars), max_size=12).map("".join)
    fuzz("instances", st.one_of(instance, st.text(max_size=12)), check_instance)

"""The directive table: for each section, each directive systemd 252 knows and what we do.

A directive is either *carried* (parsed into a model field: ``Directive``), *ignored*
(known to systemd but not carried out by activator — it loads with one warning that
says so: ``IGNORED``), or unknown (an error; see build.py). Value kinds are small
functions ``(value, ctx) -> parsed`` that accept what an INI line gives (a string) and
what TOML may give (bool, int, float, str).

How a parsed value lands in the model is the directive's ``kind``:

- ``scalar``: last assignment wins; an empty one restores the default.
- ``list``: items accumulate over lines; an empty assignment clears the list.
- ``listen``: like ``list`` but every Listen*= shares one list (fd order = line order).
- ``env``: Environment= assignments merge into a dict; empty clears.
- ``caps``: capability sets: the first assignment replaces, later ones add.
- ``exit``: exit-status sets accumulate; empty clears.
- ``cond``: Condition*=/Assert*= append (directive, value); empty clears that family.

Modules: validators.py (the value kinds ``v_*``, ``RESET``, capabilities), tables.py
(``Directive``, ``TABLES`` per section, ``IGNORED``, ``CONDITIONS``). Import from the
package: the names below are its API, the split is not.
"""

from .tables import (
    CONDITIONS,
    IGNORED,
    SECTIONS,
    TABLES,
    UNJUDGED_CONDITIONS,
    Directive,
    Kind,
    SectionTable,
    home_section_of,
    ignored_reason,
)
from .validators import CAPABILITIES, RESET, Ctx, all_caps, sort_caps

__all__ = [
    "CAPABILITIES",
    "CONDITIONS",
    "IGNORED",
    "RESET",
    "SECTIONS",
    "TABLES",
    "UNJUDGED_CONDITIONS",
    "Ctx",
    "Directive",
    "Kind",
    "SectionTable",
    "all_caps",
    "home_section_of",
    "ignored_reason",
    "sort_caps",
]

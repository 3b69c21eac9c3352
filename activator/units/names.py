"""Unit names: validity, prefix/instance/suffix, templates, systemd-escape's unescaping.

Rules from systemd's unit-name.c: a name is ``PREFIX[@INSTANCE].TYPE``; prefix and
instance use ``[A-Za-z0-9:_.\\-]`` (the instance may also contain ``@``); at most 255
characters. ``foo@.service`` is a template, ``foo@bar.service`` an instance of it.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

UNIT_TYPES = frozenset(
    {
        "service", "socket", "target", "device", "mount", "automount", "swap",
        "timer", "path", "slice", "scope",
    }
)  # fmt: skip
UNIT_NAME_MAX = 255

_VALID = r"[A-Za-z0-9:_.\\-]"
_NAME = re.compile(rf"({_VALID}+)(?:@([A-Za-z0-9:_.\\@-]*))?\.([a-z]+)")
_INSTANCE = re.compile(r"[A-Za-z0-9:_.\\@-]+")


class UnitName(NamedTuple):
    prefix: str  # "echo" for "echo@x.service"
    instance: str | None  # "x"; "" for a template; None when the name has no "@"
    suffix: str  # "service"

    @property
    def is_template(self) -> bool:
        return self.instance == ""

    @property
    def template(self) -> str:
        """The template's name ("echo@.service") for an instance or template name."""
        return f"{self.prefix}@.{self.suffix}"


@functools.lru_cache(maxsize=8192)
def parse_unit_name(name: str) -> UnitName | None:
    """Split a unit name, or None if it is not a valid one (cached: names repeat a lot)."""
    if len(name) > UNIT_NAME_MAX:
        return None
    m = _NAME.fullmatch(name)
    if m is None or m.group(3) not in UNIT_TYPES:
        return None
    return UnitName(m.group(1), m.group(2), m.group(3))


def is_valid_instance(instance: str) -> bool:
    return _INSTANCE.fullmatch(instance) is not None


def unescape(text: str) -> str:
    """systemd's unit_name_unescape(): ``-`` is ``/``, ``\\xNN`` is that byte."""
    if "\\" not in text and "-" not in text:
        return text
    out = bytearray()
    i = 0
    raw = text.encode()
    while i < len(raw):
        c = raw[i]
        if c == ord("-"):
            out.append(ord("/"))
            i += 1
        elif c == ord("\\") and raw[i + 1 : i + 2] == b"x" and len(raw) >= i + 4:
            try:
                out.append(int(raw[i + 2 : i + 4], 16))
                i += 4
            except ValueError:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return out.decode(errors="surrogateescape")


def path_unescape(text: str) -> str:
    """systemd's unit_name_path_unescape() as used by ``%f``: always absolute."""
    s = unescape(text)
    return s if s.startswith("/") else "/" + s


def fdname_ok(name: str) -> bool:
    """A file descriptor name (FileDescriptorName=, ``fd:NAME``): 1-255 printable ASCII
    characters, no ':' (it separates the names in LISTEN_FDNAMES). systemd's
    fdname_is_valid() but for the empty name, which callers here treat as a reset."""
    return 0 < len(name) <= 255 and name.isascii() and name.isprintable() and ":" not in name

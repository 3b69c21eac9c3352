"""``%`` specifiers (systemd.unit(5) "Specifiers") for one unit.

Values about the manager (``%u %U %g %G %h %s``) are those of the manager's user,
root, as systemd documents; directories are the system manager's (``%t`` = /run …).
Host facts (hostname, machine-id, boot-id, os-release) are read once per process.
An unknown specifier is an error naming it; a ``%`` at the very end is kept, as systemd
does. ``%%`` is a literal ``%`` (so an IPv6 scope is written ``[::1]:80%%lo``). A value
that expands to a NUL character (``%I`` of an instance named ``\x00``) is an error: in
systemd the C string would end there; here it would reach a path or an argv.
"""

from __future__ import annotations

import functools
import os
import platform
import socket
from collections.abc import Callable

from .errors import BadValue, q
from .names import parse_unit_name, path_unescape, unescape


class UnknownSpecifier(BadValue):
    """``%c`` is no specifier; the builder re-words the message with the whole value."""

    def __init__(self, letter: str, text: str) -> None:
        super().__init__(f'{q(text)}: unknown specifier "%{letter}" (write %% for a literal %)')
        self.letter = letter


# Specifiers whose value depends on the instance: a template using none of them can be
# instantiated by copying the template's model (the Accept=yes hot path).
INSTANCE_SPECIFIERS = frozenset("iInNf")


@functools.cache
def _read_first_line(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().strip()
    except OSError:
        return None


@functools.cache
def _os_release() -> dict[str, str]:
    from .values import parse_environment_file

    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path, encoding="utf-8") as f:
                return parse_environment_file(f.read())
        except OSError:
            continue
    return {}


# systemd's architecture names (src/basic/architecture.c) for what uname -m reports.
_ARCHES = {
    "x86_64": "x86-64", "i386": "x86", "i486": "x86", "i586": "x86", "i686": "x86",
    "aarch64": "arm64", "aarch64_be": "arm64-be", "armv7l": "arm", "armv6l": "arm",
    "ppc64le": "ppc64-le", "ppc64": "ppc64", "ppc": "ppc", "s390x": "s390x", "s390": "s390",
    "riscv64": "riscv64", "mips64": "mips64", "mips": "mips", "loongarch64": "loongarch64",
}  # fmt: skip


def _machine_id() -> str:
    mid = _read_first_line("/etc/machine-id")
    if not mid:
        raise BadValue('"%m": the machine ID is not available (/etc/machine-id is missing)')
    return mid


def _boot_id() -> str:
    bid = _read_first_line("/proc/sys/kernel/random/boot_id")
    if not bid:
        raise BadValue('"%b": the boot ID is not available')
    return bid.replace("-", "")


def _hostname() -> str:
    return socket.gethostname()


_HOST: dict[str, Callable[[], str]] = {
    "a": lambda: _ARCHES.get(platform.machine(), platform.machine()),
    "A": lambda: _os_release().get("IMAGE_VERSION", ""),
    "b": _boot_id,
    "B": lambda: _os_release().get("BUILD_ID", ""),
    "C": lambda: "/var/cache",
    "E": lambda: "/etc",
    "g": lambda: "root",
    "G": lambda: "0",
    "h": lambda: "/root",
    "H": _hostname,
    "l": lambda: _hostname().split(".", 1)[0],
    "L": lambda: "/var/log",
    "m": _machine_id,
    "M": lambda: _os_release().get("IMAGE_ID", ""),
    "o": lambda: _os_release().get("ID", ""),
    "s": lambda: "/bin/sh",
    "S": lambda: "/var/lib",
    "t": lambda: "/run",
    "T": lambda: os.environ.get("TMPDIR") or "/tmp",
    "u": lambda: "root",
    "U": lambda: "0",
    "v": lambda: platform.release(),
    "V": lambda: os.environ.get("TMPDIR") or "/var/tmp",
    "w": lambda: _os_release().get("VERSION_ID", ""),
    "W": lambda: _os_release().get("VARIANT_ID", ""),
}

KNOWN = frozenset(_HOST) | frozenset("iInNpPjJfdyY")


class Specifiers:
    """The specifier values of one unit (by name, with its fragment path)."""

    __slots__ = ("name", "fragment", "_unit")

    def __init__(self, name: str, fragment: str, *, default_instance: str | None = None) -> None:
        """``default_instance``: what %i of a template is ([Install]'s, install.c's)."""
        self.name = name
        self.fragment = os.path.abspath(fragment) if fragment else ""
        parsed = parse_unit_name(name)
        prefix, instance, suffix = parsed if parsed else (name, None, "")
        if instance == "" and default_instance:
            instance = default_instance
        dash_tail = prefix.rsplit("-", 1)[-1] if "-" in prefix else ""
        self._unit: dict[str, str] = {
            "n": name,
            "N": name[: -len(suffix) - 1] if suffix else name,
            "p": prefix,
            "P": unescape(prefix),
            "i": instance or "",
            "I": unescape(instance or ""),
            "j": dash_tail or prefix,
            "J": unescape(dash_tail or prefix),
            "f": path_unescape(instance) if instance else path_unescape(prefix),
            "d": f"/run/credentials/{name}",
            "y": self.fragment,
            "Y": os.path.dirname(self.fragment),
        }

    def expand(self, text: str) -> str:
        """Expand every specifier in ``text``; BadValue names an unknown one."""
        if "%" not in text:
            return text
        out: list[str] = []
        i = 0
        n = len(text)
        while i < n:
            j = text.find("%", i)
            if j < 0 or j == n - 1:
                out.append(text[i:])
                break
            out.append(text[i:j])
            c = text[j + 1]
            if c == "%":
                out.append("%")
            elif c in self._unit:
                out.append(self._unit[c])
            elif c in _HOST:
                out.append(_HOST[c]())
            else:
                raise UnknownSpecifier(c, text)
            i = j + 2
        result = "".join(out)
        if "\0" in result:
            raise BadValue(f"{q(text)}: a specifier expands to a NUL character")
        return result


def uses_instance(text: str) -> bool:
    """Whether ``text`` contains a specifier whose value depends on the instance."""
    i = text.find("%")
    while 0 <= i < len(text) - 1:
        c = text[i + 1]
        if c in INSTANCE_SPECIFIERS:
            return True
        i = text.find("%", i + 2)
    return False


def escape_percent(text: str) -> str:
    """The inverse of expansion for literal text: ``%`` → ``%%``."""
    return text.replace("%", "%%")

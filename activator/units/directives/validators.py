"""Value kinds of the directive table: ``v_*(value, ctx) -> parsed``, one per syntax.

Each accepts what an INI line gives (a string) and what TOML may give (bool, int,
float, str, a table), parses it with the value parsers (values/, listen.py, names.py)
and raises ``BadValue`` naming the value, or returns ``RESET`` for an assignment that
resets the directive. The checks are those of systemd 252's config_parse_*() for the
directive (src/core/load-fragment.c, src/shared/conf-parser.c); a kind with arguments
(``v_uint(lo, hi)``, ``v_enum(...)``) is a factory that returns the parser.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import BadValue, q
from ..listen import parse_listen
from ..names import fdname_ok, parse_unit_name
from ..values import (
    TIMESPAN_MAX,
    env_name_is_valid,
    parse_bool,
    parse_environment_assignments,
    parse_environment_file_ref,
    parse_exec,
    parse_exit_status,
    parse_int,
    parse_mode,
    parse_rlimit,
    parse_signal,
    parse_size,
    parse_timespan,
    parse_uint,
    split_words,
)


class Ctx(Protocol):
    is_template: bool  # the unit being read is a template ("foo@.socket")

    def expand(self, text: str) -> str: ...
    def warn(self, message: str) -> None: ...


RESET = object()  # a parser's way to say "this assignment resets the directive"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return q(value)
    return repr(value)


_TOML_TYPE = {bool: "a boolean", int: "an integer", float: "a number", dict: "a table"}


def _text(value: Any, expected: str) -> str:
    if isinstance(value, str):
        return value
    got = _TOML_TYPE.get(type(value), type(value).__name__)
    raise BadValue(f"{_show(value)}: expected {expected}, not {got}")


def v_bool(value: Any, ctx: Ctx) -> bool:
    if isinstance(value, bool):
        return value
    return parse_bool(_text(value, "a boolean"))


def v_time(value: Any, ctx: Ctx) -> float:
    """Seconds; a TOML number is seconds, a string is systemd's time span."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0 or math.isnan(value):
            raise BadValue(f"{_show(value)}: a time span must not be negative")
        if value >= TIMESPAN_MAX and value != math.inf:  # inf is "infinity"
            raise BadValue(f"{_show(value)}: time span out of range (at most 584,542 years)")
        return float(value)
    return parse_timespan(_text(value, "a time span"))


def v_timeout(value: Any, ctx: Ctx) -> float:
    """Timeouts: 0 means no timeout (systemd's config_parse_sec_fix_0)."""
    t = v_time(value, ctx)
    return math.inf if t == 0 else t


def v_size(value: Any, ctx: Ctx) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise BadValue(f"{value}: a size must not be negative")
        return value
    return parse_size(_text(value, "a size"))


def v_mode(value: Any, ctx: Ctx) -> int:
    """An access mode, octal digits in a string. TOML integers are refused: the reader
    cannot tell 0o660 from 432, and a decimal 660 would silently be mode 01224."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise BadValue(f'{value}: write the mode as a string of octal digits, e.g. "0660"')
    return parse_mode(_text(value, "an octal mode"))


def _number(value: Any, lo: int | None, hi: int | None, signed: bool) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return parse_int(str(value), lo, hi)
    text = _text(value, "an integer")
    return parse_int(text, lo, hi) if signed else parse_uint(text, lo or 0, hi)


def v_uint(lo: int = 0, hi: int | None = None) -> Callable[[Any, Ctx], int]:
    def parse(value: Any, ctx: Ctx) -> int:
        return _number(value, lo, hi, signed=False)

    return parse


def v_int(lo: int | None = None, hi: int | None = None) -> Callable[[Any, Ctx], int]:
    def parse(value: Any, ctx: Ctx) -> int:
        return _number(value, lo, hi, signed=True)

    return parse


def v_string(value: Any, ctx: Ctx) -> Any:
    s = ctx.expand(_text(value, "a string"))
    return s if s else RESET


def v_enum(*choices: str, aliases: dict[str, str] | None = None) -> Callable[[Any, Ctx], str]:
    allowed = frozenset(choices)
    shown = ", ".join(choices)

    def parse(value: Any, ctx: Ctx) -> str:
        s = _text(value, "one of " + shown)
        if aliases and s in aliases:
            return aliases[s]
        if s not in allowed:
            raise BadValue(f"{q(s)}: expected one of {shown}")
        return s

    return parse


def v_enum_or_bool(choices: tuple[str, ...], true: str, false: str) -> Callable[[Any, Ctx], str]:
    """An enum that also takes a boolean (BindIPv6Only=, RuntimeDirectoryPreserve=)."""
    enum = v_enum(*choices)

    def parse(value: Any, ctx: Ctx) -> str:
        if isinstance(value, bool):
            return true if value else false
        s = _text(value, "one of " + ", ".join(choices))
        if s in choices:
            return s
        try:
            return true if parse_bool(s) else false
        except BadValue:
            return enum(s, ctx)

    return parse


def _abs_path(text: str, what: str = "an absolute path") -> str:
    if not text.startswith("/"):
        raise BadValue(f"{q(text)}: expected {what}")
    return text


def v_paths(value: Any, ctx: Ctx) -> list[str]:
    return [_abs_path(w) for w in split_words(ctx.expand(_text(value, "absolute paths")))]


def v_working_directory(value: Any, ctx: Ctx) -> Any:
    s = ctx.expand(_text(value, "a directory"))
    if not s:
        return RESET
    bare = s[1:] if s.startswith("-") else s
    if bare != "~" and not bare.startswith("/"):
        raise BadValue(f'{q(s)}: expected an absolute path or "~" (optionally prefixed with -)')
    return s


def v_pidfile(value: Any, ctx: Ctx) -> Any:
    s = ctx.expand(_text(value, "a path"))
    if not s:
        return RESET
    # systemd prefixes a relative PIDFile= with the runtime directory.
    return s if s.startswith("/") else "/run/" + s


_USER_BAD = re.compile(r"[\s:/]|^-|^\.{1,2}$")


def _user_name(name: str, what: str) -> str:
    if name.isascii() and name.isdigit():  # isdigit() alone takes "²", which int() refuses
        digits = name.lstrip("0")
        if len(digits) > 10 or int(digits or "0") >= 0xFFFFFFFF:
            raise BadValue(f"{q(name)}: {what} ID out of range")
        return name
    if not name or _USER_BAD.search(name) or len(name) > 256 or not name.isprintable():
        raise BadValue(f"{q(name)}: not a valid {what} name")
    return name


def v_user(what: str) -> Callable[[Any, Ctx], Any]:
    def parse(value: Any, ctx: Ctx) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        s = ctx.expand(_text(value, f"a {what} name or ID"))
        return _user_name(s, what) if s else RESET

    return parse


def v_groups(value: Any, ctx: Ctx) -> list[str]:
    return [_user_name(w, "group") for w in split_words(ctx.expand(_text(value, "group names")))]


def v_unit_names(suffix: str | None = None) -> Callable[[Any, Ctx], list[str]]:
    def parse(value: Any, ctx: Ctx) -> list[str]:
        out = []
        for w in split_words(ctx.expand(_text(value, "unit names"))):
            u = parse_unit_name(w)
            if u is None:
                raise BadValue(f"{q(w)}: not a valid unit name")
            if suffix and u.suffix != suffix:
                raise BadValue(f"{q(w)}: expected a .{suffix} unit")
            out.append(w)
        return out

    return parse


def v_service_name(value: Any, ctx: Ctx) -> Any:
    s = ctx.expand(_text(value, "a service unit name"))
    if not s:
        return RESET
    u = parse_unit_name(s)
    if u is None or u.suffix != "service":
        raise BadValue(f"{q(s)}: expected a .service unit name")
    # In a socket template, Service=foo@%i.service expands to a template name; only its
    # instances are ever started, and they get a real instance name.
    if u.is_template and not ctx.is_template:
        raise BadValue(
            f"{q(s)}: Service= cannot name a template (use an instance: NAME@INSTANCE.service)"
        )
    return s


_URL_SCHEMES = ("http://", "https://", "file:", "info:", "man:")


def v_urls(value: Any, ctx: Ctx) -> list[str]:
    out = []
    for w in split_words(ctx.expand(_text(value, "URLs"))):
        if not w.startswith(_URL_SCHEMES) or len(w) <= 5:
            raise BadValue(f"{q(w)}: expected a URL (http://, https://, file:, info:, man:)")
        out.append(w)
    return out


def v_words(value: Any, ctx: Ctx) -> list[str]:
    return split_words(ctx.expand(_text(value, "a list of words")))


def v_env_names(value: Any, ctx: Ctx) -> list[str]:
    words = v_words(value, ctx)
    for w in words:
        if not env_name_is_valid(w):
            raise BadValue(f"{q(w)}: not a valid environment variable name")
    return words


def v_unset_env(value: Any, ctx: Ctx) -> list[str]:
    words = v_words(value, ctx)
    for w in words:
        if not env_name_is_valid(w.partition("=")[0]):
            raise BadValue(f"{q(w)}: expected a variable name or NAME=VALUE")
    return words


def v_environment(value: Any, ctx: Ctx) -> list[tuple[str, str]]:
    """Environment=: assignments with quoting, or (TOML) a table {NAME = "value"}."""
    if isinstance(value, dict):
        pairs = []
        for name, val in value.items():
            if not env_name_is_valid(name):
                raise BadValue(f"{q(name)}: not a valid environment variable name")
            pairs.append((name, ctx.expand(_text(val, "a string value"))))
        return pairs
    return parse_environment_assignments(ctx.expand(_text(value, "NAME=VALUE assignments")))


def v_env_file(value: Any, ctx: Ctx) -> list[Any]:
    return [parse_environment_file_ref(ctx.expand(_text(value, "a path")))]


def v_exec(value: Any, ctx: Ctx) -> list[Any]:
    text = _text(value, "a command line")
    warned: list[str] = []
    cmds = parse_exec(text, ctx.expand, on_unknown_escape=warned.append)
    if warned:
        ctx.warn(f"{q(text)}: unknown escape sequences kept as written: {' '.join(warned)}")
    return cmds


def v_rlimit(which: str) -> Callable[[Any, Ctx], Any]:
    def parse(value: Any, ctx: Ctx) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        return parse_rlimit(_text(value, "a resource limit"), which)

    return parse


def v_signal(value: Any, ctx: Ctx) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return parse_signal(_text(value, "a signal"))


def v_exit_status(value: Any, ctx: Ctx) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return parse_exit_status(_text(value, "exit statuses"))


def v_relative_dirs(value: Any, ctx: Ctx) -> list[str]:
    out = []
    for w in split_words(ctx.expand(_text(value, "directory names"))):
        path = w.partition(":")[0]  # v250+: "dir:symlink"
        if path.startswith("/") or ".." in path.split("/") or not path:
            raise BadValue(f"{q(w)}: expected a relative directory name without ..")
        out.append(w)
    return out


def v_fdname(value: Any, ctx: Ctx) -> Any:
    s = ctx.expand(_text(value, "a file descriptor name"))
    if not s:
        return RESET
    if not fdname_ok(s):
        raise BadValue(f"{q(s)}: invalid file descriptor name (ASCII, no ':', at most 255)")
    return s


def v_std_input(value: Any, ctx: Ctx) -> str:
    s = ctx.expand(_text(value, "a standard input"))
    if s in ("null", "tty", "tty-force", "tty-fail", "data", "socket"):
        return s
    if s == "fd":
        return "fd:stdin"
    if s.startswith("file:"):
        _abs_path(s[5:], "file:/ABSOLUTE/PATH")
        return s
    if s.startswith("fd:") and fdname_ok(s[3:]):
        return s
    raise BadValue(
        f"{q(s)}: expected null, tty, tty-force, tty-fail, data, socket, file:PATH or fd:NAME"
    )


_OUTPUT_ALIASES = {"syslog": "journal", "syslog+console": "journal+console"}


def v_std_output(stream: str) -> Callable[[Any, Ctx], str]:
    def parse(value: Any, ctx: Ctx) -> str:
        s = ctx.expand(_text(value, "a standard output"))
        s = _OUTPUT_ALIASES.get(s, s)
        if s in (
            "inherit",
            "null",
            "tty",
            "journal",
            "kmsg",
            "journal+console",
            "kmsg+console",
            "socket",
        ):
            return s
        if s == "fd":
            return f"fd:{stream}"
        for p in ("file:", "append:", "truncate:"):
            if s.startswith(p):
                _abs_path(s[len(p) :], p + "/ABSOLUTE/PATH")
                return s
        if s.startswith("fd:") and fdname_ok(s[3:]):
            return s
        raise BadValue(
            f"{q(s)}: expected inherit, null, tty, journal, kmsg, journal+console, "
            "kmsg+console, socket, file:PATH, append:PATH, truncate:PATH or fd:NAME"
        )

    return parse


def v_ifname(value: Any, ctx: Ctx) -> Any:
    s = ctx.expand(_text(value, "a network interface name"))
    if not s or s == "*":
        return RESET
    if len(s) >= 16 or any(c in s for c in "/: \t") or s in (".", ".."):
        raise BadValue(f"{q(s)}: not a valid network interface name")
    return s


_IPTOS = {"low-delay": 0x10, "throughput": 0x08, "reliability": 0x04, "low-cost": 0x02}


def v_iptos(value: Any, ctx: Ctx) -> int:
    if isinstance(value, str) and value in _IPTOS:
        return _IPTOS[value]
    try:
        return _number(value, 0, 255, signed=False)
    except BadValue:
        raise BadValue(
            f"{_show(value)}: expected 0-255 or low-delay, throughput, reliability, low-cost"
        ) from None


def v_timestamping(value: Any, ctx: Ctx) -> str:
    s = _text(value, "off, us or ns")
    m = {"off": "off", "us": "us", "usec": "us", "µs": "us", "μs": "us", "ns": "ns", "nsec": "ns"}
    if s not in m:
        raise BadValue(f"{q(s)}: expected off, us, usec, µs, ns or nsec")
    return m[s]


def v_bus_name(value: Any, ctx: Ctx) -> Any:
    s = ctx.expand(_text(value, "a D-Bus name"))
    if not s:
        return RESET
    if not re.fullmatch(r"[A-Za-z_-][A-Za-z0-9_-]*(\.[A-Za-z_-][A-Za-z0-9_-]*)+", s):
        raise BadValue(f'{q(s)}: not a valid D-Bus well-known name (e.g. "org.example.App")')
    return s


_ALL_CAPS = (
    "CAP_CHOWN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_FSETID CAP_KILL "
    "CAP_SETGID CAP_SETUID CAP_SETPCAP CAP_LINUX_IMMUTABLE CAP_NET_BIND_SERVICE "
    "CAP_NET_BROADCAST CAP_NET_ADMIN CAP_NET_RAW CAP_IPC_LOCK CAP_IPC_OWNER CAP_SYS_MODULE "
    "CAP_SYS_RAWIO CAP_SYS_CHROOT CAP_SYS_PTRACE CAP_SYS_PACCT CAP_SYS_ADMIN CAP_SYS_BOOT "
    "CAP_SYS_NICE CAP_SYS_RESOURCE CAP_SYS_TIME CAP_SYS_TTY_CONFIG CAP_MKNOD CAP_LEASE "
    "CAP_AUDIT_WRITE CAP_AUDIT_CONTROL CAP_SETFCAP CAP_MAC_OVERRIDE CAP_MAC_ADMIN "
    "CAP_SYSLOG CAP_WAKE_ALARM CAP_BLOCK_SUSPEND CAP_AUDIT_READ CAP_PERFMON CAP_BPF "
    "CAP_CHECKPOINT_RESTORE"
).split()
CAPABILITIES = {name: i for i, name in enumerate(_ALL_CAPS)}


def v_caps(value: Any, ctx: Ctx) -> tuple[bool, frozenset[str]]:
    """(inverted, names) of one capability line; "~" inverts, names in any case."""
    s = _text(value, "capability names")
    invert = s.startswith("~")
    names = set()
    for w in split_words(s[1:] if invert else s):
        up = w.upper()
        if up.isascii() and up.isdigit() and len(up) <= 2 and int(up) < len(_ALL_CAPS):
            up = _ALL_CAPS[int(up)]
        if up not in CAPABILITIES:
            raise BadValue(f"{q(w)}: unknown capability (e.g. CAP_NET_BIND_SERVICE)")
        names.add(up)
    return invert, frozenset(names)


def sort_caps(names: set[str] | frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(names, key=CAPABILITIES.__getitem__))


def all_caps() -> frozenset[str]:
    return frozenset(_ALL_CAPS)


_PATH_CONDITIONS = frozenset(
    {
        "PathExists", "PathExistsGlob", "PathIsDirectory", "PathIsSymbolicLink",
        "PathIsMountPoint", "PathIsReadWrite", "PathIsEncrypted", "DirectoryNotEmpty",
        "FileNotEmpty", "FileIsExecutable", "NeedsUpdate",
    }
)  # fmt: skip


def v_condition(kind: str) -> Callable[[Any, Ctx], str]:
    def parse(value: Any, ctx: Ctx) -> str:
        if isinstance(value, bool):
            value = "true" if value else "false"
        s = ctx.expand(_text(value, "a condition"))
        if kind in _PATH_CONDITIONS:
            bare = s.lstrip("|").lstrip("!")
            if not bare.startswith("/"):
                raise BadValue(f"{q(s)}: expected an absolute path (after optional | and !)")
        return s

    return parse


def v_listen(directive: str) -> Callable[[Any, Ctx], Any]:
    def parse(value: Any, ctx: Ctx) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # TOML: ListenStream = 8080
        s = ctx.expand(_text(value, "an address"))
        return [parse_listen(directive, s)] if s else RESET

    return parse


#: syslog(3)'s levels, most urgent first (systemd's log_level_from_string()).
SYSLOG_LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")


def v_log_level(value: Any, ctx: Ctx) -> str:
    """A syslog level by name or number (0-7), as its name."""
    s = _text(value, "a syslog level")
    if s.isdigit() and int(s) < len(SYSLOG_LEVELS):
        return SYSLOG_LEVELS[int(s)]
    if s not in SYSLOG_LEVELS:
        raise BadValue(f"{q(s)}: expected a syslog level: {', '.join(SYSLOG_LEVELS)} or 0-7")
    return s

"""Parsers for systemd's value syntaxes, shared by the unit readers and the runtime.

Each parser takes the text of one value (specifiers already expanded, unless said
otherwise) and returns a normalised Python value, or raises ``BadValue`` whose message
names the value and what was expected. They follow systemd 252's parsers
(src/basic/parse-util.c, time-util.c, extract-word.c, env-file.c,
src/core/load-fragment.c) so that a unit accepted here is accepted there too.

The runtime re-uses ``read_environment_file`` (EnvironmentFile= is read at each start)
and ``split_command_line`` (``$VAR`` as a whole word is split at spawn time).
"""

from __future__ import annotations

import math
import re
import signal
from collections.abc import Callable, Iterator

from .errors import BadValue, q
from .model import EnvironmentFile, ExecCommand, ExitStatusSet, Rlimit

__all__ = [
    "BadValue",
    "parse_bool",
    "parse_int",
    "parse_uint",
    "parse_timespan",
    "parse_size",
    "parse_mode",
    "parse_signal",
    "parse_rlimit",
    "parse_exit_status",
    "split_words",
    "split_command_line",
    "parse_exec",
    "parse_environment_assignments",
    "parse_environment_file",
    "read_environment_file",
    "parse_environment_file_ref",
    "env_name_is_valid",
    "quote_word",
]

WHITESPACE = " \t\n\r"


# ---------------------------------------------------------------- booleans and numbers

_TRUE = frozenset({"1", "yes", "y", "true", "t", "on"})
_FALSE = frozenset({"0", "no", "n", "false", "f", "off"})


def parse_bool(text: str) -> bool:
    """systemd's parse_boolean(): 1/yes/y/true/t/on and 0/no/n/false/f/off, any case."""
    low = text.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise BadValue(f"{q(text)}: expected a boolean (yes/no, true/false, on/off, 1/0)")


def c_strtol(text: str) -> int | None:
    """C strtol(…, base 0) the way systemd's safe_ato*() use it, or None.

    "0x50" is hex, "010" octal (so "080" is invalid), "0b"/"0o" are accepted too
    (systemd's mangle_base), a leading "+" is allowed. Whole string must be consumed.
    """
    s = text.lstrip(WHITESPACE)
    sign = 1
    if s[:1] in ("+", "-"):
        if s[0] == "-":
            sign = -1
        s = s[1:]
    if not s:
        return None
    base = 10
    low = s.lower()
    if low.startswith("0x"):
        base, s = 16, s[2:]
    elif low.startswith("0o"):
        base, s = 8, s[2:]
    elif low.startswith("0b"):
        base, s = 2, s[2:]
    elif len(s) > 1 and s[0] == "0":
        base = 8
    if not s or not all(
        c in "0123456789abcdefABCDEF"[: base + (6 if base == 16 else 0)] for c in s
    ):
        return None
    return sign * int(s, base)


def parse_int(text: str, lo: int | None = None, hi: int | None = None) -> int:
    """A signed integer (C syntax: 0x hex, 0 octal), optionally within [lo, hi]."""
    n = c_strtol(text)
    if n is None:
        raise BadValue(f"{q(text)}: expected an integer")
    _check_range(text, n, lo, hi)
    return n


def parse_uint(text: str, lo: int = 0, hi: int | None = None) -> int:
    """An unsigned integer; "-…" is out of range (systemd: ERANGE), like safe_atou()."""
    n = c_strtol(text)
    if n is None:
        raise BadValue(f"{q(text)}: expected an unsigned integer")
    _check_range(text, n, lo, hi)
    return n


def _check_range(text: str, n: int, lo: int | None, hi: int | None) -> None:
    if lo is not None and hi is not None and not lo <= n <= hi:
        if lo < 0:
            raise BadValue(f"{q(text)}: must be between {lo} and {hi}")
        raise BadValue(f"{q(text)}: must be {lo}-{hi}")
    if lo is not None and n < lo:
        raise BadValue(f"{q(text)}: must be at least {lo}")
    if hi is not None and n > hi:
        raise BadValue(f"{q(text)}: must be at most {hi}")


# ---------------------------------------------------------------- time spans and sizes

# Order matters: systemd takes the first suffix in this order that the text starts with,
# so "ms" is milliseconds but "m" alone is minutes, and "M" (upper case) is months.
_TIME_UNITS: tuple[tuple[str, float], ...] = (
    ("seconds", 1.0),
    ("second", 1.0),
    ("sec", 1.0),
    ("s", 1.0),
    ("minutes", 60.0),
    ("minute", 60.0),
    ("min", 60.0),
    ("months", 2629800.0),
    ("month", 2629800.0),
    ("M", 2629800.0),
    ("msec", 1e-3),
    ("ms", 1e-3),
    ("m", 60.0),
    ("hours", 3600.0),
    ("hour", 3600.0),
    ("hr", 3600.0),
    ("h", 3600.0),
    ("days", 86400.0),
    ("day", 86400.0),
    ("d", 86400.0),
    ("weeks", 604800.0),
    ("week", 604800.0),
    ("w", 604800.0),
    ("years", 31557600.0),
    ("year", 31557600.0),
    ("y", 31557600.0),
    ("usec", 1e-6),
    ("us", 1e-6),
    ("µs", 1e-6),  # MICRO SIGN
    ("μs", 1e-6),  # GREEK SMALL LETTER MU
)
_NUMBER = re.compile(r"(\d*)(?:\.(\d*))?")
_TIMESPAN_CACHE: dict[tuple[str, float], float] = {}


def parse_timespan(text: str, default_unit: float = 1.0) -> float:
    """A systemd time span in seconds: "1min 30s", "100ms", "2h30min", "infinity", "5".

    A bare number is in ``default_unit`` seconds (1.0 for most directives, 1e-6 where
    systemd's default unit is µs, e.g. LimitRTTIME=). ``infinity`` gives ``math.inf``.
    """
    key = (text, default_unit)
    hit = _TIMESPAN_CACHE.get(key)
    if hit is not None:
        return hit
    value = _parse_timespan(text, default_unit)
    if len(_TIMESPAN_CACHE) < 4096:
        _TIMESPAN_CACHE[key] = value
    return value


def _parse_timespan(text: str, default_unit: float) -> float:
    s = text.strip(WHITESPACE)
    if s == "infinity":
        return math.inf
    bad = BadValue(f'{q(text)}: expected a time span (e.g. "90", "1min 30s", "100ms", "infinity")')
    if not s:
        raise bad
    total_us = 0.0
    i = 0
    while i < len(s):
        m = _NUMBER.match(s, i)
        assert m is not None  # the pattern matches the empty string
        whole, frac = m.group(1), m.group(2)
        if not whole and not frac:
            raise bad
        i = m.end()
        while i < len(s) and s[i] in WHITESPACE:
            i += 1
        mult = default_unit
        for suffix, seconds in _TIME_UNITS:
            if s.startswith(suffix, i):
                mult = seconds
                i += len(suffix)
                break
        value = float(int(whole or "0"))
        if frac:
            value += int(frac) / 10 ** len(frac)
        # Sum in whole microseconds as systemd does, so 1.5s + 100ms is exact-ish.
        total_us += value * mult * 1e6
        while i < len(s) and s[i] in WHITESPACE:
            i += 1
    return round(total_us) / 1e6


_SIZE_UNITS: tuple[tuple[str, int], ...] = (
    ("E", 1024**6),
    ("P", 1024**5),
    ("T", 1024**4),
    ("G", 1024**3),
    ("M", 1024**2),
    ("K", 1024),
    ("B", 1),
)


def parse_size(text: str) -> int:
    """A size in bytes, base 1024 as systemd's parse_size(): "64K", "1.5G", "1G 512M", "100"."""
    s = text.strip(WHITESPACE)
    bad = BadValue(f'{q(text)}: expected a size in bytes (e.g. "8M", "64K", "1G")')
    if not s or s.startswith("-"):
        raise bad
    total = 0
    i = 0
    while i < len(s):
        m = _NUMBER.match(s, i)
        assert m is not None
        whole, frac = m.group(1), m.group(2)
        if not whole and not frac:
            raise bad
        i = m.end()
        while i < len(s) and s[i] in WHITESPACE:
            i += 1
        mult = 1
        if i < len(s):
            for suffix, factor in _SIZE_UNITS:
                if s.startswith(suffix, i):
                    mult = factor
                    i += 1
                    break
        total += int(whole or "0") * mult
        if frac:
            total += int(frac) * mult // 10 ** len(frac)
        while i < len(s) and s[i] in WHITESPACE:
            i += 1
    return total


def parse_mode(text: str) -> int:
    """An octal access mode, 0-07777 ("0660", "755")."""
    s = text.strip(WHITESPACE)
    if not s or any(c not in "01234567" for c in s):
        raise BadValue(f'{q(text)}: expected an octal mode (e.g. "0644")')
    n = int(s, 8)
    if n > 0o7777:
        raise BadValue(f"{q(text)}: mode must be at most 07777")
    return n


# ---------------------------------------------------------------- signals and exit codes

_SIGNALS: dict[str, int] = {s.name: int(s) for s in signal.Signals if not s.name.startswith("SIG_")}
# glibc aliases systemd also accepts
_SIGNALS.setdefault("SIGIOT", int(signal.SIGABRT))
_SIGNALS.setdefault("SIGPOLL", int(signal.SIGIO))
_SIGNALS.setdefault("SIGCLD", int(signal.SIGCHLD))
_SIGRTMIN = int(signal.SIGRTMIN)
_SIGRTMAX = int(signal.SIGRTMAX)
_SIGNAL_NAMES: dict[int, str] = {}
for _name, _num in sorted(_SIGNALS.items(), key=lambda kv: kv[0]):
    # prefer the POSIX names (SIGABRT over SIGIOT, SIGCHLD over SIGCLD, SIGIO over SIGPOLL)
    if _name not in ("SIGIOT", "SIGCLD", "SIGPOLL", "SIGRTMIN", "SIGRTMAX"):
        _SIGNAL_NAMES.setdefault(_num, _name)


def parse_signal(text: str) -> int:
    """A signal: "SIGTERM", "TERM", "15", "RTMIN+3", "SIGRTMAX-1" (names are case-sensitive)."""
    s = text.strip(WHITESPACE)
    name = s if s.startswith("SIG") else "SIG" + s
    if name in _SIGNALS and name not in ("SIGRTMIN", "SIGRTMAX"):
        return _SIGNALS[name]
    for base_name, base, sign in (("SIGRTMIN", _SIGRTMIN, 1), ("SIGRTMAX", _SIGRTMAX, -1)):
        if name == base_name:
            return base
        if name.startswith(base_name + ("+" if sign > 0 else "-")):
            off = name[len(base_name) + 1 :]
            if off.isdigit() and _SIGRTMIN <= base + sign * int(off) <= _SIGRTMAX:
                return base + sign * int(off)
    if s.isdigit() and 1 <= int(s) <= _SIGRTMAX:
        return int(s)
    raise BadValue(f'{q(text)}: expected a signal name or number (e.g. "SIGTERM", "HUP", "9")')


def signal_name(num: int) -> str:
    """The name systemd prints for a signal number ("SIGTERM", "SIGRTMIN+2")."""
    if num in _SIGNAL_NAMES:
        return _SIGNAL_NAMES[num]
    if _SIGRTMIN <= num <= _SIGRTMAX:
        return "SIGRTMIN" if num == _SIGRTMIN else f"SIGRTMIN+{num - _SIGRTMIN}"
    return str(num)


# systemd's exit_status_mappings (src/basic/exit-status.c), accepted by *ExitStatus=.
EXIT_STATUS_NAMES: dict[str, int] = {
    "SUCCESS": 0, "FAILURE": 1, "INVALIDARGUMENT": 2, "NOTIMPLEMENTED": 3,
    "NOPERMISSION": 4, "NOTINSTALLED": 5, "NOTCONFIGURED": 6, "NOTRUNNING": 7,
    "USAGE": 64, "DATAERR": 65, "NOINPUT": 66, "NOUSER": 67, "NOHOST": 68,
    "UNAVAILABLE": 69, "SOFTWARE": 70, "OSERR": 71, "OSFILE": 72, "CANTCREAT": 73,
    "IOERR": 74, "TEMPFAIL": 75, "PROTOCOL": 76, "NOPERM": 77, "CONFIG": 78,
    "CHDIR": 200, "NICE": 201, "FDS": 202, "EXEC": 203, "MEMORY": 204, "LIMITS": 205,
    "OOM_ADJUST": 206, "SIGNAL_MASK": 207, "STDIN": 208, "STDOUT": 209, "CHROOT": 210,
    "IOPRIO": 211, "TIMERSLACK": 212, "SECUREBITS": 213, "SETSCHEDULER": 214,
    "CPUAFFINITY": 215, "GROUP": 216, "USER": 217, "CAPABILITIES": 218, "CGROUP": 219,
    "SETSID": 220, "CONFIRM": 221, "STDERR": 222, "PAM": 224, "NETWORK": 225,
    "NAMESPACE": 226, "NO_NEW_PRIVILEGES": 227, "SECCOMP": 228, "SELINUX_CONTEXT": 229,
    "PERSONALITY": 230, "APPARMOR_PROFILE": 231, "ADDRESS_FAMILIES": 232,
    "RUNTIME_DIRECTORY": 233, "CHOWN": 235, "SMACK_PROCESS_LABEL": 236, "KEYRING": 237,
    "STATE_DIRECTORY": 238, "CACHE_DIRECTORY": 239, "LOGS_DIRECTORY": 240,
    "CONFIGURATION_DIRECTORY": 241, "NUMA_POLICY": 242, "CREDENTIALS": 243, "BPF": 245,
    "EXCEPTION": 255,
}  # fmt: skip


def parse_exit_status(text: str, current: ExitStatusSet | None = None) -> ExitStatusSet:
    """SuccessExitStatus= and friends: space-separated codes (0-255, names) and signals.

    Adds to ``current`` (the directive accumulates); the caller handles the empty reset.
    """
    codes = set(current.codes) if current else set()
    signals = set(current.signals) if current else set()
    for word in split_words(text):
        if word.isdigit():
            n = int(word)
            if n > 255:
                raise BadValue(f"{q(word)}: exit status must be 0-255")
            codes.add(n)
        elif word in EXIT_STATUS_NAMES:
            codes.add(EXIT_STATUS_NAMES[word])
        else:
            try:
                signals.add(parse_signal(word))
            except BadValue:
                raise BadValue(
                    f"{q(word)}: expected an exit status (0-255) or a signal name"
                ) from None
    return ExitStatusSet(codes=frozenset(codes), signals=frozenset(signals))


# ---------------------------------------------------------------- resource limits

_RLIMIT_SIZE = frozenset({"FSIZE", "DATA", "STACK", "CORE", "RSS", "AS", "MEMLOCK", "MSGQUEUE"})
_RLIMIT_COUNT = frozenset({"NOFILE", "NPROC", "LOCKS", "SIGPENDING", "RTPRIO"})
# Linux resource numbers (asm-generic/resource.h); the runtime passes them to
# setrlimit(). Python's resource module lacks some (RLIMIT_LOCKS).
RLIMITS: dict[str, int] = {
    "CPU": 0, "FSIZE": 1, "DATA": 2, "STACK": 3, "CORE": 4, "RSS": 5, "NPROC": 6,
    "NOFILE": 7, "MEMLOCK": 8, "AS": 9, "LOCKS": 10, "SIGPENDING": 11, "MSGQUEUE": 12,
    "NICE": 13, "RTPRIO": 14, "RTTIME": 15,
}  # fmt: skip


def parse_rlimit(text: str, which: str) -> Rlimit:
    """``Limit<which>=``: "soft[:hard]" or one value for both; "infinity" is no limit.

    Units follow systemd's rlimit_parse(): CPU in seconds (time spans allowed), RTTIME
    in µs (time spans allowed), sizes for FSIZE/DATA/STACK/CORE/RSS/AS/MEMLOCK/MSGQUEUE,
    plain counts otherwise; NICE takes a raw 0-40 value or a nice level with a sign.
    """
    which = which.removeprefix("Limit")
    if which not in RLIMITS:
        raise BadValue(f"{q(which)}: unknown resource limit")
    s = text.strip(WHITESPACE)
    soft_text, sep, hard_text = s.partition(":")
    soft = _rlimit_value(soft_text, which, text)
    hard = _rlimit_value(hard_text, which, text) if sep else soft
    if hard is not None and (soft is None or soft > hard):
        raise BadValue(f"{q(text)}: soft limit is above the hard limit")
    return Rlimit(soft=soft, hard=hard)


def _rlimit_value(part: str, which: str, whole: str) -> int | None:
    part = part.strip(WHITESPACE)
    if part == "infinity":
        return None
    try:
        if which == "CPU":
            return math.ceil(parse_timespan(part))  # seconds, rounded up like systemd
        if which == "RTTIME":
            return round(parse_timespan(part, default_unit=1e-6) * 1e6)
        if which in _RLIMIT_SIZE:
            return parse_size(part)
        if which == "NICE":
            if part[:1] == "+":
                return 20 - parse_int(part[1:], 0, 19)
            if part[:1] == "-":
                return 20 + parse_int(part[1:], 0, 20)
            return parse_uint(part, 0, 40)
        return parse_uint(part)
    except BadValue:
        raise BadValue(
            f'{q(whole)}: expected "soft[:hard]" resource limit values or "infinity"'
        ) from None


# ---------------------------------------------------------------- word splitting and quoting

_C_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", '"': '"', "'": "'", "s": " ",
}  # fmt: skip


def _cunescape_one(s: str, i: int) -> tuple[str, int] | None:
    """Decode the C escape whose letter is at s[i] (after the backslash).

    Returns (text, index after it) or None if it is not a valid escape.
    """
    c = s[i]
    if c in _C_ESCAPES:
        return _C_ESCAPES[c], i + 1
    if c == "x":
        h = s[i + 1 : i + 3]
        if len(h) == 2 and all(d in "0123456789abcdefABCDEF" for d in h) and int(h, 16):
            return chr(int(h, 16)), i + 3
        return None
    if c in "uU":
        n = 4 if c == "u" else 8
        h = s[i + 1 : i + 1 + n]
        if len(h) == n and all(d in "0123456789abcdefABCDEF" for d in h):
            cp = int(h, 16)
            if 0 < cp <= 0x10FFFF:
                return chr(cp), i + 1 + n
        return None
    if c in "0123":
        o = s[i : i + 3]
        if len(o) == 3 and all(d in "01234567" for d in o) and int(o, 8):
            return chr(int(o, 8)), i + 3
        return None
    return None


class QuotingError(BadValue):
    """Bad quoting or escaping; ``reason`` lets callers name the whole value instead."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"{q(text)}: {reason}")
        self.reason = reason


def _extract_words(
    s: str,
    *,
    cunescape: bool,
    relax: bool = False,
    on_unknown_escape: Callable[[str], None] | None = None,
) -> Iterator[tuple[str, int]]:
    """systemd's extract_first_word() in a loop: yields (word, end index in s).

    Quotes (single or double) may open anywhere in a word and are removed. With
    ``cunescape`` backslashes introduce C escapes (``\\n``, ``\\x41``, ``\\s``…);
    an unknown escape is an error, or with ``relax`` is kept as written (systemd's
    EXTRACT_CUNESCAPE_RELAX, used for command lines). Without ``cunescape`` a backslash
    takes the next character literally.
    """
    n = len(s)
    i = 0
    while True:
        while i < n and s[i] in WHITESPACE:
            i += 1
        if i >= n:
            return
        out: list[str] = []
        quote = ""
        while i < n:
            c = s[i]
            if c == "\\":
                if i + 1 >= n:
                    raise QuotingError(s, "trailing backslash")
                if cunescape:
                    dec = _cunescape_one(s, i + 1)
                    if dec is None:
                        if not relax:
                            raise QuotingError(s, f"invalid escape sequence \\{s[i + 1]}")
                        if on_unknown_escape:
                            on_unknown_escape("\\" + s[i + 1])
                        out.append("\\" + s[i + 1])
                        i += 2
                    else:
                        out.append(dec[0])
                        i = dec[1]
                else:
                    out.append(s[i + 1])
                    i += 2
                continue
            if quote:
                if c == quote:
                    quote = ""
                else:
                    out.append(c)
                i += 1
                continue
            if c in "'\"":
                quote = c
                i += 1
                continue
            if c in WHITESPACE:
                break
            out.append(c)
            i += 1
        if quote:
            raise QuotingError(s, "unbalanced quoting")
        yield "".join(out), i


def split_words(text: str, *, cunescape: bool = True) -> list[str]:
    """Split a list value into words with systemd's quoting rules ("a b" 'c' d\\ e)."""
    # Fast path; str.split() would also split on characters systemd does not (\v, \f…).
    if (
        text.isascii()
        and text.replace("\t", " ").isprintable()
        and not any(c in text for c in "\\'\"")
    ):
        return text.split()
    return [w for w, _ in _extract_words(text, cunescape=cunescape)]


def split_command_line(text: str) -> list[str]:
    """Split one command line into words (quotes, C escapes, unknown escapes kept).

    This is the splitting the runtime applies to ``$VAR`` used as a whole word.
    """
    return [w for w, _ in _extract_words(text, cunescape=True, relax=True)]


_SAFE_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def quote_word(word: str) -> str:
    """Quote ``word`` so that splitting gives it back unchanged (used by the TOML export)."""
    if word and _SAFE_WORD.fullmatch(word) and word != ";":
        return word
    out = ['"']
    for c in word:
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif c == "\r":
            out.append("\\r")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


# ---------------------------------------------------------------- command lines


def _path_simplify(path: str) -> str:
    """systemd's path_simplify(): drop duplicate slashes, "/./" and a trailing slash.

    Unlike os.path.normpath it keeps ".." (that would change what the path means).
    """
    absolute = path.startswith("/")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    out = "/".join(parts)
    return ("/" + out) if absolute else (out or ".")


def _filename_is_valid(name: str) -> bool:
    return bool(name) and "/" not in name and name not in (".", "..") and len(name) <= 255


def parse_exec(
    text: str,
    expand: Callable[[str], str] | None = None,
    *,
    on_unknown_escape: Callable[[str], None] | None = None,
) -> list[ExecCommand]:
    """One ``Exec*=`` value → its command lines (several when separated by a lone ";").

    Follows config_parse_exec(): prefixes ``-@:+!`` / ``!!`` on the first word, ``@``
    makes the next word argv[0], ``\\;`` is a literal ";". ``expand`` (specifier
    expansion) is applied to each word after unquoting, as systemd does; ``$VAR`` is left
    alone. ``on_unknown_escape`` is told about escapes systemd keeps with a warning.
    """
    try:
        return _parse_exec(text, expand or (lambda w: w), on_unknown_escape)
    except QuotingError as e:
        raise BadValue(f"{q(text)}: {e.reason}") from None


def _parse_exec(
    text: str, expand: Callable[[str], str], on_unknown_escape: Callable[[str], None] | None
) -> list[ExecCommand]:
    commands: list[ExecCommand] = []
    n = len(text)
    i = 0
    while True:
        while i < n and text[i] in WHITESPACE:
            i += 1
        if i >= n:
            break
        words = _extract_words(
            text[i:], cunescape=True, relax=True, on_unknown_escape=on_unknown_escape
        )
        first = next(words, None)
        if first is None:
            break
        firstword, end = first
        i += end
        ignore = no_env = privileged = no_setuid = ambient = separate_argv0 = False
        f = 0
        while f < len(firstword):
            c = firstword[f]
            if c == "-" and not ignore:
                ignore = True
            elif c == "@" and not separate_argv0:
                separate_argv0 = True
            elif c == ":" and not no_env:
                no_env = True
            elif c == "+" and not (privileged or no_setuid or ambient):
                privileged = True
            elif c == "!" and not (privileged or ambient):
                if no_setuid:  # "!!"
                    no_setuid, ambient = False, True
                else:
                    no_setuid = True
            else:
                break
            f += 1
        path = expand(firstword[f:])
        if not path:
            raise BadValue(f"{q(text)}: empty executable path")
        if path.startswith("$"):
            raise BadValue(f"{q(path)}: the executable may not be a variable")
        if path.endswith(("/", "/.", "/..")) or path in (".", ".."):
            raise BadValue(f"{q(path)}: executable path names a directory")
        if not path.startswith("/") and not _filename_is_valid(path):
            raise BadValue(f"{q(path)}: neither a valid executable name nor an absolute path")
        argv: list[str] = [] if separate_argv0 else [path]
        path = _path_simplify(path)
        # The rest of this command: words up to a lone ";".
        while True:
            while i < n and text[i] in WHITESPACE:
                i += 1
            if i >= n:
                break
            if text[i] == ";" and (i + 1 >= n or text[i + 1] in WHITESPACE):
                i += 1
                break
            if (
                text[i] == "\\"
                and text[i + 1 : i + 2] == ";"
                and (i + 2 >= n or text[i + 2] in WHITESPACE)
            ):
                argv.append(";")
                i += 2
                continue
            word_iter = _extract_words(
                text[i:], cunescape=True, relax=True, on_unknown_escape=on_unknown_escape
            )
            w = next(word_iter, None)
            if w is None:
                break
            argv.append(expand(w[0]))
            i += w[1]
        if not argv:
            raise BadValue(f"{q(text)}: @ needs argv[0] after the executable")
        commands.append(
            ExecCommand(
                path=path,
                argv=tuple(argv),
                ignore_failure=ignore,
                no_env_expand=no_env,
                privileged=privileged,
                no_setuid=no_setuid or ambient,
            )
        )
    return commands


def format_exec(cmd: ExecCommand, escape: Callable[[str], str] = lambda w: w) -> str:
    """The command line that ``parse_exec`` reads back as ``cmd`` (for the TOML export).

    ``escape`` is applied to each word before quoting (the exporter doubles ``%``).
    """
    prefix = ""
    if cmd.ignore_failure:
        prefix += "-"
    if cmd.no_env_expand:
        prefix += ":"
    if cmd.privileged:
        prefix += "+"
    if cmd.no_setuid:
        prefix += "!"
    words = [escape(w) for w in cmd.argv]
    # A quote may open mid-word, so the prefix can be glued to a quoted path.
    if cmd.argv[0] != cmd.path:
        head = [prefix + "@" + quote_word(escape(cmd.path)), quote_word(words[0])]
    else:
        head = [prefix + quote_word(words[0])]
    rest = ["\\;" if w == ";" else quote_word(w) for w in words[1:]]
    return " ".join(head + rest)


# ---------------------------------------------------------------- environment

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def env_name_is_valid(name: str) -> bool:
    return _ENV_NAME.fullmatch(name) is not None


def parse_environment_assignments(text: str) -> list[tuple[str, str]]:
    """``Environment=`` value: quoted ``NAME=value`` words → [(NAME, value)] in order."""
    out: list[tuple[str, str]] = []
    for word in split_words(text):
        name, sep, value = word.partition("=")
        if not sep or not env_name_is_valid(name):
            raise BadValue(f"{q(word)}: expected a NAME=VALUE assignment")
        out.append((name, value))
    return out


def parse_environment_file_ref(text: str) -> EnvironmentFile:
    """``EnvironmentFile=`` value: an absolute path, "-" prefix when it may be missing."""
    optional = text.startswith("-")
    path = text[1:] if optional else text
    if not path.startswith("/"):
        raise BadValue(f"{q(text)}: expected an absolute path (optionally prefixed with -)")
    return EnvironmentFile(path=path, optional=optional)


_SHELL_NEED_ESCAPE = '"\\`$'


def parse_environment_file(text: str) -> dict[str, str]:
    """The contents of an EnvironmentFile=: shell-like ``KEY=VALUE`` lines.

    systemd's parse_env_file() state machine: ``#``/``;`` comment lines, single quotes
    literal, double quotes with backslash escapes for ``"\\`$``, backslash-newline
    continues a line, trailing whitespace of unquoted values dropped. Lines with an
    invalid name are skipped, as systemd does (it logs them).
    """
    out: dict[str, str] = {}
    state = "pre_key"
    key: list[str] = []
    value: list[str] = []
    last_value_ws = -1  # index in value after which only unescaped whitespace follows
    last_key_ws = -1

    def push() -> None:
        k = "".join(key[:last_key_ws] if last_key_ws >= 0 else key)
        if env_name_is_valid(k):
            out[k] = "".join(value)

    for c in text:
        if state == "pre_key":
            if c in "#;":
                state = "comment"
            elif c not in WHITESPACE:
                state, key, last_key_ws = "key", [c], -1
        elif state == "key":
            if c in "\n\r":
                state = "pre_key"
            elif c == "=":
                state, value, last_value_ws = "pre_value", [], -1
            else:
                if c in WHITESPACE:
                    if last_key_ws < 0:
                        last_key_ws = len(key)
                else:
                    last_key_ws = -1
                key.append(c)
        elif state == "pre_value":
            if c in "\n\r":
                state = "pre_key"
                push()
            elif c == "'":
                state = "single"
            elif c == '"':
                state = "double"
            elif c == "\\":
                state = "value_escape"
            elif c not in WHITESPACE:
                state = "value"
                value.append(c)
        elif state == "value":
            if c in "\n\r":
                state = "pre_key"
                if last_value_ws >= 0:
                    del value[last_value_ws:]
                push()
            elif c == "\\":
                state = "value_escape"
                last_value_ws = -1
            else:
                if c in WHITESPACE:
                    if last_value_ws < 0:
                        last_value_ws = len(value)
                else:
                    last_value_ws = -1
                value.append(c)
        elif state == "value_escape":
            state = "value"
            if c not in "\n\r":
                value.append(c)
        elif state == "single":
            if c == "'":
                state = "pre_value"
            else:
                value.append(c)
        elif state == "double":
            if c == '"':
                state = "pre_value"
            elif c == "\\":
                state = "double_escape"
            else:
                value.append(c)
        elif state == "double_escape":
            state = "double"
            if c in _SHELL_NEED_ESCAPE:
                value.append(c)
            elif c not in "\n\r":
                value.append("\\")
                value.append(c)
        elif state == "comment":
            if c == "\\":
                state = "comment_escape"
            elif c in "\n\r":
                state = "pre_key"
        elif state == "comment_escape":
            state = "comment"
    if state in ("pre_value", "value", "value_escape", "single", "double", "double_escape"):
        if state == "value" and last_value_ws >= 0:
            del value[last_value_ws:]
        push()
    return out


def read_environment_file(path: str) -> dict[str, str]:
    """Read and parse an EnvironmentFile=.

    Raises OSError when the file cannot be read (the caller decides whether a missing
    optional "-" file is fine) and BadValue when it is not valid UTF-8.
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadValue(f"{q(path)}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    return parse_environment_file(text)

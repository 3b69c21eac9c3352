"""Scalar values: booleans, integers, time spans, sizes, modes, signals, exit statuses, rlimits.

Ports of systemd 252's parse_boolean() and safe_atoi()/safe_atou() (src/basic/parse-util.c),
parse_sec() (time-util.c), parse_size(), signal_from_string() (signal-util.c),
exit_status_from_string() (exit-status.c) and rlimit_parse() (rlimit-util.c). They are
the leaves of the value syntaxes: one value's text in, a number out; only exit statuses
need the word splitter. ``c_strtol`` is shared with listen.py (ports, netlink groups).
"""

from __future__ import annotations

import math
import re
import signal

from ..errors import BadValue, q
from ..model import ExitStatusSet, Rlimit
from .words import WHITESPACE, split_words

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


# C's strtol() saturates with ERANGE where a number leaves 64 bits; a number with more
# significant digits than 2**64 has in base 2 is beyond that in any base, and comes back
# as ±OUT_OF_RANGE, which every range check refuses. (Python's int() would also refuse
# more than 4,300 decimal digits.)
_MAX_DIGITS = 64
OUT_OF_RANGE = 2**64
# systemd's safe_atou()/safe_atoi() parse C ints: the range when a directive has no other.
UINT_MAX = 2**32 - 1
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


def c_strtol(text: str) -> int | None:
    """C strtol(…, base 0) the way systemd's safe_ato*() use it, or None.

    "0x50" is hex, "010" octal (so "080" is invalid), "0b"/"0o" are accepted too
    (systemd's mangle_base), a leading "+" is allowed. Whole string must be consumed.
    A number beyond 64 bits is ±``OUT_OF_RANGE``.
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
    s = s.lstrip("0")
    if len(s) > _MAX_DIGITS:
        return sign * OUT_OF_RANGE
    return sign * int(s or "0", base)


def parse_int(text: str, lo: int | None = None, hi: int | None = None) -> int:
    """A signed integer (C syntax: 0x hex, 0 octal) within [lo, hi]; a bound not given
    is a C int's, as systemd's safe_atoi()."""
    n = c_strtol(text)
    if n is None:
        raise BadValue(f"{q(text)}: expected an integer")
    _check_range(text, n, lo, hi)
    _check_range(text, n, INT_MIN if lo is None else None, INT_MAX if hi is None else None)
    return n


def parse_uint(text: str, lo: int = 0, hi: int | None = None) -> int:
    """An unsigned integer; "-…" is out of range (systemd: ERANGE), like safe_atou().

    Without ``hi``, at most a C unsigned int's 4294967295, as safe_atou().
    """
    n = c_strtol(text)
    if n is None:
        raise BadValue(f"{q(text)}: expected an unsigned integer")
    _check_range(text, n, lo, hi)
    if hi is None:
        _check_range(text, n, None, UINT_MAX)
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
# ASCII digits only: \d would also take "٣", which systemd refuses.
_NUMBER = re.compile(r"([0-9]*)(?:\.([0-9]*))?")
# systemd's USEC_INFINITY: a time span must stay below 2**64 - 1 µs (584,542 years).
_USEC_INFINITY = 2**64 - 1
TIMESPAN_MAX = _USEC_INFINITY / 1e6  # in seconds, for time spans given as numbers (TOML)
# Fraction digits past this add nothing a float can hold (and keep int() small).
_FRACTION_DIGITS = 64
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
    too_long = BadValue(f"{q(text)}: time span out of range (at most 584,542 years)")
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
        whole = whole.lstrip("0")
        if len(whole) > 19:  # beyond strtoll()'s range: ERANGE in systemd
            raise too_long
        value = float(int(whole or "0"))
        if frac:
            frac = frac[:_FRACTION_DIGITS]
            value += int(frac) / 10 ** len(frac)
        # Sum in whole microseconds as systemd does, so 1.5s + 100ms is exact-ish.
        total_us += value * mult * 1e6
        if total_us >= _USEC_INFINITY:
            raise too_long
        while i < len(s) and s[i] in WHITESPACE:
            i += 1
    return round(total_us) / 1e6


_UINT64_MAX = 2**64 - 1
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
    too_big = BadValue(f"{q(text)}: size out of range (at most 16E - 1 bytes)")
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
        whole = whole.lstrip("0")
        digits = frac.lstrip("0") if frac else ""
        if len(whole) > 20 or len(digits) > 20:  # beyond strtoull(): ERANGE in systemd
            raise too_big
        total += int(whole or "0") * mult
        if digits:
            total += int(digits) * mult // 10 ** len(frac)
        if total > _UINT64_MAX:
            raise too_big
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
            off = _small_decimal(name[len(base_name) + 1 :])
            if off is not None and _SIGRTMIN <= base + sign * off <= _SIGRTMAX:
                return base + sign * off
    n = _small_decimal(s)
    if n is not None and 1 <= n <= _SIGRTMAX:
        return n
    raise BadValue(f'{q(text)}: expected a signal name or number (e.g. "SIGTERM", "HUP", "9")')


def _small_decimal(text: str) -> int | None:
    """``text`` as a decimal number of up to ten ASCII digits (str.isdigit() also takes
    "²", which int() refuses), or None."""
    if text.isascii() and text.isdigit() and len(text) <= 10:
        return int(text)
    return None


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
        if word.isascii() and word.isdigit():
            n = _small_decimal(word.lstrip("0") or "0")
            if n is None or n > 255:
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
            size = parse_size(part)
            if size == _UINT64_MAX:  # RLIM_INFINITY: systemd wants "infinity" for that
                raise BadValue(part)
            return size
        if which == "NICE":
            if part[:1] == "+":
                return 20 - parse_int(part[1:], 0, 19)
            if part[:1] == "-":
                return 20 + parse_int(part[1:], 0, 20)
            return parse_uint(part, 0, 40)
        # rlimit_parse_u64(): any 64-bit count short of RLIM_INFINITY.
        return parse_uint(part, 0, _UINT64_MAX - 1)
    except BadValue:
        raise BadValue(
            f'{q(whole)}: expected "soft[:hard]" resource limit values or "infinity"'
        ) from None

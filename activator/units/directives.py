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
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .errors import BadValue, q
from .listen import parse_listen
from .names import fdname_ok, parse_unit_name
from .values import (
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

Kind = Literal["scalar", "list", "listen", "env", "caps", "exit", "cond"]


class Ctx(Protocol):
    is_template: bool  # the unit being read is a template ("foo@.socket")

    def expand(self, text: str) -> str: ...
    def warn(self, message: str) -> None: ...


RESET = object()  # a parser's way to say "this assignment resets the directive"


@dataclass(frozen=True, slots=True)
class Directive:
    name: str
    field: str
    kind: Kind
    parse: Callable[[Any, Ctx], Any]
    section: str | None = None  # model section it writes; None: the file section
    fields: tuple[str, ...] = ()  # more fields set to the same value (TimeoutSec=)


# ---------------------------------------------------------------- value kinds


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


def v_path(value: Any, ctx: Ctx) -> Any:
    s = ctx.expand(_text(value, "an absolute path"))
    return _abs_path(s) if s else RESET


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
    if name.isdigit():
        if int(name) >= 0xFFFFFFFF:
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
        if up.isdigit() and int(up) < len(_ALL_CAPS):
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
CONDITIONS = (
    "PathExists PathExistsGlob PathIsDirectory PathIsSymbolicLink PathIsMountPoint "
    "PathIsReadWrite PathIsEncrypted DirectoryNotEmpty FileNotEmpty FileIsExecutable "
    "NeedsUpdate FirstBoot Architecture Firmware Virtualization Host KernelCommandLine "
    "KernelVersion Credential Security Capability ACPower Memory CPUFeature CPUs "
    "Environment User Group ControlGroupController OSRelease MemoryPressure CPUPressure "
    "IOPressure"
).split()


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


# ---------------------------------------------------------------- the table

SectionTable = dict[str, Directive]


def _d(name: str, kind: Kind, parse: Callable[[Any, Ctx], Any], *, field: str | None = None,
       section: str | None = None, fields: tuple[str, ...] = ()) -> Directive:  # fmt: skip
    return Directive(name, field or name, kind, parse, section, fields)


def _unit_table() -> SectionTable:
    t: SectionTable = {}
    t["Description"] = _d("Description", "scalar", v_string)
    t["Documentation"] = _d("Documentation", "list", v_urls)
    for dep in ("Requires", "Requisite", "Wants", "BindsTo", "PartOf", "Conflicts", "Before",
                "After", "OnFailure"):  # fmt: skip
        t[dep] = _d(dep, "list", v_unit_names())
    t["BindTo"] = _d("BindTo", "list", v_unit_names(), field="BindsTo")  # old spelling
    for b in ("StopWhenUnneeded", "RefuseManualStart", "RefuseManualStop",
              "DefaultDependencies", "IgnoreOnIsolate"):  # fmt: skip
        t[b] = _d(b, "scalar", v_bool)
    t["CollectMode"] = _d("CollectMode", "scalar", v_enum("inactive", "inactive-or-failed"))
    t["StartLimitIntervalSec"] = _d("StartLimitIntervalSec", "scalar", v_time)
    t["StartLimitInterval"] = _d(
        "StartLimitInterval", "scalar", v_time, field="StartLimitIntervalSec"
    )
    t["StartLimitBurst"] = _d("StartLimitBurst", "scalar", v_uint())
    for c in CONDITIONS:
        for family in ("Condition", "Assert"):
            t[family + c] = _d(family + c, "cond", v_condition(c), field="Conditions")
    return t


def _install_table() -> SectionTable:
    return {
        "WantedBy": _d("WantedBy", "list", v_unit_names()),
        "RequiredBy": _d("RequiredBy", "list", v_unit_names()),
        "Also": _d("Also", "list", v_unit_names()),
        "Alias": _d("Alias", "list", v_unit_names()),
        "DefaultInstance": _d("DefaultInstance", "scalar", v_string),
    }


def _exec_table() -> SectionTable:
    """systemd.exec(5) and systemd.kill(5): valid in [Service] and [Socket]."""
    t: SectionTable = {}
    t["User"] = _d("User", "scalar", v_user("user"))
    t["Group"] = _d("Group", "scalar", v_user("group"))
    t["SupplementaryGroups"] = _d("SupplementaryGroups", "list", v_groups)
    t["DynamicUser"] = _d("DynamicUser", "scalar", v_bool)
    t["WorkingDirectory"] = _d("WorkingDirectory", "scalar", v_working_directory)
    t["RootDirectory"] = _d("RootDirectory", "scalar", v_path)
    t["Environment"] = _d("Environment", "env", v_environment)
    t["EnvironmentFile"] = _d("EnvironmentFile", "list", v_env_file)
    t["PassEnvironment"] = _d("PassEnvironment", "list", v_env_names)
    t["UnsetEnvironment"] = _d("UnsetEnvironment", "list", v_unset_env)
    t["UMask"] = _d("UMask", "scalar", v_mode)
    t["Nice"] = _d("Nice", "scalar", v_int(-20, 19))
    t["OOMScoreAdjust"] = _d("OOMScoreAdjust", "scalar", v_int(-1000, 1000))
    t["IgnoreSIGPIPE"] = _d("IgnoreSIGPIPE", "scalar", v_bool)
    t["NoNewPrivileges"] = _d("NoNewPrivileges", "scalar", v_bool)
    t["CapabilityBoundingSet"] = _d("CapabilityBoundingSet", "caps", v_caps)
    t["AmbientCapabilities"] = _d("AmbientCapabilities", "caps", v_caps)
    t["StandardInput"] = _d("StandardInput", "scalar", v_std_input)
    t["StandardOutput"] = _d("StandardOutput", "scalar", v_std_output("stdout"))
    t["StandardError"] = _d("StandardError", "scalar", v_std_output("stderr"))
    t["SyslogIdentifier"] = _d("SyslogIdentifier", "scalar", v_string)
    for r in ("CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NOFILE", "AS", "NPROC",
              "MEMLOCK", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO",
              "RTTIME"):  # fmt: skip
        t["Limit" + r] = _d("Limit" + r, "scalar", v_rlimit(r))
    for kind in ("Runtime", "State", "Cache", "Logs", "Configuration"):
        t[kind + "Directory"] = _d(kind + "Directory", "list", v_relative_dirs)
        t[kind + "DirectoryMode"] = _d(kind + "DirectoryMode", "scalar", v_mode)
    t["RuntimeDirectoryPreserve"] = _d(
        "RuntimeDirectoryPreserve", "scalar", v_enum_or_bool(("no", "yes", "restart"), "yes", "no")
    )
    t["KillMode"] = _d("KillMode", "scalar", v_enum("control-group", "mixed", "process", "none"))
    for s in ("KillSignal", "RestartKillSignal", "FinalKillSignal", "WatchdogSignal"):
        t[s] = _d(s, "scalar", v_signal)
    t["SendSIGKILL"] = _d("SendSIGKILL", "scalar", v_bool)
    t["SendSIGHUP"] = _d("SendSIGHUP", "scalar", v_bool)
    return t


def _socket_table() -> SectionTable:
    t = _exec_table()
    for listen in ("ListenStream", "ListenDatagram", "ListenSequentialPacket", "ListenFIFO",
                   "ListenSpecial", "ListenNetlink", "ListenMessageQueue"):  # fmt: skip
        t[listen] = _d(listen, "listen", _listen_parser(listen), field="Listen")
    t["Accept"] = _d("Accept", "scalar", v_bool)
    t["Service"] = _d("Service", "scalar", v_service_name)
    t["SocketUser"] = _d("SocketUser", "scalar", v_user("user"))
    t["SocketGroup"] = _d("SocketGroup", "scalar", v_user("group"))
    t["SocketMode"] = _d("SocketMode", "scalar", v_mode)
    t["DirectoryMode"] = _d("DirectoryMode", "scalar", v_mode)
    t["Backlog"] = _d("Backlog", "scalar", v_uint(0, 2**32 - 1))
    t["BindIPv6Only"] = _d(
        "BindIPv6Only",
        "scalar",
        v_enum_or_bool(("default", "both", "ipv6-only"), "ipv6-only", "both"),
    )
    t["BindToDevice"] = _d("BindToDevice", "scalar", v_ifname)
    t["SocketProtocol"] = _d("SocketProtocol", "scalar", v_enum("udplite", "sctp", "mptcp"))
    for b in ("ReusePort", "FreeBind", "Transparent", "Broadcast", "PassCredentials",
              "PassSecurity", "PassPacketInfo", "KeepAlive", "NoDelay", "Writable",
              "FlushPending", "RemoveOnStop"):  # fmt: skip
        t[b] = _d(b, "scalar", v_bool)
    t["Timestamping"] = _d("Timestamping", "scalar", v_timestamping)
    for tm in ("KeepAliveTimeSec", "KeepAliveIntervalSec", "DeferAcceptSec",
               "TriggerLimitIntervalSec", "PollLimitIntervalSec"):  # fmt: skip
        t[tm] = _d(tm, "scalar", v_time)
    t["KeepAliveProbes"] = _d("KeepAliveProbes", "scalar", v_uint())
    t["Priority"] = _d("Priority", "scalar", v_int())
    t["ReceiveBuffer"] = _d("ReceiveBuffer", "scalar", v_size)
    t["SendBuffer"] = _d("SendBuffer", "scalar", v_size)
    t["PipeSize"] = _d("PipeSize", "scalar", v_size)
    t["IPTOS"] = _d("IPTOS", "scalar", v_iptos)
    t["IPTTL"] = _d("IPTTL", "scalar", v_int(0, 255))
    t["Mark"] = _d("Mark", "scalar", v_int())
    t["TCPCongestion"] = _d("TCPCongestion", "scalar", v_string)
    t["MessageQueueMaxMessages"] = _d("MessageQueueMaxMessages", "scalar", v_int(0))
    t["MessageQueueMessageSize"] = _d("MessageQueueMessageSize", "scalar", v_int(0))
    t["MaxConnections"] = _d("MaxConnections", "scalar", v_uint(1))
    t["MaxConnectionsPerSource"] = _d("MaxConnectionsPerSource", "scalar", v_uint())
    t["Symlinks"] = _d("Symlinks", "list", v_paths)
    t["FileDescriptorName"] = _d("FileDescriptorName", "scalar", v_fdname)
    t["TriggerLimitBurst"] = _d("TriggerLimitBurst", "scalar", v_uint())
    t["PollLimitBurst"] = _d("PollLimitBurst", "scalar", v_uint())
    for e in ("ExecStartPre", "ExecStartPost", "ExecStopPre", "ExecStopPost"):
        t[e] = _d(e, "list", v_exec)
    t["TimeoutSec"] = _d("TimeoutSec", "scalar", v_timeout)
    t["X-Activator-UCSPI"] = _d("X-Activator-UCSPI", "scalar", v_bool, field="UCSPI")
    return t


def _listen_parser(directive: str) -> Callable[[Any, Ctx], Any]:
    def parse(value: Any, ctx: Ctx) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # TOML: ListenStream = 8080
        s = ctx.expand(_text(value, "an address"))
        return [parse_listen(directive, s)] if s else RESET

    return parse


def _service_table() -> SectionTable:
    t = _exec_table()
    t["Type"] = _d(
        "Type", "scalar",
        v_enum("simple", "exec", "forking", "oneshot", "dbus", "notify", "notify-reload", "idle"),
    )  # fmt: skip
    for e in ("ExecCondition", "ExecStartPre", "ExecStart", "ExecStartPost", "ExecReload",
              "ExecStop", "ExecStopPost"):  # fmt: skip
        t[e] = _d(e, "list", v_exec)
    for b in ("RemainAfterExit", "GuessMainPID", "NonBlocking", "PermissionsStartOnly"):
        t[b] = _d(b, "scalar", v_bool)
    t["PIDFile"] = _d("PIDFile", "scalar", v_pidfile)
    t["BusName"] = _d("BusName", "scalar", v_bus_name)
    t["NotifyAccess"] = _d("NotifyAccess", "scalar", v_enum("none", "main", "exec", "all"))
    t["WatchdogSec"] = _d("WatchdogSec", "scalar", v_time)
    t["Restart"] = _d(
        "Restart", "scalar",
        v_enum(
            "no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always"
        ),
    )  # fmt: skip
    t["RestartSec"] = _d("RestartSec", "scalar", v_time)
    for x in ("SuccessExitStatus", "RestartPreventExitStatus", "RestartForceExitStatus"):
        t[x] = _d(x, "exit", v_exit_status)
    t["TimeoutStartSec"] = _d("TimeoutStartSec", "scalar", v_timeout)
    t["TimeoutStopSec"] = _d("TimeoutStopSec", "scalar", v_timeout)
    t["TimeoutSec"] = _d(
        "TimeoutSec", "scalar", v_timeout, field="TimeoutStartSec", fields=("TimeoutStopSec",)
    )
    t["RuntimeMaxSec"] = _d("RuntimeMaxSec", "scalar", v_time)
    t["Sockets"] = _d("Sockets", "list", v_unit_names("socket"))
    t["FileDescriptorStoreMax"] = _d("FileDescriptorStoreMax", "scalar", v_uint())
    # Legacy spellings that systemd still reads in [Service]; they belong to [Unit].
    t["StartLimitInterval"] = _d(
        "StartLimitInterval", "scalar", v_time, field="StartLimitIntervalSec", section="Unit"
    )
    t["StartLimitBurst"] = _d("StartLimitBurst", "scalar", v_uint(), section="Unit")
    return t


TABLES: dict[str, SectionTable] = {
    "Unit": _unit_table(),
    "Install": _install_table(),
    "Socket": _socket_table(),
    "Service": _service_table(),
}
SECTIONS: dict[str, tuple[str, ...]] = {
    "socket": ("Unit", "Socket", "Install"),
    "service": ("Unit", "Service", "Install"),
}

# ---------------------------------------------------------------- known but not carried out

# Every [Socket]/[Service]/[Unit] directive of systemd 252 (systemd
# --dump-configuration-items) that the tables above do not carry. They load with one
# warning each. A few later ones (v253+) are listed too, so newer units still load.
_EXEC_252 = """
RootImage RootImageOptions RootHash RootHashSignature RootVerity ExtensionDirectories
ExtensionImages MountImages CoredumpFilter IOSchedulingClass IOSchedulingPriority
CPUSchedulingPolicy CPUSchedulingPriority CPUSchedulingResetOnFork CPUAffinity NUMAPolicy
NUMAMask RemoveIPC StandardInputText StandardInputData TTYPath TTYReset TTYVHangup
TTYVTDisallocate TTYRows TTYColumns SyslogFacility SyslogLevel SyslogLevelPrefix LogLevelMax
LogRateLimitIntervalSec LogRateLimitBurst LogExtraFields SecureBits TimerSlackNSec
KeyringMode ProtectProc ProcSubset SystemCallFilter SystemCallArchitectures
SystemCallErrorNumber SystemCallLog MemoryDenyWriteExecute RestrictNamespaces
RestrictRealtime RestrictSUIDSGID RestrictAddressFamilies LockPersonality
RestrictFileSystems ReadWriteDirectories ReadOnlyDirectories InaccessibleDirectories
ReadWritePaths ReadOnlyPaths InaccessiblePaths ExecPaths NoExecPaths ExecSearchPath
BindPaths BindReadOnlyPaths TemporaryFileSystem PrivateTmp PrivateDevices
ProtectKernelTunables ProtectKernelModules ProtectKernelLogs ProtectClock
ProtectControlGroups NetworkNamespacePath IPCNamespacePath LogNamespace PrivateNetwork
PrivateUsers PrivateMounts PrivateIPC ProtectSystem ProtectHome MountFlags MountAPIVFS
Personality SetCredential SetCredentialEncrypted LoadCredential LoadCredentialEncrypted
TimeoutCleanSec PAMName UtmpIdentifier UtmpMode SELinuxContext AppArmorProfile
SmackProcessLabel ProtectHostname Slice AllowedCPUs StartupAllowedCPUs AllowedMemoryNodes
StartupAllowedMemoryNodes CPUAccounting CPUWeight StartupCPUWeight CPUShares
StartupCPUShares CPUQuota CPUQuotaPeriodSec MemoryAccounting MemoryMin DefaultMemoryMin
DefaultMemoryLow MemoryLow MemoryHigh MemoryMax MemorySwapMax MemoryLimit DeviceAllow
DevicePolicy IOAccounting IOWeight StartupIOWeight IODeviceWeight IOReadBandwidthMax
IOWriteBandwidthMax IOReadIOPSMax IOWriteIOPSMax IODeviceLatencyTargetSec BlockIOAccounting
BlockIOWeight StartupBlockIOWeight BlockIODeviceWeight BlockIOReadBandwidth
BlockIOWriteBandwidth TasksAccounting TasksMax Delegate DisableControllers IPAccounting
IPAddressAllow IPAddressDeny IPIngressFilterPath IPEgressFilterPath ManagedOOMSwap
ManagedOOMMemoryPressure ManagedOOMMemoryPressureLimit ManagedOOMPreference BPFProgram
SocketBindAllow SocketBindDeny RestrictNetworkInterfaces
MemoryZSwapMax PrivatePIDs ProtectControlGroupsEx ImportCredential SetLoginEnvironment
""".split()
_SERVICE_252 = """
TimeoutAbortSec TimeoutStartFailureMode TimeoutStopFailureMode RuntimeRandomizedExtraSec
StartLimitAction FailureAction RebootArgument ExitType RootDirectoryStartOnly
USBFunctionDescriptors USBFunctionStrings OOMPolicy
OpenFile ReloadSignal RestartSteps RestartMaxDelaySec RestartMode FileDescriptorStorePreserve
""".split()
_SOCKET_252 = """
ListenUSBFunction SmackLabel SmackLabelIPIn SmackLabelIPOut SELinuxContextFromNet
PassFileDescriptorsToExec DeferTrigger DeferTriggerMaxSec PassPIDFD AcceptFileDescriptors
""".split()
_UNIT_252 = """
SourcePath Upholds OnSuccess PropagatesReloadTo PropagateReloadTo ReloadPropagatedFrom
PropagateReloadFrom PropagatesStopTo StopPropagatedFrom JoinsNamespaceOf RequiresOverridable
RequisiteOverridable RequiresMountsFor AllowIsolate OnSuccessJobMode OnFailureJobMode
OnFailureIsolate JobTimeoutSec JobRunningTimeoutSec JobTimeoutAction JobTimeoutRebootArgument
StartLimitAction FailureAction SuccessAction FailureActionExitStatus SuccessActionExitStatus
RebootArgument
""".split()
_INSTALL_252 = "UpheldBy".split()

_SANDBOX = re.compile(
    r"^(Protect|Private|Restrict|SystemCall|ReadWrite|ReadOnly|Inaccessible|Bind|Root(Image|Hash|Verity)"
    r"|Extension|MountImages|MountFlags|MountAPIVFS|TemporaryFileSystem|NoExecPaths|ExecPaths"
    r"|MemoryDenyWriteExecute|LockPersonality|SecureBits|Personality|KeyringMode|ProcSubset"
    r"|RemoveIPC|NetworkNamespacePath|IPCNamespacePath|SELinux|AppArmor|Smack|Device|IPAddress"
    r"|IPIngress|IPEgress|SocketBind|BPFProgram|NoNewPrivileges)"
)
_CGROUP = re.compile(
    r"^(CPU(Accounting|Weight|Shares|Quota)|Startup|Memory(?!DenyWriteExecute)|DefaultMemory|IO(Accounting|Weight"
    r"|Device|Read|Write)|BlockIO|Tasks|Delegate|DisableControllers|Slice|Allowed|ManagedOOM"
    r"|IPAccounting)"
)


def ignored_reason(name: str) -> str:
    """The warning text for a directive systemd knows but activator does not carry out."""
    if _SANDBOX.match(name):
        return "ignored: activator does not sandbox services"
    if _CGROUP.match(name):
        return "ignored: activator does no cgroup resource control"
    return "ignored: not supported by activator"


IGNORED: dict[str, frozenset[str]] = {
    "Unit": frozenset(_UNIT_252),
    "Install": frozenset(_INSTALL_252),
    "Socket": frozenset(_EXEC_252 + _SOCKET_252),
    "Service": frozenset(_EXEC_252 + _SERVICE_252),
}


def home_section_of(name: str) -> str | None:
    """Where a directive would be valid, for the hint in an "unknown directive" error."""
    for section, table in TABLES.items():
        if name in table or name in IGNORED[section]:
            return section
    return None

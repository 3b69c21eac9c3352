"""Planning a process: from a unit and the fds of this start to an ExecSpec — pure work.

Everything the privileged core needs is decided here, in the parent, as data:
argv with ``$VAR`` expanded as systemd expands it, the environment built as PID 1
builds it (reference/systemd.md §1.10), credentials, limits, stdio. The core then
only carries it out. Nothing here forks or changes process state, so it is tested
without processes.
"""

from __future__ import annotations

import os
import resource
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..core.errors import StartError
from ..units.directives import CAPABILITIES
from ..units.errors import BadValue
from ..units.model import ExecCommand, ExecContext
from ..units.values import read_environment_file
from .paths import DEFAULT_PATH
from .spec import ExecSpec
from .users import Credentials, resolve

_SEARCH_PATH = DEFAULT_PATH.split(":")

_RLIMITS = {
    "LimitCPU": resource.RLIMIT_CPU,
    "LimitFSIZE": resource.RLIMIT_FSIZE,
    "LimitDATA": resource.RLIMIT_DATA,
    "LimitSTACK": resource.RLIMIT_STACK,
    "LimitCORE": resource.RLIMIT_CORE,
    "LimitRSS": resource.RLIMIT_RSS,
    "LimitNOFILE": resource.RLIMIT_NOFILE,
    "LimitAS": resource.RLIMIT_AS,
    "LimitNPROC": resource.RLIMIT_NPROC,
    "LimitMEMLOCK": resource.RLIMIT_MEMLOCK,
    "LimitLOCKS": 10,  # RLIMIT_LOCKS: Linux has it, the resource module does not
    "LimitSIGPENDING": resource.RLIMIT_SIGPENDING,
    "LimitMSGQUEUE": resource.RLIMIT_MSGQUEUE,
    "LimitNICE": resource.RLIMIT_NICE,
    "LimitRTPRIO": resource.RLIMIT_RTPRIO,
    "LimitRTTIME": resource.RLIMIT_RTTIME,
}


def cap_numbers(names: tuple[str, ...]) -> list[int]:
    out = []
    for name in names:
        key = name.upper() if name.upper().startswith("CAP_") else "CAP_" + name.upper()
        if key not in CAPABILITIES:
            raise StartError(f"unknown capability {name!r}")
        out.append(CAPABILITIES[key])
    return out


def find_program(path: str) -> str:
    """An absolute path as is; a bare name searched in systemd's fixed PATH."""
    if path.startswith("/"):
        return path
    for d in _SEARCH_PATH:
        candidate = os.path.join(d, path)
        if os.access(candidate, os.X_OK):
            return candidate
    raise StartError(f"unable to find program {path!r} in {DEFAULT_PATH}")


def expand_argv(cmd: ExecCommand, env: dict[str, str]) -> list[str]:
    """systemd's replace_env_argv: ``$VAR`` as a whole word splits, ``${VAR}`` is one value.

    ``$$`` is a literal ``$``; ``$VAR`` inside a longer word is left alone; unknown
    variables expand to nothing. The ``:`` prefix turns all of this off.
    """
    if cmd.no_env_expand:
        return list(cmd.argv)
    out = [cmd.argv[0]]
    for word in cmd.argv[1:]:
        if "$" not in word:
            out.append(word)
        elif len(word) > 1 and word[0] == "$" and word[1] not in "{$" and _is_name(word[1:]):
            value = env.get(word[1:], "")
            try:
                out.extend(shlex.split(value))
            except ValueError:
                out.extend(value.split())
        else:
            out.append(_replace_braced(word, env))
    return out


def _is_name(s: str) -> bool:
    return bool(s) and (s[0].isalpha() or s[0] == "_") and all(c.isalnum() or c == "_" for c in s)


def _replace_braced(word: str, env: dict[str, str]) -> str:
    out = []
    i, n = 0, len(word)
    while i < n:
        c = word[i]
        if c == "$" and i + 1 < n and word[i + 1] == "$":
            out.append("$")
            i += 2
        elif c == "$" and i + 1 < n and word[i + 1] == "{":
            end = word.find("}", i + 2)
            if end < 0:
                out.append(word[i:])
                break
            out.append(env.get(word[i + 2 : end], ""))
            i = end + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def build_environment(
    ctx: ExecContext,
    creds: Credentials | None,
    generated: dict[str, str],
    supervisor_env: dict[str, str] | os._Environ[str] | None = None,
) -> dict[str, str]:
    """The environment of a service process, as systemd builds it (later wins):

    PATH (and LANG from the supervisor) → USER/LOGNAME/HOME/SHELL → generated
    (INVOCATION_ID, LISTEN_*, REMOTE_*, NOTIFY_SOCKET …) → PassEnvironment= →
    Environment= → EnvironmentFile= (read now, at each start) → UnsetEnvironment=.
    Nothing else of the supervisor's environment leaks.
    Raises StartError for a missing EnvironmentFile= without ``-``.
    """
    sup = os.environ if supervisor_env is None else supervisor_env
    env: dict[str, str] = {"PATH": DEFAULT_PATH}
    if "LANG" in sup:
        env["LANG"] = sup["LANG"]
    if creds is not None and creds.dynamic:
        # systemd 252's exec_child(): a dynamic user has a name, but no passwd entry that
        # would give it a home or a shell (README: no NSS module here)
        env["USER"] = env["LOGNAME"] = creds.user
    elif creds is not None and ctx.User is not None:
        env["USER"] = env["LOGNAME"] = creds.user
        env["HOME"] = creds.home
        env["SHELL"] = creds.shell
    env.update(generated)
    for name in ctx.PassEnvironment:
        if name in sup:
            env[name] = sup[name]
    env.update(ctx.Environment)
    for ef in ctx.EnvironmentFile:
        try:
            env.update(read_environment_file(ef.path))
        except FileNotFoundError:
            if not ef.optional:
                raise StartError(
                    f"unable to read environment file {ef.path}: No such file or directory"
                ) from None
        except OSError as e:
            if not ef.optional:
                raise StartError(
                    f"unable to read environment file {ef.path}: {e.strerror or e}"
                ) from None
        except BadValue as e:  # read, but not text (systemd: the start fails too)
            raise StartError(f"unable to read environment file {ef.path}: {e}") from None
    for item in ctx.UnsetEnvironment:
        if "=" in item:
            name, _, value = item.partition("=")
            if env.get(name) == value:
                del env[name]
        else:
            env.pop(item, None)
    return env


@dataclass(frozen=True, slots=True)
class Prepared:
    """What stays the same between starts of one unit: resolved once, reused per connection."""

    creds: Credentials | None
    rlimits: tuple[tuple[int, int, int], ...]
    cwd: bytes | None
    cwd_optional: bool
    bounding: tuple[int, ...] | None
    ambient: tuple[int, ...]


CredsMemo = dict[tuple[str | None, str | None, tuple[str, ...]], Credentials | None]


def prepare(ctx: ExecContext, memo: CredsMemo | None = None) -> Prepared:
    """Resolve users, limits and capabilities of a unit. Raises StartError.

    With DynamicUser= there are no credentials yet: the start acquires them (dynamic.py)
    and puts them in (``dataclasses.replace(prepared, creds=…)``). ``memo``: credentials
    already resolved, by (User=, Group=, SupplementaryGroups=) — 10,000 units of one user
    ask the user and group databases (getpwnam, getgrouplist) once, and share one record."""
    creds = None
    if not ctx.DynamicUser:
        key = (ctx.User, ctx.Group, tuple(ctx.SupplementaryGroups))
        if memo is not None and key in memo:
            creds = memo[key]
        else:
            creds = resolve(*key)
            if memo is not None:
                memo[key] = creds
    limits = []
    for directive, res in _RLIMITS.items():
        lim = getattr(ctx, directive)
        if lim is not None:
            inf = resource.RLIM_INFINITY
            limits.append(
                (res, inf if lim.soft is None else lim.soft, inf if lim.hard is None else lim.hard)
            )
    wd = ctx.WorkingDirectory
    optional = False
    if wd is not None and wd.startswith("-"):
        optional, wd = True, wd[1:]
    if wd == "~":
        wd = "/" if ctx.DynamicUser else creds.home if creds is not None else "/root"
    cwd = os.fsencode(wd if wd else "/")
    bounding = (
        None if ctx.CapabilityBoundingSet is None else tuple(cap_numbers(ctx.CapabilityBoundingSet))
    )
    return Prepared(
        creds, tuple(limits), cwd, optional, bounding, tuple(cap_numbers(ctx.AmbientCapabilities))
    )


def make_spec(
    ctx: ExecContext,
    prepared: Prepared,
    cmd: ExecCommand,
    env: dict[str, str],
    *,
    fds: list[int] | tuple[int, ...] = (),
    stdio: tuple[int, int, int] = (-1, -1, -1),
    listen_pid: bool = False,
    watchdog_pid: bool = False,
    nonblocking: bool = False,
) -> ExecSpec:
    """The ExecSpec for one command line of a unit. ``+``/``!`` lines keep root's credentials;
    ``!!`` (``cmd.ambient_magic``) does not: it only matters without ambient capabilities."""
    argv = expand_argv(cmd, env)
    path = find_program(cmd.path)
    creds = None if (cmd.privileged or cmd.no_setuid) else prepared.creds
    envb = [f"{k}={v}".encode() for k, v in env.items()]
    return ExecSpec(
        path=os.fsencode(path),
        argv=[os.fsencode(a) for a in argv],
        env=envb,
        fds=tuple(fds),
        stdin=stdio[0],
        stdout=stdio[1],
        stderr=stdio[2],
        listen_pid=listen_pid,
        watchdog_pid=watchdog_pid,
        nonblocking=nonblocking,
        uid=creds.uid if creds else -1,
        gid=creds.gid if creds else -1,
        groups=creds.groups if creds else None,
        umask=ctx.UMask,
        cwd=prepared.cwd,
        cwd_optional=prepared.cwd_optional,
        rlimits=prepared.rlimits,
        nice=ctx.Nice,
        oom_score_adj=ctx.OOMScoreAdjust,
        # DynamicUser= implies NoNewPrivileges= (systemd's unit_patch_contexts())
        no_new_privs=(ctx.NoNewPrivileges or ctx.DynamicUser) and not cmd.privileged,
        capability_bounding=None if cmd.privileged else prepared.bounding,
        ambient_capabilities=() if cmd.privileged else prepared.ambient,
        ignore_sigpipe=ctx.IgnoreSIGPIPE,
        new_session=True,
        quiet=True,  # the daemon logs a failed start itself, naming the unit
    )


@dataclass
class Handover:
    """The fds a start hands to the main process, with their names (LISTEN_FDNAMES)."""

    fds: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    connection: int | None = None  # Accept=yes: the accepted connection
    extra_env: dict[str, str] = field(default_factory=dict)  # REMOTE_ADDR, UCSPI vars …


@dataclass(frozen=True, slots=True)
class PassedFds:
    """What one process of a start is handed of a Handover."""

    fds: list[int]  # become 3, 4, …
    env: dict[str, str]  # LISTEN_FDS, LISTEN_FDNAMES
    socket: int | None  # the fd for StandardInput/Output/Error=socket
    named: dict[str, int]  # fd names, for StandardInput=fd:NAME
    listen_pid: bool  # LISTEN_PID applies


def pass_fds(
    ctx: ExecContext, h: Handover | None, stored: Sequence[tuple[int, str]], *, main: bool
) -> PassedFds:
    """systemd's service_spawn(): only the main process gets fds (EXEC_PASS_FDS), the
    socket fds then the fd store's ``stored`` (fd, name) pairs; with ``socket`` on stdio
    (inetd style) nobody gets LISTEN_*, and an Accept=no start must then have exactly
    one socket. Raises StartError in systemd's words."""
    env: dict[str, str] = {}
    fds: list[int] = []
    socket_fd = None
    named: dict[str, int] = {}
    listen = False
    if h is not None:
        inetd = "socket" in (ctx.StandardInput, ctx.StandardOutput, ctx.StandardError)
        if h.connection is not None:
            socket_fd = h.connection
            if main and not inetd:
                fds = [h.connection]
                env["LISTEN_FDS"] = "1"
                env["LISTEN_FDNAMES"] = "connection"
                listen = True
        else:
            if inetd:
                if len(h.fds) != 1:
                    raise StartError(
                        "StandardInput=socket: got more than one socket"
                        if h.fds
                        else "StandardInput=socket: got no socket"
                    )
                socket_fd = h.fds[0]
            for name, fd in zip(h.names, h.fds, strict=False):
                named.setdefault(name, fd)  # fd:NAME takes the first of a name (systemd too)
            if main and not inetd:
                fds = [*h.fds, *(fd for fd, _ in stored)]
                if fds:
                    env["LISTEN_FDS"] = str(len(fds))
                    env["LISTEN_FDNAMES"] = ":".join([*h.names, *(n for _, n in stored)])
                    listen = True
    return PassedFds(fds, env, socket_fd, named, listen)


def invocation_id(prefix: str = "") -> str:
    """systemd's 128-bit INVOCATION_ID as 32 hex digits; it begins with ``prefix`` (this
    run of activator's, so that what a dead activator left running can be found)."""
    # os.urandom: secrets.token_hex, without hmac/hashlib/random in memory
    return prefix + os.urandom(16).hex()[len(prefix) :]


# ---------------------------------------------------------------- stdio

STDIO_FLAGS = {
    "file": os.O_WRONLY | os.O_CREAT,
    "append": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "truncate": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
}


#: Outputs that go to the journal — activator's capture (runtime/capture.py).
JOURNAL = frozenset(
    {"journal", "kmsg", "syslog", "journal+console", "kmsg+console", "syslog+console"}
)


def _defaults(ctx: ExecContext) -> tuple[str, str]:
    """StandardOutput= and StandardError= with systemd's defaults filled in."""
    si = ctx.StandardInput
    so = ctx.StandardOutput
    if so is None:
        so = "inherit" if si == "socket" or si.startswith("fd:") else "journal"
    return so, ctx.StandardError or "inherit"


def syslog_identifier(ctx: ExecContext) -> str:
    """How a service's lines name it: SyslogIdentifier=, else its program's name (the
    journal's default is the process's name)."""
    if ctx.SyslogIdentifier:
        return ctx.SyslogIdentifier
    cmds = getattr(ctx, "ExecStart", ())
    return os.path.basename(cmds[0].argv[0] or cmds[0].path) if cmds else ""


def journal_streams(ctx: ExecContext) -> tuple[bool, bool]:
    """Whether stdout and stderr go to the journal. stderr inheriting a journal stdout
    gets a stream of its own, so a line says which it came from (systemd shares one)."""
    so, se = _defaults(ctx)
    out = so in JOURNAL
    return out, se in JOURNAL or (se == "inherit" and out)


def open_stdio(
    ctx: ExecContext,
    socket_fd: int | None,
    named: dict[str, int],
    journal: tuple[int, int] = (-1, -1),
) -> tuple[tuple[int, int, int], list[int]]:
    """fds for 0, 1, 2 per StandardInput/Output/Error= and the fds opened here (to close).

    ``socket_fd`` is the connection (Accept=yes) or the one listener (Accept=no) for
    ``socket``; ``named`` maps fd names to fds for ``fd:NAME``. ``journal`` (and ``kmsg``,
    ``syslog``) go to ``journal``'s fds, the capture's streams for stdout and stderr
    (journal_streams() says which are wanted); where one is -1, and for ``console`` and
    ``tty``, to where the supervisor's own output goes (the container's console).
    Raises StartError with systemd's wording for a socket that is not there.
    """
    opened: list[int] = []

    def open_file(spec: str, read: bool) -> int:
        kind, _, path = spec.partition(":")
        flags = os.O_RDONLY if read else STDIO_FLAGS[kind]
        try:
            fd = os.open(path, flags | os.O_CLOEXEC | os.O_NOCTTY, 0o644)
        except OSError as e:
            raise StartError(
                f"unable to open {path} for {'input' if read else 'output'}: {e.strerror}"
            ) from None
        opened.append(fd)
        return fd

    si = ctx.StandardInput
    if si == "socket":
        if socket_fd is None:
            raise StartError("StandardInput=socket: got no socket")
        stdin = socket_fd
    elif si.startswith("file:"):
        stdin = open_file(si, True)
    elif si.startswith("fd:"):
        stdin = named.get(si[3:], -1)
    else:
        stdin = -1  # null, and tty/data which a container has no use for
    so, se = _defaults(ctx)
    stdout = _output(so, stdin, 1, socket_fd, named, open_file, journal[0])
    if se == "inherit" and so in JOURNAL:
        se = so  # its own stream of the journal (journal_streams())
    stderr = _output(se, stdout, 2, socket_fd, named, open_file, journal[1])
    return (stdin, stdout, stderr), opened


def _output(spec, inherit_fd, own, socket_fd, named, open_file, journal: int) -> int:
    if spec == "inherit":
        return inherit_fd
    if spec == "null":
        return -1
    if spec == "socket":
        if socket_fd is None:
            raise StartError("StandardOutput=socket: got no socket")
        return socket_fd
    if spec.startswith(("file:", "append:", "truncate:")):
        return open_file(spec, False)
    if spec.startswith("fd:"):
        return named.get(spec[3:], -1)
    if spec in JOURNAL and journal >= 0:
        return journal
    return own  # console, tty, or the journal without a capture: the container's console

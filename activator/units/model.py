"""The validated unit model: what a socket or service unit *means*, whatever syntax it came in.

Field names are systemd's directive names, so the model reads like the manual
(systemd.socket(5), systemd.service(5), systemd.exec(5), systemd.kill(5)). Every
model is frozen and forbids extra keys. Values are already normalised by the
readers: times are seconds as ``float`` (``math.inf`` for ``infinity``), sizes
are bytes, modes are ints, signals are numbers, booleans are ``bool``. Defaults
are systemd 252's (reference/systemd.md §2, §3.2).

Specifiers (``%i``, ``%n`` …) are already expanded here; ``$VAR`` in command
lines is not — that happens at spawn time, against the environment of the start.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import types
from enum import StrEnum
from typing import Annotated, Literal


def _without_pydantic_plugins() -> None:
    """pydantic looks for plugins (importlib.metadata entry points) when it builds its first
    model. The lookup itself is what PYDANTIC_DISABLE_PLUGINS=__all__ (documented) turns
    off, but importing the loader still pulls importlib.metadata, email, zipfile, csv …:
    2 MiB that stay in an idle supervisor's memory (issue #6: 40 MiB with 100 units), for
    plugins it never has. So the loader is a stand-in with no plugins, unless
    PYDANTIC_DISABLE_PLUGINS is set to something else (then pydantic's own decides)."""
    name = "pydantic.plugin._loader"
    if name in sys.modules or os.environ.get("PYDANTIC_DISABLE_PLUGINS", "__all__") != "__all__":
        return
    loader = types.ModuleType(name, "activator: no pydantic plugins (units/model.py)")
    loader.get_plugins = lambda: ()  # type: ignore[attr-defined]
    sys.modules[name] = loader


_without_pydantic_plugins()

from pydantic import BaseModel, ConfigDict, Field  # noqa: E402

#: One set object for each distinct set of fields given (ten models a socket+service pair,
#: fifteen distinct sets among 10,000 pairs).
_FIELDS_SETS: dict[frozenset[str], set[str]] = {}


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def model_post_init(self, context: object, /) -> None:
        """pydantic keeps a set of the fields given per instance (216 bytes and more, 4 KiB
        a socket+service pair): instances given the same fields share one. Nothing adds to
        it in place — the model is frozen, model_copy() copies it before adding."""
        self.share_fields_set()

    def share_fields_set(self) -> None:
        """Take the shared set of the fields given (also after a model_copy(): an
        Accept=yes instance is its template's copy)."""
        fields = self.__pydantic_fields_set__
        shared = _FIELDS_SETS.setdefault(frozenset(fields), fields)
        if shared is not fields:
            object.__setattr__(self, "__pydantic_fields_set__", shared)


# ---------------------------------------------------------------- listeners


class SocketType(StrEnum):
    STREAM = "stream"  # ListenStream=
    DATAGRAM = "datagram"  # ListenDatagram=
    SEQPACKET = "seqpacket"  # ListenSequentialPacket=


class InetListen(Frozen):
    """An IP listener. ``host`` None is a bare port: ``[::]`` where the host has IPv6,
    else ``0.0.0.0``."""

    family: Literal["inet"] = "inet"
    type: SocketType
    host: str | None  # "127.0.0.1", "::1" (no brackets), or None for a bare port
    port: Annotated[int, Field(ge=1, le=65535)]
    scope: str | None = None  # "[::1]:80%lo" → "lo"
    text: str  # the address as written, for messages


class UnixListen(Frozen):
    """An AF_UNIX listener; ``path`` starting with ``@`` is an abstract name."""

    family: Literal["unix"] = "unix"
    type: SocketType
    path: str
    text: str


class FifoListen(Frozen):
    family: Literal["fifo"] = "fifo"
    path: str
    text: str


class SpecialListen(Frozen):
    family: Literal["special"] = "special"
    path: str
    text: str


class NetlinkListen(Frozen):
    family: Literal["netlink"] = "netlink"
    protocol: str  # "route", "kobject-uevent", "audit", …
    group: int = 0
    text: str


class MessageQueueListen(Frozen):
    family: Literal["mqueue"] = "mqueue"
    name: str  # "/name"
    text: str


Listen = Annotated[
    InetListen | UnixListen | FifoListen | SpecialListen | NetlinkListen | MessageQueueListen,
    Field(discriminator="family"),
]
# The fields SocketSection.Listen and ExecContext.EnvironmentFile are named like their
# types; inside the class body the name would resolve to the field's default (), so the
# annotations use these aliases.
_Listen = Listen


# ---------------------------------------------------------------- commands


class ExecCommand(Frozen):
    """One command line of an ``Exec*=`` directive, unquoted, specifiers expanded.

    ``argv[0]`` is what the program sees as its name (the ``@`` prefix sets it);
    ``path`` is what gets executed: absolute, or a bare name looked up in PATH at spawn.
    """

    path: str
    argv: tuple[str, ...]
    ignore_failure: bool = False  # "-"
    no_env_expand: bool = False  # ":"
    privileged: bool = False  # "+": no User=/Group=/caps for this line
    no_setuid: bool = False  # "!": keep the supervisor's user and groups
    # "!!": "!" only on a kernel without ambient capabilities (before Linux 4.3); on every
    # kernel activator runs on it has no effect, as under systemd. Kept for the export.
    ambient_magic: bool = False


class EnvironmentFile(Frozen):
    path: str
    optional: bool = False  # "-/etc/default/x"


_EnvironmentFile = EnvironmentFile


class Rlimit(Frozen):
    """``soft[:hard]``; None is RLIM_INFINITY."""

    soft: int | None
    hard: int | None


class Rate(Frozen):
    """``X-Activator-ConnectionRate=N/INTERVAL``: a token bucket of ``count`` tokens that
    refills ``count`` per ``interval`` seconds."""

    count: Annotated[int, Field(ge=1)]
    interval: Annotated[float, Field(gt=0)]


class ExitStatusSet(Frozen):
    """``SuccessExitStatus=`` and friends: exit codes and signal numbers."""

    codes: frozenset[int] = frozenset()
    signals: frozenset[int] = frozenset()


# ---------------------------------------------------------------- sections


class UnitSection(Frozen):
    Description: str = ""
    Documentation: tuple[str, ...] = ()
    Requires: tuple[str, ...] = ()
    Wants: tuple[str, ...] = ()
    BindsTo: tuple[str, ...] = ()
    PartOf: tuple[str, ...] = ()
    Requisite: tuple[str, ...] = ()
    After: tuple[str, ...] = ()
    Before: tuple[str, ...] = ()
    Conflicts: tuple[str, ...] = ()
    OnFailure: tuple[str, ...] = ()
    OnSuccess: tuple[str, ...] = ()
    Upholds: tuple[str, ...] = ()
    DefaultDependencies: bool = True
    RefuseManualStart: bool = False
    RefuseManualStop: bool = False
    StopWhenUnneeded: bool = False
    StartLimitIntervalSec: float = 10.0
    StartLimitBurst: int = 5
    # What activator does when the unit fails / ends well (systemd.unit(5)); in a container
    # every action but none ends activator (manager/policy.py).
    FailureAction: str = "none"
    SuccessAction: str = "none"
    FailureActionExitStatus: int | None = None
    SuccessActionExitStatus: int | None = None
    # Conditions and asserts: (directive, value) in order, e.g. ("ConditionPathExists", "!/x").
    # Checked at start; a failed Condition skips the start, a failed Assert fails it.
    Conditions: tuple[tuple[str, str], ...] = ()


class InstallSection(Frozen):
    WantedBy: tuple[str, ...] = ()
    RequiredBy: tuple[str, ...] = ()
    UpheldBy: tuple[str, ...] = ()
    Alias: tuple[str, ...] = ()
    Also: tuple[str, ...] = ()
    DefaultInstance: str | None = None


class ExecContext(Frozen):
    """systemd.exec(5) + systemd.kill(5): how a process of this unit is set up and stopped.

    Shared by [Service] and by [Socket] (where it applies to the socket's own Exec*= lines).
    """

    User: str | None = None
    Group: str | None = None
    SupplementaryGroups: tuple[str, ...] = ()
    DynamicUser: bool = False
    WorkingDirectory: str | None = None  # None → "/"; "~" → home; leading "-" kept: optional
    Environment: dict[str, str] = {}
    EnvironmentFile: tuple[_EnvironmentFile, ...] = ()
    PassEnvironment: tuple[str, ...] = ()
    UnsetEnvironment: tuple[str, ...] = ()
    UMask: int = 0o022
    Nice: int | None = None
    OOMScoreAdjust: int | None = None
    IgnoreSIGPIPE: bool = True
    NoNewPrivileges: bool = False
    # None: unchanged; names like "CAP_NET_BIND_SERVICE"
    CapabilityBoundingSet: tuple[str, ...] | None = None
    AmbientCapabilities: tuple[str, ...] = ()
    StandardInput: str = "null"  # null | tty | socket | data | file:P | fd:NAME | inherit
    # None → systemd's default (inherit if stdin is socket/tty, else journal)
    StandardOutput: str | None = None
    StandardError: str | None = None  # None → inherit
    SyslogIdentifier: str | None = None  # how captured output names it (runtime/capture.py)
    # systemd's: this unit's lines less urgent than this syslog level are dropped, its
    # processes' and activator's about it alike (core/log.py); None: no filter
    LogLevelMax: str | None = None
    LimitCPU: Rlimit | None = None
    LimitFSIZE: Rlimit | None = None
    LimitDATA: Rlimit | None = None
    LimitSTACK: Rlimit | None = None
    LimitCORE: Rlimit | None = None
    LimitRSS: Rlimit | None = None
    LimitNOFILE: Rlimit | None = None
    LimitAS: Rlimit | None = None
    LimitNPROC: Rlimit | None = None
    LimitMEMLOCK: Rlimit | None = None
    LimitLOCKS: Rlimit | None = None
    LimitSIGPENDING: Rlimit | None = None
    LimitMSGQUEUE: Rlimit | None = None
    LimitNICE: Rlimit | None = None
    LimitRTPRIO: Rlimit | None = None
    LimitRTTIME: Rlimit | None = None
    RuntimeDirectory: tuple[str, ...] = ()
    StateDirectory: tuple[str, ...] = ()
    CacheDirectory: tuple[str, ...] = ()
    LogsDirectory: tuple[str, ...] = ()
    ConfigurationDirectory: tuple[str, ...] = ()
    RuntimeDirectoryMode: int = 0o755
    StateDirectoryMode: int = 0o755
    CacheDirectoryMode: int = 0o755
    LogsDirectoryMode: int = 0o755
    ConfigurationDirectoryMode: int = 0o755
    RuntimeDirectoryPreserve: Literal["no", "yes", "restart"] = "no"
    # systemd.kill(5)
    KillMode: Literal["control-group", "mixed", "process", "none"] = "control-group"
    KillSignal: int = int(signal.SIGTERM)
    RestartKillSignal: int | None = None  # None → KillSignal
    FinalKillSignal: int = int(signal.SIGKILL)
    WatchdogSignal: int = int(signal.SIGABRT)
    SendSIGKILL: bool = True
    SendSIGHUP: bool = False


class SocketSection(ExecContext):
    # Every Listen*= line, in configuration order across kinds (fd order follows it).
    Listen: tuple[_Listen, ...] = ()
    Accept: bool = False
    Service: str | None = None
    SocketUser: str | None = None
    SocketGroup: str | None = None
    SocketMode: int = 0o666
    DirectoryMode: int = 0o755
    Backlog: int = 2147483647  # systemd 252 passes INT_MAX; the kernel caps at somaxconn
    BindIPv6Only: Literal["default", "both", "ipv6-only"] = "default"
    BindToDevice: str | None = None
    SocketProtocol: Literal["udplite", "sctp", "mptcp"] | None = None
    ReusePort: bool = False
    FreeBind: bool = False
    Transparent: bool = False
    Broadcast: bool = False
    PassCredentials: bool = False
    PassSecurity: bool = False
    PassPacketInfo: bool = False
    Timestamping: Literal["off", "us", "ns"] = "off"
    KeepAlive: bool = False
    KeepAliveTimeSec: float | None = None
    KeepAliveIntervalSec: float | None = None
    KeepAliveProbes: int | None = None
    NoDelay: bool = False
    DeferAcceptSec: float = 0.0
    Priority: int | None = None
    ReceiveBuffer: int | None = None
    SendBuffer: int | None = None
    IPTOS: int | None = None
    IPTTL: int | None = None
    Mark: int | None = None
    TCPCongestion: str | None = None
    PipeSize: int | None = None
    Writable: bool = False
    FlushPending: bool = False
    MaxConnections: Annotated[int, Field(ge=1)] = 64
    MaxConnectionsPerSource: Annotated[int, Field(ge=0)] = 0
    RemoveOnStop: bool = False
    Symlinks: tuple[str, ...] = ()
    FileDescriptorName: str | None = None  # None → the socket unit's name
    # None → systemd's default: 2 s, and 20 (Accept=no) or 200 (Accept=yes); 0 disables.
    TriggerLimitIntervalSec: float | None = None
    TriggerLimitBurst: int | None = None
    ExecStartPre: tuple[ExecCommand, ...] = ()
    ExecStartPost: tuple[ExecCommand, ...] = ()
    ExecStopPre: tuple[ExecCommand, ...] = ()
    ExecStopPost: tuple[ExecCommand, ...] = ()
    TimeoutSec: float = 90.0
    # systemd.resource-control(5), on the socket's own sockets: normalised CIDRs ("10.0.0.0/8",
    # "::1/128"), keywords expanded. Allow wins, then deny, else allowed (exec/ipfilter.py).
    IPAddressAllow: tuple[str, ...] = ()
    IPAddressDeny: tuple[str, ...] = ()
    # activator extensions (X-Activator-*)
    UCSPI: bool = False  # X-Activator-UCSPI=: tcpserver's PROTO/TCPREMOTEIP/… for Accept=yes
    # X-Activator-PerSourcePrefix=: a source is this many leading bits (IPv4, IPv6), for
    # MaxConnectionsPerSource= and ConnectionRate=; one IPv6 client usually owns a /64.
    PerSourcePrefix: tuple[int, int] = (32, 64)
    ConnectionRate: Rate | None = None  # X-Activator-ConnectionRate=: per source
    ConnectionRateTotal: Rate | None = None  # X-Activator-ConnectionRateTotal=: per socket
    # X-Activator-ProxyTo=: Accept=no, activator accepts and relays to this address
    ProxyTo: InetListen | UnixListen | None = None
    ProxyProtocol: Literal["off", "v1", "v2"] = "off"  # X-Activator-ProxyProtocol=
    Metrics: bool = False  # X-Activator-Metrics=: the listeners serve activator's /metrics


class ServiceType(StrEnum):
    SIMPLE = "simple"
    EXEC = "exec"
    FORKING = "forking"
    ONESHOT = "oneshot"
    DBUS = "dbus"
    NOTIFY = "notify"
    NOTIFY_RELOAD = "notify-reload"
    IDLE = "idle"


class RestartPolicy(StrEnum):
    NO = "no"
    ON_SUCCESS = "on-success"
    ON_FAILURE = "on-failure"
    ON_ABNORMAL = "on-abnormal"
    ON_WATCHDOG = "on-watchdog"
    ON_ABORT = "on-abort"
    ALWAYS = "always"


class ServiceSection(ExecContext):
    Type: ServiceType = ServiceType.SIMPLE
    ExecStart: tuple[ExecCommand, ...] = ()
    ExecStartPre: tuple[ExecCommand, ...] = ()
    ExecStartPost: tuple[ExecCommand, ...] = ()
    ExecReload: tuple[ExecCommand, ...] = ()
    ExecStop: tuple[ExecCommand, ...] = ()
    ExecStopPost: tuple[ExecCommand, ...] = ()
    ExecCondition: tuple[ExecCommand, ...] = ()
    RemainAfterExit: bool = False
    GuessMainPID: bool = True
    PIDFile: str | None = None
    BusName: str | None = None
    # None → main for notify, else none
    NotifyAccess: Literal["none", "main", "exec", "all"] | None = None
    WatchdogSec: float = 0.0
    Restart: RestartPolicy = RestartPolicy.NO
    RestartSec: float = 0.1
    SuccessExitStatus: ExitStatusSet = ExitStatusSet()
    RestartPreventExitStatus: ExitStatusSet = ExitStatusSet()
    RestartForceExitStatus: ExitStatusSet = ExitStatusSet()
    TimeoutStartSec: float = 90.0
    TimeoutStopSec: float = 90.0
    RuntimeMaxSec: float = math.inf
    NonBlocking: bool = False
    Sockets: tuple[str, ...] = ()
    FileDescriptorStoreMax: int = 0
    PermissionsStartOnly: bool = False
    # X-Activator-IdleStopSec=: an Accept=no service with no connection for this long is
    # stopped; its sockets listen on and the next connection starts it again. 0: never.
    IdleStopSec: float = 0.0

    @property
    def single_exec(self) -> bool:
        """One ExecStart= line and no other command: a start is one spawn and the process's
        exit is the whole run (no control process outlives it or comes after it)."""
        return len(self.ExecStart) == 1 and not (
            self.ExecCondition
            or self.ExecStartPre
            or self.ExecStartPost
            or self.ExecStop
            or self.ExecStopPost
            or self.ExecReload
        )


class UnitBase(Frozen):
    name: str  # "web.socket", "echo@.service", "echo@0-….service"
    path: str  # the fragment it was loaded from ("" for a generated instance)
    dropins: tuple[str, ...] = ()
    Unit: UnitSection = UnitSection()
    Install: InstallSection = InstallSection()


class SocketUnit(UnitBase):
    kind: Literal["socket"] = "socket"
    Socket: SocketSection

    @property
    def section(self) -> SocketSection:
        """The unit's own section ([Socket])."""
        return self.Socket


class ServiceUnit(UnitBase):
    kind: Literal["service"] = "service"
    Service: ServiceSection

    @property
    def section(self) -> ServiceSection:
        """The unit's own section ([Service])."""
        return self.Service

    @property
    def is_template(self) -> bool:
        return self.name.endswith("@.service")


class TargetSection(Frozen):
    """A target has no section of its own: it only groups and orders other units."""


class TargetUnit(UnitBase):
    kind: Literal["target"] = "target"

    @property
    def section(self) -> TargetSection:
        return _NO_SECTION


_NO_SECTION = TargetSection()

#: Unit types a container does not have: loaded as present (always active), with a warning.
PLACEHOLDER_KINDS = ("mount", "automount", "device", "swap", "path", "timer", "slice", "scope")


class PlaceholderUnit(UnitBase):
    """A .mount, .device, .timer … unit, or a service or socket of systemd's own plumbing
    (units/targets.py PLUMBING): there is nothing to run for it in a container, so it
    counts as present and active, and dependencies on it are met."""

    kind: Literal[
        "mount",
        "automount",
        "device",
        "swap",
        "path",
        "timer",
        "slice",
        "scope",
        "service",
        "socket",
    ]

    @property
    def section(self) -> TargetSection:
        return _NO_SECTION


#: What a unit file gives (placeholders are made by the loader, never read from data).
Unit = Annotated[SocketUnit | ServiceUnit | TargetUnit, Field(discriminator="kind")]

"""The tables: for each section, each directive systemd 252 knows and what we do with it.

A carried directive maps to its model field, its ``kind`` and its value kind
(validators.py); ``IGNORED`` lists the ones systemd 252 knows that activator does not
carry out (they load with a warning, ``ignored_reason`` says why); anything else is
unknown, and ``home_section_of`` names the section where it would be valid. The tables
are built once at import: build.py looks every entry up in them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from .network import v_ip_prefixes, v_prefix_bits, v_proxy_to, v_rate
from .validators import (
    Ctx,
    v_bool,
    v_bus_name,
    v_caps,
    v_condition,
    v_enum,
    v_enum_or_bool,
    v_env_file,
    v_env_names,
    v_environment,
    v_exec,
    v_exit_status,
    v_fdname,
    v_groups,
    v_ifname,
    v_int,
    v_iptos,
    v_listen,
    v_log_level,
    v_mode,
    v_paths,
    v_pidfile,
    v_relative_dirs,
    v_rlimit,
    v_service_name,
    v_signal,
    v_size,
    v_std_input,
    v_std_output,
    v_string,
    v_time,
    v_timeout,
    v_timestamping,
    v_uint,
    v_unit_names,
    v_unset_env,
    v_urls,
    v_user,
    v_working_directory,
)

Kind = Literal["scalar", "list", "listen", "env", "caps", "exit", "cond"]

#: systemd's emergency actions (FailureAction=, SuccessAction=; emergency-action.c).
EMERGENCY_ACTIONS = (
    "none", "reboot", "reboot-force", "reboot-immediate", "poweroff", "poweroff-force",
    "poweroff-immediate", "exit", "exit-force", "soft-reboot", "soft-reboot-force", "kexec",
    "kexec-force", "halt", "halt-force", "halt-immediate",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Directive:
    name: str
    field: str
    kind: Kind
    parse: Callable[[Any, Ctx], Any]
    section: str | None = None  # model section it writes; None: the file section
    fields: tuple[str, ...] = ()  # more fields set to the same value (TimeoutSec=)


CONDITIONS = (
    "PathExists PathExistsGlob PathIsDirectory PathIsSymbolicLink PathIsMountPoint "
    "PathIsReadWrite PathIsEncrypted DirectoryNotEmpty FileNotEmpty FileIsExecutable "
    "NeedsUpdate FirstBoot Architecture Firmware Virtualization Host KernelCommandLine "
    "KernelVersion Credential Security Capability ACPower Memory CPUFeature CPUs "
    "Environment User Group ControlGroupController OSRelease MemoryPressure CPUPressure "
    "IOPressure"
).split()


#: Conditions activator cannot judge in a container (exec/conditions.py): they hold, and
#: a unit that uses them says so at load (with the ignored directives).
UNJUDGED_CONDITIONS = frozenset(
    "PathIsEncrypted NeedsUpdate Architecture Firmware KernelVersion Credential Security "
    "ACPower Memory CPUFeature CPUs ControlGroupController OSRelease MemoryPressure "
    "CPUPressure IOPressure".split()
)


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
                "After", "OnFailure", "OnSuccess", "Upholds"):  # fmt: skip
        t[dep] = _d(dep, "list", v_unit_names())
    t["BindTo"] = _d("BindTo", "list", v_unit_names(), field="BindsTo")  # old spelling
    for b in ("StopWhenUnneeded", "RefuseManualStart", "RefuseManualStop",
              "DefaultDependencies"):  # fmt: skip
        t[b] = _d(b, "scalar", v_bool)
    t["StartLimitIntervalSec"] = _d("StartLimitIntervalSec", "scalar", v_time)
    t["StartLimitInterval"] = _d(
        "StartLimitInterval", "scalar", v_time, field="StartLimitIntervalSec"
    )
    t["StartLimitBurst"] = _d("StartLimitBurst", "scalar", v_uint())
    for action in ("FailureAction", "SuccessAction"):
        t[action] = _d(action, "scalar", v_enum(*EMERGENCY_ACTIONS))
        t[action + "ExitStatus"] = _d(action + "ExitStatus", "scalar", v_uint(0, 255))
    for c in CONDITIONS:
        for family in ("Condition", "Assert"):
            t[family + c] = _d(family + c, "cond", v_condition(c), field="Conditions")
    return t


def _install_table() -> SectionTable:
    return {
        "WantedBy": _d("WantedBy", "list", v_unit_names()),
        "RequiredBy": _d("RequiredBy", "list", v_unit_names()),
        "UpheldBy": _d("UpheldBy", "list", v_unit_names()),
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
    t["LogLevelMax"] = _d("LogLevelMax", "scalar", v_log_level)
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
        t[listen] = _d(listen, "listen", v_listen(listen), field="Listen")
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
               "TriggerLimitIntervalSec"):  # fmt: skip
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
    t["MaxConnections"] = _d("MaxConnections", "scalar", v_uint(1))
    t["MaxConnectionsPerSource"] = _d("MaxConnectionsPerSource", "scalar", v_uint())
    t["Symlinks"] = _d("Symlinks", "list", v_paths)
    t["FileDescriptorName"] = _d("FileDescriptorName", "scalar", v_fdname)
    t["TriggerLimitBurst"] = _d("TriggerLimitBurst", "scalar", v_uint())
    for e in ("ExecStartPre", "ExecStartPost", "ExecStopPre", "ExecStopPost"):
        t[e] = _d(e, "list", v_exec)
    t["TimeoutSec"] = _d("TimeoutSec", "scalar", v_timeout)
    t["X-Activator-UCSPI"] = _d("X-Activator-UCSPI", "scalar", v_bool, field="UCSPI")
    # systemd.resource-control(5) on the socket's own sockets (a BPF socket filter here)
    t["IPAddressAllow"] = _d("IPAddressAllow", "list", v_ip_prefixes)
    t["IPAddressDeny"] = _d("IPAddressDeny", "list", v_ip_prefixes)
    for x, field, parse in (
        ("PerSourcePrefix", "PerSourcePrefix", v_prefix_bits),
        ("ConnectionRate", "ConnectionRate", v_rate),
        ("ConnectionRateTotal", "ConnectionRateTotal", v_rate),
        ("ProxyTo", "ProxyTo", v_proxy_to),
        ("ProxyProtocol", "ProxyProtocol", v_enum("off", "v1", "v2")),
    ):
        t["X-Activator-" + x] = _d("X-Activator-" + x, "scalar", parse, field=field)
    t["X-Activator-Metrics"] = _d("X-Activator-Metrics", "scalar", v_bool, field="Metrics")
    return t


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
    t["X-Activator-IdleStopSec"] = _d("X-Activator-IdleStopSec", "scalar", v_time,
                                      field="IdleStopSec")  # fmt: skip
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
    "target": ("Unit", "Install"),
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
TTYVTDisallocate TTYRows TTYColumns SyslogFacility SyslogLevel SyslogLevelPrefix
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
RootDirectory
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
MessageQueueMaxMessages MessageQueueMessageSize PollLimitIntervalSec PollLimitBurst
""".split()
_UNIT_252 = """
SourcePath PropagatesReloadTo PropagateReloadTo ReloadPropagatedFrom
PropagateReloadFrom PropagatesStopTo StopPropagatedFrom JoinsNamespaceOf RequiresOverridable
RequisiteOverridable RequiresMountsFor AllowIsolate OnSuccessJobMode OnFailureJobMode
OnFailureIsolate JobTimeoutSec JobRunningTimeoutSec JobTimeoutAction JobTimeoutRebootArgument
StartLimitAction RebootArgument CollectMode IgnoreOnIsolate
""".split()
_INSTALL_252: list[str] = []

_SANDBOX = re.compile(
    r"^(Protect|Private|Restrict|SystemCall|ReadWrite|ReadOnly|Inaccessible|Bind|Root(Image|Hash|Verity|Directory)"
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


# IPAddressAllow=/IPAddressDeny= are carried on sockets; on a service systemd filters what
# the service's processes open themselves (cgroup BPF), never the sockets passed to it.
_SERVICE_IP_RULES = (
    "on a service systemd applies it to the sockets the service's processes open "
    "(cgroup BPF), which activator cannot filter; the sockets activator passes follow their "
    "socket unit's IPAddressAllow=/IPAddressDeny=, as in systemd: put the rules there"
)


def ignored_reason(name: str) -> str:
    """Why activator does not carry out a directive systemd knows (for the load warning)."""
    if name in ("IPAddressAllow", "IPAddressDeny"):
        return _SERVICE_IP_RULES
    if _SANDBOX.match(name):
        return "sandboxing"
    if _CGROUP.match(name):
        return "cgroup resource control"
    return "not supported"


IGNORED: dict[str, frozenset[str]] = {
    "Unit": frozenset(_UNIT_252),
    "Install": frozenset(_INSTALL_252),
    "Socket": frozenset(_EXEC_252 + _SOCKET_252) - {"IPAddressAllow", "IPAddressDeny"},
    "Service": frozenset(_EXEC_252 + _SERVICE_252),
}


def home_section_of(name: str) -> str | None:
    """Where a directive would be valid, for the hint in an "unknown directive" error."""
    for section, table in TABLES.items():
        if name in table or name in IGNORED[section]:
            return section
    return None

"""Units modelled on Debian 12's (reference/systemd.md §7): they load, and mean what they say."""

from __future__ import annotations

import math
import signal
from pathlib import Path

import pytest

from activator.units import load_units
from activator.units.model import (
    FifoListen,
    NetlinkListen,
    Rlimit,
    SocketType,
    SpecialListen,
    UnixListen,
)

REAL = Path(__file__).parent / "real"


@pytest.fixture(scope="module")
def system():  # type: ignore[no-untyped-def]
    units, problems = load_units([REAL / "system"])
    return units, problems


@pytest.fixture(scope="module")
def user():  # type: ignore[no-untyped-def]
    return load_units([REAL / "user"])


def test_everything_loads_with_only_ignored_warnings(system, user) -> None:  # type: ignore[no-untyped-def]
    for _, problems in (system, user):
        assert [str(p) for p in problems if p.severity == "error"] == []
        # …and, for a unit type a container does not have (rfkill's .device), that it
        # counts as present (issue 11)
        assert all(
            p.message.startswith("ignored, not carried out by activator: ")
            or p.message.endswith("counts as present")
            for p in problems
        )
        assert sum(p.message.endswith("counts as present") for p in problems) <= 1
    units = system[0]
    sockets = sorted(p.name for p in (REAL / "system").glob("*.socket"))
    assert sorted(units.sockets) == sockets and len(sockets) >= 25


def test_ignored_directives_are_one_line_per_unit(system) -> None:  # type: ignore[no-untyped-def]
    _, problems = system
    (udevd,) = [p.message for p in problems if p.unit == "systemd-udevd.service"]
    assert udevd.count("SystemCallFilter=") == 1 and udevd.count("DeviceAllow=") == 1
    assert "(sandboxing)" in udevd


def test_journald_fd_order_and_sockets(system) -> None:  # type: ignore[no-untyped-def]
    units, _ = system
    j = units.sockets["systemd-journald.socket"].Socket
    assert [(x.type, x.path) for x in j.Listen] == [  # type: ignore[union-attr]
        (SocketType.DATAGRAM, "/run/systemd/journal/socket"),
        (SocketType.STREAM, "/run/systemd/journal/stdout"),
    ]
    assert j.PassCredentials and j.PassSecurity and j.ReceiveBuffer == 8 << 20
    assert units.sockets["systemd-journald-audit.socket"].Socket.Listen == (
        NetlinkListen(protocol="audit", group=1, text="audit 1"),
    )
    assert units.sockets_of("systemd-journald.service") == (
        "systemd-journald-audit.socket", "systemd-journald-dev-log.socket", "systemd-journald.socket",  # noqa: E501
    )  # fmt: skip
    svc = units.services["systemd-journald.service"].Service
    # ExecStart=!!/lib/systemd/systemd-journald: "!!", no effect with ambient capabilities
    assert svc.ExecStart[0].ambient_magic and not svc.ExecStart[0].no_setuid
    assert svc.RestartSec == 0 and svc.WatchdogSec == 180
    assert units.sockets["systemd-journald-dev-log.socket"].Socket.Symlinks == ("/dev/log",)


def test_alias_makes_syslog_socket_work(system) -> None:  # type: ignore[no-untyped-def]
    units, _ = system
    assert units.aliases["syslog.service"] == "rsyslog.service"
    assert units.service_of("syslog.socket") == "rsyslog.service"
    assert units.get("sshd.service") is units.services["ssh.service"]
    assert units.get("dbus-org.freedesktop.Avahi.service") is units.services["avahi-daemon.service"]


def test_several_sockets_one_service(system) -> None:  # type: ignore[no-untyped-def]
    units, _ = system
    assert units.sockets_of("libvirtd.service") == (
        "libvirtd-admin.socket",
        "libvirtd-ro.socket",
        "libvirtd.socket",
    )
    assert units.sockets_of("systemd-udevd.service") == (
        "systemd-udevd-control.socket",
        "systemd-udevd-kernel.socket",
    )


def test_accept_yes_units(system) -> None:  # type: ignore[no-untyped-def]
    units, _ = system
    cd = units.sockets["systemd-coredump.socket"].Socket
    assert cd.Accept and cd.MaxConnections == 16
    assert cd.Listen == (
        UnixListen(
            type=SocketType.SEQPACKET, path="/run/systemd/coredump", text="/run/systemd/coredump"
        ),
    )
    inst = units.get("systemd-coredump@0-4242-0.service")
    assert (
        inst is not None
        and inst.Unit.Description == "Process Core Dump (PID 0-4242-0/UID coredump)"
    )
    assert inst.Service.ExecStart[0].ignore_failure and inst.Service.RuntimeMaxSec == 300
    saned = units.get("saned@0-10.0.0.1:6566-10.0.0.2:40000.service")
    assert (
        saned is not None
        and saned.Service.StandardOutput == "journal"
        and saned.Service.User == "saned"
    )
    tang = units.services["tangd@.service"].Service
    assert (tang.StandardInput, tang.StandardOutput, tang.StandardError) == (
        "socket",
        "socket",
        "journal",
    )
    oident = units.services["oidentd@.service"].Service.ExecStart[0]
    assert oident.argv[:2] == ("/bin/sh", "-c")
    assert (
        " ".join(oident.argv[2].split())
        == "exec /usr/sbin/oidentd -I -u oidentd -g oidentd ${OIDENT_OPTIONS}"
    )


def test_exotic_listeners(system) -> None:  # type: ignore[no-untyped-def]
    units, _ = system
    assert units.sockets["systemd-initctl.socket"].Socket.Listen == (
        FifoListen(path="/run/initctl", text="/run/initctl"),
    )
    rf = units.sockets["systemd-rfkill.socket"].Socket
    assert rf.Listen == (SpecialListen(path="/dev/rfkill", text="/dev/rfkill"),) and rf.Writable
    gpsd = units.sockets["gpsd.socket"].Socket
    assert gpsd.BindIPv6Only == "ipv6-only" and [x.text for x in gpsd.Listen][1:] == [
        "[::1]:2947",
        "127.0.0.1:2947",
    ]
    dovecot = units.sockets["dovecot.socket"].Socket
    assert dovecot.BindIPv6Only == "ipv6-only" and len(dovecot.Listen) == 4 and dovecot.KeepAlive


def test_service_details(system) -> None:  # type: ignore[no-untyped-def]
    units, _ = system
    docker = units.services["docker.service"]
    assert docker.Unit.StartLimitBurst == 3 and docker.Unit.StartLimitIntervalSec == 60
    assert math.isinf(docker.Service.TimeoutStartSec) and docker.Service.TimeoutStopSec == 90
    assert docker.Service.LimitNOFILE == Rlimit(soft=None, hard=None)
    assert docker.Service.OOMScoreAdjust == -500 and docker.Service.KillMode == "process"
    assert units.sockets["docker.socket"].Socket.SocketGroup == "docker"
    ssh = units.services["ssh.service"].Service
    assert [c.argv for c in ssh.ExecReload] == [
        ("/usr/sbin/sshd", "-t"),
        ("/bin/kill", "-HUP", "$MAINPID"),
    ]
    assert ssh.RestartPreventExitStatus.codes == {255} and ssh.RuntimeDirectory == ("sshd",)
    lv = units.services["libvirtd.service"].Service
    assert lv.Environment == {"LIBVIRTD_ARGS": "--timeout 120"} and lv.LimitMEMLOCK == Rlimit(
        soft=64 << 20, hard=64 << 20
    )
    assert units.services["libvirtd.service"].Unit.Requires == (
        "virtlogd.socket",
        "virtlockd.socket",
    )
    assert units.services["atftpd.service"].Service.DynamicUser
    assert units.services["systemd-udevd.service"].Service.ExecReload[0].path == "udevadm"
    assert units.services["systemd-rfkill.service"].Service.TimeoutStopSec == 30
    assert units.services["avahi-daemon.service"].Service.BusName == "org.freedesktop.Avahi"
    assert units.services["rsyslog.service"].Service.LimitNOFILE == Rlimit(soft=16384, hard=16384)
    assert units.services["systemd-udevd.service"].Service.KillSignal == signal.SIGTERM


def test_user_units_use_the_runtime_directory(user) -> None:  # type: ignore[no-untyped-def]
    units, _ = user
    agent = units.sockets["gpg-agent.socket"].Socket
    assert agent.Listen[0].path == "/run/gnupg/S.gpg-agent"  # type: ignore[union-attr]
    assert (agent.FileDescriptorName, agent.SocketMode, agent.DirectoryMode) == (
        "std",
        0o600,
        0o700,
    )
    assert units.sockets_of("gpg-agent.service") == (
        "gpg-agent-extra.socket",
        "gpg-agent-ssh.socket",
        "gpg-agent.socket",
    )
    assert units.sockets["pipewire.socket"].Socket.Priority == 6

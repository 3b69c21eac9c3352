"""No directive read and silently ignored (issue 12, item 8).

``test_every_directive_is_exercised_or_ignored`` enumerates every directive the unit model
accepts (units/directives TABLES) and fails unless a behaviour test uses it — a test that
runs what the directive does, not one that only parses it (BEHAVIOUR below) — or it sits
in the ignored table (IGNORED), where ``test_ignored_directives_are_said_at_load`` holds
each to its load-time warning. The tests after those exercise the directives no other test
did: conditions, resource limits, socket options, listener kinds, directories, [Install].
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import socket
import stat
import uuid
from pathlib import Path

import pytest
from harness import free_port

from activator.core.errors import BindError
from activator.exec import plan
from activator.exec.bind import bind_unit, close_listeners
from activator.exec.conditions import failed_condition
from activator.exec.directories import make_directories
from activator.exec.users import resolve
from activator.units import load_units
from activator.units.build import build_unit
from activator.units.deps import Graph
from activator.units.directives import CONDITIONS, IGNORED, TABLES, UNJUDGED_CONDITIONS
from activator.units.ini import read_ini
from activator.units.model import ServiceUnit, SocketUnit

TESTS = Path(__file__).parent
#: Test modules that run what directives do (parsing-only tests do not count).
BEHAVIOUR = [
    *sorted((TESTS / "integration").glob("test_*.py")),
    *sorted((TESTS / "lifecycle").glob("test_*.py")),
    *sorted((TESTS / "exec").glob("test_*.py")),
    *sorted((TESTS / "spawn").glob("test_*.py")),
    *sorted((TESTS / "containerish").glob("test_*.py")),
    *sorted((TESTS / "control").glob("test_*.py")),
    *sorted((TESTS / "net").glob("test_*.py")),
    TESTS / "test_plan.py",
    TESTS / "test_sockets.py",
    Path(__file__),
]
_CORPUS_EXCLUDES = ("def test_every_directive_is_exercised_or_ignored",)


def _corpus() -> str:
    text = "\n".join(p.read_text() for p in BEHAVIOUR)
    start = text.index(_CORPUS_EXCLUDES[0])  # this enumeration itself does not count
    end = text.index("\ndef ", start + 1)
    return text[:start] + text[end:]


def test_every_directive_is_exercised_or_ignored() -> None:
    corpus = _corpus()
    missing = []
    for section, table in TABLES.items():
        for name, d in table.items():
            assert name not in IGNORED[section], f"[{section}] {name}= both carried and ignored"
            if d.kind == "cond":
                continue  # every Condition*=/Assert*=: test_every_condition, over CONDITIONS
            # the name as a unit file writes it (also after a "\n" in a Python string)
            if not re.search(
                rf"(?:(?<![A-Za-z0-9_-])|(?<=\\n)){re.escape(name)}(?![A-Za-z0-9])", corpus
            ):
                missing.append(f"[{section}] {name}=")
    assert not missing, (
        "directives the model accepts that no behaviour test exercises (test them, or move "
        f"them to IGNORED with their warning): {', '.join(missing)}"
    )


@pytest.mark.parametrize("section", ["Unit", "Socket", "Service"])
def test_ignored_directives_are_said_at_load(tmp_path: Path, section: str) -> None:
    """Every ignored directive of a section, set in one unit: one warning names them all."""
    names = sorted(IGNORED[section])
    kind = "service" if section in ("Unit", "Service") else "socket"
    body = "\n".join(f"{n}=1" for n in names)
    main = {"socket": "[Socket]\nListenStream=127.0.0.1:1\n", "service": "[Service]\n"}[kind]
    text = (
        f"[Unit]\n{body}\n{main}ExecStart=/bin/true\nUser=nobody\n"
        if section == "Unit"
        else f"{main}{body}\n" + ("ExecStart=/bin/true\nUser=nobody\n" if kind == "service" else "")
    )
    (tmp_path / f"x.{kind}").write_text(text)
    if kind == "socket":
        (tmp_path / "x.service").write_text("[Service]\nExecStart=/bin/true\nUser=nobody\n")
    _, problems = load_units([tmp_path])
    warnings = [p.message for p in problems if p.unit == f"x.{kind}" and p.severity == "warning"]
    assert len(warnings) == 1, warnings
    for n in names:
        assert f" {n}=" in warnings[0] or f": {n}=" in warnings[0], n


# ---------------------------------------------------------------- helpers


def _unit(name: str, text: str) -> SocketUnit | ServiceUnit:
    entries, errors = read_ini(text, name)
    assert not errors
    unit, problems = build_unit(name, entries, fragment=f"/u/{name}")
    assert unit is not None and isinstance(unit, (SocketUnit, ServiceUnit)), problems
    return unit


def _service(lines: str) -> ServiceUnit:
    unit = _unit("x.service", f"[Service]\nExecStart=/bin/true\n{lines}\n")
    assert isinstance(unit, ServiceUnit)
    return unit


# ---------------------------------------------------------------- Condition*=, Assert*=

_JUDGED = {  # kind: (a value that holds here, one that does not)
    "PathExists": ("/", "/nonexistent/x"),
    "PathExistsGlob": ("/e*c", "/nonexistent*/x"),
    "PathIsDirectory": ("/", "/etc/passwd"),
    "PathIsSymbolicLink": ("/proc/self", "/"),
    "PathIsMountPoint": ("/proc", "/etc"),
    "PathIsReadWrite": ("/tmp", "(a read-only mount)"),
    "DirectoryNotEmpty": ("/etc", "/nonexistent"),
    "FileNotEmpty": ("/etc/passwd", "/dev/null"),
    "FileIsExecutable": ("/bin/sh", "/etc/passwd"),
    "Virtualization": ("!vm", "vm"),
    "User": (str(os.getuid()), "65533"),
    "Group": (str(os.getgid()), "65533"),
    "Environment": ("PATH", "ACTIVATOR_NO_SUCH_VARIABLE"),
    "Capability": ("CAP_CHOWN", "CAP_NO_SUCH_THING"),
    "Host": (socket.gethostname(), "no-such-host.invalid"),
    "KernelCommandLine": ("!activator.no.such.option", "activator.no.such.option"),
    "FirstBoot": ("no", "yes"),
}


_UNJUDGED = {  # kind: a valid value (the condition holds whatever it says)
    "PathIsEncrypted": "/", "NeedsUpdate": "/etc", "Architecture": "x86-64",
    "Firmware": "uefi", "KernelVersion": ">=4.0", "Credential": "x", "Security": "selinux",
    "ACPower": "true", "Memory": ">=1M", "CPUFeature": "sse2", "CPUs": ">=1",
    "ControlGroupController": "cpu", "OSRelease": "ID=debian", "MemoryPressure": "10%",
    "CPUPressure": "10%", "IOPressure": "10%",
}  # fmt: skip


def _read_only_mount() -> str | None:
    with open("/proc/self/mounts") as f:
        for line in f:
            where, options = line.split()[1], line.split()[3]
            if "ro" in options.split(",") and os.path.isdir(where):
                return where
    return None


@pytest.mark.parametrize("family", ["Condition", "Assert"])
@pytest.mark.parametrize("kind", CONDITIONS)
def test_every_condition(family: str, kind: str, tmp_path: Path) -> None:
    directive = family + kind
    if kind in UNJUDGED_CONDITIONS:  # holds, and the load says it is not judged
        value = _UNJUDGED[kind]
        assert failed_condition([(directive, value)]) is None
        (tmp_path / "c.service").write_text(
            f"[Unit]\n{directive}={value}\n[Service]\nExecStart=/bin/true\nUser=nobody\n"
        )
        _, problems = load_units([tmp_path])
        assert f"{directive}= (not judged in a container: it holds)" in problems[0].message
        return
    ok, bad = _JUDGED[kind]
    if kind == "PathIsReadWrite":
        bad = _read_only_mount() or pytest.skip("no read-only mount here to test against")
    assert failed_condition([(directive, ok)]) is None
    assert failed_condition([(directive, bad)]) == (directive, bad)


# ---------------------------------------------------------------- Limit*=

_LIMITS = {  # directive: (value, resource, soft, hard)
    "LimitCPU": ("5:10", resource.RLIMIT_CPU, 5, 10),
    "LimitFSIZE": ("1M", resource.RLIMIT_FSIZE, 1 << 20, 1 << 20),
    "LimitDATA": ("64M:128M", resource.RLIMIT_DATA, 64 << 20, 128 << 20),
    "LimitSTACK": ("8M", resource.RLIMIT_STACK, 8 << 20, 8 << 20),
    "LimitCORE": ("0", resource.RLIMIT_CORE, 0, 0),
    "LimitRSS": ("infinity", resource.RLIMIT_RSS, resource.RLIM_INFINITY, resource.RLIM_INFINITY),
    "LimitNOFILE": ("512:1024", resource.RLIMIT_NOFILE, 512, 1024),
    "LimitAS": ("1G", resource.RLIMIT_AS, 1 << 30, 1 << 30),
    "LimitNPROC": ("100", resource.RLIMIT_NPROC, 100, 100),
    "LimitMEMLOCK": ("64K", resource.RLIMIT_MEMLOCK, 64 << 10, 64 << 10),
    "LimitLOCKS": ("7", 10, 7, 7),  # RLIMIT_LOCKS
    "LimitSIGPENDING": ("99", resource.RLIMIT_SIGPENDING, 99, 99),
    "LimitMSGQUEUE": ("800K", resource.RLIMIT_MSGQUEUE, 800 << 10, 800 << 10),
    "LimitNICE": ("+5", resource.RLIMIT_NICE, 15, 15),  # a nice level: 20 - 5
    "LimitRTPRIO": ("3", resource.RLIMIT_RTPRIO, 3, 3),
    "LimitRTTIME": ("2s", resource.RLIMIT_RTTIME, 2_000_000, 2_000_000),  # µs
}


@pytest.mark.parametrize("directive", sorted(_LIMITS))
def test_every_limit_reaches_the_spawn(directive: str) -> None:
    value, res, soft, hard = _LIMITS[directive]
    prepared = plan.prepare(_service(f"{directive}={value}").Service)
    assert prepared.rlimits == ((res, soft, hard),)


def test_capability_bounding_set_reaches_the_spawn() -> None:
    svc = _service("CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_CHOWN").Service
    spec = plan.make_spec(svc, plan.prepare(svc), svc.ExecStart[0], {})
    assert sorted(spec.capability_bounding or ()) == [0, 10]  # CAP_CHOWN, CAP_NET_BIND_SERVICE


# ---------------------------------------------------------------- socket options


def _opt(fd: int, level: int, name: int, size: int = 0) -> int | bytes:
    s = socket.socket(fileno=fd)
    try:
        return s.getsockopt(level, name, size) if size else s.getsockopt(level, name)
    finally:
        s.detach()


_OPTIONS = [  # (lines, listener, level, option, expected)
    ("KeepAliveTimeSec=77", "s", socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 77),
    ("KeepAliveIntervalSec=13", "s", socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 13),
    ("KeepAliveProbes=4", "s", socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 4),
    ("DeferAcceptSec=3", "s", socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 3),
    ("Priority=6", "s", socket.SOL_SOCKET, socket.SO_PRIORITY, 6),
    ("IPTOS=low-delay", "s", socket.IPPROTO_IP, socket.IP_TOS, 0x10),
    ("IPTTL=33", "s", socket.IPPROTO_IP, socket.IP_TTL, 33),
    ("Broadcast=yes", "d", socket.SOL_SOCKET, socket.SO_BROADCAST, 1),
    ("FreeBind=yes", "s", socket.IPPROTO_IP, 15, 1),  # IP_FREEBIND
    ("PassPacketInfo=yes", "d", socket.IPPROTO_IP, 8, 1),  # IP_PKTINFO
    ("PassSecurity=yes", "u", socket.SOL_SOCKET, 34, 1),  # SO_PASSSEC
    ("Timestamping=us", "d", socket.SOL_SOCKET, 29, 1),  # SO_TIMESTAMP
    ("BindToDevice=lo", "s", socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"lo"),
    ("TCPCongestion=reno", "s", socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"reno"),
    ("SendBuffer=65536", "s", socket.SOL_SOCKET, socket.SO_SNDBUF, 2 * 65536),
    ("Mark=7", "s", socket.SOL_SOCKET, socket.SO_MARK, 7),
    ("Transparent=yes", "s", socket.IPPROTO_IP, 19, 1),  # IP_TRANSPARENT
]


@pytest.mark.root
@pytest.mark.parametrize(("lines", "kind", "level", "option", "expected"), _OPTIONS)
def test_every_socket_option_is_set(lines, kind, level, option, expected, tmp_path) -> None:
    port = free_port()
    listen = {
        "s": f"ListenStream=127.0.0.1:{port}",
        "d": f"ListenDatagram=127.0.0.1:{port}",
        "u": f"ListenStream={tmp_path}/u.sock",
    }[kind]
    sec = _unit("o.socket", f"[Socket]\n{listen}\n{lines}\n").section
    try:
        lst = bind_unit("o.socket", sec)  # type: ignore[arg-type]
    except BindError as e:
        if "Operation not permitted" in str(e):  # Transparent= wants CAP_NET_ADMIN
            pytest.skip(f"root here lacks CAP_NET_ADMIN: {e}")
        raise
    try:
        size = 16 if isinstance(expected, bytes) else 0
        got = _opt(lst[0].fd, level, option, size)
        if isinstance(got, bytes):
            got = got.rstrip(b"\0")
        if got != expected and lines.startswith("Mark="):  # quietly refused without
            pytest.skip("SO_MARK needs CAP_NET_ADMIN, which root lacks here")
        assert got == expected
    finally:
        close_listeners(lst, sec, remove=True)  # type: ignore[arg-type]


def test_socket_protocol_udplite() -> None:
    port = free_port()
    sec = _unit("l.socket", f"[Socket]\nListenDatagram=127.0.0.1:{port}\nSocketProtocol=udplite\n")
    try:
        lst = bind_unit("l.socket", sec.section)  # type: ignore[arg-type]
    except BindError as e:
        pytest.skip(f"no UDP-Lite in this kernel: {e}")
    try:
        assert _opt(lst[0].fd, socket.SOL_SOCKET, socket.SO_PROTOCOL) == 136  # IPPROTO_UDPLITE
    finally:
        close_listeners(lst, sec.section, remove=True)  # type: ignore[arg-type]


@pytest.mark.root
def test_every_listener_kind_from_a_unit_file(tmp_path: Path) -> None:
    """ListenFIFO= (PipeSize=), ListenSpecial= (Writable=), ListenNetlink=,
    ListenSequentialPacket=, and ListenMessageQueue= refused at bind, naming why."""
    special = tmp_path / "special"
    special.write_text("x")
    text = (
        f"[Socket]\nListenFIFO={tmp_path}/f.fifo\nPipeSize=131072\n"
        f"ListenSpecial={special}\nWritable=yes\nListenNetlink=route 0\n"
        f"ListenSequentialPacket={tmp_path}/seq.sock\n"
    )
    sec = _unit("k.socket", text).section
    lst = bind_unit("k.socket", sec)  # type: ignore[arg-type]
    try:
        fifo, spec, netlink, seq = lst
        assert stat.S_ISFIFO(os.fstat(fifo.fd).st_mode)
        assert __import__("fcntl").fcntl(fifo.fd, 1032) == 131072  # F_GETPIPE_SZ
        assert os.get_blocking(spec.fd) is False and os.write(spec.fd, b"y") == 1  # Writable=
        assert netlink.family == socket.AF_NETLINK and seq.type == socket.SOCK_SEQPACKET
    finally:
        close_listeners(lst, sec, remove=True)  # type: ignore[arg-type]
    mq = _unit("m.socket", "[Socket]\nListenMessageQueue=/activator-test\n").section
    with pytest.raises(BindError, match="POSIX message queues are not supported"):
        bind_unit("m.socket", mq)  # type: ignore[arg-type]


# ---------------------------------------------------------------- *Directory=


@pytest.mark.root
def test_cache_logs_configuration_directories_and_their_modes() -> None:
    n = f"activator-test-{uuid.uuid4().hex[:8]}"
    svc = _service(
        f"User=nobody\nCacheDirectory={n}\nCacheDirectoryMode=0750\nLogsDirectory={n}\n"
        f"LogsDirectoryMode=0700\nConfigurationDirectory={n}\nConfigurationDirectoryMode=0710\n"
        f"RuntimeDirectory={n}\nRuntimeDirectoryMode=0701\n"
    ).Service
    try:
        env = make_directories(svc, resolve("nobody", None))
        assert env["CACHE_DIRECTORY"] == f"/var/cache/{n}"
        modes = {
            root: (os.stat(f"{root}/{n}").st_mode & 0o777, os.stat(f"{root}/{n}").st_uid)
            for root in ("/var/cache", "/var/log", "/etc", "/run")
        }
        assert modes == {
            "/var/cache": (0o750, 65534),
            "/var/log": (0o700, 65534),
            "/etc": (0o710, 0),  # the configuration one stays root's
            "/run": (0o701, 65534),
        }
    finally:
        for root in ("/var/cache", "/var/log", "/etc", "/run"):
            shutil.rmtree(f"{root}/{n}", ignore_errors=True)


# ---------------------------------------------------------------- [Unit], [Install]


def test_unit_and_install_directives_reach_the_load(tmp_path: Path) -> None:
    """[Install] as if enabled (Also= needs nothing more: every unit of --units is),
    Alias=, the old spellings BindTo= and StartLimitInterval=, Before=, Documentation=."""
    (tmp_path / "a.service").write_text(
        "[Unit]\nDocumentation=man:a(8)\nBefore=b.service\nBindTo=b.service\n"
        "StartLimitInterval=7\n[Service]\nExecStart=/bin/true\nUser=nobody\n"
        "[Install]\nRequiredBy=multi-user.target\nAlias=alias-a.service\nAlso=b.service\n"
    )
    (tmp_path / "b.service").write_text(
        "[Service]\nExecStart=/bin/true\nUser=nobody\nStartLimitInterval=9\n"
        "[Install]\nUpheldBy=multi-user.target\n"
    )
    units, problems = load_units([tmp_path], install=True)
    assert problems == []
    a, b = units.services["a.service"], units.services["b.service"]
    assert a.Unit.Documentation == ("man:a(8)",) and a.Unit.BindsTo == ("b.service",)
    assert (a.Unit.StartLimitIntervalSec, b.Unit.StartLimitIntervalSec) == (7, 9)
    assert units.aliases["alias-a.service"] == "a.service"
    g = Graph(units)
    assert "a.service" in g.deps("multi-user.target", "Requires")
    assert "b.service" in g.deps("multi-user.target", "Upholds")
    assert "b.service" in g.deps("a.service", "Before")


@pytest.mark.root
def test_sockets_gives_a_service_the_sockets_it_names(probe) -> None:
    """Sockets=: a service with a name of its own gets every socket it names."""
    from harness import SYSTEM_PYTHON, Activator, read_report

    p1, p2 = free_port(), free_port()
    units = {
        "one.socket": f"[Socket]\nListenStream=127.0.0.1:{p1}\nService=both.service\n",
        "two.socket": f"[Socket]\nListenStream=127.0.0.1:{p2}\nService=both.service\n",
        "both.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {probe} once\nUser=nobody\n"
        "Sockets=two.socket one.socket\n",
    }
    with Activator(units) as a:
        report = read_report(("127.0.0.1", p2))
        assert report["env"]["LISTEN_FDS"] == "2"
        assert report["env"]["LISTEN_FDNAMES"] == "one.socket:two.socket"
        assert a.wait_for("exit", unit="both.service")["status"] == 0

"""import → load gives the same model, as TOML and as INI: over generated units
(hypothesis) and real ones; and the TOML keeps the text of what it imports (issue 12)."""

from __future__ import annotations

import glob
import json
import os
import tempfile
import tomllib
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from activator.units import export_unit
from activator.units.loader import load_one, load_source
from activator.units.specifiers import escape_percent
from activator.units.values import quote_word

HERE = Path(__file__).parent
REPO = HERE.parent.parent
SKIP = {"path", "dropins"}


def _again(name: str, text: str, workdir: str, suffix: str):  # type: ignore[no-untyped-def]
    out = os.path.join(workdir, name + suffix)
    with open(out, "w") as f:
        f.write(text)
    try:
        unit, problems, entries = load_source(out)
    finally:
        os.unlink(out)
    assert unit is not None, (text, [str(p) for p in problems])
    return unit, entries


def _dump(unit, here: str = "", there: str = "") -> str:  # type: ignore[no-untyped-def]
    """The model as JSON; %y/%Y (the unit file's own path) read as if it were ``there``."""
    text = json.dumps(unit.model_dump(exclude=SKIP, mode="json"), sort_keys=True)
    return text.replace(json.dumps(here)[1:-1], json.dumps(there)[1:-1]) if here else text


def roundtrip(path: str, workdir: str) -> None:
    """INI (or TOML) → TOML → load is the same model; → INI (from the TOML) too."""
    unit, problems, entries = load_source(path)
    assert unit is not None, [str(p) for p in problems]
    want = _dump(unit, os.path.dirname(os.path.abspath(path)), os.path.abspath(workdir))
    toml_text = export_unit(unit.name, entries, "toml", source=path)
    from_toml, toml_entries = _again(unit.name, toml_text, workdir, ".toml")
    assert _dump(from_toml) == want, toml_text
    ini_text = export_unit(unit.name, toml_entries, "ini")
    from_ini, _ = _again(unit.name, ini_text, workdir, "")
    assert _dump(from_ini) == want, (toml_text, ini_text)
    assert from_toml.name == from_ini.name == unit.name


# ---------------------------------------------------------------- generated units

BOOLS = st.sampled_from(
    ["1", "yes", "y", "true", "t", "on", "0", "no", "n", "false", "f", "off", "True", "NO"]
)
NAME = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)
# any printable text, including quotes, backslashes, %, $, non-ASCII
TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\u0085"),
    max_size=20,
)
ABS_PATH = st.lists(NAME, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))
PORT = st.integers(1, 65535)
IPV4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
IPV6 = st.sampled_from(["::1", "::", "fe80::1", "2001:db8::42", "::ffff:10.0.0.1"])


def ini_value(text: str) -> str:
    """A string as an INI value that reads back unchanged (specifiers escaped)."""
    return escape_percent(text)


def word(text: str) -> str:
    """One word of a list/command line, quoted as needed."""
    return quote_word(escape_percent(text))


stream_addr = st.one_of(
    PORT.map(str),
    st.tuples(IPV4, PORT).map(lambda t: f"{t[0]}:{t[1]}"),
    st.tuples(IPV6, PORT).map(lambda t: f"[{t[0]}]:{t[1]}"),
    st.tuples(IPV6, PORT, st.sampled_from(["lo", "eth0", "1"])).map(
        lambda t: f"[{t[0]}]:{t[1]}%%{t[2]}"
    ),
    ABS_PATH,
    NAME.map(lambda n: "@" + n),
)
listen = st.one_of(
    stream_addr.map(lambda a: f"ListenStream={a}"),
    stream_addr.map(lambda a: f"ListenDatagram={a}"),
    st.one_of(ABS_PATH, NAME.map(lambda n: "@" + n)).map(lambda a: f"ListenSequentialPacket={a}"),
    ABS_PATH.map(lambda p: f"ListenFIFO={p}"),
    ABS_PATH.map(lambda p: f"ListenSpecial={p}"),
    st.tuples(st.sampled_from(["route", "audit", "kobject-uevent"]), st.integers(0, 99)).map(
        lambda t: f"ListenNetlink={t[0]} {t[1]}"
    ),
    NAME.map(lambda n: f"ListenMessageQueue=/{n}"),
)
TIME = st.one_of(
    st.integers(0, 10**6).map(str),
    st.sampled_from(["1min 30s", "100ms", "2h", "infinity", "1.5s", "250us", "3d 4h"]),
)
SIZE = st.one_of(st.integers(0, 10**9).map(str), st.sampled_from(["8M", "64K", "1G", "1.5K"]))
MODE = st.integers(0, 0o7777).map(lambda m: f"{m:04o}")
SIGNAL = st.sampled_from(["SIGTERM", "TERM", "HUP", "SIGKILL", "9", "SIGRTMIN+3", "SIGUSR2", "32"])
RLIMIT = st.one_of(
    st.integers(0, 10**6).map(str),
    st.tuples(st.integers(0, 1000), st.integers(1000, 10**6)).map(lambda t: f"{t[0]}:{t[1]}"),
    st.just("infinity"),
    st.just("1024:infinity"),
)
EXEC = st.tuples(
    st.sampled_from(["", "-", "@", "-@", ":", "+", "!", "!!", "-:"]),
    NAME.map(lambda n: "/usr/bin/" + n),
    st.lists(TEXT, max_size=4),
).map(
    lambda t: (
        t[0]
        + word(t[1])
        + ("" if "@" not in t[0] else " " + word("argv0"))
        + "".join(" " + ("\\;" if w == ";" else word(w)) for w in t[2])
    )
)
ENV_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
ENV = st.lists(st.tuples(ENV_NAME, TEXT), min_size=1, max_size=3).map(
    lambda kv: "Environment=" + " ".join(word(f"{k}={v}") for k, v in kv)
)
USER = st.one_of(NAME, st.integers(0, 65534).map(str))
EXEC_CONTEXT = st.one_of(
    USER.map(lambda u: f"User={u}"),
    USER.map(lambda u: f"Group={u}"),
    st.lists(NAME, min_size=1, max_size=3).map(lambda g: "SupplementaryGroups=" + " ".join(g)),
    ENV,
    st.just("Environment="),
    st.tuples(st.booleans(), ABS_PATH).map(
        lambda t: f"EnvironmentFile={'-' if t[0] else ''}{t[1]}"
    ),
    st.lists(ENV_NAME, min_size=1, max_size=3).map(lambda n: "PassEnvironment=" + " ".join(n)),
    MODE.map(lambda m: f"UMask={m}"),
    st.integers(-20, 19).map(lambda n: f"Nice={n}"),
    st.integers(-1000, 1000).map(lambda n: f"OOMScoreAdjust={n}"),
    BOOLS.map(lambda b: f"NoNewPrivileges={b}"),
    BOOLS.map(lambda b: f"IgnoreSIGPIPE={b}"),
    st.sampled_from(
        ["CAP_NET_BIND_SERVICE", "~CAP_SYS_ADMIN CAP_NET_RAW", "", "cap_chown cap_kill", "~"]
    ).map(lambda c: f"CapabilityBoundingSet={c}"),
    st.sampled_from(["CAP_NET_BIND_SERVICE", "", "CAP_NET_RAW CAP_CHOWN"]).map(
        lambda c: f"AmbientCapabilities={c}"
    ),
    st.sampled_from(["null", "socket", "tty", "data", "fd:foo", "file:/dev/null"]).map(
        lambda v: f"StandardInput={v}"
    ),
    st.sampled_from(
        ["inherit", "journal", "syslog", "null", "append:/var/log/x", "socket", "kmsg+console"]
    ).map(lambda v: f"StandardOutput={v}"),
    st.sampled_from(["inherit", "syslog+console", "fd", "truncate:/tmp/x"]).map(
        lambda v: f"StandardError={v}"
    ),
    TEXT.filter(lambda t: t.strip() == t and t and not t.endswith("\\")).map(
        lambda t: f"SyslogIdentifier={ini_value(t)}"
    ),
    st.tuples(
        st.sampled_from(["NOFILE", "CORE", "NPROC", "MEMLOCK", "CPU", "RTTIME", "AS"]), RLIMIT
    ).map(lambda t: f"Limit{t[0]}={t[1]}"),
    st.sampled_from(["-20", "+5", "10"]).map(lambda v: f"LimitNICE={v}"),
    st.lists(NAME, min_size=1, max_size=2).map(lambda d: "RuntimeDirectory=" + " ".join(d)),
    MODE.map(lambda m: f"RuntimeDirectoryMode={m}"),
    st.sampled_from(["yes", "no", "restart", "true"]).map(
        lambda v: f"RuntimeDirectoryPreserve={v}"
    ),
    st.sampled_from(["control-group", "mixed", "process", "none"]).map(lambda v: f"KillMode={v}"),
    SIGNAL.map(lambda s: f"KillSignal={s}"),
    SIGNAL.map(lambda s: f"RestartKillSignal={s}"),
    BOOLS.map(lambda b: f"SendSIGHUP={b}"),
    st.sampled_from(["/srv", "-/srv/x", "~", "-~"]).map(lambda w: f"WorkingDirectory={w}"),
)
UNIT_SECTION = st.one_of(
    TEXT.filter(lambda t: t.strip() == t and not t.endswith("\\")).map(
        lambda t: f"Description={ini_value(t)}"
    ),
    st.lists(
        st.sampled_from(["network.target", "a.service", "b.socket", "x@y.service"]), min_size=1
    ).map(lambda u: "After=" + " ".join(u)),
    st.sampled_from(["Requires", "Wants", "Before", "BindsTo", "PartOf", "Conflicts"]).map(
        lambda d: f"{d}=c.target"
    ),
    st.sampled_from(["man:foo(8)", "https://example.org/a?b=c", "file:/usr/share/doc"]).map(
        lambda u: f"Documentation={u}"
    ),
    BOOLS.map(lambda b: f"DefaultDependencies={b}"),
    st.sampled_from(["inactive", "inactive-or-failed"]).map(lambda v: f"CollectMode={v}"),
    TIME.map(lambda t: f"StartLimitIntervalSec={t}"),
    st.integers(0, 100).map(lambda n: f"StartLimitBurst={n}"),
    st.tuples(
        st.sampled_from(["ConditionPathExists", "AssertPathExists", "ConditionPathIsDirectory"]),
        st.sampled_from(["", "!", "|", "|!"]),
        ABS_PATH,
    ).map(lambda t: f"{t[0]}={t[1]}{t[2]}"),
    st.sampled_from(["container", "!container", "kvm"]).map(
        lambda v: f"ConditionVirtualization={v}"
    ),
    st.sampled_from(["ConditionPathExists=", "AssertPathExists="]),
)
SOCKET_ONLY = st.one_of(
    BOOLS.map(lambda b: f"Accept={b}"),
    NAME.map(lambda n: f"SocketUser={n}"),
    NAME.map(lambda n: f"SocketGroup={n}"),
    MODE.map(lambda m: f"SocketMode={m}"),
    MODE.map(lambda m: f"DirectoryMode={m}"),
    st.integers(0, 2**31).map(lambda n: f"Backlog={n}"),
    st.sampled_from(["default", "both", "ipv6-only", "yes", "false"]).map(
        lambda v: f"BindIPv6Only={v}"
    ),
    st.sampled_from(["eth0", "lo"]).map(lambda v: f"BindToDevice={v}"),
    st.sampled_from(["udplite", "sctp"]).map(lambda v: f"SocketProtocol={v}"),
    st.sampled_from(
        [
            "ReusePort",
            "FreeBind",
            "Transparent",
            "Broadcast",
            "PassCredentials",
            "PassSecurity",
            "PassPacketInfo",
            "KeepAlive",
            "NoDelay",
            "Writable",
            "FlushPending",
            "RemoveOnStop",
            "X-Activator-UCSPI",
        ]
    ).flatmap(lambda d: BOOLS.map(lambda b: f"{d}={b}")),  # fmt: skip
    st.sampled_from(["off", "us", "usec", "ns", "nsec", "µs"]).map(lambda v: f"Timestamping={v}"),
    st.sampled_from(
        [
            "KeepAliveTimeSec",
            "KeepAliveIntervalSec",
            "DeferAcceptSec",
            "TriggerLimitIntervalSec",
            "PollLimitIntervalSec",
            "TimeoutSec",
        ]
    ).flatmap(lambda d: TIME.map(lambda t: f"{d}={t}")),  # fmt: skip
    st.sampled_from(
        [
            "KeepAliveProbes",
            "TriggerLimitBurst",
            "PollLimitBurst",
            "MaxConnectionsPerSource",
            "Priority",
            "Mark",
        ]
    ).flatmap(lambda d: st.integers(0, 1000).map(lambda n: f"{d}={n}")),  # fmt: skip
    st.integers(1, 10000).map(lambda n: f"MaxConnections={n}"),
    st.sampled_from(["ReceiveBuffer", "SendBuffer", "PipeSize"]).flatmap(
        lambda d: SIZE.map(lambda s: f"{d}={s}")
    ),
    st.sampled_from(["low-delay", "throughput", "16"]).map(lambda v: f"IPTOS={v}"),
    st.integers(0, 255).map(lambda n: f"IPTTL={n}"),
    st.sampled_from(["bbr", "cubic"]).map(lambda v: f"TCPCongestion={v}"),
    st.integers(1, 100).map(lambda n: f"MessageQueueMaxMessages={n}"),
    NAME.map(lambda n: f"FileDescriptorName={n}"),
    st.sampled_from(["ExecStartPre", "ExecStartPost", "ExecStopPre", "ExecStopPost"]).flatmap(
        lambda d: EXEC.map(lambda e: f"{d}={e}")
    ),
)
SERVICE_ONLY = st.one_of(
    st.sampled_from(["simple", "exec", "forking", "notify", "idle"]).map(lambda t: f"Type={t}"),
    st.sampled_from(
        ["ExecStartPre", "ExecStartPost", "ExecReload", "ExecStop", "ExecStopPost", "ExecCondition"]
    ).flatmap(lambda d: EXEC.map(lambda e: f"{d}={e}")),
    BOOLS.map(lambda b: f"RemainAfterExit={b}"),
    BOOLS.map(lambda b: f"NonBlocking={b}"),
    ABS_PATH.map(lambda p: f"PIDFile={p}"),
    st.sampled_from(["none", "main", "exec", "all"]).map(lambda v: f"NotifyAccess={v}"),
    st.sampled_from(
        ["no", "on-failure", "always", "on-abnormal", "on-abort", "on-watchdog", "on-success"]
    ).map(lambda v: f"Restart={v}"),
    st.sampled_from(
        [
            "RestartSec",
            "WatchdogSec",
            "TimeoutStartSec",
            "TimeoutStopSec",
            "TimeoutSec",
            "RuntimeMaxSec",
        ]
    ).flatmap(lambda d: TIME.map(lambda t: f"{d}={t}")),  # fmt: skip
    st.sampled_from(["1", "2 3 SIGHUP", "NOTINSTALLED", "SIGTERM", ""]).flatmap(
        lambda v: st.sampled_from(
            ["SuccessExitStatus", "RestartPreventExitStatus", "RestartForceExitStatus"]
        ).map(lambda d: f"{d}={v}")
    ),
    NAME.map(lambda n: f"Sockets={n}.socket"),
    st.integers(0, 100).map(lambda n: f"FileDescriptorStoreMax={n}"),
    BOOLS.map(lambda b: f"PermissionsStartOnly={b}"),
    st.sampled_from(["StartLimitInterval=5s", "StartLimitBurst=3"]),
)
INSTALL = st.one_of(
    st.sampled_from(
        [
            "WantedBy=sockets.target",
            "WantedBy=multi-user.target",
            "RequiredBy=x.target",
            "Also=y.socket",
        ]
    ),
)


@st.composite
def socket_unit(draw: st.DrawFn) -> str:
    lines = ["[Unit]", *draw(st.lists(UNIT_SECTION, max_size=4)), "[Socket]"]
    lines += draw(st.lists(listen, min_size=1, max_size=5))
    lines += draw(st.lists(st.one_of(SOCKET_ONLY, EXEC_CONTEXT), max_size=8))
    lines += ["[Install]", *draw(st.lists(INSTALL, max_size=2))]
    return "\n".join(lines) + "\n"


@st.composite
def service_unit(draw: st.DrawFn) -> str:
    lines = ["[Unit]", *draw(st.lists(UNIT_SECTION, max_size=4)), "[Service]"]
    lines.append("ExecStart=" + draw(EXEC))
    lines += draw(st.lists(st.one_of(SERVICE_ONLY, EXEC_CONTEXT), max_size=10))
    lines += ["[Install]", *draw(st.lists(INSTALL, max_size=2))]
    return "\n".join(lines) + "\n"


def _load_generated(name: str, text: str, d: str) -> None:
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    unit, problems = load_one(path)
    # Combinations systemd refuses (Accept=yes with a datagram listener, ExecStart=
    # reset away…) are fine to generate; they are not what this test is about.
    assume(unit is not None)
    roundtrip(path, d)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(socket_unit())
def test_generated_sockets_roundtrip(text: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        _load_generated("gen.socket", text, d)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(service_unit(), st.sampled_from(["gen.service", "gen@.service", "gen@inst-1.service"]))
def test_generated_services_roundtrip(text: str, name: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        _load_generated(name, text, d)


# ---------------------------------------------------------------- every real unit we test with


#: The Debian packages' units tests/containerish runs as shipped (when installed here).
HOST_UNITS = [
    f"/lib/systemd/system/{n}"
    for n in (
        "dbus.service", "dbus.socket", "uwsgi-app@.service", "uwsgi-app@.socket",
        "uuidd.service", "uuidd.socket", "fcgiwrap.service", "fcgiwrap.socket",
        "rpcbind.service", "rpcbind.socket", "rsync.service", "inetd.service",
    )
]  # fmt: skip


def _fixture_units() -> list[str]:
    paths = []
    for pattern in ("real/**/*.socket", "real/**/*.service", "real/**/*.toml"):
        paths += glob.glob(str(HERE / pattern), recursive=True)
    for pattern in ("*.socket", "*.service", "*.toml"):
        paths += glob.glob(str(REPO / "units" / pattern))
    paths += [p for p in HOST_UNITS if os.path.exists(p)]
    return sorted(p for p in paths if ".d/" not in p)


def test_every_fixture_unit_roundtrips(tmp_path: Path) -> None:
    paths = _fixture_units()
    assert len(paths) >= 30
    for p in paths:
        roundtrip(p, str(tmp_path))


# ---------------------------------------------------------------- the text is kept


def test_import_keeps_the_text_and_the_order(tmp_path: Path) -> None:
    """A template stays a template, values keep their text, $VAR stays visible, the
    directives keep their order; ``--format ini`` writes systemd's syntax back."""
    from activator.cli.ctl import main

    src = tmp_path / "sshd@.service"
    src.write_text(
        "[Unit]\nDescription=SSH for %i\nDocumentation=man:sshd(8) https://openssh.com/\n"
        "[Service]\nEnvironment=OPTS=-D\nExecStart=-/usr/sbin/sshd -i $OPTS ${OPTS}\n"
        "User=sshd-%i\nStandardInput=socket\nNoNewPrivileges=yes\nUMask=0077\n"
    )
    assert main(["import", str(src), "-o", str(tmp_path / "toml")]) == 0
    text = (tmp_path / "toml" / "sshd@.service.toml").read_text()
    doc = tomllib.loads(text)
    assert doc["Unit"] == {
        "Description": "SSH for %i",
        "Documentation": "man:sshd(8) https://openssh.com/",
    }
    svc = doc["Service"]
    assert list(svc) == [
        "Environment", "ExecStart", "User", "StandardInput", "NoNewPrivileges", "UMask"
    ]  # fmt: skip
    assert svc["ExecStart"] == "-/usr/sbin/sshd -i $OPTS ${OPTS}"
    assert svc["User"] == "sshd-%i" and svc["NoNewPrivileges"] is True and svc["UMask"] == "0077"
    assert "test_instance" not in text
    out = tmp_path / "ini"
    toml_file = str(tmp_path / "toml" / "sshd@.service.toml")
    assert main(["import", toml_file, "-o", str(out), "--format", "ini"]) == 0
    assert (out / "sshd@.service").read_text().splitlines()[1:] == [
        "[Unit]", "Description=SSH for %i", "Documentation=man:sshd(8) https://openssh.com/",
        "", "[Service]", "Environment=OPTS=-D", "ExecStart=-/usr/sbin/sshd -i $OPTS ${OPTS}",
        "User=sshd-%i", "StandardInput=socket", "NoNewPrivileges=yes", "UMask=0077",
    ]  # fmt: skip


def test_import_merges_what_later_assignments_undo(tmp_path: Path) -> None:
    """A drop-in's reset and a value set twice: the file says what the merge means."""
    src = tmp_path / "web.service"
    src.write_text(
        "[Unit]\nConditionPathExists=/a\n[Service]\nExecStart=/bin/old\nTimeoutStartSec=5\n"
        "TimeoutSec=7\nTimeoutStartSec=9\nUser=nobody\n"
    )
    (tmp_path / "web.service.d").mkdir()
    (tmp_path / "web.service.d" / "x.conf").write_text(
        "[Service]\nExecStart=\nExecStart=/bin/new\n[Unit]\nConditionPathExists=\n"
        "AssertPathExists=/b\n"
    )
    unit, _, entries = load_source(str(src))
    assert unit is not None
    doc = tomllib.loads(export_unit(unit.name, entries))
    assert doc == {
        "Unit": {"AssertPathExists": "/b"},
        "Service": {
            "TimeoutSec": "7", "TimeoutStartSec": "9", "User": "nobody", "ExecStart": "/bin/new"
        },
    }  # fmt: skip
    (tmp_path / "toml").mkdir()
    again, _ = _again(unit.name, export_unit(unit.name, entries), str(tmp_path / "toml"), ".toml")
    assert _dump(again) == _dump(unit)

"""systemd's unit-file syntax and its TOML mirror: both give the same model."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

import pytest

from activator.units import load_units
from activator.units.model import InetListen, NetlinkListen, SocketType, UnixListen

from .conftest import load_ok

SVC = "[Service]\nExecStart=/bin/true\n"


def model(u):  # type: ignore[no-untyped-def]
    return u.model_dump(exclude={"path", "dropins"})


def test_comments_continuations_and_whitespace(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = units_dir(
        {
            "web.service": (
                "\ufeff# leading comment\n"
                "; semicolon comment\n"
                "[Unit]\n"
                "  Description =  spaced out   \n"
                "[Service]\n"
                "ExecStart=/bin/echo one \\\n"
                "# a comment inside a continuation is skipped\n"
                "  ; so is this one\n"
                "  two \\\n"
                "three\n"
                "Environment=A=x\\\\\n"  # an even number of backslashes does not continue
                "Environment=B=2\n"
            )
        }
    )
    units, _ = load_ok(d)
    svc = units.services["web.service"]
    assert svc.Unit.Description == "spaced out"
    assert svc.Service.ExecStart[0].argv == ("/bin/echo", "one", "two", "three")
    assert svc.Service.Environment == {"A": "x\\", "B": "2"}


def test_problem_line_is_where_the_directive_starts(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = units_dir({"web.service": "[Service]\nExecStart=/bin/true\nRestartSec=1 \\\n  2 \\\n  x\n"})
    _, problems = load_units([d])
    (p,) = problems
    assert (p.where, p.directive) == (3, "RestartSec")


def test_repeated_directives_accumulate_and_empty_resets(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = units_dir(
        {
            "web.socket": (
                "[Socket]\n"
                "ListenStream=1.2.3.4:1\n"
                "ListenDatagram=1.2.3.4:2\n"
                "ListenStream=\n"  # resets every Listen*= so far, of all kinds
                "ListenDatagram=127.0.0.1:53\n"
                "ListenStream=/run/a.sock\n"
                "ListenDatagram=@abstract\n"
                "Symlinks=/run/x\n"
                "Symlinks=\n"
                "Accept=yes\n"
                "Accept=no\n"  # scalar: last wins
                "SocketMode=0600\n"
                "SocketMode=\n"  # empty: back to the default
            ),
            "web.service": (
                "[Unit]\nAfter=a.target b.target\nAfter=c.target\n"
                "[Service]\nExecStart=/bin/a\nExecStart=\nExecStart=/bin/b\n"
                "Environment=A=1 B=2\nEnvironment=B=3\nEnvironment=\nEnvironment=C=4\n"
                "SuccessExitStatus=1\nSuccessExitStatus=2 SIGUSR1\n"
            ),
        }
    )
    units, _ = load_ok(d)
    s = units.sockets["web.socket"].Socket
    assert [x.text for x in s.Listen] == ["127.0.0.1:53", "/run/a.sock", "@abstract"]
    assert [getattr(x, "type", None) for x in s.Listen] == [
        SocketType.DATAGRAM,
        SocketType.STREAM,
        SocketType.DATAGRAM,
    ]
    assert s.Symlinks == () and s.Accept is False and s.SocketMode == 0o666
    svc = units.services["web.service"]
    assert svc.Unit.After == ("a.target", "b.target", "c.target")
    assert [c.path for c in svc.Service.ExecStart] == ["/bin/b"]
    assert svc.Service.Environment == {"C": "4"}
    assert svc.Service.SuccessExitStatus.codes == {1, 2}
    assert svc.Service.SuccessExitStatus.signals == {signal.SIGUSR1}


@pytest.mark.parametrize("spelling", ["1", "yes", "y", "true", "t", "on", "True", "YES", "On"])
def test_boolean_spellings(units_dir, spelling: str) -> None:  # type: ignore[no-untyped-def]
    d = units_dir(
        {"web.socket": f"[Socket]\nListenStream=80\nFreeBind={spelling}\n", "web.service": SVC}
    )
    units, _ = load_ok(d)
    assert units.sockets["web.socket"].Socket.FreeBind is True


def test_values_normalised(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = units_dir(
        {
            "web.socket": (
                "[Socket]\nListenStream=[::1]:8080%%lo\nListenStream=8081\nListenNetlink=kobject-uevent 1\n"  # noqa: E501
                "ReceiveBuffer=8M\nSocketMode=0660\nBindIPv6Only=yes\nTimestamping=usec\n"
                "TriggerLimitIntervalSec=1min 30s\nIPTOS=low-delay\n"
            ),
            "web.service": (
                "[Unit]\nStartLimitIntervalSec=infinity\n"
                "[Service]\nExecStart=/bin/true\nTimeoutSec=0\nRestartSec=100ms\nKillSignal=SIGINT\n"
                "StandardError=syslog\nStartLimitBurst=3\nStartLimitInterval=20s\nUMask=0077\n"
                "LimitNOFILE=1024:524288\nCapabilityBoundingSet=~CAP_SYS_ADMIN\n"
                "CapabilityBoundingSet=CAP_NET_RAW\nAmbientCapabilities=cap_net_bind_service\n"
                "PIDFile=web.pid\nRuntimeDirectoryPreserve=true\n"
            ),
        }
    )
    units, _ = load_ok(d)
    s = units.sockets["web.socket"].Socket
    assert s.Listen[0] == InetListen(
        type=SocketType.STREAM, host="::1", port=8080, scope="lo", text="[::1]:8080%lo"
    )
    assert s.Listen[1] == InetListen(type=SocketType.STREAM, host=None, port=8081, text="8081")
    assert s.Listen[2] == NetlinkListen(protocol="kobject-uevent", group=1, text="kobject-uevent 1")
    assert (s.ReceiveBuffer, s.SocketMode, s.BindIPv6Only, s.Timestamping) == (
        8 << 20,
        0o660,
        "ipv6-only",
        "us",
    )
    assert s.TriggerLimitIntervalSec == 90.0 and s.IPTOS == 0x10
    svc = units.services["web.service"]
    assert svc.Unit.StartLimitIntervalSec == 20.0  # the [Service] legacy spelling came later
    assert svc.Unit.StartLimitBurst == 3
    x = svc.Service
    assert math.isinf(x.TimeoutStartSec) and math.isinf(x.TimeoutStopSec)  # 0 = no timeout
    assert x.RestartSec == 0.1 and x.KillSignal == signal.SIGINT and x.UMask == 0o077
    assert x.StandardError == "journal"
    assert x.CapabilityBoundingSet is not None and "CAP_NET_RAW" in x.CapabilityBoundingSet
    assert "CAP_SYS_ADMIN" not in x.CapabilityBoundingSet
    assert x.AmbientCapabilities == ("CAP_NET_BIND_SERVICE",)
    assert x.PIDFile == "/run/web.pid" and x.RuntimeDirectoryPreserve == "yes"


def test_implied_oneshot_without_execstart(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = units_dir({"cleanup.service": "[Service]\nExecStop=/bin/true\n"})
    units, _ = load_ok(d)
    assert units.services["cleanup.service"].Service.Type == "oneshot"


@pytest.mark.parametrize(
    "extra, single",
    [
        ("", True),
        ("Type=oneshot\nExecStart=/bin/other\n", False),
        ("ExecCondition=/bin/true\n", False),
        ("ExecStartPre=/bin/true\n", False),
        ("ExecStartPost=/bin/true\n", False),
        ("ExecStop=/bin/true\n", False),
        ("ExecStopPost=/bin/true\n", False),
        ("ExecReload=/bin/true\n", False),
        ("ExecStart=\nExecStop=/bin/true\n", False),  # no ExecStart= left: oneshot
        ("Type=oneshot\nExecStart=\nExecStart=/bin/a ; /bin/b\n", False),  # one line, two
    ],
)
def test_single_exec(units_dir, extra: str, single: bool) -> None:  # type: ignore[no-untyped-def]
    d = units_dir({"s.service": SVC + extra})
    units, _ = load_ok(d)
    svc = units.services["s.service"].Service
    assert svc.single_exec is single
    # A property, not a field: the dump and the model's equality do not see it.
    assert "single_exec" not in svc.model_dump()
    assert svc == type(svc).model_validate(svc.model_dump())


INI_PAIR = {
    "web.socket": """\
[Unit]
Description=Web socket for %N
Documentation=man:web(8) https://example.org/web
ConditionPathExists=!/etc/web/disabled
ConditionVirtualization=container

[Socket]
ListenStream=127.0.0.1:8080
ListenDatagram=/run/web/%p.sock
SocketUser=www-data
SocketMode=0660
PassCredentials=yes
ReceiveBuffer=8M
TriggerLimitBurst=10
ExecStartPre=-/bin/mkdir -p /run/web
X-Activator-UCSPI=yes

[Install]
WantedBy=sockets.target
""",
    "web.service": """\
[Unit]
Description=Web
Requires=web.socket
After=network.target web.socket

[Service]
Type=notify
ExecStart=/usr/sbin/web --listen-fds "with space" $OPTS
ExecReload=/bin/kill -HUP $MAINPID
Environment="OPTS=-v -x" LANG=C.UTF-8
EnvironmentFile=-/etc/default/web
User=www-data
Group=www-data
LimitNOFILE=65536
Restart=on-failure
RestartSec=2s
TimeoutStopSec=1min 30s
KillMode=mixed
NonBlocking=true
""",
}

TOML_PAIR = {
    "web.socket.toml": """\
[Unit]
Description = "Web socket for %N"
Documentation = ["man:web(8)", "https://example.org/web"]
ConditionPathExists = "!/etc/web/disabled"
ConditionVirtualization = "container"

[Socket]
ListenStream = "127.0.0.1:8080"
ListenDatagram = ["/run/web/%p.sock"]
SocketUser = "www-data"
SocketMode = "0660"
PassCredentials = true
ReceiveBuffer = "8M"
TriggerLimitBurst = 10
ExecStartPre = "-/bin/mkdir -p /run/web"
X-Activator-UCSPI = "yes"

[Install]
WantedBy = "sockets.target"
""",
    "web.service.toml": """\
[Unit]
Description = "Web"
Requires = "web.socket"
After = ["network.target", "web.socket"]

[Service]
Type = "notify"
ExecStart = '/usr/sbin/web --listen-fds "with space" $OPTS'
ExecReload = ["/bin/kill -HUP $MAINPID"]
Environment = { OPTS = "-v -x", LANG = "C.UTF-8" }
EnvironmentFile = "-/etc/default/web"
User = "www-data"
Group = "www-data"
LimitNOFILE = 65536
Restart = "on-failure"
RestartSec = 2
TimeoutStopSec = 90
KillMode = "mixed"
NonBlocking = "true"
""",
}


def test_ini_and_toml_give_equal_models(tmp_path: Path) -> None:
    from .conftest import write_units

    ini, _ = load_ok(write_units(tmp_path / "ini", INI_PAIR))
    toml, _ = load_ok(write_units(tmp_path / "toml", TOML_PAIR))
    for name in ("web.socket", "web.service"):
        assert model(ini.get(name)) == model(toml.get(name))
    s = ini.sockets["web.socket"]
    assert s.Socket.UCSPI is True
    assert s.Socket.Listen[1] == UnixListen(
        type=SocketType.DATAGRAM, path="/run/web/web.sock", text="/run/web/web.sock"
    )
    assert ini.services["web.service"].Service.ExecStart[0].argv == (
        "/usr/sbin/web", "--listen-fds", "with space", "$OPTS",
    )  # fmt: skip


def test_toml_environment_forms_agree(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = units_dir(
        {
            "a.service.toml": '[Service]\nExecStart = "/bin/true"\nEnvironment = \'"A=1 2" B=3\'\n',
            "b.service.toml": '[Service]\nExecStart = "/bin/true"\nEnvironment = ["\\"A=1 2\\"", "B=3"]\n',  # noqa: E501
            "c.service.toml": '[Service]\nExecStart = "/bin/true"\n[Service.Environment]\nA = "1 2"\nB = "3"\n',  # noqa: E501
        }
    )
    units, _ = load_ok(d)
    envs = [units.services[n].Service.Environment for n in ("a.service", "b.service", "c.service")]
    assert envs[0] == envs[1] == envs[2] == {"A": "1 2", "B": "3"}


def test_toml_several_exec_lines_and_reset(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = units_dir(
        {
            "job.service.toml": '[Service]\nType = "oneshot"\nExecStart = ["/bin/a", "", "/bin/b", "/bin/c x ; /bin/d"]\n'  # noqa: E501
        }
    )
    units, _ = load_ok(d)
    assert [c.path for c in units.services["job.service"].Service.ExecStart] == [
        "/bin/b",
        "/bin/c",
        "/bin/d",
    ]


def test_toml_listen_order_across_kinds(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = units_dir(
        {
            "j.socket.toml": (
                '[Socket]\nListen = [{ListenDatagram = "/run/j/socket"}, {ListenStream = "/run/j/stdout"},'  # noqa: E501
                " {ListenDatagram = 514}]\n"
            ),
            "j.service": SVC,
        }
    )
    units, _ = load_ok(d)
    assert [x.text for x in units.sockets["j.socket"].Socket.Listen] == [
        "/run/j/socket",
        "/run/j/stdout",
        "514",
    ]


def test_dropins_ini_and_toml_in_name_order(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = units_dir(
        {
            "web.service": "[Service]\nExecStart=/bin/web\nUser=nobody\nEnvironment=A=1\n",
            "web.service.d/20-user.conf": "[Service]\nUser=www-data\n",
            "web.service.d/10-env.conf.toml": '[Service]\nEnvironment = { B = "2" }\n',
            "web.service.d/30-reset.conf": "[Service]\nExecStart=\nExecStart=/bin/web2\n",
            "web.service.d/README": "not a drop-in",
            "service.d/05-all.conf": "[Service]\nNice=5\n",
        }
    )
    units, _ = load_ok(d)
    svc = units.services["web.service"]
    assert svc.Service.User == "www-data"
    assert svc.Service.Environment == {"A": "1", "B": "2"}
    assert [c.path for c in svc.Service.ExecStart] == ["/bin/web2"]
    assert svc.Service.Nice == 5  # top-level service.d/ applies to every service
    assert [os.path.basename(p) for p in svc.dropins] == [
        "05-all.conf", "10-env.conf.toml", "20-user.conf", "30-reset.conf",
    ]  # fmt: skip


def test_dropin_problem_names_the_dropin(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = units_dir({"web.service": SVC, "web.service.d/bad.conf": "[Service]\n\nNice=99\n"})
    _, problems = load_units([d])
    (p,) = problems
    assert p.path.endswith("web.service.d/bad.conf") and p.where == 3 and p.directive == "Nice"


def test_template_and_dashed_dropins(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = units_dir(
        {
            "echo-tcp@.service": "[Service]\nExecStart=/bin/cat\nStandardInput=socket\n",
            "echo-.service.d/10-user.conf": "[Service]\nUser=nobody\n",
            "echo-tcp@.service.d/20-nice.conf": "[Service]\nNice=3\n",
            "echo-tcp@special.service.d/30-env.conf": "[Service]\nEnvironment=SPECIAL=1\n",
        }
    )
    units, _ = load_ok(d)
    t = units.services["echo-tcp@.service"]
    assert (t.Service.User, t.Service.Nice, t.Service.Environment) == ("nobody", 3, {})
    plain = units.instantiate("echo-tcp@.service", "0-1.2.3.4:7-5.6.7.8:9")
    assert (
        plain.Service.Environment == {} and plain.name == "echo-tcp@0-1.2.3.4:7-5.6.7.8:9.service"
    )
    special = units.get("echo-tcp@special.service")
    assert special is not None and special.Service.Environment == {"SPECIAL": "1"}
    assert (special.Service.User, special.Service.Nice) == ("nobody", 3)


def test_specifiers(units_dir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d = units_dir(
        {
            "foo-bar@.service": (
                "[Unit]\nDescription=%n|%N|%p|%P|%i|%I|%j|%J|%f\n"
                "[Service]\nExecStart=/bin/echo %t %S %C %L %E %T %V %h %u %U %g %G %s %y %Y %d %%i\n"  # noqa: E501
                "Environment=HOST=%H SHORT=%l KERNEL=%v ARCH=%a\n"
            ),
        }
    )
    units, _ = load_ok(d)
    u = units.get("foo-bar@a-b\\x2dc.service")
    assert u is not None
    assert u.Unit.Description == (
        "foo-bar@a-b\\x2dc.service|foo-bar@a-b\\x2dc|foo-bar|foo/bar|a-b\\x2dc|a/b-c|bar|bar|/a/b-c"
    )
    frag = str(d.resolve() / "foo-bar@.service")
    assert u.Service.ExecStart[0].argv[1:] == (
        "/run", "/var/lib", "/var/cache", "/var/log", "/etc", os.environ.get("TMPDIR") or "/tmp",
        os.environ.get("TMPDIR") or "/var/tmp", "/root", "root", "0", "root", "0", "/bin/sh",
        frag, str(d.resolve()), "/run/credentials/foo-bar@a-b\\x2dc.service", "%i",
    )  # fmt: skip
    import platform
    import socket

    env = u.Service.Environment
    assert (
        env["HOST"] == socket.gethostname() and env["SHORT"] == socket.gethostname().split(".")[0]
    )
    assert env["KERNEL"] == platform.release() and env["ARCH"]


def test_specifiers_in_plain_unit_and_percent_escape(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = units_dir(
        {
            "web.socket": "[Socket]\nListenStream=/run/%p/%N.sock\nListenStream=[::1]:80%%1\n",
            "web.service": "[Service]\nExecStart=/bin/printf %%s %i.\n",
        }
    )
    units, _ = load_ok(d)
    assert units.sockets["web.socket"].Socket.Listen[0].path == "/run/web/web.sock"  # type: ignore[union-attr]
    assert units.sockets["web.socket"].Socket.Listen[1].scope == "1"  # type: ignore[union-attr]
    assert units.services["web.service"].Service.ExecStart[0].argv == ("/bin/printf", "%s", ".")


def test_aliases_from_install_and_symlinks(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = units_dir(
        {
            # syslog.socket activates syslog.service, which exists only as rsyslog's alias
            "syslog.socket": "[Socket]\nListenDatagram=/run/systemd/journal/syslog\n",
            "rsyslog.service": "[Service]\nExecStart=/usr/sbin/rsyslogd -n\n[Install]\nAlias=syslog.service\n",  # noqa: E501
            "sshd.service": "[Service]\nExecStart=/usr/sbin/sshd -D\n",
        }
    )
    os.symlink("sshd.service", d / "ssh.service")
    os.symlink("/dev/null", d / "masked.service")
    units, problems = load_ok(d)
    assert units.aliases == {"syslog.service": "rsyslog.service", "ssh.service": "sshd.service"}
    assert units.service_of("syslog.socket") == "rsyslog.service"
    assert units.sockets_of("syslog.service") == ("syslog.socket",)
    assert units.get("ssh.service") is units.services["sshd.service"]
    assert "masked.service" not in units.services
    assert [p.message for p in problems] == ["masked (symlink to /dev/null): not loaded"]


def test_first_path_wins_and_duplicate_syntax_refused(tmp_path: Path) -> None:
    from .conftest import write_units

    a = write_units(tmp_path / "a", {"web.service": "[Service]\nExecStart=/bin/a\n"})
    b = write_units(tmp_path / "b", {"web.service": "[Service]\nExecStart=/bin/b\n"})
    units, problems = load_units([a, b])
    assert not problems and units.services["web.service"].Service.ExecStart[0].path == "/bin/a"
    c = write_units(
        tmp_path / "c",
        {
            "web.service": "[Service]\nExecStart=/bin/a\n",
            "web.service.toml": '[Service]\nExecStart = "/bin/b"\n',
        },
    )
    _, problems = load_units([c])
    assert [p.message for p in problems] == [
        f"web.service is defined twice: {c}/web.service and {c}/web.service.toml"
    ]


def test_single_files_and_missing_paths(tmp_path: Path) -> None:
    from .conftest import write_units

    d = write_units(
        tmp_path, {"web.service": SVC, "web.service.d/x.conf": "[Service]\nNice=1\n", "x.timer": ""}
    )
    units, problems = load_units([d / "web.service", tmp_path / "nope", d / "x.timer"])
    assert units.services["web.service"].Service.Nice == 1  # drop-ins beside a single file apply
    assert [(p.path, p.message) for p in problems] == [
        (str(tmp_path / "nope"), "no such file or directory"),
        (str(d / "x.timer"), "not a .socket or .service unit file"),
    ]


def test_unknown_x_sections_and_keys_are_ignored(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = units_dir(
        {
            "web.service": "[Service]\nExecStart=/bin/true\nX-Vendor-Thing=1\n[X-Vendor]\nAnything=goes\n",  # noqa: E501
            "web2.service.toml": '[Service]\nExecStart = "/bin/true"\n[X-Vendor]\nx = 1\n',
        }
    )
    _, problems = load_ok(d, strict=True)
    assert problems == []


def test_ignored_directive_warns_once_per_unit(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = units_dir(
        {"web.service": SVC + "ProtectSystem=full\nProtectSystem=strict\nPrivateTmp=yes\n"}
    )
    units, problems = load_ok(d)
    assert [(p.where, p.directive, p.severity) for p in problems] == [(3, None, "warning")]
    assert "web.service" in units.services
    assert str(problems[0]) == (
        f"{d}/web.service:3: warning: ignored, not carried out by activator: "
        "ProtectSystem=, PrivateTmp= (sandboxing)"
    )
    units, problems = load_units([d], strict=True)
    assert "web.service" not in units.services and {p.severity for p in problems} == {"error"}


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["CAP_A"], {"CAP_A"}),
        (["CAP_A", "CAP_B"], {"CAP_A", "CAP_B"}),  # later lines add
        (["CAP_A CAP_B", "~CAP_B"], {"CAP_A"}),  # "~" on a later line removes
        (["~CAP_A"], "all-but-A"),  # first line replaces the initial "all"
        (["CAP_A", ""], set()),  # the empty assignment is the empty set
        (["CAP_A", "~"], "all"),  # "~" alone is every capability
        (["~", "CAP_A"], {"CAP_A"}),  # back at the initial value: replaced
    ],
)
def test_capability_bounding_set_semantics(units_dir, lines, expected) -> None:  # type: ignore[no-untyped-def]
    from activator.units.directives import all_caps

    body = "".join(
        f"CapabilityBoundingSet={x.replace('CAP_A', 'CAP_CHOWN').replace('CAP_B', 'CAP_KILL')}\n"
        for x in lines
    )
    d = units_dir({"web.service": SVC + body})
    units, _ = load_ok(d)
    got = set(units.services["web.service"].Service.CapabilityBoundingSet or ())
    if expected == "all":
        expected = set(all_caps())
    elif expected == "all-but-A":
        expected = set(all_caps()) - {"CAP_CHOWN"}
    else:
        expected = {x.replace("CAP_A", "CAP_CHOWN").replace("CAP_B", "CAP_KILL") for x in expected}
    assert got == expected

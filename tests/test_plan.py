"""Planning a process is pure: argv, environment, credentials and stdio without processes."""

from __future__ import annotations

import os

import pytest

from activator.core.errors import StartError
from activator.exec import plan
from activator.units.model import EnvironmentFile, ExecCommand, Rlimit, ServiceSection


def cmd(*argv: str, **kw) -> ExecCommand:
    return ExecCommand(path=argv[0], argv=argv, **kw)


def test_expand_argv_whole_word_splits_braced_does_not():
    """§6c 29: Environment="A=1 2" B=3, ExecStart=/bin/echo $A ${A} $B → 1 2 "1 2" 3."""
    env = {"A": "1 2", "B": "3"}
    assert plan.expand_argv(cmd("/bin/echo", "$A", "${A}", "$B"), env) == [
        "/bin/echo",
        "1",
        "2",
        "1 2",
        "3",
    ]


def test_expand_argv_dollars_unknown_and_inside_words():
    env = {"X": "x"}
    c = cmd("/bin/echo", "$$", "a$$b", "${X}y", "pre$X", "$NOPE", "${NOPE}", "x${X}${X}")
    assert plan.expand_argv(c, env) == ["/bin/echo", "$", "a$b", "xy", "pre$X", "", "xxx"]


def test_expand_argv_colon_prefix_turns_expansion_off():
    c = cmd("/bin/echo", "$A", "${A}", no_env_expand=True)
    assert plan.expand_argv(c, {"A": "1"}) == ["/bin/echo", "$A", "${A}"]


def test_expand_argv_quoted_value_splits_like_a_shell():
    assert plan.expand_argv(cmd("/bin/x", "$A"), {"A": "'a b' c"}) == ["/bin/x", "a b", "c"]


def test_environment_order_and_no_leak():
    ctx = ServiceSection(
        ExecStart=(cmd("/bin/true"),),
        Environment={"A": "env", "PATH": "/custom"},
        PassEnvironment=("PASSED", "ABSENT"),
        UnsetEnvironment=("GONE", "A=not-this-value", "INVOCATION_ID"),
    )
    sup = {"PASSED": "p", "SECRET": "s", "LANG": "C.UTF-8", "GONE": "x"}
    env = plan.build_environment(ctx, None, {"LISTEN_FDS": "1", "INVOCATION_ID": "i"}, sup)
    assert env == {
        "PATH": "/custom",
        "LANG": "C.UTF-8",
        "LISTEN_FDS": "1",
        "PASSED": "p",
        "A": "env",
    }


def test_environment_user_variables():
    creds = plan.resolve("nobody", None)
    ctx = ServiceSection(ExecStart=(cmd("/bin/true"),), User="nobody")
    env = plan.build_environment(ctx, creds, {}, {})
    assert env["USER"] == env["LOGNAME"] == "nobody"
    assert env["HOME"] == creds.home and env["SHELL"] == creds.shell


def test_environment_file_optional_and_required(tmp_path):
    """§6c 30: EnvironmentFile=-/missing is ignored; without '-' the start fails."""
    f = tmp_path / "env"
    f.write_text("# comment\nA=from-file\nB='quoted value'\n")
    ctx = ServiceSection(
        ExecStart=(cmd("/bin/true"),),
        Environment={"A": "env"},
        EnvironmentFile=(
            EnvironmentFile(path=str(f)),
            EnvironmentFile(path="/missing/x", optional=True),
        ),
    )
    env = plan.build_environment(ctx, None, {}, {})
    assert env["A"] == "from-file" and env["B"] == "quoted value"
    bad = ServiceSection(
        ExecStart=(cmd("/bin/true"),), EnvironmentFile=(EnvironmentFile(path="/missing/x"),)
    )
    with pytest.raises(StartError, match="/missing/x"):
        plan.build_environment(bad, None, {}, {})


def test_prepare_user_workdir_limits():
    ctx = ServiceSection(
        ExecStart=(cmd("/bin/true"),),
        User="nobody",
        WorkingDirectory="~",
        LimitNOFILE=Rlimit(soft=100, hard=200),
        LimitCORE=Rlimit(soft=None, hard=None),
    )
    p = plan.prepare(ctx)
    assert p.creds.uid == 65534 and p.creds.groups == (65534,)
    assert p.cwd == os.fsencode(p.creds.home)
    import resource

    assert (resource.RLIMIT_NOFILE, 100, 200) in p.rlimits
    assert (resource.RLIMIT_CORE, resource.RLIM_INFINITY, resource.RLIM_INFINITY) in p.rlimits
    opt = plan.prepare(ServiceSection(ExecStart=(cmd("/bin/true"),), WorkingDirectory="-/nope"))
    assert opt.cwd == b"/nope" and opt.cwd_optional
    assert plan.prepare(ServiceSection(ExecStart=(cmd("/bin/true"),))).cwd == b"/"


def test_unknown_user_is_a_start_error():
    with pytest.raises(StartError, match="unknown user 'no-such-user-xyz'"):
        plan.prepare(ServiceSection(ExecStart=(cmd("/bin/true"),), User="no-such-user-xyz"))


def test_plus_and_bang_lines_keep_root():
    ctx = ServiceSection(ExecStart=(cmd("/bin/true"),), User="nobody", NoNewPrivileges=True)
    p = plan.prepare(ctx)
    normal = plan.make_spec(ctx, p, cmd("/bin/true"), {})
    plus = plan.make_spec(ctx, p, cmd("/bin/true", privileged=True), {})
    bang = plan.make_spec(ctx, p, cmd("/bin/true", no_setuid=True), {})
    assert normal.uid == 65534 and normal.no_new_privs
    assert plus.uid == -1 and not plus.no_new_privs
    assert bang.uid == -1


def test_bare_program_name_is_searched_in_systemds_path():
    spec = plan.make_spec(
        ServiceSection(ExecStart=(cmd("true"),)),
        plan.prepare(ServiceSection()),
        ExecCommand(path="true", argv=("true",)),
        {},
    )
    assert spec.path in (b"/usr/bin/true", b"/bin/true")
    with pytest.raises(StartError, match="unable to find program"):
        plan.find_program("no-such-program-xyz")


def test_at_prefix_sets_argv0():
    """§6c 28: @/bin/x name a → argv[0] is name."""
    c = ExecCommand(path="/bin/echo", argv=("name", "a"))
    spec = plan.make_spec(ServiceSection(ExecStart=(c,)), plan.prepare(ServiceSection()), c, {})
    assert spec.path == b"/bin/echo" and list(spec.argv) == [b"name", b"a"]


def test_stdio_socket_inherit_and_files(tmp_path):
    sock_fd = 99
    ctx = ServiceSection(ExecStart=(cmd("/bin/true"),), StandardInput="socket")
    stdio, opened = plan.open_stdio(ctx, sock_fd, {})
    assert stdio == (99, 99, 99) and opened == []  # stdout and stderr inherit the socket
    ctx = ServiceSection(
        ExecStart=(cmd("/bin/true"),), StandardInput="socket", StandardError="journal"
    )
    assert plan.open_stdio(ctx, sock_fd, {})[0] == (99, 99, 2)
    out = tmp_path / "out.log"
    ctx = ServiceSection(
        ExecStart=(cmd("/bin/true"),), StandardOutput=f"append:{out}", StandardError="null"
    )
    stdio, opened = plan.open_stdio(ctx, None, {})
    try:
        assert stdio[0] == -1 and stdio[2] == -1 and stdio[1] == opened[0]
        assert os.get_blocking(stdio[1]) and out.exists()
    finally:
        for fd in opened:
            os.close(fd)
    default = ServiceSection(ExecStart=(cmd("/bin/true"),))
    # journal without a capture: the container's console (stderr on stderr)
    assert plan.open_stdio(default, None, {})[0] == (-1, 1, 2)
    # with the capture's streams: stdout and stderr each to its own (issue 13)
    assert plan.journal_streams(default) == (True, True)
    assert plan.open_stdio(default, None, {}, (40, 41))[0] == (-1, 40, 41)
    inetd = ServiceSection(ExecStart=(cmd("/bin/true"),), StandardInput="socket")
    assert plan.journal_streams(inetd) == (False, False)  # both are the connection
    assert plan.open_stdio(inetd, 99, {}, (40, 41))[0] == (99, 99, 99)
    mixed = ServiceSection(
        ExecStart=(cmd("/bin/true"),), StandardOutput="null", StandardError="journal"
    )
    assert plan.journal_streams(mixed) == (False, True)
    assert plan.open_stdio(mixed, None, {}, (-1, 41))[0] == (-1, -1, 41)
    console = ServiceSection(ExecStart=(cmd("/bin/true"),), StandardOutput="tty")
    assert plan.journal_streams(console) == (False, False)
    assert plan.open_stdio(console, None, {}, (40, 41))[0] == (-1, 1, 1)  # tty: the console
    with pytest.raises(StartError, match="got no socket"):
        plan.open_stdio(ServiceSection(StandardInput="socket"), None, {})


def test_prepared_is_per_section_not_per_template_name():
    """Instances sharing the template's [Service] resolve once; one with its own (User=%i) not."""
    from activator.core.log import EventLog
    from activator.manager.manager import Manager
    from activator.units.model import ServiceUnit

    d = Manager([], control_path=None, log=EventLog())
    shared = ServiceSection(ExecStart=(cmd("/bin/true"),), User="nobody")
    a = ServiceUnit(name="t@a.service", path="", Service=shared)
    b = ServiceUnit(name="t@b.service", path="", Service=shared)
    own = ServiceUnit(
        name="t@root.service",
        path="",
        Service=ServiceSection(ExecStart=(cmd("/bin/true"),), User="root"),
    )
    assert d.prepared(a) is d.prepared(b)
    assert d.prepared(a).creds.uid == 65534 and d.prepared(own).creds.uid == 0

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


def test_an_environment_file_that_is_not_text_fails_the_start(tmp_path):
    """A non-UTF-8 EnvironmentFile= is a clean StartError naming the file, never a crash
    of the state machine (found by the fuzzing of issue 15)."""
    bad = tmp_path / "env"
    bad.write_bytes(b"A=\xff\xfe\n")
    ctx = ServiceSection(
        ExecStart=(cmd("/bin/true"),), EnvironmentFile=(EnvironmentFile(path=str(bad)),)
    )
    with pytest.raises(StartError, match=f"unable to read environment file {bad}: .*UTF-8"):
        plan.build_environment(ctx, None, {})


# ---------------------------------------------------------------- exec prefixes → credentials
#
# systemd.service(5), "Command lines": "-", "@" and ":" change nothing about who runs a
# line; "+" drops nothing at all (no User=/Group=, no capability or NoNewPrivileges=
# restriction); "!" keeps only root's user and groups (NoNewPrivileges= and
# CapabilityBoundingSet= still apply); "!!" has no effect where the kernel has ambient
# capabilities (every kernel activator runs on). Any order, any combination of the first
# three with one of the last three.

NOBODY_SECTION = dict(
    User="nobody",
    Group="nogroup",
    SupplementaryGroups=("daemon",),
    NoNewPrivileges=True,
    CapabilityBoundingSet=("CAP_NET_BIND_SERVICE",),
    AmbientCapabilities=("CAP_NET_BIND_SERVICE",),
)
NEUTRAL = ["", "-", "@", ":", "-@", "@-", ":-", "-:@", "@:-"]
CREDENTIALS = ["", "+", "!", "!!"]


def _prefixes():
    for n in NEUTRAL:
        for c in CREDENTIALS:
            yield n + c
            if n and c:
                yield c + n  # the credential prefix first: any order is allowed


@pytest.mark.parametrize("prefix", sorted(set(_prefixes())))
def test_every_prefix_combination_gets_its_credentials(prefix):
    """Each prefix combination, parsed from text, planned for a User=nobody unit."""
    import grp

    from activator.units.values import parse_exec

    argv = "@/bin/sh name -c true" if "@" in prefix else "/bin/sh -c true"
    (c,) = parse_exec(prefix.replace("@", "") + argv)
    assert c.ignore_failure == ("-" in prefix)
    assert c.no_env_expand == (":" in prefix)
    assert (c.argv[0] == "name") == ("@" in prefix)
    ctx = ServiceSection(ExecStart=(c,), **NOBODY_SECTION)
    p = plan.prepare(ctx)
    spec = plan.make_spec(ctx, p, c, {})
    daemon = grp.getgrnam("daemon").gr_gid
    bind = 10  # CAP_NET_BIND_SERVICE
    bang = "!" in prefix and "!!" not in prefix
    if "+" in prefix:
        assert (spec.uid, spec.gid, spec.groups) == (-1, -1, None)
        assert not spec.no_new_privs
        assert spec.capability_bounding is None and spec.ambient_capabilities == ()
    elif bang:
        assert (spec.uid, spec.gid, spec.groups) == (-1, -1, None)
        assert spec.no_new_privs and spec.capability_bounding == (bind,)
    else:  # "", "-", "@", ":", "!!" and their combinations drop to the unit's user
        assert (spec.uid, spec.gid) == (65534, 65534)
        assert sorted(spec.groups) == sorted({65534, daemon})
        assert spec.no_new_privs and spec.capability_bounding == (bind,)
        assert spec.ambient_capabilities == (bind,)


def test_prefixes_without_user_keep_root_and_nothing_else():
    """No User=: every line runs as the supervisor, and no prefix invents a drop."""
    for prefix in ("", "-", "@", ":", "!", "!!"):
        (c,) = __import__("activator.units.values", fromlist=["x"]).parse_exec(
            prefix.replace("@", "") + ("@/bin/sh name" if "@" in prefix else "/bin/sh")
        )
        ctx = ServiceSection(ExecStart=(c,))
        spec = plan.make_spec(ctx, plan.prepare(ctx), c, {})
        assert (spec.uid, spec.gid, spec.groups) == (-1, -1, None), prefix


# ---------------------------------------------------------------- edges the mutants found


def test_capabilities_by_any_spelling_and_unknown_ones_named():
    assert plan.cap_numbers(("net_bind_service", "CAP_NET_ADMIN", "Cap_Kill")) == [10, 12, 5]
    with pytest.raises(StartError, match=r"^unknown capability 'cap_frobnicate'$"):
        plan.cap_numbers(("cap_frobnicate",))


def test_absolute_program_is_taken_as_is_and_a_missing_name_is_reported_exactly():
    # exec, not planning, fails for a missing absolute path (with systemd's 203)
    assert plan.find_program("/no/such/dir/prog") == "/no/such/dir/prog"
    with pytest.raises(StartError) as e:
        plan.find_program("no-such-program-xyz")
    assert str(e.value) == f"unable to find program 'no-such-program-xyz' in {plan.DEFAULT_PATH}"


@pytest.mark.parametrize(
    ("word", "env", "out"),
    [
        ("$", {}, ["$"]),  # a lone dollar is a word like any other
        ("a$", {}, ["a$"]),  # and so is one at the end of a word
        ("$XY", {"XY": "a b"}, ["a", "b"]),  # a name that starts with X
        ("$_A", {"_A": "u"}, ["u"]),  # names may start with "_" …
        ("$A_B", {"A_B": "v"}, ["v"]),  # … and contain it
        ("$1A", {"1A": "x"}, ["$1A"]),  # not a name: left alone
        ("$-x", {}, ["$-x"]),
        ("a{B}$$", {"B": "bee"}, ["a{B}$"]),  # braces without a dollar are text
        ("x${}y", {}, ["xy"]),  # an empty name expands to nothing
        ("a${B c", {"B": "no"}, ["a${B c"]),  # unclosed: the rest as written
        ("${A}${B}", {"A": "1", "B": "2"}, ["12"]),
    ],
)
def test_expand_argv_edges(word, env, out):
    assert plan.expand_argv(cmd("/bin/echo", word), env)[1:] == out


def test_group_alone_sets_no_user_variables():
    """USER/LOGNAME/HOME/SHELL come with User= only, not with Group= alone (systemd too)."""
    ctx = ServiceSection(ExecStart=(cmd("/bin/true"),), Group="nogroup")
    creds = plan.resolve(None, "nogroup")
    assert creds is not None and creds.gid == 65534
    env = plan.build_environment(ctx, creds, {}, {})
    assert not {"USER", "LOGNAME", "HOME", "SHELL"} & set(env)


def test_environment_file_errors_are_named_and_optional_ones_ignored(tmp_path):
    missing = tmp_path / "missing"
    ctx = ServiceSection(EnvironmentFile=(EnvironmentFile(path=str(missing)),))
    with pytest.raises(StartError) as e:
        plan.build_environment(ctx, None, {}, {})
    assert str(e.value) == f"unable to read environment file {missing}: No such file or directory"
    # another error (a directory): the same for a required file, nothing for an optional one
    ctx = ServiceSection(EnvironmentFile=(EnvironmentFile(path=str(tmp_path)),))
    with pytest.raises(StartError) as e:
        plan.build_environment(ctx, None, {}, {})
    assert str(e.value) == (
        f"unable to read environment file {tmp_path}: not a regular file (a directory)"
    )
    ctx = ServiceSection(EnvironmentFile=(EnvironmentFile(path=str(tmp_path), optional=True),))
    assert plan.build_environment(ctx, None, {"A": "1"}, {}) == {
        "PATH": plan.DEFAULT_PATH,
        "A": "1",
    }


def test_unset_environment_with_a_value_removes_only_that_value():
    ctx = ServiceSection(
        Environment={"A": "env", "B": "keep"}, UnsetEnvironment=("A=env", "B=other")
    )
    env = plan.build_environment(ctx, None, {}, {})
    assert "A" not in env and env["B"] == "keep"


def test_working_directory_required_unless_dash_and_root_home_without_user():
    p = plan.prepare(ServiceSection(WorkingDirectory="/srv"))
    assert (p.cwd, p.cwd_optional) == (b"/srv", False)
    assert plan.prepare(ServiceSection(WorkingDirectory="~")).cwd == b"/root"


def test_spec_carries_stdio_in_place_and_its_fixed_settings():
    ctx = ServiceSection(ExecStart=(cmd("/bin/true"),))
    spec = plan.make_spec(ctx, plan.prepare(ctx), cmd("/bin/true"), {}, stdio=(5, 6, 7))
    assert (spec.stdin, spec.stdout, spec.stderr) == (5, 6, 7)
    assert spec.new_session and spec.quiet  # its own session; the daemon logs failures


# ---------------------------------------------------------------- pass_fds: who gets which fds


def test_pass_fds_accept_yes_main_process_gets_the_connection_as_fd3():
    ctx = ServiceSection(ExecStart=(cmd("/bin/x"),))
    h = plan.Handover(connection=9)
    got = plan.pass_fds(ctx, h, (), main=True)
    assert got == plan.PassedFds(
        [9], {"LISTEN_FDS": "1", "LISTEN_FDNAMES": "connection"}, 9, {}, True
    )
    # a control process (ExecStartPre= …) gets no fds, but stdio=socket still finds it
    assert plan.pass_fds(ctx, h, (), main=False) == plan.PassedFds([], {}, 9, {}, False)


def test_pass_fds_accept_yes_inetd_style_gets_no_listen_variables():
    ctx = ServiceSection(ExecStart=(cmd("/bin/x"),), StandardInput="socket")
    got = plan.pass_fds(ctx, plan.Handover(connection=9), (), main=True)
    assert got == plan.PassedFds([], {}, 9, {}, False)


def test_pass_fds_accept_no_main_gets_sockets_then_the_store_in_order():
    ctx = ServiceSection(ExecStart=(cmd("/bin/x"),))
    h = plan.Handover(fds=[4, 5, 6], names=["a.socket", "web", "web"])
    got = plan.pass_fds(ctx, h, [(20, "conn"), (21, "stored")], main=True)
    assert got.fds == [4, 5, 6, 20, 21]
    assert got.env == {"LISTEN_FDS": "5", "LISTEN_FDNAMES": "a.socket:web:web:conn:stored"}
    assert got.listen_pid and got.socket is None
    # fd:NAME: the first fd of that name, as systemd's exec_context_named_iofds() takes it
    assert got.named == {"a.socket": 4, "web": 5}
    control = plan.pass_fds(ctx, h, [(20, "conn")], main=False)
    assert (control.fds, control.env, control.listen_pid) == ([], {}, False)
    assert control.named == got.named


def test_pass_fds_accept_no_nothing_to_pass_sets_nothing():
    ctx = ServiceSection(ExecStart=(cmd("/bin/x"),))
    assert plan.pass_fds(ctx, plan.Handover(), (), main=True) == plan.PassedFds(
        [], {}, None, {}, False
    )
    assert plan.pass_fds(ctx, None, [(20, "x")], main=True) == plan.PassedFds(
        [], {}, None, {}, False
    )


def test_pass_fds_accept_no_inetd_style_needs_exactly_one_socket():
    ctx = ServiceSection(ExecStart=(cmd("/bin/x"),), StandardInput="socket")
    got = plan.pass_fds(ctx, plan.Handover(fds=[7], names=["s.socket"]), (), main=True)
    assert got == plan.PassedFds([], {}, 7, {"s.socket": 7}, False)
    with pytest.raises(StartError) as e:
        plan.pass_fds(ctx, plan.Handover(fds=[7, 8], names=["s", "s"]), (), main=True)
    assert str(e.value) == "StandardInput=socket: got more than one socket"
    with pytest.raises(StartError) as e:
        plan.pass_fds(ctx, plan.Handover(), (), main=True)
    assert str(e.value) == "StandardInput=socket: got no socket"
    # StandardOutput=socket alone is inetd style too
    out = ServiceSection(ExecStart=(cmd("/bin/x"),), StandardOutput="socket")
    got = plan.pass_fds(out, plan.Handover(fds=[7], names=["s.socket"]), (), main=True)
    assert (got.fds, got.env, got.socket) == ([], {}, 7)

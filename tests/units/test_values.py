"""systemd's value syntaxes (activator.units.values), which the runtime reuses."""

from __future__ import annotations

import math
import signal

import pytest

from activator.units.model import EnvironmentFile, ExecCommand, Rlimit
from activator.units.values import (
    BadValue,
    format_exec,
    parse_bool,
    parse_environment_assignments,
    parse_environment_file,
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
    quote_word,
    read_environment_file,
    split_command_line,
    split_words,
)


@pytest.mark.parametrize("text", ["1", "yes", "y", "true", "t", "on", "YES", "True", "On", "Y"])
def test_bool_true(text: str) -> None:
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", ["0", "no", "n", "false", "f", "off", "NO", "False", "OFF"])
def test_bool_false(text: str) -> None:
    assert parse_bool(text) is False


@pytest.mark.parametrize("text", ["", "maybe", "2", "yess", "enabled"])
def test_bool_bad(text: str) -> None:
    with pytest.raises(BadValue, match="expected a boolean"):
        parse_bool(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("1min 30s", 90.0),
        ("1min30s", 90.0),
        ("100ms", 0.1),
        ("5 s", 5.0),
        ("2h30min", 9000.0),
        ("1.5", 1.5),
        ("1.5s 500ms", 2.0),
        ("250us", 0.00025),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("3m", 180.0),  # m is minutes; M would be months
        ("1M", 2629800.0),
        ("1y", 31557600.0),
        ("10sec", 10.0),
        ("2 minutes", 120.0),
        ("infinity", math.inf),
        ("0", 0.0),
    ],
)
def test_timespan(text: str, seconds: float) -> None:
    assert parse_timespan(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5x", "-1s", "1min x", "infinite", "s"])
def test_timespan_bad(text: str) -> None:
    with pytest.raises(BadValue, match="expected a time span"):
        parse_timespan(text)


def test_timespan_default_unit_microseconds() -> None:
    assert parse_timespan("250", default_unit=1e-6) == pytest.approx(0.00025)
    assert parse_timespan("1s", default_unit=1e-6) == 1.0


@pytest.mark.parametrize(
    ("text", "n"),
    [("64K", 65536), ("1G", 1 << 30), ("8M", 8 << 20), ("100", 100), ("1.5K", 1536),
     ("1G 512M", (1 << 30) + (512 << 20)), ("2T", 2 << 40), ("10B", 10)],
)  # fmt: skip
def test_size(text: str, n: int) -> None:
    assert parse_size(text) == n


@pytest.mark.parametrize("text", ["", "8Q", "-1", "1k", "K", "1 G x"])
def test_size_bad(text: str) -> None:
    with pytest.raises(BadValue, match="expected a size"):
        parse_size(text)


def test_mode() -> None:
    assert parse_mode("0660") == 0o660
    assert parse_mode("755") == 0o755
    assert parse_mode("4755") == 0o4755
    for bad in ("0999", "u+rw", "", "077777", "0x1ff"):
        with pytest.raises(BadValue):
            parse_mode(bad)


def test_integers_follow_strtoul_base_zero() -> None:
    # systemd's safe_atou(): 0x hex and 0 octal, like the port checks of socket_address_parse
    assert parse_uint("0x50") == 80
    assert parse_uint("010") == 8
    assert parse_uint("+80") == 80
    assert parse_int("-5") == -5
    with pytest.raises(BadValue):
        parse_uint("080")
    with pytest.raises(BadValue, match="must be at least 0"):
        parse_uint("-1")
    with pytest.raises(BadValue, match="must be between -20 and 19"):
        parse_int("30", -20, 19)


def test_signal() -> None:
    assert parse_signal("SIGTERM") == signal.SIGTERM
    assert parse_signal("TERM") == signal.SIGTERM
    assert parse_signal("9") == 9
    assert parse_signal("SIGRTMIN+2") == signal.SIGRTMIN + 2
    assert parse_signal("RTMAX-1") == signal.SIGRTMAX - 1
    for bad in ("SIGFOO", "term", "0", "65", "RTMIN+99"):
        with pytest.raises(BadValue, match="expected a signal"):
            parse_signal(bad)


def test_rlimit() -> None:
    assert parse_rlimit("1024:524288", "NOFILE") == Rlimit(soft=1024, hard=524288)
    assert parse_rlimit("4096", "LimitNOFILE") == Rlimit(soft=4096, hard=4096)
    assert parse_rlimit("infinity", "NOFILE") == Rlimit(soft=None, hard=None)
    assert parse_rlimit("1024:infinity", "NOFILE") == Rlimit(soft=1024, hard=None)
    assert parse_rlimit("64M", "MEMLOCK") == Rlimit(soft=64 << 20, hard=64 << 20)
    assert parse_rlimit("1min", "CPU") == Rlimit(soft=60, hard=60)
    assert parse_rlimit("1.2", "CPU") == Rlimit(soft=2, hard=2)  # seconds, rounded up
    assert parse_rlimit("100ms", "RTTIME") == Rlimit(soft=100000, hard=100000)  # µs
    assert parse_rlimit("-5", "NICE") == Rlimit(soft=25, hard=25)  # nice level → 20 - nice
    assert parse_rlimit("+5", "NICE") == Rlimit(soft=15, hard=15)
    assert parse_rlimit("10", "NICE") == Rlimit(soft=10, hard=10)  # raw value
    for bad, which in (
        ("10:5", "NOFILE"),
        ("infinity:5", "NOFILE"),
        ("lots", "CORE"),
        ("41", "NICE"),
    ):
        with pytest.raises(BadValue):
            parse_rlimit(bad, which)


def test_exit_status() -> None:
    s = parse_exit_status("0 1 255 SIGTERM HUP NOTINSTALLED")
    assert s.codes == {0, 1, 255, 5}
    assert s.signals == {signal.SIGTERM, signal.SIGHUP}
    with pytest.raises(BadValue):
        parse_exit_status("256")
    with pytest.raises(BadValue):
        parse_exit_status("BOGUS")


def test_split_words_quoting() -> None:
    assert split_words("a \"b c\" 'd e' f\\sg") == ["a", "b c", "d e", "f g"]
    assert split_words("f\\ g", cunescape=False) == ["f g"]
    assert split_words('x"y z"w') == ["xy zw"]  # a quote may open mid-word
    assert split_words('"" a') == ["", "a"]
    assert split_words("a\\tb \\x41") == ["a\tb", "A"]
    with pytest.raises(BadValue, match="unbalanced quoting"):
        split_words('"open')
    with pytest.raises(BadValue, match="invalid escape"):
        split_words("a\\qb")


def test_split_command_line_keeps_unknown_escapes() -> None:
    # systemd's EXTRACT_CUNESCAPE_RELAX for command lines: "\d" stays as written
    assert split_command_line('grep "\\d+" a\\ b') == ["grep", "\\d+", "a\\ b"]


def test_exec_prefixes_and_argv0() -> None:
    (c,) = parse_exec("-/bin/true")
    assert c == ExecCommand(path="/bin/true", argv=("/bin/true",), ignore_failure=True)
    (c,) = parse_exec("@/bin/busybox sh -c 'exit 1'")
    assert (c.path, c.argv) == ("/bin/busybox", ("sh", "-c", "exit 1"))
    (c,) = parse_exec("+/usr/sbin/x")
    assert c.privileged and not c.no_setuid
    (c,) = parse_exec("!!/usr/sbin/x")  # no effect where the kernel has ambient capabilities
    assert c.ambient_magic and not c.no_setuid and not c.privileged
    (c,) = parse_exec(":-!/usr/sbin/x $A")
    assert c.no_env_expand and c.ignore_failure and c.no_setuid and c.argv == ("/usr/sbin/x", "$A")
    (c,) = parse_exec("cat")  # a bare name is searched in PATH at spawn time
    assert c.path == "cat"
    (c,) = parse_exec("/usr//bin/./cat")
    assert c.path == "/usr/bin/cat" and c.argv[0] == "/usr//bin/./cat"


def test_exec_several_commands_and_literal_semicolon() -> None:
    a, b = parse_exec("/bin/echo a \\; b ; /bin/echo ';' c")
    assert a.argv == ("/bin/echo", "a", ";", "b")
    assert b.argv == ("/bin/echo", ";", "c")


def test_exec_dollar_is_left_for_spawn_time() -> None:
    (c,) = parse_exec("/bin/echo $A ${B} $$")
    assert c.argv == ("/bin/echo", "$A", "${B}", "$$")


def test_exec_expands_specifiers_per_word_after_unquoting() -> None:
    (c,) = parse_exec(
        '/bin/echo "%i x" %%', expand=lambda w: w.replace("%i", "inst").replace("%%", "%")
    )
    assert c.argv == ("/bin/echo", "inst x", "%")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo/bar", "neither a valid executable name nor an absolute path"),
        ("/usr/bin/", "names a directory"),
        ("$SHELL -c x", "may not be a variable"),
        ('/bin/echo "open', "unbalanced quoting"),
        ("@/bin/x", "argv[0]"),
    ],
)
def test_exec_bad(text: str, message: str) -> None:
    with pytest.raises(BadValue, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_exec(text)


@pytest.mark.parametrize(
    "line",
    [
        "/bin/echo hello world",
        '-/bin/sh -c "echo \\"quoted\\" \\\\ back"',
        "@/bin/busybox sh -c true",
        "+/usr/bin/x ';' \\; 'a b'",
        "/bin/printf '\\t\\n'",
        ':/bin/echo $X ${Y} ""',
    ],
)
def test_format_exec_roundtrip(line: str) -> None:
    for cmd in parse_exec(line):
        assert parse_exec(format_exec(cmd)) == [cmd]


def test_quote_word_roundtrip() -> None:
    for word in [
        "plain",
        "two words",
        'q"uote',
        "back\\slash",
        "",
        ";",
        "tab\there",
        "'single'",
        "ünï",
    ]:
        assert split_words(quote_word(word)) == [word]


def test_environment_assignments() -> None:
    assert parse_environment_assignments('"A=1 2" B=3 C= D="x y"') == [
        ("A", "1 2"), ("B", "3"), ("C", ""), ("D", "x y"),
    ]  # fmt: skip
    assert parse_environment_assignments("PATH=$PATH:/x") == [("PATH", "$PATH:/x")]
    for bad in ("1A=b", "NOVALUE", "A-B=1"):
        with pytest.raises(BadValue, match="NAME=VALUE"):
            parse_environment_assignments(bad)


def test_environment_file_ref() -> None:
    assert parse_environment_file_ref("-/etc/default/x") == EnvironmentFile(
        path="/etc/default/x", optional=True
    )
    assert parse_environment_file_ref("/etc/x") == EnvironmentFile(path="/etc/x", optional=False)
    with pytest.raises(BadValue):
        parse_environment_file_ref("etc/x")


def test_environment_file_shell_like() -> None:
    text = (
        "# comment\n"
        "; also a comment\n"
        "A=1\n"
        "  B = spaced value   \n"
        'C="double \\"quoted\\" $x \\\\ \\n"\n'
        "D='single $x \\n'\n"
        "E=continued\\\n"
        "line\n"
        "F=\n"
        "export G=1\n"
        "1BAD=x\n"
        "H=a\\ b\n"
        "I='con''cat'\n"
        "J=last"
    )
    assert parse_environment_file(text) == {
        "A": "1",
        "B": "spaced value",
        "C": 'double "quoted" $x \\ \\n',
        "D": "single $x \\n",
        "E": "continuedline",
        "F": "",
        "H": "a b",
        "I": "concat",
        "J": "last",
    }


def test_read_environment_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "env"
    p.write_text("X=1\nY='two words'\n")
    assert read_environment_file(str(p)) == {"X": "1", "Y": "two words"}
    with pytest.raises(OSError):
        read_environment_file(str(tmp_path / "missing"))
    (tmp_path / "latin1").write_bytes(b"X=\xe9\n")
    with pytest.raises(BadValue, match="UTF-8"):
        read_environment_file(str(tmp_path / "latin1"))

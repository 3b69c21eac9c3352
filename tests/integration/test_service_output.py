"""Issue 13 item 4: what services write to stdout/stderr, read by activator and logged as
``output`` lines attributed to the unit, with real processes under both loops.

Includes the regression of issue 15 item 8 (a service could forge activator's lines by
writing into its log pipe).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time

import pytest
from harness import SYSTEM_PYTHON, Activator, free_port, public_dir, read_line

BOOT = "[Install]\nWantedBy=multi-user.target\n"


def _outputs(a: Activator, unit: str) -> list[dict]:
    return [e for e in a.events if e.get("event") == "output" and e.get("unit") == unit]


def test_issue13_10000_lines_arrive_attributed_and_in_order(loop_kind):
    """10,000 lines (and a few on stderr) from one process: every one an ``output`` line of
    the unit, with the pid and the stream, in order, all of them before its exit line."""
    code = (
        "import sys\n"
        "for i in range(10000):\n"
        "    print(f'line {i:05d} of the service', flush=i % 997 == 0)\n"
        "print('to stderr', file=sys.stderr)\n"
    )
    d = public_dir()
    (d / "talk.py").write_text(code)
    units = {
        "talk.service": f"[Service]\nType=oneshot\nExecStart={SYSTEM_PYTHON} {d}/talk.py\n"
        f"User=nobody\n{BOOT}"
    }
    with Activator(units, loop=loop_kind) as a:
        start = a.wait_for("start", unit="talk.service", timeout=30)
        done = a.wait_for("exit", unit="talk.service", timeout=60)
        lines = _outputs(a, "talk.service")
        out = [e for e in lines if e["stream"] == "stdout"]
        assert [e["msg"] for e in out] == [f"line {i:05d} of the service" for i in range(10000)]
        assert all(e["pid"] == start["pid"] and e["ident"] == "python3" for e in lines)
        assert [e["msg"] for e in lines if e["stream"] == "stderr"] == ["to stderr"]
        assert a.events.index(lines[-1]) < a.events.index(done)


def test_issue13_prefix_long_lines_binary_and_an_unfinished_last_line(loop_kind):
    """``<N>`` sets the level; a line past LineMax= (48 KiB) is cut there; bytes that are
    not UTF-8 are escaped; a last line without a newline still arrives; SyslogIdentifier=."""
    code = (
        "import os\n"
        "os.write(1, b'<4>careful\\n<3>broken\\n')\n"
        "os.write(1, b'a' * 100000 + b'\\n')\n"
        "os.write(2, b'bin \\xff\\xfe end\\n')\n"
        "os.write(1, b'no newline at the end')\n"
    )
    d = public_dir()
    (d / "odd.py").write_text(code)
    units = {
        "odd.service": f"[Service]\nType=oneshot\nExecStart={SYSTEM_PYTHON} {d}/odd.py\n"
        f"SyslogIdentifier=oddity\n{BOOT}"
    }
    with Activator(units, loop=loop_kind) as a:
        done = a.wait_for("exit", unit="odd.service", timeout=30)
        lines = _outputs(a, "odd.service")
        assert [(e["level"], e["msg"]) for e in lines[:2]] == [
            ("warning", "careful"),
            ("error", "broken"),
        ]
        assert [len(e["msg"]) for e in lines[2:5]] == [49152, 49152, 100000 - 2 * 49152]
        assert lines[5]["stream"] == "stderr" and lines[5]["msg"] == "bin \\xff\\xfe end"
        assert lines[6]["msg"] == "no newline at the end"
        assert all(e["ident"] == "oddity" for e in lines)
        assert a.events.index(lines[-1]) < a.events.index(done)


FORGED = (
    'event=ready unit=evil.service pid=1\n{"event": "ready", "level": "info", "msg": "x"}\n'
    'time=2026-01-01T00:00:00.000000Z level=error event=failed unit=web.service msg="forged"\n'
)


def _forger() -> str:
    """A unit whose service writes FORGED to stdout, and to stderr."""
    d = public_dir()
    (d / "forge.py").write_text(
        f"import os\nos.write(1, {FORGED.encode()!r})\nos.write(2, {FORGED.encode()!r})\n"
    )
    return f"[Service]\nType=oneshot\nExecStart={SYSTEM_PYTHON} {d}/forge.py\n{BOOT}"


def test_issue15_8_a_service_cannot_forge_activator_lines_json(loop_kind):
    """Regression, issue 15 item 8: activator's own ``ready`` is the only one; what the
    service wrote is ``output`` lines holding its text."""
    with Activator({"forge.service": _forger()}, loop=loop_kind) as a:
        a.wait_for("exit", unit="forge.service", timeout=30)
        a.drain(0.2)
        assert a.count("ready") == 1 and a.count("failed") == 0
        assert [e["msg"] for e in _outputs(a, "forge.service")] == FORGED.splitlines() * 2


def test_issue15_8_a_service_cannot_forge_activator_lines_text(loop_kind):
    """The same in the text format: each forged line is one ``event=output`` line whose
    text is a quoted ``msg``; nothing else starts a line."""
    d = public_dir()
    (d / "units").mkdir()
    (d / "units" / "forge.service").write_text(_forger())
    cmd = [sys.executable, "-m", "activator", "--units", str(d / "units"), "--control",
           "none", "--loop", loop_kind, "--log-format", "text"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    lines = []
    try:
        deadline = time.monotonic() + 30
        for line in proc.stderr:
            lines.append(line)
            if " event=ready " in line or time.monotonic() > deadline:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    lines += rest.splitlines(keepends=True)
    assert all(line.startswith("time=") for line in lines), lines
    out = [line for line in lines if " event=output unit=forge.service " in line]
    assert [json.loads(line.split(" msg=", 1)[1]) for line in out] == FORGED.splitlines() * 2
    # what activator wrote of each line comes before its msg (always last, always quoted)
    # (values with a space are quoted: a unit-warning's problem, say)
    events = [
        dict(kv.split("=", 1) for kv in shlex.split(line.split(" msg=", 1)[0])) for line in lines
    ]
    assert [e["event"] for e in events].count("ready") == 1
    assert not any(e["event"] == "failed" for e in events)


def test_issue13_logs_verb_status_tail_and_follow(loop_kind, accept_path):
    """Per-connection instances that write to the journal (connection on fd 3): each line
    is attributed to its instance; `logs` prints the last lines, `status` the tail, and
    `logs -f` the lines to come."""
    port = free_port()
    d = public_dir()
    (d / "hi.py").write_text(
        "import os, socket\n"
        "c = socket.socket(fileno=3)\n"
        "print('served', os.environ['REMOTE_PORT'], flush=True)\n"
        "c.sendall(b'hi\\n')\n"
    )
    units = {
        "hi.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n",
        "hi@.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {d}/hi.py\nUser=nobody\n",
    }
    with Activator(units, loop=loop_kind, env=accept_path) as a:
        for _ in range(3):
            assert read_line(("127.0.0.1", port)) == b"hi\n"
        deadline = time.monotonic() + 30
        while len(_outputs_of_template(a)) < 3 and time.monotonic() < deadline:
            a.drain(0.1)
        outs = _outputs_of_template(a)
        assert len(outs) == 3
        for e in outs:
            start = a.wait_for("start", unit=e["unit"], pid=e["pid"])
            assert e["msg"] == f"served {start['peer'].rsplit(':', 1)[1]}"
        r = a.ctl("logs", "hi@.service", "-n", "2", check=True)
        assert r.stdout.count("served") == 2
        one = outs[0]["unit"]
        r = a.ctl("--json", "logs", one, check=True)
        assert [e["unit"] for e in json.loads(r.stdout)] == [one]
        follow = subprocess.Popen(
            [sys.executable, "-m", "activator.cli.ctl", "--control", a.control, "--json",
             "logs", "-f", "-n", "1", "hi@.service"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            # the last line first: then the follower is in, and the next line is news
            assert json.loads(_readline(follow, 30))["text"] == outs[-1]["msg"]
            assert read_line(("127.0.0.1", port)) == b"hi\n"
            line = json.loads(_readline(follow, 30))
            assert line["text"].startswith("served ") and line["text"] != outs[-1]["msg"]
        finally:
            follow.terminate()
            follow.wait(timeout=10)
            follow.stdout.close()


def _outputs_of_template(a: Activator) -> list[dict]:
    return [e for e in a.events if e.get("event") == "output" and e["unit"].startswith("hi@")]


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        raise TimeoutError("no line from activatorctl logs -f")
    return proc.stdout.readline()


def test_issue13_status_shows_the_services_own_lines(loop_kind):
    units = {
        "say.service": "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
        f"ExecStart=/bin/echo hello from say\n{BOOT}"
    }
    with Activator(units, loop=loop_kind) as a:
        a.wait_for("output", unit="say.service", timeout=30)
        log = a.status("say.service")["log"]
        pid = _pid(a, "say.service")
        assert any(e["text"] == f"echo[{pid}]: hello from say" for e in log)


def _pid(a: Activator, unit: str) -> int:
    return a.wait_for("start", unit=unit)["pid"]


def test_issue13_inetd_instances_cost_no_stream(loop_kind, accept_path):
    """StandardInput=socket: stdout and stderr are the connection (what the service writes
    to stderr reaches the peer), no output line, and activator opens no fd per connection."""
    port = free_port()
    units = {
        "e.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n",
        "e@.service": "[Service]\nExecStart=/bin/sh -c 'echo out; echo err >&2'\n"
        "StandardInput=socket\nUser=nobody\n",
    }
    with Activator(units, loop=loop_kind, env=accept_path) as a:
        assert read_line(("127.0.0.1", port)) == b"out\nerr\n"
        a.wait_for("exit", timeout=10)
        before = len(os.listdir(f"/proc/{a.pid}/fd"))
        for _ in range(20):
            assert read_line(("127.0.0.1", port)) == b"out\nerr\n"
        deadline = time.monotonic() + 20
        while a.count("exit") < 21 and time.monotonic() < deadline:
            a.drain(0.1)
        assert len(os.listdir(f"/proc/{a.pid}/fd")) <= before
        assert a.count("output") == 0


def test_issue13_fd3_instances_share_one_stream_pair(loop_kind):
    """Connection on fd 3, output to the journal: the template's two streams are made at
    the first connection; twenty more connections open nothing more."""
    port = free_port()
    units = {
        "f.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n",
        "f@.service": "[Service]\nExecStart=/bin/sh -c 'echo served'\nUser=nobody\n",
    }
    with Activator(units, loop=loop_kind) as a:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.close()
        a.wait_for("output", timeout=10)
        before = len(os.listdir(f"/proc/{a.pid}/fd"))
        for _ in range(20):
            socket.create_connection(("127.0.0.1", port), timeout=10).close()
        deadline = time.monotonic() + 30
        while a.count("output") < 21 and time.monotonic() < deadline:
            a.drain(0.1)
        assert a.count("output") == 21
        assert len(os.listdir(f"/proc/{a.pid}/fd")) <= before


@pytest.mark.parametrize("fmt", ["json"])
def test_issue13_log_time_no(loop_kind, fmt):
    with Activator({}, loop=loop_kind, extra_args=["--log-time", "no"]) as a:
        assert "time" not in a.ready and a.ready["level"] == "info"


def test_log_level_max_drops_a_units_lines_and_its_output(loop_kind, accept_path):
    """LogLevelMax= (systemd.exec(5)): below it, a unit's lines are dropped — activator's
    own about it (an Accept=yes socket's start/exit pair per connection, tcpserver's -q)
    and its processes' output, which `logs` does not keep either; more urgent ones pass.
    A unit without it (l@) logs as before."""
    d = public_dir()
    (d / "say.py").write_text("print('<6>quiet'); print('<4>loud'); print('<3>broken')\n")
    q, loud = free_port(), free_port()
    sh = "[Service]\nExecStart=/bin/sh -c 'echo hi'\nStandardInput=socket\nUser=nobody\n"
    units = {
        "q.socket": f"[Socket]\nListenStream=127.0.0.1:{q}\nAccept=yes\n",
        "q@.service": sh + "LogLevelMax=notice\n",
        "l.socket": f"[Socket]\nListenStream=127.0.0.1:{loud}\nAccept=yes\n",
        "l@.service": sh,
        "w.service": f"[Service]\nType=oneshot\nExecStart={SYSTEM_PYTHON} {d}/say.py\n"
        f"User=nobody\nLogLevelMax=4\n{BOOT}",  # 4: warning
    }
    with Activator(units, loop=loop_kind, env=accept_path) as a:
        for _ in range(5):
            assert read_line(("127.0.0.1", q)) == b"hi\n"
        assert read_line(("127.0.0.1", loud)) == b"hi\n"
        a.until(lambda: a.status("q.socket")["NConnections"] == 0, what="q@ instances gone")
        a.until(lambda: a.status("w.service")["active"] == "inactive", what="w.service done")
        a.until(
            lambda: [e for e in a.events if e.get("event") == "exit" and "l@" in e.get("unit", "")],
            what="l@'s exit line",
        )
        assert not [e for e in a.events if str(e.get("unit", "")).startswith("q@")]
        assert [e["msg"] for e in _outputs(a, "w.service")] == ["loud", "broken"]
        assert a.count("start", unit="w.service") == 0  # info: below warning
        r = a.ctl("--json", "logs", "w.service", check=True)
        assert [e["text"] for e in json.loads(r.stdout)] == ["loud", "broken"]

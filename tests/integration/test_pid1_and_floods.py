"""activator as PID 1 of a new PID namespace, and floods that must leave nothing behind."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from harness import (
    SYSTEM_PYTHON,
    Activator,
    free_port,
    hold_units,
    public_dir,
    read_line,
    read_report,
)

pytestmark = pytest.mark.root

UNSHARE = shutil.which("unshare")


def children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def zombies_of(pid: int) -> list[int]:
    out = []
    for child in children_of(pid):
        try:
            with open(f"/proc/{child}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z":
            out.append(child)
    return out


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.skipif(UNSHARE is None, reason="unshare(1) missing")
def test_pid1_reaps_orphans_and_stops_everything(probe, loop_kind):
    d = public_dir()
    stubborn = d / "stubborn.py"
    stubborn.write_text(
        "import os, signal, socket\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        # leave an orphan behind that outlives us in its own session: PID 1 must reap it
        "if os.fork() == 0:\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        os._exit(7)\n"
        "    os._exit(0)\n"
        "c, _ = socket.socket(fileno=3).accept()\n"
        "c.sendall(b'up')\n"
        "c.close()\n"
        "while True:\n"
        "    signal.pause()\n"
    )
    stubborn.chmod(0o644)
    port, p2 = free_port(), free_port()
    units = {
        "t.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
        "t.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {stubborn}\nUser=nobody\nTimeoutStopSec=1\n",
        "e.socket": f"[Socket]\nListenStream=127.0.0.1:{p2}\nAccept=yes\n",
        "e@.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {probe}\nUser=nobody\n",
    }
    with Activator(
        units, loop=loop_kind, wrapper=[UNSHARE, "--pid", "--fork", "--mount-proc"]
    ) as a:
        assert a.ready["pid"] == 1
        assert read_line(("127.0.0.1", port)) == b"up"
        reaped = a.wait_for("reap", status=7)  # the orphan, re-parented to PID 1
        assert reaped["pid"] > 1
        rep = read_report(("127.0.0.1", p2))
        assert rep["env"]["LISTEN_PID"] == str(rep["pid"])  # the pid inside the namespace
        assert a.stop() == 5  # t.service needed SIGKILL: it ended failed (timeout)
        a.wait_for("kill", unit="t.service", signal="SIGKILL")
        assert a.wait_for("exit", pid=1)["status"] == 5


@pytest.mark.slow
def test_flood_leaves_no_fds_and_no_zombies(loop_kind, accept_path):
    """10,000 connections at concurrency 64 against MaxConnections=32: every connection is
    either served or refused by the limit, activator's books agree with the client's, and
    it is back to idle after.

    Idle is measured after one connection and one control request: the first connection
    plans the accept lane, whose eventfd and thread stay for the socket's life; under
    uvloop the first request on the control socket (accepted by our server, handed to
    uvloop as a socket) leaves one /dev/null fd open for the loop's life — once, not per
    request (seen with strace; 20 more requests add none)."""
    port = free_port()
    units = {
        "f.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nMaxConnections=32\nBacklog=1024\n",
        "f@.service": "[Service]\nExecStart=/bin/echo hi\nUser=nobody\nStandardInput=socket\n",
    }
    with Activator(units, loop=loop_kind, env=accept_path) as a:
        pid = a.ready["pid"]
        assert read_line(("127.0.0.1", port)) == b"hi\n"
        assert a.wait_for("exit")["unit"].startswith(f"f@0-127.0.0.1:{port}-")
        a.status("f.socket")  # the first control request: uvloop keeps a /dev/null fd from it
        idle_fds = fd_count(pid)
        served, refused = asyncio.run(_flood(port, total=10_000, concurrency=64, deadline=240))
        assert served + refused == 10_000 and served > 0
        # wait (bounded) until every instance is gone, reading activator's own counters
        st = a.until(
            lambda: (s := a.status("f.socket"))["NConnections"] == 0 and s,
            timeout=60,
            what="every instance gone",
        )
        assert st["NAccepted"] == 10_001
        # what the client saw closed at once is exactly what the limit refused
        assert st["NRefused"] == st["refused"]["limit"] == refused
        assert fd_count(pid) == idle_fds
        assert zombies_of(pid) == []


@pytest.mark.slow
def test_max_connections_holds_under_a_flood(loop_kind, accept_path):
    """32 instances held open: a flood of 200 more at concurrency 64 is refused, each one,
    while the 32 keep running; released, they answer; then the socket serves again."""
    port = free_port()
    units = hold_units(port, socket_extra="MaxConnections=32\nBacklog=1024\n", answer="hi")
    with Activator(units, loop=loop_kind, env=accept_path) as a:
        held = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(32)]
        try:
            a.until(lambda: a.count("start") == 32, timeout=60, what="32 instances started")
            assert a.status("h.socket")["NConnections"] == 32
            served, refused = asyncio.run(
                _flood(port, total=200, concurrency=64, deadline=120, send=b"x\n")
            )
            assert (served, refused) == (0, 200)
            st = a.status("h.socket")
            assert st["NConnections"] == 32 and st["refused"]["limit"] == 200
            for c in held:
                c.sendall(b"go\n")
                assert c.recv(100) == b"hi\n"
        finally:
            for c in held:
                c.close()
        a.until(lambda: a.status("h.socket")["NConnections"] == 0, what="the 32 gone")
        assert read_line(("127.0.0.1", port), send=b"x\n") == b"hi\n"
        assert a.status("h.socket")["NAccepted"] == 32 + 200 + 1


async def _flood(
    port: int, *, total: int, concurrency: int, deadline: float, send: bytes = b""
) -> tuple[int, int]:
    """(served, refused): a connection is served when it reads "hi\\n", refused otherwise."""
    served = refused = 0
    sem = asyncio.Semaphore(concurrency)
    end = time.monotonic() + deadline

    async def one() -> None:
        nonlocal served, refused
        async with sem:
            if time.monotonic() > end:
                refused += 1
                return
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
            except (ConnectionError, TimeoutError, OSError):
                refused += 1
                return
            try:
                if send:
                    w.write(send)
                    w.write_eof()
                data = await asyncio.wait_for(r.read(), 30)
            except (ConnectionError, TimeoutError, OSError):
                data = b""  # closed at once: a reset is a refusal too
            finally:
                w.close()
            if data == b"hi\n":
                served += 1
            else:
                refused += 1

    await asyncio.gather(*(one() for _ in range(total)))
    return served, refused


@pytest.mark.slow
def test_an_unread_log_does_not_stop_activator(loop_kind):
    """stderr is a pipe nobody reads (a stuck log driver): connections keep being served and
    the control socket keeps answering; what did not fit is dropped, counted, and said."""
    port = free_port()
    d = public_dir()
    (d / "units").mkdir()
    (d / "units" / "f.socket").write_text(
        f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nMaxConnections=64\n"
    )
    (d / "units" / "f@.service").write_text(
        "[Service]\nExecStart=/bin/echo hi\nUser=nobody\nStandardInput=socket\nStandardError=null\n"
    )
    control = str(d / "control.sock")
    cmd = [sys.executable, "-m", "activator", "--units", str(d / "units"), "--control",
           control, "--loop", loop_kind, "--log-format", "json"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    try:
        for line in proc.stderr:  # up to "ready"; then nobody reads
            if b'"ready"' in line:
                break
        # 12,000 lines of ~170 bytes: the 64 KiB pipe and the 1 MiB backlog overflow
        served, refused = asyncio.run(_flood(port, total=6_000, concurrency=16, deadline=120))
        assert served == 6_000 and refused == 0
        st = subprocess.run(
            [sys.executable, "-m", "activator.cli.ctl", "--control", control, "--json", "status",
             "f.socket"], capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert st.returncode == 0 and json.loads(st.stdout)[0]["NAccepted"] == 6_000
        proc.send_signal(signal.SIGTERM)  # the log is read again: the backlog drains, then the news
        rest = proc.stderr.read().decode().splitlines()
        assert proc.wait(timeout=30) == 0
        bad = [x for x in rest if not x.startswith("{") or not x.endswith("}")]
        assert not bad, bad[:3]
        events = [json.loads(x) for x in rest]
        dropped = [e for e in events if e.get("event") == "warning" and "dropped" in e["reason"]]
        assert len(dropped) == 1, rest[-5:]
        n = int(dropped[0]["reason"].split(": ")[1].split()[0])
        starts = sum(1 for e in events if e.get("event") == "start")
        assert n > 0 and starts + n >= 6_000  # every start line either arrived or was counted
        # the daemon's own exit line arrived too (the warning may follow it: it is said once
        # the backlog has drained, which at shutdown is the very end)
        assert any(e.get("event") == "exit" and "unit" not in e for e in events[-2:]), [
            (e["event"], e.get("unit"), e.get("pid")) for e in events[-6:]
        ]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stderr.close()
        shutil.rmtree(d, ignore_errors=True)

"""Service lifecycle end to end: a real activator, real services as nobody, both loops.

Types and notifications (§6c 27), timeouts, the watchdog, the fd store across a
restart, Type=forking with PIDFile=, oneshot, *Directory=, the start and trigger
limits (issue #4). Every wait is on a log line or a socket, bounded.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import uuid

import pytest
from harness import SYSTEM_PYTHON, Activator, free_port, public_dir, read_line

pytestmark = pytest.mark.root

NOBODY = pwd.getpwnam("nobody")


@pytest.fixture(scope="module")
def notifier():
    d = public_dir("activator-notifier-")
    dst = d / "notifier.py"
    shutil.copy(os.path.join(os.path.dirname(__file__), "notifier.py"), dst)
    dst.chmod(0o755)
    yield str(dst)
    shutil.rmtree(d, ignore_errors=True)


def svc(notifier: str, mode: str, extra: str = "", typ: str = "notify") -> str:
    return (
        f"[Service]\nType={typ}\nExecStart={SYSTEM_PYTHON} {notifier} {mode}\nUser=nobody\n{extra}"
    )


def converse(addr, line: bytes = b"go\n") -> bytes:
    return read_line(addr, send=line)


# ---------------------------------------------------------------- Type=notify


def test_notify_active_only_after_ready(notifier, loop_kind):
    """§6c 27: activating until READY=1 (from the main pid), STATUS= shown; NOTIFY_SOCKET
    reachable by nobody."""
    port = free_port()
    units = {
        "n.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
        "n.service": svc(notifier, "serve"),
    }
    with Activator(units, loop=loop_kind) as a:
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            started = a.wait_for("start", unit="n.service")
            st = a.status("n.service")
            assert (st["state"], st["sub"]) == ("activating", "start")  # no READY=1 yet
            assert a.status("n.socket")["state"] == "running"
            c.sendall(b"go\n")
            rep = json.loads(c.makefile().readline())
        finally:
            c.close()
        assert a.wait_for("ready", unit="n.service")["pid"] == started["pid"] == rep["pid"]
        env = rep["env"]
        # its user's own socket (issue 15): 0600, nobody's; root's socket is not for it
        path = os.path.join(a.dir, "notify.d", str(NOBODY.pw_uid))
        assert env["NOTIFY_SOCKET"] == path and rep["uid"] == NOBODY.pw_uid
        st = os.stat(path)
        assert (st.st_uid, st.st_mode & 0o777) == (NOBODY.pw_uid, 0o600)
        assert os.stat(os.path.join(a.dir, "notify")).st_mode & 0o777 == 0o666  # root's
        st = a.status("n.service")
        assert (st["state"], st["sub"], st["status_text"]) == ("active", "running", "serving")
        assert converse(("127.0.0.1", port), b"exit 0\n") == b""
        a.wait_for("exit", unit="n.service", status=0)


def test_notify_failures(notifier, loop_kind):
    """Exit before READY=1 is result protocol; no READY=1 within TimeoutStartSec= is timeout."""
    units = {
        "early.service": svc(notifier, "noready"),
        "slow.service": svc(notifier, "hang", "TimeoutStartSec=0.5\nTimeoutStopSec=5\n"),
    }
    with Activator(units, loop=loop_kind) as a:
        r = a.ctl("start", "early.service")
        assert r.returncode == 1 and "protocol" in r.stderr + r.stdout
        assert a.wait_for("failed", unit="early.service", result="protocol")
        a.ctl("start", "slow.service")  # waits at most TimeoutStartSec=, then reports the failure
        e = a.wait_for("timeout", unit="slow.service")
        assert e["phase"] == "start" and "TimeoutStartSec=0.5s" in e["reason"]
        a.wait_for("failed", unit="slow.service", result="timeout")
        st = a.status("slow.service")
        assert (st["state"], st["result"], st["status_text"]) == (
            "failed",
            "timeout",
            "never ready",
        )


def test_watchdog_kills_and_restarts(notifier, loop_kind):
    """WatchdogSec=: pings keep it up; silence is a failure "watchdog" (WatchdogSignal=), and
    Restart=on-watchdog brings it back."""
    units = {
        "w.service": svc(
            notifier,
            "watchdog 3",
            "WatchdogSec=0.4\nRestart=on-watchdog\nRestartSec=0\nTimeoutStopSec=5\n"
            "WatchdogSignal=SIGTERM\n",
        )
    }
    with Activator(units, loop=loop_kind) as a:
        a.ctl("start", "w.service", check=True)
        first = a.wait_for("start", unit="w.service")
        e = a.wait_for("watchdog", unit="w.service", timeout=10)
        assert e["pid"] == first["pid"] and e["signal"] == "SIGTERM"
        assert "no WATCHDOG=1 within 0.4s" in e["reason"]
        i = a.events.index(e)
        a.wait_for("restart", unit="w.service", start=i, result="watchdog")
        second = a.wait_for("start", unit="w.service", start=i)
        assert second["pid"] != first["pid"]
        a.ctl("stop", "w.service", check=True)
        assert a.status("w.service")["restarts"] >= 1


def test_reload_by_signal_and_notification(notifier, loop_kind):
    """ExecReload= with $MAINPID; the service says RELOADING=1 … READY=1."""
    units = {"r.service": svc(notifier, "reload", "ExecReload=/bin/kill -HUP $MAINPID\n")}
    with Activator(units, loop=loop_kind) as a:
        a.ctl("start", "r.service", check=True)
        a.wait_for("ready", unit="r.service")
        a.ctl("reload", "r.service", check=True)
        a.wait_for("reloaded", unit="r.service")
        assert a.status("r.service")["state"] == "active"


# ---------------------------------------------------------------- the fd store


def test_fd_store_keeps_a_connection_across_a_restart(notifier, loop_kind):
    """FDSTORE=1: the connection the first instance stored is handed to the next one, after
    the listener (LISTEN_FDNAMES=s.socket:conn); the client never notices the crash."""
    port = free_port()
    units = {
        "s.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
        "s.service": svc(
            notifier,
            "store",
            "FileDescriptorStoreMax=4\nRestart=on-failure\nRestartSec=0\n",
            typ="simple",
        ),
    }
    with Activator(units, loop=loop_kind) as a:
        lines = read_line(("127.0.0.1", port)).decode().split("\n")
        first, again = lines[0].split(), lines[1].split()
        assert first[0] == "first" and again[0] == "again" and first[1] != again[1]
        e = a.wait_for("fdstore", unit="s.service")
        assert (e["added"], e["name"], e["stored"]) == (1, "conn", 1)
        a.wait_for("restart", unit="s.service", result="exit-code")
        a.wait_for("exit", unit="s.service", pid=int(again[1]), status=0)
        assert a.status("s.service")["fd_store"] == 0  # down for good: the store is emptied


# ---------------------------------------------------------------- Type=forking, oneshot


def test_forking_with_pid_file_and_runtime_directory(loop_kind):
    rt = f"activator-test-{uuid.uuid4().hex[:10]}"
    script = f"sleep 600 & echo $! > /run/{rt}/pid"
    units = {
        "f.service": f"[Service]\nType=forking\nUser=nobody\nRuntimeDirectory={rt}\n"
        f"PIDFile=/run/{rt}/pid\nExecStart=/bin/sh -c '{script}'\n"
    }
    try:
        with Activator(units, loop=loop_kind) as a:
            a.ctl("start", "f.service", check=True)
            parent = a.wait_for("start", unit="f.service")["pid"]
            ready = a.wait_for("ready", unit="f.service")
            daemon = ready["pid"]
            assert daemon != parent
            with open(f"/proc/{daemon}/cmdline", "rb") as f:
                assert f.read().split(b"\0")[0] == b"sleep"
            st = a.status("f.service")
            assert (st["state"], st["main_pid"]) == ("active", daemon)
            assert os.stat(f"/run/{rt}").st_uid == NOBODY.pw_uid
            a.ctl("stop", "f.service", check=True)
            a.wait_for("exit", unit="f.service", pid=daemon, signal="SIGTERM")
            assert a.status("f.service")["state"] == "inactive"
            assert not os.path.exists(f"/run/{rt}")  # RuntimeDirectory= goes with the service
    finally:
        shutil.rmtree(f"/run/{rt}", ignore_errors=True)


def test_oneshot_remain_after_exit(loop_kind):
    units = {
        "o.service": "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n"
        "ExecStart=-/bin/false\nExecStart=/bin/true\n"
    }
    with Activator(units, loop=loop_kind) as a:
        a.ctl("start", "o.service", check=True)  # returns once all three have run
        assert a.count("start", unit="o.service") == 3
        st = a.status("o.service")
        assert (st["state"], st["sub"], st["result"]) == ("active", "exited", "success")
        a.ctl("stop", "o.service", check=True)
        assert a.status("o.service")["state"] == "inactive"


def test_runtime_max_sec(notifier, loop_kind):
    units = {"m.service": svc(notifier, "hang", "RuntimeMaxSec=0.3\n", typ="simple")}
    with Activator(units, loop=loop_kind) as a:
        a.ctl("start", "m.service", check=True)
        assert a.wait_for("timeout", unit="m.service")["phase"] == "runtime"
        a.wait_for("failed", unit="m.service", result="timeout")


# ---------------------------------------------------------------- directories


def test_directories(loop_kind):
    """*Directory= under the real /run, /var/lib, /var/cache, /var/log, /etc: owner, mode,
    environment; the runtime one removed on stop unless RuntimeDirectoryPreserve=yes."""
    tag = f"activator-test-{uuid.uuid4().hex[:10]}"
    roots = {
        "Runtime": "/run",
        "State": "/var/lib",
        "Cache": "/var/cache",
        "Logs": "/var/log",
        "Configuration": "/etc",
    }
    d = public_dir()
    out = d / "env.json"
    out.touch()
    os.chown(out, NOBODY.pw_uid, NOBODY.pw_gid)
    dump = f"import json, os; json.dump(dict(os.environ), open('{out}', 'w'))"
    lines = "".join(f"{k}Directory={tag}/{k.lower()}\n" for k in roots)
    units = {
        "d.service": f"[Service]\nType=oneshot\nUser=nobody\n{lines}StateDirectoryMode=0700\n"
        f'ExecStart={SYSTEM_PYTHON} -c "{dump}"\n',
        "keep.service": f"[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n"
        f"RuntimeDirectory={tag}/kept\nRuntimeDirectoryPreserve=yes\n",
    }
    try:
        with Activator(units, loop=loop_kind) as a:
            a.ctl("start", "d.service", check=True)
            env = json.loads(out.read_text())
            for kind, root in roots.items():
                path = f"{root}/{tag}/{kind.lower()}"
                assert env[f"{kind.upper()}_DIRECTORY"] == path
                if kind == "Runtime":
                    assert not os.path.exists(path)  # the oneshot is done: removed
                    continue
                st = os.stat(path)
                owner = (0, 0) if kind == "Configuration" else (NOBODY.pw_uid, NOBODY.pw_gid)
                assert (st.st_uid, st.st_gid) == owner, kind
                assert st.st_mode & 0o777 == (0o700 if kind == "State" else 0o755), kind
                assert os.stat(f"{root}/{tag}").st_uid == 0  # parents are root's
            a.ctl("start", "keep.service", check=True)
            a.ctl("stop", "keep.service", check=True)
            assert os.path.isdir(f"/run/{tag}/kept")
    finally:
        for root in roots.values():
            shutil.rmtree(f"{root}/{tag}", ignore_errors=True)
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- limits


def test_start_limit_then_an_operator_start(loop_kind):
    units = {
        "c.service": "[Unit]\nStartLimitIntervalSec=30\nStartLimitBurst=3\n"
        "[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=0\n"
    }
    with Activator(units, loop=loop_kind) as a:
        a.ctl("start", "c.service")
        a.wait_for("failed", unit="c.service", result="start-limit-hit")
        assert a.count("start", unit="c.service") == 3
        st = a.status("c.service")
        assert (st["state"], st["result"]) == ("failed", "start-limit-hit")
        n = len(a.events)
        a.ctl("start", "c.service")  # the operator: the limit is reset
        a.wait_for("start", unit="c.service", start=n)


def test_trigger_limit_pauses_then_listens_again(loop_kind):
    """Accept=yes, TriggerLimitBurst=3 in 2 s: the 4th quick connection pauses the socket
    (systemd would fail it for good), and it listens again by itself."""
    port = free_port()
    units = {
        "t.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"
        "TriggerLimitBurst=3\nTriggerLimitIntervalSec=2s\n",
        "t@.service": "[Service]\nExecStart=/bin/echo hi\nUser=nobody\nStandardInput=socket\n",
    }
    with Activator(units, loop=loop_kind) as a:
        conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(4)]
        replies = []
        for c in conns:  # accepted in the order they connected, well within the 2 s
            with c:
                try:
                    replies.append(c.makefile("rb").read())
                except OSError:
                    replies.append(None)
        assert replies[:3] == [b"hi\n"] * 3 and replies[3] != b"hi\n"
        e = a.wait_for("pause", unit="t.socket", result="trigger-limit-hit")
        assert "trigger limit hit (3 in 2s)" in e["reason"]
        assert a.status("t.socket")["state"] == "paused"
        a.wait_for("resume", unit="t.socket", timeout=5)  # no operator
        assert a.status("t.socket")["state"] == "listening"
        assert read_line(("127.0.0.1", port)) == b"hi\n"
        assert a.status("t.socket")["refused"]["trigger_limit"] == 1


# ---------------------------------------------------------------- a socket and its service


def test_flush_pending(notifier, loop_kind):
    """§6c 7: with FlushPending=yes a connection queued while the service ran is reset when
    it exits, and the service is not started again for it."""
    port = free_port()
    units = {
        "q.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nFlushPending=yes\n",
        "q.service": svc(notifier, "one", typ="simple"),
    }
    with Activator(units, loop=loop_kind) as a:
        c1 = socket.create_connection(("127.0.0.1", port), timeout=10)
        a.wait_for("start", unit="q.service")
        c2 = socket.create_connection(("127.0.0.1", port), timeout=10)  # queued
        try:
            c1.sendall(b"go\n")
            assert c1.makefile("rb").readline() == b"bye\n"
            a.wait_for("exit", unit="q.service", status=0)
            try:
                assert c2.recv(100) == b""  # flushed: accepted and closed by activator
            except ConnectionResetError:
                pass
        finally:
            c1.close()
            c2.close()
        assert a.count("start", unit="q.service") == 1
        assert a.status("q.socket")["state"] == "listening"


def test_crash_loop_fails_the_socket(loop_kind):
    """§6c 8: a service that crashes at every start, with a connection queued, is started
    StartLimitBurst= times; then it is failed and its socket with service-start-limit-hit."""
    port = free_port()
    units = {
        "k.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
        "k.service": "[Service]\nExecStart=/bin/false\nUser=nobody\n",
    }
    with Activator(units, loop=loop_kind) as a:
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            a.wait_for("stop", unit="k.socket", result="service-start-limit-hit")
        finally:
            c.close()
        assert a.count("start", unit="k.service") == 5  # systemd's default burst
        assert a.status("k.service")["result"] == "start-limit-hit"
        st = a.status("k.socket")
        assert (st["state"], st["result"]) == ("failed", "service-start-limit-hit")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=10).close()

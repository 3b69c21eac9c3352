"""Issue 15: live re-exec (``activatorctl daemon-reexec``, SIGUSR2) under a stream of
connections: no connection refused, no service restarted, the same PID, the fd store
and the connections in flight carried over."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

import pytest
from harness import SYSTEM_PYTHON, Activator, event_time, free_port, public_dir
from reliability import record, scale

pytestmark = [pytest.mark.root, pytest.mark.slow]

# Accept=no: answers every connection with its pid, for good.
SERVER = r"""
import os, socket
lst = socket.socket(fileno=3)
while True:
    c, _ = lst.accept()
    c.sendall(b"%d\n" % os.getpid())
    c.close()
"""

# Type=notify with an fd store: stores a memfd the first time, and says what it was handed.
KEEPER = r"""
import os, socket, sys
report = sys.argv[1]
n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
path = os.environ["NOTIFY_SOCKET"]
if os.environ.get("LISTEN_FDNAMES") == "kept":
    os.lseek(3, 0, 0)
    n.sendto(b"handed " + os.read(3, 100), report)
else:
    fd = os.memfd_create("kept")
    os.write(fd, b"kept")
    n.sendmsg([b"FDSTORE=1\nFDNAME=kept"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fd.to_bytes(4, "little"))], 0, path)
n.sendto(b"READY=1", path)
import signal
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
while True:
    signal.pause()
"""


def units(d, tport: int, eport: int, lport: int) -> dict[str, str]:
    return {
        "t.socket": f"[Socket]\nListenStream=127.0.0.1:{tport}\n",
        "t.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {d / 'server.py'}\nUser=nobody\n",
        "e.socket": f"[Socket]\nListenStream=127.0.0.1:{eport}\nAccept=yes\nMaxConnections=512\n",
        "e@.service": "[Service]\nExecStart=/bin/cat\nStandardInput=socket\nUser=nobody\n",
        "l.socket": f"[Socket]\nListenStream=127.0.0.1:{lport}\nAccept=yes\nMaxConnections=512\n",
        "l@.service": "[Service]\nExecStartPre=/bin/true\nExecStart=/bin/cat\n"
        "StandardInput=socket\nUser=nobody\n",
        "k.service": f"[Service]\nType=notify\nExecStart={SYSTEM_PYTHON} {d / 'keeper.py'} "
        f"{d / 'report'}\nUser=nobody\nFileDescriptorStoreMax=4\n"
        "[Install]\nWantedBy=multi-user.target\n",
    }


def ask(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
        return int(c.makefile().readline())


def echo(port: int, data: bytes) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        return c.makefile("rb").read() == data


class Stream:
    """Connections to each socket, back to back, in threads, until stopped (bounded)."""

    def __init__(self, tport: int, eport: int, lport: int, server_pid: int) -> None:
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.done = 0  # connections completed
        self._cond = threading.Condition()
        self.threads = [
            threading.Thread(target=self._run, args=(lambda: ask(tport) == server_pid,)),
            threading.Thread(target=self._run, args=(lambda: echo(eport, b"e\n"),)),
            threading.Thread(target=self._run, args=(lambda: echo(lport, b"l\n"),)),
        ]
        for t in self.threads:
            t.start()

    def _run(self, one) -> None:
        deadline = time.monotonic() + 300
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                ok = one()
            except OSError as e:
                ok, why = False, repr(e)
            else:
                why = "wrong answer"
            with self._cond:
                if ok:
                    self.done += 1
                else:
                    self.failures.append(why)
                self._cond.notify_all()

    def wait_done(self, n: int, timeout: float = 60) -> None:
        """Until ``n`` connections have completed (or one failed); bounded."""
        with self._cond:
            self._cond.wait_for(lambda: self.done >= n or self.failures, timeout)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)


def fds_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.chaos
def test_issue_15_reexec_under_a_stream_of_connections(loop_kind):
    d = public_dir()
    (d / "server.py").write_text(SERVER)
    (d / "keeper.py").write_text(KEEPER)
    report = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    report.bind(str(d / "report"))
    os.chmod(d / "report", 0o666)
    report.settimeout(30)
    tport, eport, lport = free_port(), free_port(), free_port()
    with Activator(units(d, tport, eport, lport), loop=loop_kind) as a:
        a.wait_for("fdstore", unit="k.service", stored=1)
        keeper = a.status("k.service")["main_pid"]
        server = ask(tport)
        # connections in flight across the re-execs: a lane instance and an event-loop one
        held = [socket.create_connection(("127.0.0.1", p), timeout=30) for p in (eport, lport)]
        for c in held:
            a.wait_for("start", command="/bin/cat", peer=f"127.0.0.1:{c.getsockname()[1]}")
        fds = fds_of(a.pid)
        stream = Stream(tport, eport, lport, server)
        try:
            rounds = scale("chaos", 4, 20)
            took = []
            for i in range(1, rounds + 1):
                before = stream.done
                mark = len(a.events)
                began = time.monotonic()
                if i < rounds:
                    r = a.ctl("daemon-reexec")
                    assert r.returncode == 0, r.stderr
                else:
                    os.kill(a.pid, signal.SIGUSR2)
                ready = a.wait_for("ready", timeout=60, start=mark)
                took.append(time.monotonic() - began)
                assert ready["generation"] == i and ready["pid"] == a.pid
                stream.wait_done(before + 30)  # the stream goes on through it
                assert stream.done >= before + 30 or stream.failures
        finally:
            stream.close()
        record(f"daemon-reexec under a stream of connections ({loop_kind})", reexecs=rounds,
               connections=stream.done, failures=len(stream.failures),
               exec_to_ready=f"{min(took):.2f}-{max(took):.2f}s")  # fmt: skip
        assert stream.failures == [], stream.failures[:5]
        assert a.count("reexec") == rounds
        # no service restarted, nothing failed
        assert ask(tport) == server and a.status("t.service")["restarts"] == 0
        k = a.status("k.service")
        assert (k["main_pid"], k["fd_store"], k["restarts"]) == (keeper, 1, 0)
        assert not [e for e in a.events if e.get("event") == "failed"]
        # the connections accepted before the first re-exec are served by the last program
        for c, data in zip(held, (b"held e\n", b"held l\n"), strict=True):
            c.sendall(data)
            c.shutdown(socket.SHUT_WR)
            assert c.makefile("rb").read() == data
            c.close()
        # the fd store handed over goes to the next main process
        a.ctl("restart", "k.service", check=True)
        assert report.recv(100) == b"handed kept"
        assert abs(fds_of(a.pid) - fds) <= 2, (fds, fds_of(a.pid))
    report.close()


def test_issue_15_reexec_refused_when_a_running_unit_cannot_be_carried(loop_kind):
    d = public_dir()
    (d / "server.py").write_text(SERVER)
    (d / "keeper.py").write_text(KEEPER)
    tport, eport, lport = free_port(), free_port(), free_port()
    with Activator(units(d, tport, eport, lport), loop=loop_kind) as a:
        server = ask(tport)
        (a.unit_dir / "t.service").write_text("[Service]\nExecStart=\nNoSuchDirective=1\n")
        r = a.ctl("--json", "daemon-reexec")
        assert r.returncode == 1
        answer = json.loads(r.stdout)
        assert answer["error"] == "refused" and "t.service" in answer["message"]
        assert a.count("reexec") == 0 and ask(tport) == server
        r = a.ctl("--json", "status")
        assert r.returncode == 0  # still serving, the same program


def test_issue_15_reexec_carries_timers_and_states_over(loop_kind):
    """A service waiting to restart restarts when its RestartSec= is up, in the new
    program; a failed one stays failed (nothing is re-run: no OnFailure=, no start)."""
    units = {
        "r.service": "[Unit]\nStartLimitBurst=100\n[Service]\nExecStart=/bin/sh -c 'exit 3'\n"
        "Restart=always\nRestartSec=2\n[Install]\nWantedBy=multi-user.target\n",
        "f.service": "[Unit]\nOnFailure=o.service\n[Service]\nExecStart=/bin/false\n"
        "[Install]\nWantedBy=multi-user.target\n",
        "o.service": "[Service]\nType=oneshot\nExecStart=/bin/true\n",
        # running across the re-exec, then done: the new program's job engine follows it
        "s.service": "[Unit]\nOnSuccess=p.service\n[Service]\nExecStart=/bin/sleep 4\n"
        "[Install]\nWantedBy=multi-user.target\n",
        "p.service": "[Service]\nType=oneshot\nExecStart=/bin/true\n",
    }
    with Activator(units, loop=loop_kind) as a:
        a.wait_for("failed", unit="f.service")
        a.wait_for("start", unit="o.service")
        restart = a.wait_for("restart", unit="r.service")
        mark = len(a.events)
        assert a.ctl("daemon-reexec").returncode == 0
        a.wait_for("ready", start=mark, generation=1)
        assert a.status("r.service")["sub"] in ("auto-restart", "running", "start")
        again = a.wait_for("start", unit="r.service", start=mark)
        assert event_time(again) >= event_time(restart) + 2 - 0.05  # not earlier than RestartSec=
        assert a.status("r.service")["restarts"] >= 1
        f = a.status("f.service")
        assert (f["active"], f["result"]) == ("failed", "exit-code")
        assert a.count("start", unit="o.service") == 1  # OnFailure= ran once, before
        assert a.count("start", unit="f.service") == 1
        a.wait_for("exit", unit="s.service", start=mark, timeout=20)
        a.wait_for("start", unit="p.service", start=mark)  # OnSuccess=, seen by the new engine


# Accept=no: answers each connection, and says so on its stdout (captured by activator).
TALKER = r"""
import os, socket, sys
lst = socket.socket(fileno=3)
n = 0
while True:
    c, _ = lst.accept()
    n += 1
    print(f"answered {n}", flush=True)
    c.sendall(b"%d\n" % os.getpid())
    c.close()
"""


def test_reexec_carries_the_services_output_streams(loop_kind):
    """A service's stdout is a stream activator reads (StandardOutput=journal): across a
    re-exec the service keeps writing to the same stream — it must never see the reader
    go away (EPIPE) — and the new program reads on, with the lines of `logs` kept."""
    d = public_dir()
    (d / "talker.py").write_text(TALKER)
    port = free_port()
    units = {
        "w.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
        "w.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {d / 'talker.py'}\nUser=nobody\n",
    }
    with Activator(units, loop=loop_kind) as a:
        pid = ask(port)
        a.wait_for("output", unit="w.service", msg="answered 1")
        mark = len(a.events)
        assert a.ctl("daemon-reexec").returncode == 0
        a.wait_for("ready", start=mark, generation=1)
        assert ask(port) == pid  # the same process: it wrote on, nothing broke
        a.wait_for("output", unit="w.service", msg="answered 2", start=mark)
        r = a.ctl("--json", "logs", "w.service", check=True)
        assert [e["text"] for e in json.loads(r.stdout)] == ["answered 1", "answered 2"]
        assert a.count("start", unit="w.service") == 1

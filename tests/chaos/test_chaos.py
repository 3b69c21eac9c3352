"""Chaos (issue 15): what services, clients and operators can do to activator, each with
what must happen. The other experiments of the suite live beside the regression tests
they grew from (``-m chaos``): EMFILE on both accept paths (test_fd_exhaustion), a
hostile notify flood (tests/chaos/test_notify_flood), 2,000 concurrent control
connections (test_control_limits), kill -9 of activator and a restart (test_generation),
a service that shuts fd 3 down (test_listener_shutdown), re-exec under load
(test_reexec).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from harness import SYSTEM_PYTHON, Activator, free_port, public_dir
from reliability import record, scale, zombies_of

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.chaos]


def echo_units(port: int, extra_socket: str = "", extra_service: str = "") -> dict[str, str]:
    return {
        "e.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n{extra_socket}",
        "e@.service": "[Service]\nExecStart=/bin/cat\nStandardInput=socket\nUser=nobody\n"
        + extra_service,
    }


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def echoes(c: socket.socket, data: bytes = b"ping\n") -> bool:
    try:
        c.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = c.recv(4096)
            if not chunk:
                return False
            got += chunk
        return got == data
    except OSError:
        return False


def test_chaos_crash_loops(loop_kind):
    """A service that dies at once, with Restart=always, and one behind a socket:
    both stop at the start limit (start-limit-hit; the socket service-start-limit-hit),
    activator answers all along and keeps no zombie."""
    port = free_port()
    units = {
        "crash.service": "[Unit]\nStartLimitBurst=5\nStartLimitIntervalSec=30\n"
        "[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=0\n"
        "[Install]\nWantedBy=multi-user.target\n",
        "c.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nTriggerLimitIntervalSec=0\n",
        "c.service": "[Unit]\nStartLimitBurst=5\nStartLimitIntervalSec=30\n"
        "[Service]\nExecStart=/bin/false\nUser=nobody\n",
    }
    with Activator(units, loop=loop_kind) as a:
        began = time.monotonic()
        a.wait_for("failed", unit="crash.service", result="start-limit-hit", timeout=30)
        crash_s = time.monotonic() - began
        with connect(port) as c:  # queued: every start of c.service exits without taking it
            a.wait_for("stop", unit="c.socket", result="service-start-limit-hit", timeout=30)
            c.settimeout(10)
            try:
                closed = c.recv(1) == b""
            except ConnectionResetError:
                closed = True
        assert closed  # the client gets an answer (a reset), not a hang
        assert a.status("crash.service")["result"] == "start-limit-hit"
        assert a.status("c.socket")["active"] == "failed"
        assert a.ctl("status").returncode == 0
        assert zombies_of(a.pid) == []
        record(
            f"crash loop ({loop_kind})",
            starts=a.count("start", unit="crash.service"),
            failed_after=f"{crash_s:.2f}s",
            socket_result=a.status("c.socket")["result"],
        )


def test_chaos_sigkill_and_sigstop_mid_connection(loop_kind):
    """Instances killed or stopped while their clients talk to them: the others go on;
    a stopped one is stopped by `stop` all the same (SIGTERM waits, TimeoutStopSec=,
    SIGKILL), and nothing is left behind."""
    n = scale("chaos", 20, 100)
    port = free_port()
    with Activator(echo_units(port, extra_service="TimeoutStopSec=1\n"), loop=loop_kind) as a:
        conns = [connect(port) for _ in range(n)]
        try:
            assert all(echoes(c) for c in conns)
            pids = {}
            for c in conns:
                e = a.wait_for("start", peer=f"127.0.0.1:{c.getsockname()[1]}")
                pids[c] = (e["unit"], e["pid"])
            killed, stopped, kept = conns[: n // 2], conns[n // 2 : n // 2 + 2], conns[n // 2 + 2 :]
            for c in killed:
                os.kill(pids[c][1], signal.SIGKILL)
            for c in stopped:
                os.kill(pids[c][1], signal.SIGSTOP)
            for c in killed:
                a.wait_for("exit", unit=pids[c][0], signal="SIGKILL")
                assert not echoes(c)
            began = time.monotonic()
            for c in stopped:
                assert a.ctl("stop", pids[c][0]).returncode in (0, 1)
                a.wait_for("kill", unit=pids[c][0], signal="SIGKILL")
            stop_s = time.monotonic() - began
            assert all(echoes(c) for c in kept)
        finally:
            for c in conns:
                c.close()
        for c in kept:
            a.wait_for("exit", unit=pids[c][0])
        assert a.status("e.socket")["NConnections"] == 0
        assert zombies_of(a.pid) == []
        record(
            f"SIGKILL/SIGSTOP mid-connection ({loop_kind})",
            connections=n,
            killed=len(killed),
            stopped_then_stop=f"{len(stopped)} in {stop_s:.2f}s (TimeoutStopSec=1)",
            unharmed=f"{len(kept)}/{len(kept)}",
        )


def test_chaos_service_closes_fd3(loop_kind):
    """An Accept=no service that closes its listener and exits without taking the queued
    connection: activator triggers it again, pauses at the trigger limit instead of
    spinning, and listens again by itself; the listener itself is unharmed."""
    d = public_dir()
    (d / "closer.py").write_text("import os\nos.close(3)\n")
    port = free_port()
    units = {
        "t.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nTriggerLimitBurst=5\n"
        "TriggerLimitIntervalSec=2\n",
        "t.service": f"[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart={SYSTEM_PYTHON} "
        f"{d / 'closer.py'}\nUser=nobody\n",
    }
    with Activator(units, loop=loop_kind) as a:
        with connect(port):
            a.wait_for("pause", unit="t.socket", timeout=30)
            a.wait_for("resume", unit="t.socket", timeout=10)
        st = a.status("t.socket")
        assert st["listen"][0]["listening"] and st["active"] == "active"
        record(
            f"service closes fd 3 ({loop_kind})",
            starts_before_pause=a.count("start", unit="t.service"),
            paused=a.count("pause", unit="t.socket"),
        )


def test_chaos_connection_flood_against_max_connections(loop_kind):
    """A flood of connections to instances that hold on: never more than
    MaxConnections= processes; the rest are accepted and closed (systemd's way)."""
    n = scale("chaos", 300, 3000)
    d = public_dir()
    (d / "hold.sh").write_text("#!/bin/sh\nread line\n")
    (d / "hold.sh").chmod(0o755)
    port = free_port()
    units = {
        "f.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nMaxConnections=8\n"
        "Backlog=4096\n",
        "f@.service": f"[Service]\nExecStart={d / 'hold.sh'}\nStandardInput=socket\nUser=nobody\n",
    }
    with Activator(units, loop=loop_kind) as a:
        peak = 0
        stop = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, a.status("f.socket")["NConnections"])

        t = threading.Thread(target=watch)
        t.start()
        try:
            with ThreadPoolExecutor(64) as pool:
                conns = list(pool.map(lambda _i: connect(port), range(n)))
            for c in conns:  # those refused see EOF; the held ones get no answer yet
                c.settimeout(0.001)
        finally:
            stop.set()
            t.join(60)
        refused = a.status("f.socket")["refused"]["limit"]
        for c in conns:
            c.close()
        record(
            f"connection flood vs MaxConnections=8 ({loop_kind})",
            connections=n,
            peak_instances=peak,
            refused=refused,
        )
        assert peak <= 8
        assert refused >= n - 8 - 8  # a few may have found a slot freed meanwhile
        assert a.ctl("status").returncode == 0


def test_chaos_reload_with_broken_units_under_load(loop_kind):
    """Broken unit files during a stream of connections: the reload is refused with the
    errors (file:line), nothing changes, no connection fails; fixed, it applies."""
    port = free_port()
    with Activator(echo_units(port), loop=loop_kind) as a:
        stop = threading.Event()
        failures: list[str] = []
        done = [0]

        def load() -> None:
            deadline = time.monotonic() + 120
            while not stop.is_set() and time.monotonic() < deadline:
                with connect(port) as c:
                    if not echoes(c):
                        failures.append("bad echo")
                done[0] += 1

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            (a.unit_dir / "broken.service").write_text("[Service]\nExecStart=\nBogus=1\n")
            (a.unit_dir / "e.socket").write_text("[Socket]\nListenStream=nonsense\x00\n")
            r = a.ctl("reload")
            assert r.returncode == 1
            assert "broken.service" in r.stderr and "e.socket" in r.stderr
            assert "internal" not in r.stderr
            (a.unit_dir / "broken.service").unlink()
            (a.unit_dir / "e.socket").write_text(
                f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nMaxConnections=100\n"
            )
            r = a.ctl("reload")
            assert r.returncode == 0, r.stderr
            assert a.status("e.socket")["max_connections"] == 100
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        assert failures == [] and done[0] > 0
        record(f"reload with broken units under load ({loop_kind})", connections=done[0],
               failures=len(failures))  # fmt: skip

"""issue 16: X-Activator-IdleStopSec= — an Accept=no service with no connection for that long
is stopped, its socket listens on, the next connection starts it again and is served;
counted by the kernel (sock_diag) for a service that accepts itself, by the proxy for a
proxied one; status shows the countdown. Real activator, services as nobody."""

from __future__ import annotations

import socket

import pytest
from harness import SYSTEM_PYTHON, Activator, free_port, public_dir, recv_exactly
from test_proxy import program

pytestmark = pytest.mark.root

# A socket-activated echo service: accepts on fd 3, echoes each connection until EOF.
FD3_ECHO = """\
import socket, threading
s = socket.socket(fileno=3)
s.setblocking(True)
def serve(c):
    with c:
        while data := c.recv(65536):
            c.sendall(data)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""
IDLE = 0.6  # X-Activator-IdleStopSec= of these tests, in seconds


def fd3_units(port: int, listen: str | None = None) -> dict[str, str]:
    d = public_dir()
    (d / "echo3.py").write_text(FD3_ECHO)
    return {
        "e.socket": f"[Socket]\nListenStream={listen or f'127.0.0.1:{port}'}\n",
        "e.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {d}/echo3.py\nUser=nobody\n"
        f"X-Activator-IdleStopSec={IDLE}s\n",
    }


def echo_once(addr, family=socket.AF_INET) -> None:
    with socket.socket(family) as c:
        c.settimeout(10)
        c.connect(addr)
        c.sendall(b"ping")
        assert recv_exactly(c, 4) == b"ping"


def test_idle_service_stops_and_the_next_connection_starts_it(loop_kind):
    port = free_port()
    with Activator(fd3_units(port), loop=loop_kind) as a:
        echo_once(("127.0.0.1", port))
        a.wait_for("start", unit="e.service")
        idle = a.wait_for("idle", unit="e.service", timeout=10)
        assert "no connection for" in idle["reason"]
        a.wait_for("exit", unit="e.service")
        assert a.status("e.socket")["sub"] == "listening"
        assert a.status("e.service")["active"] == "inactive"
        echo_once(("127.0.0.1", port))  # starts it again, and is served
        assert a.count("start", unit="e.service") == 2


def test_an_open_connection_keeps_it_running(loop_kind):
    """A connection the service holds is counted by the kernel (sock_diag): no stop while it
    is open (a bounded wait for a line that must not come), then the stop follows."""
    port = free_port()
    with Activator(fd3_units(port), loop=loop_kind) as a:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(b"x")
            assert recv_exactly(c, 1) == b"x"
            with pytest.raises(TimeoutError):
                a.wait_for("idle", unit="e.service", timeout=3 * IDLE)
            st = a.status("e.service")["idle_stop"]  # the countdown, re-armed at every look
            assert st["connections"] == 1 and st["after"] == IDLE and 0 <= st["stop_in"] <= IDLE
            assert "Idle stop: stops in" in a.ctl("status", "e.service").stdout
        a.wait_for("idle", unit="e.service", timeout=10)


def test_unix_listener_connections_are_counted(loop_kind):
    d = public_dir()
    path = f"{d}/e.sock"
    with Activator(fd3_units(0, listen=path), loop=loop_kind) as a:
        with socket.socket(socket.AF_UNIX) as c:
            c.settimeout(10)
            c.connect(path)
            c.sendall(b"x")
            assert recv_exactly(c, 1) == b"x"
            with pytest.raises(TimeoutError):
                a.wait_for("idle", unit="e.service", timeout=3 * IDLE)
        a.wait_for("idle", unit="e.service", timeout=10)
        a.wait_for("exit", unit="e.service")  # (one accepted while it stops would be its own)
        echo_once(path, socket.AF_UNIX)
        assert a.count("start", unit="e.service") == 2


def test_proxied_service_scales_to_zero_without_losing_a_connection(loop_kind):
    """Proxied, activator counts: idle stop after the last relay ends; a client that comes
    while the service is stopping waits in activator and is relayed by the next start."""
    port, backend = free_port(), free_port()
    u = {
        "p.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n"
        f"X-Activator-ProxyTo=127.0.0.1:{backend}\n",
        "p.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {program()} 127.0.0.1 {backend}\n"
        f"User=nobody\nX-Activator-IdleStopSec={IDLE}s\nTimeoutStopSec=5\n",
    }
    with Activator(u, loop=loop_kind) as a:
        echo_once(("127.0.0.1", port))
        a.wait_for("idle", unit="p.service", timeout=10)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:  # while stopping
            a.wait_for("exit", unit="p.service")
            c.sendall(b"late")
            assert recv_exactly(c, 4) == b"late"
        assert a.count("start", unit="p.service") == 2
        st = a.status("p.socket")
        assert st["proxy"]["relayed"] == 2 and st["refused"]["ip_deny"] == 0

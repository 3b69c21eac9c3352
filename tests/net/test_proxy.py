"""issue 16: X-Activator-ProxyTo= — activator accepts on an Accept=no socket, starts a service
that binds its own port, waits until that port accepts and relays every connection (C,
splice), half-close and resets passed on, the PROXY protocol header on request, and the
socket's admission rules applied by activator; real activator, real service (as nobody)."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest
from harness import SYSTEM_PYTHON, Activator, free_port, public_dir, read_all, recv_exactly

from activator.runtime.proxy import proxy_header

pytestmark = pytest.mark.root

# A program that knows nothing of socket activation: binds its own port (after a moment,
# as real servers do), echoes every chunk raw, answers b"EOF" to a half-close, resets on
# b"RST\n". Run as nobody with Debian's python.
ECHO = """\
import os, socket, sys, threading, time
host, port = sys.argv[1], int(sys.argv[2])
time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
s.listen(128)
def serve(c):
    while True:
        try:
            chunk = c.recv(65536)
        except OSError:
            break
        if not chunk:
            c.sendall(b"EOF")
            break
        if chunk.endswith(b"RST\\n"):
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\\1\\0\\0\\0\\0\\0\\0\\0")
            break
        c.sendall(chunk)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def program() -> Path:
    d = public_dir()
    (d / "echo.py").write_text(ECHO)
    return d / "echo.py"


def units(port: int, backend: int, extra: str = "", delay: float = 0.2, svc: str = "") -> dict:
    return {
        "p.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n"
        f"X-Activator-ProxyTo=127.0.0.1:{backend}\n{extra}",
        "p.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {program()} 127.0.0.1 {backend} "
        f"{delay}\nUser=nobody\n{svc}",
    }


def test_first_connection_starts_the_service_and_all_are_relayed(loop_kind):
    """Five clients connect before the service listens (it waits 0.2 s before binding):
    each waits for the backend and is relayed; a half-close goes through both ways."""
    port, backend = free_port(), free_port()
    with Activator(units(port, backend), loop=loop_kind) as a:
        clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(5)]
        a.wait_for("trigger", unit="p.socket")
        for i, c in enumerate(clients):
            c.sendall(b"hello %d\n" % i)
        for i, c in enumerate(clients):
            assert recv_exactly(c, 8) == b"hello %d\n" % i
            c.shutdown(socket.SHUT_WR)  # half-close: the backend still answers
            assert read_all(c) == b"EOF"
            c.close()
        assert a.count("trigger") == 1 and a.count("start", unit="p.service") == 1
        st = a.status("p.socket")
        assert st["proxy"]["relayed"] == 5 and st["proxy"]["backend"] == "ready"
        big = bytes(range(256)) * 4096  # 1 MiB through the pipes, both ways
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(big)
            c.shutdown(socket.SHUT_WR)
            assert read_all(c) == big + b"EOF"


def test_the_service_gets_none_of_the_proxied_fds(loop_kind):
    port, backend = free_port(), free_port()
    out = public_dir() / "fds"
    out.write_text("")
    out.chmod(0o666)
    u = units(port, backend)
    u["p.service"] = (
        f"[Service]\nExecStart=/bin/sh -c 'echo fds=$${{LISTEN_FDS:-none}} >> {out}'\nUser=nobody\n"
    )
    with Activator(u, loop=loop_kind) as a:
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            a.wait_for("exit", unit="p.service")
        a.stop()
        assert out.read_text().splitlines()[0] == "fds=none", a.log_text()


def test_resets_are_passed_on(loop_kind):
    port, backend = free_port(), free_port()
    with Activator(units(port, backend, delay=0), loop=loop_kind) as a:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(b"x\n")
            assert recv_exactly(c, 2) == b"x\n"
            c.sendall(b"RST\n")  # the backend resets: so does the relay, to the client
            with pytest.raises(ConnectionResetError):
                while c.recv(10):
                    pass
        st = a.status("p.socket")
        assert st["proxy"]["active"] == 0 and st["NConnections"] == 0


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_proxy_protocol_header(loop_kind, version):
    port, backend = free_port(), free_port()
    u = units(port, backend, f"X-Activator-ProxyProtocol={version}\n", delay=0)
    with Activator(u, loop=loop_kind):
        with socket.socket() as c:
            c.bind(("127.0.0.9", 0))
            c.settimeout(10)
            c.connect(("127.0.0.1", port))
            sport = c.getsockname()[1]
            want = proxy_header(version, ("127.0.0.9", sport), ("127.0.0.1", port))
            assert recv_exactly(c, len(want)) == want  # the echo of what the backend read first
    if version == "v1":
        assert want == f"PROXY TCP4 127.0.0.9 127.0.0.1 {sport} {port}\r\n".encode()
    else:
        assert want[:12] == b"\r\n\r\n\x00\r\nQUIT\n" and want[12:14] == b"\x21\x11"
        length = struct.unpack("!H", want[14:16])[0]
        assert length == 12 and want[16:20] == socket.inet_aton("127.0.0.9")
        assert struct.unpack("!HH", want[24:28]) == (sport, port)


def test_header_for_ipv6_and_unix_peers():
    h = proxy_header("v2", ("::1", 5), ("::1", 80))
    assert h[13] == 0x21 and struct.unpack("!H", h[14:16])[0] == 36
    assert proxy_header("v1", ("::1", 5), ("::1", 80)) == b"PROXY TCP6 ::1 ::1 5 80\r\n"
    assert proxy_header("v1", None, None) == b"PROXY UNKNOWN\r\n"
    assert proxy_header("v2", None, None)[12:16] == b"\x20\x00\x00\x00"


def test_a_backend_that_never_listens_is_bounded_by_timeoutstartsec(loop_kind):
    port, backend = free_port(), free_port()
    u = units(port, backend, delay=3600, svc="TimeoutStartSec=1\n")
    with Activator(u, loop=loop_kind) as a:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            f = a.wait_for("failed", unit="p.socket", timeout=10)
            assert "did not accept connections within 1s" in f["reason"]
            with pytest.raises(ConnectionResetError):
                c.recv(10)


@pytest.mark.slow
def test_rates_and_sources_apply_to_proxied_connections(loop_kind):
    """1,500 sources on 127.0.0.0/8, two connections each, X-Activator-ConnectionRate=1/1h:
    the first of each is relayed, the second reset by activator — the service never sees it."""
    port, backend = free_port(), free_port()
    u = units(port, backend, "X-Activator-ConnectionRate=1/1h\n", delay=0)
    with Activator(u, loop=loop_kind) as a:
        relayed = reset = 0
        for i in range(1500):
            src = f"127.8.{i // 250}.{i % 250 + 1}"
            for _ in range(2):
                c = socket.socket()
                c.bind((src, 0))
                c.settimeout(10)
                try:
                    c.connect(("127.0.0.1", port))
                    c.sendall(b"x\n")
                    if c.recv(2) == b"x\n":
                        relayed += 1
                except ConnectionResetError:
                    reset += 1
                finally:
                    c.close()
        assert (relayed, reset) == (1500, 1500)
        st = a.status("p.socket")
        assert st["refused"]["rate"] == 1500 and st["proxy"]["relayed"] == 1500

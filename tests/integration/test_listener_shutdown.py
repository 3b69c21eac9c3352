"""Issue 15 item 7: a service that calls shutdown() on its listener.

It kills activator's listener too (one open file description). Before: activator
re-triggered on the hang-up until the start limit, every later client was refused, and
``status`` still showed the address as if it listened. Now the hang-up is seen at once
(also while the service runs), logged in systemd's words, and the socket fails (Result:
resources); ``status`` says the listener is closed; stopping the service and starting
the socket again binds afresh.
"""

from __future__ import annotations

import socket

import pytest
from harness import SYSTEM_PYTHON, Activator, free_port, public_dir, read_line

pytestmark = [pytest.mark.root, pytest.mark.chaos]

# Answers one connection, shuts the listener down, then exits or stays (waiting for a signal).
SHUTTER = r"""
import signal, socket, sys
lst = socket.socket(fileno=3)
c, _ = lst.accept()
c.sendall(b"served\n")
c.close()
lst.shutdown(socket.SHUT_RDWR)
if sys.argv[1] == "stay":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    while True:
        signal.pause()
"""


def refused(addr) -> bool:
    fam = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as c:
        c.settimeout(5)
        try:
            c.connect(addr)
        except (ConnectionRefusedError, FileNotFoundError):
            return True
        # a unix listener after shutdown(): refused by connect(); TCP: no SYN-ACK, RST
        try:
            return c.recv(1) == b""
        except (ConnectionResetError, TimeoutError):
            return True


@pytest.mark.parametrize("after", ["stay", "exit"])
@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_issue_15_listener_shut_down_by_its_service_fails_the_socket(loop_kind, after, family):
    d = public_dir()
    prog = d / "shutter.py"
    prog.write_text(SHUTTER)
    prog.chmod(0o644)
    if family == "tcp":
        port = free_port()
        listen, addr = f"127.0.0.1:{port}", ("127.0.0.1", port)
    else:
        path = str(d / "s.sock")
        listen, addr = path, path
    units = {
        "t.socket": f"[Socket]\nListenStream={listen}\nSocketMode=0666\n",
        "t.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {prog} {after}\nUser=nobody\n",
    }
    with Activator(units, loop=loop_kind) as a:
        assert read_line(addr) == b"served\n"
        failed = a.wait_for("failed", unit="t.socket")
        assert failed["result"] == "resources" and failed["address"] == listen
        assert "The service probably invoked shutdown() on it" in failed["reason"]
        st = a.status("t.socket")
        assert st["active"] == "failed" and st["result"] == "resources"
        assert [x["listening"] for x in st["listen"]] == [False]
        text = a.ctl("status", "t.socket").stdout
        assert f"Listen: {listen} (Stream) as t.socket (closed)" in text
        # no trigger loop on the hang-up: one start, no start-limit-hit
        for _ in range(3):
            assert refused(addr)
        assert a.count("trigger", unit="t.socket") == 1
        assert a.count("start", unit="t.service") == 1
        assert not any(e.get("result") == "start-limit-hit" for e in a.events)
        # the way back: the service lets go of its dead copy, the socket binds afresh
        if after == "stay":
            a.ctl("stop", "t.service", check=True)
        else:
            a.wait_for("exit", unit="t.service")
        a.ctl("start", "t.socket", check=True)
        assert a.status("t.socket")["listen"][0]["listening"]
        assert read_line(addr) == b"served\n"

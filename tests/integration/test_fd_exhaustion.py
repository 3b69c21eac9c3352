"""Issue 15 item 5: out of fds, the event-loop Accept=yes path serves every connection.

Under ``ulimit -n 64``, 300 connections at C=150 on a unit with ExecStartPre= (which the
accept lane does not take) were 37 served and 263 dropped: activator accepted, then the
instance failed for lack of fds (step=stderr status=222). The accept lane left them in
the backlog. Now the event loop does too: it sets up a connection only with fds to
spare, holds the one it accepted, and goes on when an instance ends.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
from harness import Activator, free_port
from reliability import record

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.chaos]

N, C = 300, 150


def echo(port: int, i: int) -> bool:
    payload = b"%d\n" % i
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as c:
            c.sendall(payload)
            c.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := c.recv(4096):
                data += chunk
        return data == payload
    except OSError:
        return False


@pytest.mark.parametrize("path", ["event loop", "accept lane"])
def test_issue_15_ulimit_64_serves_every_connection(loop_kind, path):
    port = free_port()
    pre = "ExecStartPre=/bin/true\n" if path == "event loop" else ""
    units = {
        "e.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nBacklog=512\n"
        "MaxConnections=1024\n",
        "e@.service": f"[Service]\n{pre}ExecStart=/bin/cat\nStandardInput=socket\nUser=nobody\n",
    }
    with Activator(units, loop=loop_kind, nofile=64) as a:
        with ThreadPoolExecutor(C) as pool:
            served = sum(pool.map(lambda i: echo(port, i), range(N)))
        st = a.status("e.socket")
        assert path.split()[0] in (st["accept_path"] or ""), st["accept_path"]
        failed = [e for e in a.events if e.get("event") == "failed"]
        record(f"ulimit -n 64, {N} at C={C}, {path} ({loop_kind})", served=f"{served}/{N}",
               held_back=a.count("warning", unit="e.socket"))  # fmt: skip
        assert served == N, f"{served}/{N} served; {len(failed)} failed: {failed[:3]}"
        assert st["NAccepted"] == N

"""Privileges across many spawns (issue 15): every child with its ids dropped, no
capabilities unless the unit asks for them, only its own fds.

``make soak``: 10,000 spawns (``make test``: 600), through the accept lane and the event
loop, as nobody with nothing, and as nobody with AmbientCapabilities= and
NoNewPrivileges=. Each instance is tests/soak/privcheck.c, which writes one line of what
/proc says of it; every line must be the expected one.
"""

from __future__ import annotations

import collections
import os
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
from harness import Activator, free_port, public_dir
from reliability import public_tool, record, scale

pytestmark = [pytest.mark.root, pytest.mark.slow]

HERE = os.path.dirname(os.path.abspath(__file__))
NOBODY = "uid=65534,65534,65534,65534 gid=65534,65534,65534,65534 groups=65534"
NET_BIND_SERVICE = f"{1 << 10:016x}"
ZERO = "0" * 16


def bounding() -> str:
    """The bounding set a service keeps when its unit says nothing (activator's own)."""
    with open("/proc/self/status") as f:
        return next(line.split()[1] for line in f if line.startswith("CapBnd:"))


def ask(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
        return c.makefile().readline().strip()


def test_privileges_across_spawns(loop_kind):
    n = scale("soak", 600, 10_000)
    check = public_tool("privcheck", public_dir(), os.path.join(HERE, "privcheck.c"))
    ports = {k: free_port() for k in ("lane", "loop", "caps")}
    units = {
        # the accept lane: the connection on stdio, nothing else
        "lane.socket": f"[Socket]\nListenStream=127.0.0.1:{ports['lane']}\nAccept=yes\n",
        "lane@.service": f"[Service]\nExecStart={check}\nStandardInput=socket\nUser=nobody\n",
        # the event loop (ExecStartPre=): the connection as fd 3, LISTEN_FDS=1
        "loop.socket": f"[Socket]\nListenStream=127.0.0.1:{ports['loop']}\nAccept=yes\n",
        "loop@.service": f"[Service]\nExecStartPre=/bin/true\nExecStart={check}\nUser=nobody\n",
        # asked for: one ambient capability, and no way to gain more
        "caps.socket": f"[Socket]\nListenStream=127.0.0.1:{ports['caps']}\nAccept=yes\n",
        "caps@.service": f"[Service]\nExecStart={check}\nStandardInput=socket\nUser=nobody\n"
        "AmbientCapabilities=CAP_NET_BIND_SERVICE\nNoNewPrivileges=yes\n",
    }
    bnd = bounding()
    want = {
        "lane": f"{NOBODY} cap={ZERO},{ZERO},{ZERO},{bnd},{ZERO} nnp=0 fds=0,1,2",
        "loop": f"{NOBODY} cap={ZERO},{ZERO},{ZERO},{bnd},{ZERO} nnp=0 fds=0,1,2,3",
        "caps": f"{NOBODY} cap={NET_BIND_SERVICE},{NET_BIND_SERVICE},{NET_BIND_SERVICE},"
        f"{bnd},{NET_BIND_SERVICE} nnp=1 fds=0,1,2",
    }
    share = {"lane": n // 2, "loop": n // 4, "caps": n - n // 2 - n // 4}
    with Activator(units, loop=loop_kind) as a:
        with ThreadPoolExecutor(8) as pool:
            got = {
                k: collections.Counter(pool.map(lambda _i, k=k: ask(ports[k]), range(share[k])))
                for k in share
            }
        paths = {k: a.status(f"{k}.socket")["accept_path"] for k in share}
    record(
        f"privileges across {n:,} spawns ({loop_kind})",
        **{k: f"{got[k][want[k]]}/{share[k]} as expected" for k in share},
    )
    assert "lane" in paths["lane"] and "event loop" in paths["loop"], paths
    for k in share:
        assert got[k] == {want[k]: share[k]}, (k, got[k].most_common(3))

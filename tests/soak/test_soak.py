"""Soak (issue 15): many connections, and activator the same afterwards.

``make soak`` (SOAK_SCALE=full): 1,000,000 Accept=yes connections through the accept lane,
200,000 through the event loop, and 1,000,000 Accept=no triggers (uvloop; 100,000 with
asyncio), each starting the service again (it serves one connection and exits). ``make test`` runs a short version
(15,000, 15,000, 5,000).
Expectation: 0 errors; from the end of the warm-up to the end, RSS grows less than
1 MiB, the fd and thread counts are the same, no zombie is left. The warm-up is the first
tenth, and at least WARMUP connections: the event-loop path's RSS settles only after
some 8,000 (the allocator's arenas and Python's free lists filling), flat after that.
Services are bench/svc_hello (C, as nobody) and the client bench/loadgen (C, C=16).
"""

from __future__ import annotations

import time

import pytest
from harness import Activator, free_port, public_dir
from reliability import (
    fd_count,
    loadgen,
    public_tool,
    record,
    rss_kib,
    scale,
    thread_count,
    zombies_of,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]

RESPONSE = "hello from svc_hello\n"
WARMUP = 10_000


def quiet(a: Activator, unit: str) -> bool:
    """Nothing of ``unit`` runs any more, and activator has reaped it all."""
    st = a.status(unit)
    running = st.get("NConnections", 0) if "listen" in st else st["active"] != "inactive"
    return not running and not zombies_of(a.pid)


def settle(a: Activator, unit: str) -> None:
    """Until ``quiet()``: each look after the next exit line (bounded)."""
    deadline = time.monotonic() + 60
    while not quiet(a, unit):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{unit}: still running")
        try:
            a.wait_for("exit", timeout=1, start=len(a.events))
        except TimeoutError:
            pass  # the last exit came before we looked: look again


def soak(
    a: Activator, port: int, n: int, unit: str, label: str, loop_kind: str, warmup: int
) -> None:
    chunk = max(1000, n // 10)
    errors = done = 0
    samples = []
    began = time.monotonic()
    while done < n:
        r = loadgen(port, min(warmup if not samples else chunk, n - done), 16, tlimit=3600)
        done += r["started"]
        errors += r["errors"]
        settle(a, unit)
        samples.append((done, rss_kib(a.pid), fd_count(a.pid), thread_count(a.pid)))
        if r["started"] == 0:
            break
    warm, end = samples[0], samples[-1]
    zombies = zombies_of(a.pid)
    record(
        f"soak {label} ({loop_kind})",
        connections=done,
        errors=errors,
        rate=f"{done / (time.monotonic() - began):.0f}/s",
        rss_kib=f"{warm[1]} -> {end[1]} ({end[1] - warm[1]:+d})",
        fds=f"{warm[2]} -> {end[2]}",
        threads=f"{warm[3]} -> {end[3]}",
        zombies=len(zombies),
    )
    assert done == n and errors == 0, (done, errors)
    assert end[1] - warm[1] < 1024, f"RSS grew {end[1] - warm[1]} KiB after the warm-up"
    assert (end[2], end[3]) == (warm[2], warm[3]), samples
    assert zombies == []


@pytest.mark.parametrize("path", ["accept lane", "event loop"])
def test_soak_accept_yes(loop_kind, path):
    n = scale("soak", 15_000, 1_000_000 if path == "accept lane" else 200_000)
    svc = public_tool("svc_hello", public_dir())
    port = free_port()
    env = {"ACTIVATOR_ACCEPT_LANE": "1" if path == "accept lane" else "0"}
    units = {
        "e.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nBacklog=1024\n"
        "MaxConnections=256\n",
        "e@.service": f"[Service]\nExecStart={svc} -M inetd\nStandardInput=socket\nUser=nobody\n",
    }
    with Activator(units, loop=loop_kind, env=env) as a:
        soak(a, port, n, "e.socket", f"Accept=yes, {path}", loop_kind, max(n // 10, WARMUP))


def test_soak_accept_no_triggers(loop_kind):
    """Each connection triggers the service, which serves it and exits: every trigger is
    a start of the service again. A million takes hours (a start every ~7 ms: the reaper
    looks at exits again 5 ms after a batch), so the full run gives it to the default
    loop, uvloop, and 100,000 to asyncio."""
    n = scale("soak", 5_000, 1_000_000 if loop_kind == "uvloop" else 100_000)
    svc = public_tool("svc_hello", public_dir())
    port = free_port()
    units = {
        "t.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nBacklog=1024\n"
        "TriggerLimitIntervalSec=0\n",
        "t.service": f"[Unit]\nStartLimitIntervalSec=0\n[Service]\n"
        f"ExecStart={svc} -M listen -n 1\nUser=nobody\n",
    }
    with Activator(units, loop=loop_kind) as a:
        soak(a, port, n, "t.service", "Accept=no triggers", loop_kind, max(n // 10, 2_000))
        assert a.count("start", unit="t.service") >= n // 2  # served by starts, again and again

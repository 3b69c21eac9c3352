"""activatorctl while activator is busy: concurrent calls during a stream of connections."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from ctlhelp import echo_once, echo_units, sync_log
from harness import Activator, free_port

pytestmark = pytest.mark.root


def test_concurrent_ctl_calls_under_connection_load(loop_kind):
    port = free_port()
    with Activator(echo_units(port), loop=loop_kind) as a:
        stop = threading.Event()
        counts = [0, 0, 0]
        ended_early: list[str] = []
        failures: list[str] = []

        def load(i: int) -> None:
            """Echo connections until told to stop; bounded in count and time (either bound
            reached first means the load did not cover the control calls: a failure)."""
            deadline = time.monotonic() + 90
            while not stop.is_set():
                if counts[i] >= 50_000 or time.monotonic() > deadline:
                    ended_early.append(f"loader {i} after {counts[i]} connections")
                    return
                try:
                    if echo_once(port, b"%d\n" % i) != b"%d\n" % i:
                        failures.append("bad echo")
                except OSError as e:
                    failures.append(repr(e))
                counts[i] += 1

        def ctl(verb: str) -> tuple[str, int, str]:
            r = subprocess.run(
                [sys.executable, "-m", "activator.cli.ctl", "--control", a.control, "--json", verb],
                capture_output=True,
                text=True,
                timeout=30,
            )
            return verb, r.returncode, r.stdout

        loaders = [threading.Thread(target=load, args=(i,)) for i in range(3)]
        for t in loaders:
            t.start()
        try:
            # the control calls begin once every loader is under way, and the loaders stop
            # only after the last call answered: the calls overlap the load by construction
            a.until(lambda: min(counts) > 0 or ended_early, timeout=30, what="the load under way")
            assert min(counts) > 0, f"the load did not start: {counts} {failures[:3]}"
            verbs = ["status", "list-units", "list-sockets"] * 8
            with ThreadPoolExecutor(8) as pool:
                results = list(pool.map(ctl, verbs))
        finally:
            stop.set()
            for t in loaders:
                t.join(60)
        assert failures == [], failures[:5]
        assert ended_early == [], ended_early
        for verb, rc, out in results:
            assert rc == 0, (verb, out)
            doc = json.loads(out)
            assert isinstance(doc, list) and doc
        statuses = [json.loads(out) for verb, _, out in results if verb == "status"]
        # instances come and go, but the socket is always there with a growing count
        accepted = [
            next(u for u in st if u["unit"] == "echo.socket")["NAccepted"] for st in statuses
        ]
        assert max(accepted) > 0
        assert a.status("echo.socket")["NAccepted"] == sum(counts)
        sync_log(a)
        assert a.count("traceback") == 0

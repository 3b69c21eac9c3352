"""Chaos: a hostile notify flood (issue 15 item 3).

Every user that services run as has a NOTIFY_SOCKET of its own. A process running as
nobody, belonging to no service, sends datagrams as fast as the kernel takes them
(plain, and with 253 fds each) at the one it can write to — nobody's, there because a
nobody service runs — while a real Type=notify service of another user (daemon) reloads
by notification (RELOADING=1, READY=1) every 20 ms. Root's socket takes the flooder's
datagram (writable by all, as systemd's: a root service may drop privileges before it
notifies) and acts on nothing: the sender belongs to no service.
Expectation: every real notification is acted on, activator stays up; figures:
activator's CPU share during the flood (from /proc) and how long a real notification took
from send to activator's log line.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import pytest
from harness import SYSTEM_PYTHON, Activator, event_time, public_dir
from reliability import cpu_seconds, percentile, record, scale

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.chaos]

# The real service: up, then N reloads by notification, each send time told to the test
# through a datagram socket of its own.
TICKER = r"""
import json, os, socket, sys, time
n, report = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
path = os.environ["NOTIFY_SOCKET"]
def say(msg):
    s.sendto(msg, path)
say(b"READY=1")
for i in range(n):
    time.sleep(0.02)
    t = time.time()
    say(b"RELOADING=1")
    say(b"READY=1")
    s.sendto(json.dumps({"n": i, "ts": t}).encode(), report)
say(b"STATUS=done")
import signal
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
while True:
    signal.pause()
"""

# The attacker: nobody's process, not a service; floods until killed. First it says
# whether root's socket takes its datagrams.
FLOOD = r"""
import os, socket, struct, sys
path, root, nfds = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    s.sendto(b"READY=1", root)
    print("root: sent", flush=True)
except OSError as e:
    print(f"root: {e.strerror}", flush=True)
fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(nfds)]
anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{nfds}i", *fds))] if nfds else []
while True:
    try:
        s.sendmsg([b"READY=1\nSTATUS=flood"], anc, 0, path)
    except OSError:
        pass
"""


@pytest.mark.parametrize("nfds", [0, 253])
def test_chaos_notify_flood_from_nobody(loop_kind, nfds):
    reloads = scale("chaos", 100, 500)
    d = public_dir()
    (d / "ticker.py").write_text(TICKER)
    (d / "flood.py").write_text(FLOOD)
    report = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    report.bind(str(d / "report"))
    os.chmod(d / "report", 0o666)
    report.settimeout(60)
    units = {
        "ticker.service": f"[Service]\nType=notify-reload\nExecStart={SYSTEM_PYTHON} "
        f"{d / 'ticker.py'} {reloads} {d / 'report'}\nUser=daemon\nNotifyAccess=main\n"
        "[Install]\nWantedBy=multi-user.target\n",
        # a service of nobody's, so that nobody has a socket to flood
        "idle.service": "[Service]\nExecStart=/bin/sleep infinity\nNotifyAccess=main\n"
        "User=nobody\n[Install]\nWantedBy=multi-user.target\n",
    }
    with Activator(units, loop=loop_kind) as a:
        a.wait_for("start", unit="ticker.service")
        a.wait_for("start", unit="idle.service")
        flood = subprocess.Popen(
            [
                SYSTEM_PYTHON,
                str(d / "flood.py"),
                str(a.dir / "notify.d" / "65534"),
                str(a.dir / "notify"),
                str(nfds),
            ],
            user=65534,
            group=65534,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert flood.stdout.readline().strip() == "root: sent"
            t0, c0 = time.monotonic(), cpu_seconds(a.pid)
            sent = [json.loads(report.recv(4096)) for _ in range(reloads)]
            at = 0
            for _ in range(reloads):  # the log line of each, bounded
                e = a.wait_for("reloaded", timeout=30, start=at, unit="ticker.service")
                at = a.events.index(e) + 1
            t1, c1 = time.monotonic(), cpu_seconds(a.pid)
            assert flood.poll() is None, "the flood stopped by itself"
        finally:
            flood.kill()
            flood.wait(10)
            flood.stdout.close()
            report.close()
        seen = [e for e in a.events if e.get("event") == "reloaded" and e.get("unit")]
        assert len(sent) == reloads and len(seen) >= reloads, (len(sent), len(seen))
        # latency of each reload: its send time to the next 'reloaded' line after it
        lat, j = [], 0
        for e in sent:
            while j < len(seen) and event_time(seen[j]) < e["ts"]:
                j += 1
            if j < len(seen):
                lat.append((event_time(seen[j]) - e["ts"]) * 1000)
                j += 1
        warned = [e for e in a.events if "over budget" in str(e.get("reason", ""))]
        record(
            f"notify flood from nobody ({nfds} fds/datagram, {loop_kind})",
            activator_cpu=f"{(c1 - c0) / (t1 - t0) * 100:.1f}% of a core",
            seconds=round(t1 - t0, 1),
            reloads=len(lat),
            latency_ms_p50=round(percentile(lat, 50), 2),
            latency_ms_p99=round(percentile(lat, 99), 2),
            latency_ms_max=round(max(lat), 2),
            budget_warnings=len(warned),
        )

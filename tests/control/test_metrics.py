"""Issue 13 item 6: /metrics in Prometheus' text format, read by prometheus-client's own
parser, from a real activator under both loops — and no service woken by a scrape."""

from __future__ import annotations

import socket
import time
import urllib.request

from harness import Activator, free_port, public_dir, read_line
from prometheus_client.parser import text_string_to_metric_families


def scrape(addr: str) -> dict[str, dict]:
    """{metric family: {(labels…): value}} (samples of histograms under their own names)."""
    if addr.startswith("/"):
        raw = _over_unix(addr)
    else:
        with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as r:
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            raw = r.read().decode()
    out: dict[str, dict] = {}
    for family in text_string_to_metric_families(raw):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def _over_unix(path: str) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    return body.decode()


def value(m: dict, name: str, **labels) -> float:
    return m[name][tuple(sorted(labels.items()))]


def test_issue13_metrics_count_connections_states_and_activator_itself(loop_kind, accept_path):
    port, lazy_port, mport = free_port(), free_port(), free_port()
    units = {
        "e.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nMaxConnections=64\n",
        "e@.service": "[Service]\nExecStart=/bin/echo hi\nStandardInput=socket\nUser=nobody\n",
        "lazy.socket": f"[Socket]\nListenStream=127.0.0.1:{lazy_port}\n",
        "lazy.service": "[Service]\nExecStart=/bin/sleep 60\n",
        "bad.service": "[Service]\nType=oneshot\nExecStart=/bin/false\n",
    }
    args = ["--metrics", f"127.0.0.1:{mport}"]
    with Activator(units, loop=loop_kind, env=accept_path, extra_args=args) as a:
        a.wait_for("listen", address=f"127.0.0.1:{mport}")
        for _ in range(3):
            assert read_line(("127.0.0.1", port)) == b"hi\n"
        deadline = time.monotonic() + 20
        while a.count("exit") < 3 and time.monotonic() < deadline:
            a.drain(0.1)
        m = scrape(f"127.0.0.1:{mport}")
        assert value(m, "activator_socket_accepted_total", unit="e.socket") == 3
        assert value(m, "activator_service_starts_total", unit="e@.service") == 3
        assert value(m, "activator_service_ends_total", unit="e@.service", result="success") == 3
        assert value(m, "activator_socket_connections", unit="e.socket") == 0
        assert value(m, "activator_socket_refused_total", unit="e.socket",
                     reason="max-connections") == 0  # fmt: skip
        assert value(m, "activator_socket_state", unit="lazy.socket", state="listening") == 1
        assert value(m, "activator_service_state", unit="lazy.service", state="inactive") == 1
        assert value(m, "activator_system_state", state="running") == 1
        assert value(m, "process_resident_memory_bytes") > 1 << 20
        assert value(m, "process_open_fds") > 3
        assert value(m, "activator_spawn_seconds_count") >= 0
        # a failed unit makes the system degraded (is-system-running's view)
        assert a.ctl("start", "bad.service").returncode == 1
        m = scrape(f"127.0.0.1:{mport}")
        assert value(m, "activator_system_state", state="degraded") == 1
        assert value(m, "activator_service_state", unit="bad.service", state="failed") == 1
        assert value(m, "activator_service_ends_total", unit="bad.service", result="exit-code") == 1
        # scraping woke nothing: the lazy service never started
        assert a.count("start", unit="lazy.service") == 0 and a.count("trigger") == 0


def test_issue13_metrics_on_a_socket_unit_and_a_unix_path(loop_kind):
    """X-Activator-Metrics=yes: a socket unit's listener serves /metrics (no service
    behind it); --metrics PATH serves it on a unix socket."""
    mport = free_port()
    path = str(public_dir() / "metrics.sock")
    units = {
        "metrics.socket": f"[Socket]\nListenStream=127.0.0.1:{mport}\nX-Activator-Metrics=yes\n",
    }
    with Activator(units, loop=loop_kind, extra_args=["--metrics", path]) as a:
        m = scrape(f"127.0.0.1:{mport}")
        assert value(m, "activator_socket_state", unit="metrics.socket", state="listening") == 1
        assert "activator_system_state" in scrape(path)
        assert a.count("trigger") == 0 and a.count("start") == 0
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10) as r:
            assert r.status == 200
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{mport}/other", timeout=10)
        except urllib.error.HTTPError as e:
            assert e.code == 404
        else:
            raise AssertionError("/other answered")

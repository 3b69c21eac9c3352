"""Issue 14, item 1: contrib/docker/Dockerfile built and run in a real engine (podman).

The image is built offline from a base made of Debian's packages (image.py), then run with
activator as PID 1 on the host's network: the example units and rpcbind (enabled by its
own maintainer scripts) answer from the host on loopback, the health check passes,
`podman logs` shows activator's lines, `podman stop` ends it inside the grace period
with status 0. `make image-test` runs this file alone.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time

import pytest
from clients import ask
from image import PODMAN, RUN, base_image, build_image, fill_wheelhouse, podman

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.timeout(1500)]

TAG = "localhost/activator-image-test:latest"
#: What the image listens on, on the host's network (the example units, rpcbind).
PORTS = {"echo": 7007, "httpd": 7080, "udpecho": 7008, "rpcbind": 111}
GRACE = 30  # podman stop -t: the grace period before SIGKILL


def client(what: str, port: int, *rest: str) -> dict:
    """A client (clients.py) on the host's loopback."""
    return ask(what, "127.0.0.1", port, *rest)


def udp_echo(port: int, payload: bytes = b"ping") -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        s.sendto(payload, ("127.0.0.1", port))
        return s.recv(4096)


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Logs:
    """`podman logs --follow` read by a thread; wait for a line by pattern, bounded."""

    def __init__(self, name: str) -> None:
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            [*PODMAN, "logs", "--follow", name],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines.append("<eof>")
            self.cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 60) -> str:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            i = 0
            while True:
                for line in self.lines[i:]:
                    if rx.search(line):
                        return line
                i = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or "<eof>" in self.lines:
                    raise TimeoutError(f"no line like {pattern!r}:\n" + "\n".join(self.lines[-60:]))
                self.cond.wait(left)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.thread.join(timeout=10)
        self.proc.stdout.close()


def test_image_builds_offline_runs_as_pid1_and_stops_cleanly():
    busy = [f"{name} {port}" for name, port in PORTS.items() if port_in_use(port)]
    assert not busy, f"the image listens on the host's network; already taken: {busy}"

    base = base_image()
    assert fill_wheelhouse(), "no wheels for the offline build"
    build_image(TAG, base)
    # The C extension was compiled in the build stage; the runtime stage has no compiler.
    r = podman(
        "run", *RUN, "--rm", "--network=none", "--no-healthcheck", "--entrypoint=/bin/sh", TAG, "-c",
        "! command -v gcc && ! command -v cc && ls /opt/activator/venv/lib/python3*/"
        "site-packages/activator/exec/_spawn*.so",
    )  # fmt: skip
    assert "_spawn" in r.stdout

    name = f"activator-image-test-{time.monotonic_ns()}"
    podman(
        "run", *RUN, "-d", "--name", name, "--network=host", TAG,
    )  # fmt: skip
    logs = Logs(name)
    try:
        logs.wait_for(r"event=ready pid=1 ", timeout=60)
        # The enabled Debian unit: rpcbind.socket bound by activator, rpcbind.service
        # started at boot (its package enabled both), answering the portmapper protocol.
        logs.wait_for(r"event=listen unit=rpcbind\.socket ")
        logs.wait_for(r"event=start unit=rpcbind\.service ")
        assert client("rpc", PORTS["rpcbind"])["port"] == 111
        # The example units: inetd-style echo, lazy HTTP, UDP echo.
        assert client("echo", PORTS["echo"], "hello from the host\n")["ok"]
        assert client("http", PORTS["httpd"])["ok"]
        logs.wait_for(r"event=start unit=httpd\.service ")
        assert udp_echo(PORTS["udpecho"]) == b"ping"
        # The health check (HEALTHCHECK, kept by --format=docker) passes.
        health = podman("healthcheck", "run", name, check=False)
        assert health.returncode == 0, health.stdout + health.stderr
        # Inside: activator is PID 1 and activatorctl reaches it.
        r = podman("exec", name, "activatorctl", "--json", "status", "rpcbind.socket")
        assert json.loads(r.stdout)[0]["active"] == "active"

        t = time.monotonic()
        podman("stop", "-t", str(GRACE), name, timeout=GRACE + 30)
        took = time.monotonic() - t
        logs.wait_for(r"event=exit pid=1 command=activator status=0", timeout=10)
        state = json.loads(podman("inspect", name).stdout)[0]["State"]
        assert state["ExitCode"] == 0, state
        assert took < GRACE, f"podman stop took {took:.1f}s: activator was killed, not stopped"
        # `podman logs` holds activator's lines: boot, services, shutdown.
        text = "\n".join(logs.lines)
        for pattern in (
            r"event=listen unit=echo\.socket ",
            r"event=start unit=echo@",
            r"event=stop unit=rpcbind\.service ",
            r"event=shutdown reason=signal",
        ):
            assert re.search(pattern, text), f"{pattern!r} not in the logs:\n{text[-4000:]}"
    finally:
        logs.close()
        podman("rm", "-f", name, check=False)

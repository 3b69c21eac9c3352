"""Issue 11, real packages: `activator --systemd` as PID 1 boots a Debian rootfs's units.

The rootfs (rootfs.py, cached) has rpcbind, uuid-runtime, cups-daemon, openssh-server and
dbus installed with apt; their maintainer scripts enabled units with deb-systemd-helper.
activator runs as PID 1 of a new PID+mount+network namespace chrooted into an overlay of
it (namespace.py) and must bring up exactly what systemd would start for
multi-user.target (oracle.py reads that from the rootfs itself), every listener bound and
every service answering its own protocol, in an order that honours After=/Before= (read
from activator's JSON log), then on SIGTERM stop them in the reverse order and exit 0.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from clients import ask
from harness import Activator, public_dir
from namespace import in_netns, pid1_wrapper, python_binds
from oracle import Rootfs
from rootfs import REPO

from activator.units.model import PLACEHOLDER_KINDS
from activator.units.targets import is_plumbing

#: What deb-systemd-helper must have enabled at install (a sanity check of the rootfs).
ENABLED_BY_PACKAGES = {
    "rpcbind.socket", "rpcbind.service", "uuidd.socket", "cups.socket", "cups.service",
    "cups.path", "ssh.service", "dbus.socket", "dbus.service", "nginx.service",
    "cron.service",
}  # fmt: skip
#: Enabled too, but systemd would not start it: it Requires=syslog.socket, which only the
#: systemd package ships ("Unit syslog.socket not found.").
NEEDS_WHAT_IS_NOT_THERE = "rsyslog.service"

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.timeout(1200)]


def expected_units(root: Path) -> tuple[Rootfs, set[str]]:
    """What systemd would start for multi-user.target, less systemd's own plumbing."""
    fs = Rootfs(root)
    units = {u for u in fs.closure("multi-user.target") if not is_plumbing(u)}
    return fs, units


def systemctl_enabled(root: Path) -> set[str] | None:
    """Debian's own view of what is enabled in root, when systemctl is at hand."""
    if shutil.which("systemctl") is None:
        return None
    r = subprocess.run(
        ["systemctl", f"--root={root}", "list-unit-files", "--state=enabled", "--no-legend"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    return {line.split()[0] for line in r.stdout.splitlines() if line.strip()}


def inside(pid: int, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess:
    """argv in every namespace of pid and chrooted as it is: a client in the container."""
    cmd = ["nsenter", f"--target={pid}", "--mount", "--net", "--pid", "--root", "--wd", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def client(pid: int, what: str, host: str, port: int) -> dict:
    """A client (clients.py) on the loopback of pid's network namespace."""
    return ask(what, host, port, prefix=in_netns(pid, []))


def unix_request(path: Path, request: bytes) -> bytes:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(path))
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def assert_cupsd_answers(root: Path) -> None:
    """cupsd itself answers HTTP on its socket (no web pages installed: a 404, from CUPS)."""
    reply = unix_request(root / "run/cups/cups.sock", b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.") and b"\r\nServer: CUPS/" in reply, reply[:200]


def index(events: list[dict], event: str, unit: str | None, *, start: int = 0, last: bool = False):
    hits = [
        i
        for i, e in enumerate(events)
        if i >= start and e.get("event") == event and e.get("unit") == unit
    ]
    if not hits:
        return None
    return hits[-1] if last else hits[0]


def up_index(fs: Rootfs, events: list[dict], unit: str) -> int | None:
    """Where the unit finished starting: a notify service's READY=1, a socket's last
    listener, a target reached; a simple service once started."""
    if unit.endswith(".service"):
        return index(events, up_event(fs, unit), unit)
    if unit.endswith(".socket"):
        return index(events, "listen", unit, last=True)
    return index(events, "reached", unit)


def up_event(fs: Rootfs, service: str) -> str:
    """The log line of a service that is up: READY=1 for Type=notify, else its start."""
    return "ready" if fs.unit(service).get("Service", "Type")[-1:] == ["notify"] else "start"


def begin_index(events: list[dict], unit: str) -> int | None:
    """Where the unit began to start."""
    for event in ("start", "listen", "reached"):
        i = index(events, event, unit)
        if i is not None:
            return i
    return None


def test_debian_packages_boot_as_systemd_would(boot_rootfs, loop_kind):
    fs, expected = expected_units(boot_rootfs)

    # The packages enabled their units the Debian way, and the oracle agrees with Debian's
    # systemctl on what is enabled.
    assert ENABLED_BY_PACKAGES <= expected, ENABLED_BY_PACKAGES - expected
    assert NEEDS_WHAT_IS_NOT_THERE in fs.linked("multi-user.target", "wants")
    assert NEEDS_WHAT_IS_NOT_THERE not in expected
    enabled = systemctl_enabled(boot_rootfs)
    if enabled is not None:  # less what a container skips (fstrim.timer: !container)
        enabled = {u for u in enabled if not fs.skipped(u) and not fs.unstartable(u)}
        assert enabled <= expected, f"systemctl says enabled, the oracle not: {enabled - expected}"
    services = {u for u in expected if u.endswith(".service")}
    sockets = {u for u in expected if u.endswith(".socket")}

    scratch = public_dir("activator-rootfs-")
    wrapper = pid1_wrapper(boot_rootfs, scratch, python_binds(REPO))
    with Activator(
        {}, loop=loop_kind, extra_args=["--systemd"], wrapper=wrapper, ready_timeout=90
    ) as a:
        assert a.ready["pid"] == 1
        # activator is ready once default.target is reached; a unit that target is not
        # ordered after (rpcbind.service: DefaultDependencies=no) may come up later still.
        for unit in sorted(services):
            a.wait_for(up_event(fs, unit), timeout=60, unit=unit)
        boot = list(a.events)

        # Exactly the expected units are up; nothing else was started.
        listed = json.loads(a.ctl("--json", "list-units", check=True).stdout)
        active = {u["unit"] for u in listed if u["active"] == "active"}
        running = {u for u in active if u.endswith((".service", ".socket"))}
        assert running == services | sockets, (
            f"missing {sorted((services | sockets) - running)}, "
            f"extra {sorted(running - services - sockets)}"
        )
        assert "multi-user.target" in active

        # Every listener of every socket is bound: unix sockets in the namespace's /run,
        # inet ones on its loopback.
        root = Path(f"/proc/{a.pid}/root")
        for sock in sorted(sockets):
            for spec in fs.unit(sock).get("Socket", "ListenStream"):
                if spec.startswith("/"):
                    assert stat.S_ISSOCK((root / spec.lstrip("/")).stat().st_mode), spec

        # Each service answers its own protocol through what activator handed it.
        assert client(a.pid, "ssh", "127.0.0.1", 22)["banner"].startswith("SSH-2.0-OpenSSH")
        assert client(a.pid, "ssh", "::1", 22)["ok"]
        assert client(a.pid, "rpc", "127.0.0.1", 111)["port"] == 111
        assert client(a.pid, "http", "127.0.0.1", 80)["ok"]  # nginx, forked, by PIDFile=
        # rsyslog is left out, and the log says why.
        w = a.wait_for("warning", unit=NEEDS_WHAT_IS_NOT_THERE)
        assert "syslog.socket" in w["reason"] and "not found" in w["reason"], w
        assert_cupsd_answers(root)
        r = inside(
            a.pid,
            "/usr/bin/dbus-send", "--system", "--print-reply", "--dest=org.freedesktop.DBus",
            "/", "org.freedesktop.DBus.ListNames",
        )  # fmt: skip
        assert r.returncode == 0 and '"org.freedesktop.DBus"' in r.stdout, r.stderr
        # uuidd.service is not enabled: its socket starts it on the first request.
        assert a.status("uuidd.service")["active"] == "inactive"
        r = inside(a.pid, "/usr/sbin/uuidd", "--time")
        assert r.returncode == 0 and len(r.stdout.strip()) == 36, (r.stdout, r.stderr)
        a.wait_for("start", unit="uuidd.service")
        assert a.status("uuidd.service")["active"] == "active"

        # Placeholders (.timer, .path: no such thing in a container) count as present.
        placeholders = {u for u in active if u.rpartition(".")[2] in PLACEHOLDER_KINDS}
        assert {u for u in expected if u.rpartition(".")[2] in PLACEHOLDER_KINDS} <= placeholders

        # Start order honours After=/Before= (and systemd's implicit orderings). A
        # placeholder is active from the start and logs nothing: not part of the order.
        started = (services | {u for u in active if not u.endswith(".service")}) - placeholders
        for unit in sorted(started):
            b = begin_index(boot, unit)
            assert b is not None, f"{unit} never started; log:\n{a.log_text()}"
            for dep in fs.after(unit, started):
                u = up_index(fs, boot, dep)
                assert u is not None and u < b, f"{unit} began before {dep} was up"

        # cups.socket is PartOf=cups.service: a restart of the service restarts both, the
        # socket listening again before cupsd starts (this failed with "already active").
        r = a.ctl("restart", "cups.service")
        assert r.returncode == 0, r.stderr
        assert_cupsd_answers(root)
        # The restart and the uuidd activation are after boot: the stop order below
        # compares units by their dependencies, whenever each started.

        scratch_pid = a.pid
        status = a.stop(timeout=60)
        assert status == 0, a.log_text()

    # SIGTERM stopped them in the reverse order: a unit is down before what it is after
    # begins to stop.
    events = a.events
    shutdown = index(events, "shutdown", None)
    assert shutdown is not None
    for unit in sorted(started):
        down = (
            index(events, "exit", unit, start=shutdown, last=True)
            if unit.endswith(".service")
            else index(events, "stop", unit, start=shutdown)
        )
        assert down is not None, f"{unit} did not stop; log:\n{a.log_text()}"
        for dep in fs.after(unit, started):
            stopping = index(events, "stop", dep, start=shutdown)
            assert stopping is not None and down < stopping, f"{dep} stopped before {unit}"
    last = events[-1]
    assert (last["event"], last["pid"], last["status"]) == ("exit", 1, 0), last
    # PID 1 left nothing behind: its namespace is gone with it.
    assert not os.path.exists(f"/proc/{scratch_pid}")
    shutil.rmtree(scratch, ignore_errors=True)

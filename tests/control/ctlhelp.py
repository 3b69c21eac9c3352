"""Helpers for the control-socket tests: units, raw protocol clients, callers as nobody."""

from __future__ import annotations

import json
import socket
import subprocess

from harness import SYSTEM_PYTHON


def probe_service(probe: str, extra: str = "", mode: str = "serve") -> str:
    """The probe as an Accept=no service, as nobody; "serve" keeps answering until killed."""
    return f"[Service]\nExecStart={SYSTEM_PYTHON} {probe} {mode}\nUser=nobody\n{extra}"


def echo_units(
    port: int, name: str = "echo", extra_socket: str = "", extra_service: str = ""
) -> dict[str, str]:
    """An inetd-style echo: one /bin/cat per connection, as nobody."""
    return {
        f"{name}.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"
        f"MaxConnections=256\n{extra_socket}",
        f"{name}@.service": "[Service]\nExecStart=/bin/cat\nStandardInput=socket\nUser=nobody\n"
        f"{extra_service}",
    }


def refused(port: int) -> bool:
    """Whether a connection to 127.0.0.1:port is refused (nothing listens)."""
    with socket.socket() as s:
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
        return False


def echo_once(port: int, payload: bytes = b"ping\n", timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := c.recv(65536):
            data += chunk
    return data


def raw_request(path: str, data: bytes, timeout: float = 10.0, shut: bool = True) -> dict | None:
    """Send bytes as they are, read one answer line; None when the daemon closed without one."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon answered and closed before taking everything
        buf = b""
        while b"\n" not in buf:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
    return json.loads(buf) if buf else None


def request(verb: str, units=(), v=1, **args) -> bytes:
    return (json.dumps({"v": v, "verb": verb, "units": list(units), "args": args}) + "\n").encode()


# A client that knows nothing of activator (nobody may not be able to read /work/main):
# speaks the protocol by hand and prints the answer, or the OSError it met.
_RAW_CLIENT = r"""
import json, socket, sys
path, data = sys.argv[1], sys.argv[2].encode() + b"\n"
try:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    buf = b""
    while b"\n" not in buf:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        buf += chunk
    print(json.dumps({"answer": json.loads(buf) if buf else None}))
except OSError as e:
    print(json.dumps({"errno": e.errno, "error": str(e)}))
"""


def request_as(path: str, data: bytes, *, uid: int = 65534, gid: int = 65534, groups=()) -> dict:
    """Run a raw protocol client as another user (Debian's python3, standard library only)."""
    r = subprocess.run(
        [SYSTEM_PYTHON, "-I", "-c", _RAW_CLIENT, path, data.decode().rstrip("\n")],
        user=uid,
        group=gid,
        extra_groups=list(groups),
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def sync_log(a) -> None:
    """Read activator's log up to now: a request that logs a line (reset-failed logs
    event=control), answered after every line written before it."""
    start = len(a.events)
    r = raw_request(a.control, request("reset-failed", ["sync-marker.service"]))
    assert r["error"] == "unknown-unit"
    a.wait_for("control", verb="reset-failed", names="sync-marker.service", start=start)

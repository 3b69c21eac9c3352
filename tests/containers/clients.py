"""Clients the container tests run where the services are: `python clients.py WHAT HOST PORT`.

Each prints one line of JSON with what the service answered, and exits 0 only if it
answered as that protocol does. Run through ``nsenter --net`` (a namespace's loopback)
or on the host (a container with ``--network=host``). Standard library only: the host's
interpreter runs it, with a bound on every wait.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
from collections.abc import Sequence

TIMEOUT = 10.0

PMAP_PROG, PMAP_VERS, PMAPPROC_GETPORT = 100000, 2, 3
IPPROTO_TCP = 6


def ssh_banner(host: str, port: int) -> dict:
    """The identification string an SSH server sends first (RFC 4253 4.2)."""
    with socket.create_connection((host, port), timeout=TIMEOUT) as s:
        data = s.recv(256)
    return {"banner": data.decode(errors="replace").strip(), "ok": data.startswith(b"SSH-2.0-")}


def rpc_getport(host: str, port: int, proto: str = "tcp") -> dict:
    """Ask a portmapper (rpcbind) where the portmapper itself is: PMAPPROC_GETPORT
    (RFC 1833) for program 100000 version 2 over TCP; the answer is its own port."""
    xid = 0x5EED
    body = struct.pack(
        ">IIIIII" + "IIII" + "IIII",
        xid, 0, 2, PMAP_PROG, PMAP_VERS, PMAPPROC_GETPORT,
        0, 0, 0, 0,  # AUTH_NONE credential and verifier
        PMAP_PROG, PMAP_VERS, IPPROTO_TCP, 0,
    )  # fmt: skip
    if proto == "tcp":
        with socket.create_connection((host, port), timeout=TIMEOUT) as s:
            s.sendall(struct.pack(">I", 0x80000000 | len(body)) + body)
            reply = _read_record(s)
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(TIMEOUT)
            s.sendto(body, (host, port))
            reply = s.recv(4096)
    rxid, mtype, stat, _flavor, vlen = struct.unpack(">IIIII", reply[:20])
    accept, answer = struct.unpack(">II", reply[20 + vlen : 28 + vlen])
    ok = rxid == xid and mtype == 1 and stat == 0 and accept == 0
    return {"port": answer, "ok": ok and answer == port}


def _read_record(s: socket.socket) -> bytes:
    out = b""
    while True:
        (mark,) = struct.unpack(">I", _read_exactly(s, 4))
        out += _read_exactly(s, mark & 0x7FFFFFFF)
        if mark & 0x80000000:
            return out


def _read_exactly(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def http_get(host: str, port: int, path: str = "/") -> dict:
    """One HTTP/1.0 GET; the status line and the body."""
    with socket.create_connection((host, port), timeout=TIMEOUT) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    return {"status": status, "body": body.decode(errors="replace"), "ok": " 200 " in status}


def echo(host: str, port: int, payload: str = "ping\n") -> dict:
    """Send a line, half-close, read to EOF."""
    with socket.create_connection((host, port), timeout=TIMEOUT) as s:
        s.sendall(payload.encode())
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return {"reply": data.decode(errors="replace"), "ok": data == payload.encode()}


CLIENTS = {"ssh": ssh_banner, "rpc": rpc_getport, "http": http_get, "echo": echo}


def ask(what: str, host: str, port: int, *rest: str, prefix: Sequence[str] = ()) -> dict:
    """Run this file as a client (behind ``prefix``, e.g. nsenter into a namespace's
    network) and return its answer; AssertionError if the service did not answer."""
    r = subprocess.run(
        [*prefix, sys.executable, __file__, what, host, str(port), *rest],
        capture_output=True,
        text=True,
        timeout=30,
    )
    answer = json.loads(r.stdout or "{}")
    assert r.returncode == 0, f"{what} {host}:{port}: {answer} {r.stderr}"
    return answer


def main(argv: list[str]) -> int:
    what, host, port, *rest = argv
    try:
        answer = CLIENTS[what](host, int(port), *rest)
    except (OSError, EOFError, struct.error) as e:
        answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    print(json.dumps(answer))
    return 0 if answer["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

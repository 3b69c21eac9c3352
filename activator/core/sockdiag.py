"""How many connections a listener's address has now, from the kernel (NETLINK_SOCK_DIAG).

For X-Activator-IdleStopSec= on a service that accepts its connections itself: activator
never sees them, but the kernel lists every socket of the namespace, and an accepted
connection carries its listener's local address and port (TCP) or its path (unix), so
counting them needs no privilege and no cooperation from the service. A dump is one
netlink round trip; it is asked for a few times per IdleStopSec=, never while idle.

Counted: connections a service still has to serve — ESTABLISHED (accepted or waiting in
the queue), SYN_RECV, CLOSE_WAIT (the client is done, the service not yet); not those the
service has closed (FIN_WAIT*, LAST_ACK, TIME_WAIT) nor the listener itself.
"""

from __future__ import annotations

import errno
import socket
import struct

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCP_ESTABLISHED, TCP_SYN_RECV, TCP_CLOSE_WAIT = 1, 3, 8
_TCP_STATES = (1 << TCP_ESTABLISHED) | (1 << TCP_SYN_RECV) | (1 << TCP_CLOSE_WAIT)
UDIAG_SHOW_NAME, UNIX_DIAG_NAME = 0x1, 0
_INET_MSG = struct.Struct("=BBBB2s2s16s16sI8sIIIII")  # struct inet_diag_msg (72 bytes)


def _dump(request: bytes) -> list[bytes]:
    """The payloads of one SOCK_DIAG_BY_FAMILY dump. Raises OSError."""
    hdr = struct.pack("=IHHII", 16 + len(request), SOCK_DIAG_BY_FAMILY,
                      NLM_F_REQUEST | NLM_F_DUMP, 1, 0)  # fmt: skip
    out: list[bytes] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC,
                       NETLINK_SOCK_DIAG) as s:  # fmt: skip
        s.settimeout(5)
        s.sendto(hdr + request, (0, 0))
        while True:
            data = s.recv(1 << 16)
            off = 0
            while off + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, off)
                if kind == NLMSG_DONE:
                    return out
                if kind == NLMSG_ERROR:
                    err = -struct.unpack_from("=i", data, off + 16)[0]
                    raise OSError(err, f"sock_diag: {errno.errorcode.get(err, err)}")
                out.append(data[off + 16 : off + length])
                off += (length + 3) & ~3
            if not data:
                return out


def tcp_connections(family: int, port: int, address: str | None = None) -> int:
    """Connections to local ``port`` (on ``address``, or any for a wildcard listener)."""
    req = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, _TCP_STATES) + bytes(48)
    want = None
    if address is not None and address not in ("0.0.0.0", "::"):
        want = socket.inet_pton(family, address)
    n = 0
    for msg in _dump(req):
        if len(msg) < _INET_MSG.size:
            continue
        fields = _INET_MSG.unpack_from(msg)
        sport, src = int.from_bytes(fields[4], "big"), fields[6]
        if sport != port:
            continue
        if want is not None and src[: len(want)] != want:
            continue
        n += 1
    return n


def unix_connections(name: bytes, type_: int) -> int:
    """Accepted connections of the unix listener bound to ``name`` (a path, or b"\\0…" for an
    abstract name): they carry its name (the kernel's copy of a path ends in a NUL)."""
    name = name.rstrip(b"\0")
    req = struct.pack("=BBHIIII", socket.AF_UNIX, 0, 0, 1 << TCP_ESTABLISHED, 0,
                      UDIAG_SHOW_NAME, 0) + bytes(4)  # fmt: skip
    n = 0
    for msg in _dump(req):
        if len(msg) < 16 or msg[1] != type_:
            continue
        off = 16
        while off + 4 <= len(msg):
            length, kind = struct.unpack_from("=HH", msg, off)
            if length < 4:
                break
            if kind == UNIX_DIAG_NAME and msg[off + 4 : off + length].rstrip(b"\0") == name:
                n += 1
            off += (length + 3) & ~3
    return n

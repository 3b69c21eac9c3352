"""The supervisor's side of readiness, for tests of activator under a supervisor."""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

from harness import free_port

_CREDS = struct.calcsize("3i")


def pong_units(d: Path) -> tuple[Path, int]:
    """A unit directory in ``d``: an Accept=yes socket on a free loopback port whose
    instances (as nobody) answer "pong". Returns (the directory, the port)."""
    units = d / "units"
    units.mkdir()
    port = free_port()
    (units / "pong.socket").write_text(f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n")
    (units / "pong@.service").write_text(
        "[Service]\nExecStart=/bin/echo pong\nStandardInput=socket\nUser=nobody\n"
    )
    return units, port


class NotifySocket:
    """systemd's side of NOTIFY_SOCKET: a datagram socket with SO_PASSCRED, so each
    message comes with its sender's pid, which the kernel vouches for."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(address)
        self.messages: list[tuple[int, dict[str, str]]] = []  # (sender pid, fields)

    def _read_one(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(_CREDS))
        pid = next(
            struct.unpack("3i", d[:_CREDS])[0]
            for level, kind, d in anc
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS
        )
        fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
        self.messages.append((pid, fields))

    def wait_for(self, key: str, value: str, timeout: float = 20, start: int = 0) -> int:
        """The first message at index >= start with key=value (read as needed, bounded):
        its index."""
        deadline = time.monotonic() + timeout
        i = start
        while True:
            while i < len(self.messages):
                if self.messages[i][1].get(key) == value:
                    return i
                i += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {key}={value} within {timeout}s: {self.messages}")
            try:
                self._read_one(left)
            except TimeoutError:
                pass

    def pid(self, i: int) -> int:
        return self.messages[i][0]

    def count(self, key: str) -> int:
        return sum(1 for _, fields in self.messages if key in fields)

    def close(self) -> None:
        self.sock.close()

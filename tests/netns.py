"""A network namespace of the test's own, for addresses loopback alone does not give.

``NetNS()`` makes one (``ip netns add``) with ``lo`` up and ``2001:db8::/48`` routed to it
(any address in it may be a source: clients bind with IPV6_FREEBIND), ``wrapper`` runs a
command inside it, ``socket()`` makes a socket inside it from this process (a thread
enters the namespace for the call; a socket stays in the namespace it was made in), and
``close()`` removes it. Needs root; the test is skipped where the kernel refuses.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
import threading

import pytest

PREFIX6 = "2001:db8::"
CLONE_NEWNET = 0x40000000
IPV6_FREEBIND = 78
_seq = 0


class NetNS:
    def __init__(self) -> None:
        global _seq
        _seq += 1
        self.name = f"activator-test-{os.getpid()}-{_seq}"
        r = subprocess.run(["ip", "netns", "add", self.name], capture_output=True, text=True)
        if r.returncode:
            pytest.skip(f"no network namespace here: {r.stderr.strip()}")
        try:
            for cmd in (
                ["link", "set", "lo", "up"],
                ["-6", "route", "add", "local", f"{PREFIX6}/48", "dev", "lo"],
            ):
                subprocess.run(["ip", "-n", self.name, *cmd], check=True, capture_output=True)
        except BaseException:
            self.close()
            raise
        self.wrapper = ["ip", "netns", "exec", self.name]

    def sockets(self, n: int, family: int, type_: int = socket.SOCK_STREAM) -> list[socket.socket]:
        """``n`` sockets made inside the namespace."""
        out: list[socket.socket] = []
        error: list[BaseException] = []

        def inside() -> None:
            try:
                fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY | os.O_CLOEXEC)
                try:
                    libc = ctypes.CDLL(None, use_errno=True)
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns")
                finally:
                    os.close(fd)
                out.extend(socket.socket(family, type_) for _ in range(n))
            except BaseException as e:  # handed to the caller
                error.append(e)

        t = threading.Thread(target=inside)
        t.start()
        t.join()
        if error:
            for s in out:
                s.close()
            raise error[0]
        return out

    def clients(self, sources: list[str]) -> list[socket.socket]:
        """TCP sockets inside the namespace, bound to ``sources`` (addresses of the /48)."""
        out = self.sockets(len(sources), socket.AF_INET6)
        for s, src in zip(out, sources, strict=True):
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
            s.bind((src, 0))
        return out

    def client(self, source: str) -> socket.socket:
        return self.clients([source])[0]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30)

    def __enter__(self) -> NetNS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

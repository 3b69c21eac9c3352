"""X-Activator-ProxyTo=: socket activation for a program that can only bind its own port.

On an Accept=no socket with ``X-Activator-ProxyTo=ADDRESS`` activator accepts the
connections itself (the service is handed none of this socket's fds): the first one
starts the service, as any trigger does; each connection waits until ADDRESS accepts —
connect() is tried again at 1 ms, doubling to 100 ms, bounded by the service's
TimeoutStartSec= — and is then handed, with the connection to ADDRESS, to a relay
(``_relay.c``: a thread that splices bytes through pipes, half-close and resets passed
on). What systemd-socket-proxyd does, inside the supervisor and without a process per
service; and as activator accepts, the socket's admission rules (address rules, rates,
MaxConnectionsPerSource=) apply to proxied connections too.

The peer's address is lost by proxying; ``X-Activator-ProxyProtocol=v1|v2`` sends the
PROXY protocol header (haproxy's proxy-protocol.txt) first, so the service can read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.log import EventLog
from ..exec.bind import Listener, fmt_peer, unmap
from ..units.model import InetListen, SocketSection, UnixListen
from .acceptloop import accepted, reset
from .admission import Admission
from .books import AcceptBooks

# connect() errors that mean "nobody accepts there yet" (a unix path not yet bound, a
# full backlog on a unix socket): try again
_NOT_YET = {errno.ECONNREFUSED, errno.ENOENT, errno.EAGAIN, errno.ECONNRESET, errno.ETIMEDOUT}
_RETRY_FIRST, _RETRY_MAX = 0.001, 0.1


class ProxySocket(Protocol):
    """The socket a proxy accepts for (socket.SocketRuntime)."""

    name: str
    section: SocketSection
    books: AcceptBooks
    admission: Admission

    def trigger_service(self, lst: Listener) -> bool:
        """Start the service (trigger limit, log); False when it may not start now."""
        ...

    def service_active(self) -> bool:
        """Whether the service is up (its backend may be probed)."""
        ...

    def service_start_timeout(self) -> float: ...
    def unwatch(self) -> None: ...
    def rewatch_later(self, delay: float) -> None: ...
    def hung_up(self, lst: Listener, events: int) -> None: ...


@dataclass(slots=True, eq=False)
class _Pending:
    """A client connection waiting for the backend."""

    fd: int
    peer: tuple[str, int] | None  # (address, port); None for a unix peer
    source: str | None
    since: float
    backend: socket.socket | None = None  # connect() in flight


class Proxy:
    """One proxied socket: its waiting clients, its backend's readiness, its relay."""

    def __init__(self, sock: ProxySocket, log: EventLog) -> None:
        self.sock = sock
        self.log = log
        self.pending: list[_Pending] = []
        self.ready = False  # the backend accepted the last connect()
        self.relayed = 0  # pairs handed to the relay, ever
        self.bytes_up = self.bytes_down = 0
        self.sources: dict[int, str | None] = {}  # cookie → source, while relayed
        self.last_activity = time.monotonic()
        self._cookie = 0
        self._retry: asyncio.TimerHandle | None = None
        self._delay = _RETRY_FIRST
        self._deadline: float | None = None
        self._give_up: asyncio.TimerHandle | None = None  # clients waiting for a start
        self._relay: Any = None  # _relay.Relay, made with the first pair
        self._wake = -1

    # ------------------------------------------------------------ counts
    @property
    def active(self) -> int:
        return len(self.sources)

    def connections(self) -> int:
        """Clients waiting or relayed now (what idle stop looks at)."""
        return len(self.pending) + len(self.sources)

    def describe(self) -> dict[str, Any]:
        target = self.sock.section.ProxyTo
        return {
            "to": target.text if target is not None else None,
            "backend": "ready" if self.ready else ("waiting" if self.pending else "unknown"),
            "active": self.active,
            "pending": len(self.pending),
            "relayed": self.relayed,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "header": None if self.sock.section.ProxyProtocol == "off" else
            self.sock.section.ProxyProtocol,
        }  # fmt: skip

    # ------------------------------------------------------------ accepting
    def on_connection(self, lst: Listener) -> None:
        """The listener's reader on the event loop: accept a batch, admit, wait or relay."""
        for fd, addr in accepted(lst, self.sock, self.log):
            self._admit(lst, fd, addr)

    def _admit(self, lst: Listener, fd: int, addr: Any) -> None:
        sock, books = self.sock, self.sock.books
        peer = (unmap(addr[0]), addr[1]) if isinstance(addr, tuple) else None
        remote = peer[0] if peer else None
        adm = sock.admission
        if adm.active:
            why = adm.check(remote)
            if why is not None:
                reset(fd)
                books.refuse(why, fmt_peer(*peer) if peer else None)
                return
        source = remote
        limit = sock.section.MaxConnectionsPerSource
        if limit and remote is not None:
            source = adm.source(remote)
            if books.per_source[source] >= limit:
                os.close(fd)
                books.refuse_source(source)
                return
        books.n_accepted += 1
        books.connected(source)
        self.last_activity = time.monotonic()
        self.pending.append(_Pending(fd, peer, source, self.last_activity))
        if self.ready and sock.service_active():
            self._connect_all()
        elif not sock.service_active():
            if not sock.trigger_service(lst):
                self._drop_pending("the service may not start now")
            elif self._give_up is None:  # its start job may fail before it ever runs
                timeout = sock.service_start_timeout()
                if timeout < float("inf"):
                    self._give_up = asyncio.get_running_loop().call_later(timeout, self._expire)
        else:
            self._probe()

    # ------------------------------------------------------------ the backend
    def service_up(self) -> None:
        """The service is active: its backend may take the waiting clients (called on
        every change of an active service: it only starts what is not under way)."""
        if self.pending and not self.ready:
            self._probe()

    def service_going(self) -> None:
        """The service is on its way up or down: hold new clients until it is up again."""
        self.ready = False
        self._cancel_retry()

    def service_down(self) -> bool:
        """The service is down: nothing will accept. True when clients still wait (the
        socket starts the service again for them, as for queued traffic)."""
        self.ready = False
        self._cancel_retry()
        return bool(self.pending)

    def _probe(self) -> None:
        """Try the first waiting client (which, once it connects, opens the way for all)."""
        if self._retry is not None or not self.pending or self.pending[0].backend is not None:
            return
        if self._deadline is None:
            self._deadline = time.monotonic() + self.sock.service_start_timeout()
        self._connect(self.pending[0])

    def _connect_all(self) -> None:
        for p in list(self.pending):
            if p.backend is None:
                self._connect(p)

    def _connect(self, p: _Pending) -> None:
        target = self.sock.section.ProxyTo
        if target is None:  # the unit changed under a waiting client
            self._drop_pending("X-Activator-ProxyTo= is gone")
            return
        fam, addr = _address(target)
        b = socket.socket(fam, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            err = b.connect_ex(addr)
        except OSError as e:
            err = e.errno or errno.EINVAL
        if err == errno.EINPROGRESS:
            p.backend = b
            asyncio.get_running_loop().add_writer(b.fileno(), self._connected, p)
            return
        self._done_connecting(p, b, err)

    def _connected(self, p: _Pending) -> None:
        b = p.backend
        assert b is not None
        asyncio.get_running_loop().remove_writer(b.fileno())
        p.backend = None
        self._done_connecting(p, b, b.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))

    def _done_connecting(self, p: _Pending, b: socket.socket, err: int) -> None:
        if p not in self.pending:  # dropped meanwhile
            b.close()
            return
        if err == 0:
            self._relay_pair(p, b)
            if not self.ready:
                self.ready, self._delay, self._deadline = True, _RETRY_FIRST, None
                self._cancel_give_up()
                self._connect_all()
            return
        b.close()
        if err not in _NOT_YET:
            self.log(
                "warning",
                self.sock.name,
                reason=f"unable to connect to {self._target_text()}: {os.strerror(err)}",
            )
        self.ready = False
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self._drop_pending(
                f"{self._target_text()} did not accept connections within "
                f"{self.sock.service_start_timeout():g}s (TimeoutStartSec=)"
            )
            return
        if self._deadline is None:
            self._deadline = time.monotonic() + self.sock.service_start_timeout()
        self._retry = asyncio.get_running_loop().call_later(self._delay, self._retry_now)
        self._delay = min(self._delay * 2, _RETRY_MAX)

    def _expire(self) -> None:
        self._give_up = None
        if self.pending and not self.ready:
            self._drop_pending(
                f"{self._target_text()} did not accept connections within "
                f"{self.sock.service_start_timeout():g}s (TimeoutStartSec=)"
            )

    def _retry_now(self) -> None:
        self._retry = None
        if self.sock.service_active():
            self._probe()

    def _cancel_give_up(self) -> None:
        if self._give_up is not None:
            self._give_up.cancel()
            self._give_up = None

    def _cancel_retry(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._delay, self._deadline = _RETRY_FIRST, None

    def _target_text(self) -> str:
        t = self.sock.section.ProxyTo
        return t.text if t is not None else "?"

    # ------------------------------------------------------------ relaying
    def _relay_pair(self, p: _Pending, b: socket.socket) -> None:
        self.pending.remove(p)
        header = self._header(p, b)
        try:
            if header:
                b.send(header)  # a fresh connection's empty buffer takes it whole
            relay = self._relay or self._make_relay()
            self._cookie += 1
            relay.add(p.fd, b.fileno(), self._cookie)
        except OSError as e:
            b.close()
            reset(p.fd)
            self.sock.books.gone(p.source)
            self.log("warning", self.sock.name, reason=f"unable to relay: {e.strerror or e}")
            return
        b.detach()  # the relay owns both fds now
        self.sources[self._cookie] = p.source
        self.relayed += 1

    def _make_relay(self) -> Any:
        from ._relay import Relay  # a daemon that proxies nothing never loads it

        self._wake = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._relay = Relay(self._wake)
        asyncio.get_running_loop().add_reader(self._wake, self._drain)
        return self._relay

    def _drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._wake)
        books = self.sock.books
        for cookie, up, down, _err in self._relay.drain():
            books.gone(self.sources.pop(cookie, None))
            self.bytes_up += up
            self.bytes_down += down
        self.last_activity = time.monotonic()

    def _header(self, p: _Pending, b: socket.socket) -> bytes:
        version = self.sock.section.ProxyProtocol
        if version == "off":
            return b""
        local = None
        if p.peer is not None:
            s = socket.socket(fileno=p.fd)
            try:
                sa = s.getsockname()
            finally:
                s.detach()
            local = (unmap(sa[0]), sa[1])
        return proxy_header(version, p.peer, local)

    # ------------------------------------------------------------ the end
    def _drop_pending(self, why: str) -> None:
        """Reset every waiting client (the service cannot take them)."""
        if not self.pending:
            return
        self.log("failed", self.sock.name, reason=f"proxy: {why}; {len(self.pending)} reset")
        for p in self.pending:
            self._forget(p)
        self.pending.clear()
        self._cancel_retry()
        self._cancel_give_up()

    def _forget(self, p: _Pending) -> None:
        if p.backend is not None:
            with contextlib.suppress(ValueError, RuntimeError):
                asyncio.get_running_loop().remove_writer(p.backend.fileno())
            p.backend.close()
        reset(p.fd)
        self.sock.books.gone(p.source)

    def close(self, *, relays: bool) -> None:
        """The socket stops: waiting clients are reset; with ``relays`` (activator is going)
        the relayed ones too, else they run on (the service's connections)."""
        for p in self.pending:
            self._forget(p)
        self.pending.clear()
        self._cancel_retry()
        self._cancel_give_up()
        self.ready = False
        if relays and self._relay is not None:
            asyncio.get_running_loop().remove_reader(self._wake)
            self._relay.close()
            self._relay = None
            os.close(self._wake)
            self._wake = -1
            for source in self.sources.values():
                self.sock.books.gone(source)
            self.sources.clear()


def _address(target: InetListen | UnixListen) -> tuple[int, Any]:
    if isinstance(target, UnixListen):
        path = target.path
        return socket.AF_UNIX, ("\0" + path[1:]) if path.startswith("@") else path
    assert target.host is not None
    if ":" in target.host:
        return socket.AF_INET6, (target.host, target.port, 0, 0)
    return socket.AF_INET, (target.host, target.port)


_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_header(
    version: str, peer: tuple[str, int] | None, local: tuple[str, int] | None
) -> bytes:
    """The PROXY protocol header (v1 text, v2 binary) for a client ``peer`` that connected
    to ``local``; a unix client (no address) is v1 ``UNKNOWN`` or v2 ``LOCAL``."""
    if peer is None or local is None or (":" in peer[0]) != (":" in local[0]):
        if version == "v1":
            return b"PROXY UNKNOWN\r\n"
        return _V2_SIGNATURE + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    v6 = ":" in peer[0]
    if version == "v1":
        return f"PROXY TCP{6 if v6 else 4} {peer[0]} {local[0]} {peer[1]} {local[1]}\r\n".encode()
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    body = (
        socket.inet_pton(fam, peer[0])
        + socket.inet_pton(fam, local[0])
        + struct.pack("!HH", peer[1], local[1])
    )
    return _V2_SIGNATURE + bytes([0x21, 0x21 if v6 else 0x11]) + struct.pack("!H", len(body)) + body

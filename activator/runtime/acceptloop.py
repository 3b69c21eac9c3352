"""Accept=yes on the event loop: accept, name the instance, make it a Service, start it.

The path for every Accept=yes socket an accept lane (lane.py) cannot serve: instances
that need the state machine from their first step (ExecStartPre=, Type=notify,
MaxConnectionsPerSource=, per-connection socket options …). The work per connection is
one accept, one Service with its connection handed over (systemd's
service_set_socket_fd()), one start and one close of our copy of the connection.

Out of fds (issue 15): an instance needs some to start (a duplicate of its connection,
stdio, and above all of them room for the child to arrange its own), so a connection is
set up only with ``HEADROOM`` fds to spare. Short of them, the connection just accepted
is kept, the listeners are left alone (the rest wait in the kernel's backlog, as the
accept lane leaves them) and it is set up when an instance ends or 100 ms later — never
accepted and then failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import math
import os
import resource
import socket
import sys
from collections import deque
from collections.abc import Iterator
from typing import Any, Protocol

from ..core import procfs
from ..core.errors import ActivatorError
from ..core.log import EventLog
from ..exec.bind import Listener, apply_options, fmt_peer, unmap
from ..exec.plan import Handover
from ..units import UnitSet
from ..units.model import ServiceUnit, SocketSection
from . import hangup
from .admission import Admission
from .books import AcceptBooks
from .context import Connection, InstanceOwner, ServiceContext
from .service import Service

# Errors that say the system is out of something: log, back off ~100 ms, retry (trio's list).
_CAPACITY = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
_ACCEPT_BATCH = 32
#: Free fds an instance's start may need (a duplicate of the connection, stdio, the
#: child's copies of its fds above all of them).
HEADROOM = 16
_RETRY = 0.1


class LoopContext(ServiceContext, Protocol):
    """What the event-loop path uses of the manager."""

    units: UnitSet

    def log_exception(self, e: BaseException) -> None: ...
    def why_missing(self, name: str) -> str: ...
    async def start_units(self, names: dict[str, bool]) -> list[str]:
        """Start these units (through jobs, in order); those that needed to and did not."""
        ...


class AcceptingSocket(InstanceOwner, Protocol):
    """The socket whose connections this path accepts (socket.SocketRuntime)."""

    service_name: str
    books: AcceptBooks
    section: SocketSection
    instances: dict[str, Service]
    options_on_accept: bool
    admission: Admission

    def trigger_allowed(self) -> bool: ...
    def refuse(self, why: str) -> None: ...
    def unwatch(self) -> None: ...
    def rewatch_later(self, delay: float) -> None: ...
    def hung_up(self, lst: Listener, events: int) -> None: ...
    @property
    def watching(self) -> bool: ...


class Backoff(Protocol):
    """A socket that can stop reading its listeners for a while (socket.SocketRuntime)."""

    name: str

    def unwatch(self) -> None: ...
    def rewatch_later(self, delay: float) -> None: ...
    def hung_up(self, lst: Listener, events: int) -> None: ...


def accepted(lst: Listener, sock: Backoff, log: EventLog) -> Iterator[tuple[int, Any]]:
    """Up to _ACCEPT_BATCH connections (fd, peer address) from a readable listener. Out of
    fds or memory: log, stop reading it for 100 ms and end the batch; a connection gone
    before it was accepted is skipped; a listener that does not listen any more (EINVAL:
    shut down under us) is the socket's to handle (hangup.py); anything else is logged
    and the listener rested for 100 ms."""
    accept = lst.accept_fd
    for _ in range(_ACCEPT_BATCH):
        try:
            conn = accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            if e.errno in _CAPACITY:
                log(
                    "warning",
                    sock.name,
                    reason=f"unable to accept: {e.strerror}, retrying in 100ms",
                )
                sock.unwatch()
                sock.rewatch_later(0.1)
                return
            if e.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                continue  # that connection is gone; the next one may be fine
            events = hangup.hung_up(lst.fd)
            if events:  # EINVAL: it does not listen any more
                sock.hung_up(lst, events)
                return
            log("warning", sock.name, reason=f"unable to accept: {e.strerror}")
            sock.unwatch()
            sock.rewatch_later(0.1)
            return
        yield conn


class AcceptLoop:
    """The reader callback of an Accept=yes socket's listeners, on the event loop."""

    def __init__(self, ctx: LoopContext, sock: AcceptingSocket) -> None:
        self.ctx = ctx
        self.sock = sock
        self.pending: deque[tuple[Listener, int, Any]] = deque()  # accepted, not set up
        self._retry: asyncio.TimerHandle | None = None
        self._warned = -math.inf

    def on_connection(self, lst: Listener) -> None:
        if self.pending:  # short of fds: what is queued waits in the kernel
            self.sock.unwatch()
            return
        for fd, addr in accepted(lst, self.sock, self.ctx.log):
            if short_of_fds(fd):
                self._keep(lst, fd, addr)
                return
            self._setup(lst, fd, addr)
            if not self.sock.watching:
                return

    def _setup(self, lst: Listener, fd: int, addr: Any) -> None:
        try:
            self._handle(lst, fd, addr)
        except Exception as e:  # one connection's failure drops that connection only
            with contextlib.suppress(OSError):
                os.close(fd)
            self.ctx.log("reject", self.sock.name, reason=str(e))
            if not isinstance(e, ActivatorError):
                self.ctx.log_exception(e)

    # ------------------------------------------------------------ short of fds
    def _keep(self, lst: Listener, fd: int, addr: Any) -> None:
        """Hold an accepted connection until an instance can be set up for it."""
        now = asyncio.get_running_loop().time()
        if not self.pending and now - self._warned >= 10:  # once in a while, not per episode
            self._warned = now
            self.ctx.log(
                "warning",
                self.sock.name,
                reason=f"too few free fds to start an instance (fewer than {HEADROOM}); "
                "connections wait in the backlog",
            )
        self.pending.append((lst, fd, addr))
        self.sock.unwatch()
        self.retry_later()

    def retry_later(self, delay: float = _RETRY) -> None:
        """Look at the held connections again (after ``delay``; 0: an instance ended)."""
        if not self.pending:
            return
        if self._retry is not None:
            if delay:
                return
            self._retry.cancel()
        self._retry = asyncio.get_running_loop().call_later(delay, self._set_up_pending)

    def _set_up_pending(self) -> None:
        self._retry = None
        while self.pending:
            lst, fd, addr = self.pending[0]
            if short_of_fds(fd):
                self.retry_later()
                return
            self.pending.popleft()
            self._setup(lst, fd, addr)
        self.sock.rewatch_later(0)

    def drop_pending(self) -> None:
        """The socket stops: the held connections are closed (the client sees a reset)."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        while self.pending:
            with contextlib.suppress(OSError):
                os.close(self.pending.popleft()[1])

    def _handle(self, lst: Listener, fd: int, addr: Any) -> None:
        sock = self.sock
        remote, rport = _peer(lst, addr)
        admission = sock.admission
        if admission.active:
            why = admission.check(remote)
            if why is not None:  # before anything else: no instance number, no trigger
                reset(fd)
                sock.books.refuse(why, fmt_peer(remote, rport))
                return
        if not sock.trigger_allowed():
            os.close(fd)
            return
        books = sock.books
        n = books.n_accepted
        books.n_accepted = n + 1
        sec = sock.section
        if books.n_connections >= sec.MaxConnections:
            # Instances that have exited but are not reaped yet still count; reap them first
            # so that the limit counts what really runs.
            self.ctx.reaper.reap_now()
        if books.n_connections >= sec.MaxConnections:
            os.close(fd)
            books.refuse_limit(fmt_peer(remote, rport), books.n_connections)
            return
        source = remote
        if sec.MaxConnectionsPerSource and remote is not None:
            source = admission.source(remote)
            if books.per_source[source] >= sec.MaxConnectionsPerSource:
                os.close(fd)
                books.refuse_source(source)
                return
        if sock.options_on_accept:
            apply_options(fd, lst.family, lst.type, sec, listening=False)
        instance, env = describe(lst, fd, n, remote, rport, ucspi=sec.UCSPI)
        if sock.service_name not in self.ctx.units.services:  # missing or masked
            os.close(fd)
            sock.refuse(self.ctx.why_missing(sock.service_name))
            return
        try:
            unit = self.ctx.units.instantiate(sock.service_name, instance)
            svc = Service(self.ctx, unit, Connection(sock, fmt_peer(remote, rport), source))
            books.connected(source)
            sock.instances[unit.name] = svc
            handover = Handover(connection=fd, extra_env=env)
            pulls = needs_of(unit)
            if pulls:  # what the instance needs starts first, through jobs
                handover.connection = os.dup(fd)
                asyncio.ensure_future(self._start_after(svc, pulls, handover))
            else:
                svc.start_instance(handover)
        finally:
            os.close(fd)

    async def _start_after(self, svc: Service, pulls: dict[str, bool], h: Handover) -> None:
        """An instance whose unit Requires=/Wants=… other units: those start first (failing
        a needed one fails the instance, job result dependency), then the instance."""
        try:
            failed = await self.ctx.start_units(pulls)
            if failed:
                self.ctx.log(
                    "failed",
                    svc.name,
                    result="dependency",
                    reason=f"dependency failed: {', '.join(failed)}",
                )
                self.ctx.instance_done(svc)
            else:
                svc.start_instance(h)
        finally:
            if h.connection is not None:
                os.close(h.connection)


def needs_of(unit: ServiceUnit) -> dict[str, bool]:
    """The units an instance pulls in (Requires=, BindsTo=, Requisite=, Wants=, Upholds=,
    with its own %i expanded), each with whether its failure matters."""
    u = unit.Unit
    out = {n: False for n in (*u.Wants, *u.Upholds)}
    out.update((n, True) for n in (*u.Requires, *u.BindsTo, *u.Requisite))
    return out


def describe(
    lst: Listener, fd: int, n: int, remote: str | None, rport: int, *, ucspi: bool
) -> tuple[str, dict[str, str]]:
    """The instance string systemd gives connection number ``n`` (``NAME@<it>.service``,
    socket.c's instance_from_socket()), and its REMOTE_*/UCSPI variables. The accept
    lane's describe() in _lane.c is the C twin."""
    env: dict[str, str] = {}
    if lst.family == socket.AF_UNIX:
        try:
            s = socket.socket(socket.AF_UNIX, lst.type, 0, fd)
            try:
                creds = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            finally:
                s.detach()
            pid, uid = (
                int.from_bytes(creds[0:4], "little"),
                int.from_bytes(creds[4:8], "little"),
            )
            inst = f"{n}-{pid}-{uid}" if pid > 0 else f"{n}-unknown"
        except OSError:
            inst = f"{n}-unknown"
        return inst, env
    local, lport = lst.bound or ("", 0)
    if not local:
        s = socket.socket(lst.family, lst.type, 0, fd)
        try:
            sa = s.getsockname()
        finally:
            s.detach()
        local, lport = unmap(sa[0]), sa[1]
    env["REMOTE_ADDR"] = str(remote)
    env["REMOTE_PORT"] = str(rport)
    if ucspi:
        env.update(
            PROTO="TCP6" if ":" in local else "TCP",
            TCPREMOTEIP=str(remote),
            TCPREMOTEPORT=str(rport),
            TCPLOCALIP=local,
            TCPLOCALPORT=str(lport),
        )
    return f"{n}-{local}:{lport}-{remote}:{rport}", env


def reset(fd: int) -> None:
    """Close a connection with a RST (SO_LINGER 0): a refused client learns at once."""
    with contextlib.suppress(OSError):
        s = socket.socket(fileno=fd)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_0)
        finally:
            s.detach()
    os.close(fd)


_LINGER_0 = (1).to_bytes(4, sys.byteorder) + (0).to_bytes(4, sys.byteorder)


def _peer(lst: Listener, addr: Any) -> tuple[str | None, int]:
    if lst.family in (socket.AF_INET, socket.AF_INET6) and isinstance(addr, tuple):
        return unmap(addr[0]), addr[1]
    return None, 0


def short_of_fds(fd: int) -> bool:
    """Fewer than HEADROOM fds to spare? Linux hands fds out lowest first, so the table
    fills from the bottom: if the slot HEADROOM below the limit is free (a probe with
    F_DUPFD: the lowest free one at or above it), so are all above it. Only when it is
    taken are the open fds counted (/proc/self/fd, which costs tens of microseconds)."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if limit == resource.RLIM_INFINITY or limit > 1 << 30:
        return False
    mark = max(0, limit - HEADROOM)
    try:
        probe = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, mark)
    except OSError:
        probe = -1  # nothing free up there at all
    else:
        os.close(probe)
        if probe == mark:
            return False
    return limit - procfs.open_fds() < HEADROOM

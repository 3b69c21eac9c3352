"""Socket units at run time: watching listeners, triggering services, accepting connections.

Accept=no: while the socket is ``listening`` activator watches its fds for
readability; the first connection or datagram starts the service, which gets every
listener and does the accepting itself. While the service runs activator does not
read the sockets; when it exits they are watched again, and if traffic is already
queued the service starts again at once — nothing is lost.

Accept=yes: activator accepts, and spawns one instance of ``NAME@.service`` per
connection, named as systemd names instances. This is the hot path: the work per
connection is one accept, one spawn (vfork in the C core) and one close.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import time
from collections import Counter
from typing import TYPE_CHECKING

from ..core.errors import ActivatorError, RefusedError
from ..core.ratelimit import RateLimit
from ..core.states import (
    SOCKET_TRANSITIONS,
    Result,
    ServiceState,
    ServiceSubState,
    SocketState,
    check,
)
from ..exec.bind import (
    Listener,
    apply_options,
    bind_unit,
    close_listeners,
    fmt_peer,
    options_needed,
)
from ..units.model import SocketUnit
from . import lane as acceptlane
from .lane import AcceptLane
from .service import Service

if TYPE_CHECKING:
    from ..manager.manager import Daemon

K = SocketState
# Errors that say the system is out of something: log, back off ~100 ms, retry (trio's list).
_CAPACITY = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
_ACCEPT_BATCH = 32


class SocketRuntime:
    def __init__(self, daemon: Daemon, unit: SocketUnit) -> None:
        self.daemon = daemon
        self.unit = unit
        self.name = unit.name
        sec = unit.Socket
        self.section = sec
        self.state = K.INACTIVE
        self.result = Result.SUCCESS
        self.since = time.time()
        self.listeners: list[Listener] = []
        self.service_name = daemon.units.service_of(unit.name)
        self.fdname = sec.FileDescriptorName or unit.name
        # counters for status
        self.n_accepted = 0
        self.n_connections = 0
        self.n_refused = 0
        self.refused_limit = 0
        self.refused_per_source = 0
        self.refused_trigger = 0
        self.per_source: Counter[str] = Counter()
        # systemd's defaults are 20 per 2 s (Accept=no) and 200 per 2 s (Accept=yes). For
        # Accept=no the limit catches a service that exits without taking its traffic; we keep
        # it. For Accept=yes it caps a socket at 100 connections/s — systemd then fails it for
        # good (sd#15633, tang#61) — so activator leaves it off unless the unit sets it, and
        # bounds Accept=yes by MaxConnections= and MaxConnectionsPerSource= instead.
        if sec.Accept:
            burst = (
                sec.TriggerLimitBurst
                if sec.TriggerLimitBurst is not None
                else (200 if sec.TriggerLimitIntervalSec else 0)
            )
        else:
            burst = sec.TriggerLimitBurst if sec.TriggerLimitBurst is not None else 20
        interval = sec.TriggerLimitIntervalSec if sec.TriggerLimitIntervalSec is not None else 2.0
        self.trigger_limit = RateLimit(interval, burst)
        self._watching = False
        self._resume: asyncio.TimerHandle | None = None
        self._with_options = options_needed(sec)
        # Accept=yes: the C accept lane for these listeners, if the service can take it
        self.lane: AcceptLane | None = None
        self._lane_unfit: str | None = None  # why not, once decided

    # ------------------------------------------------------------ state
    def _set(self, new: SocketState, result: Result | None = None) -> None:
        check(SOCKET_TRANSITIONS, self.name, self.state, new)
        if result is not None:
            self.result = result
        if new != self.state:
            self.state = new
            self.since = time.time()

    # ------------------------------------------------------------ start / stop
    def bind(self) -> None:
        """Bind all listeners (as root, before the loop serves anything). Raises BindError."""
        self.listeners = bind_unit(self.name, self.section)
        for lst in self.listeners:
            self.daemon.log("listen", self.name, address=lst.address, fd=lst.fd)

    def start(self) -> None:
        """Start watching; binds first if needed. Raises ActivatorError (state FAILED)."""
        if self.state in (K.LISTENING, K.RUNNING, K.PAUSED):
            return
        if not self.section.Accept:
            # systemd's socket_start(): the service holds (or is about to get) fds we would
            # not share with it; the operator has to stop it first. A service waiting to
            # restart holds none yet, and will collect the new ones.
            svc = self.daemon.services.get(self.service_name)
            if svc is not None and svc.active and svc.sub != ServiceSubState.AUTO_RESTART:
                raise RefusedError(
                    f"{self.name}: socket service {self.service_name} already active, refusing"
                )
        if not self.listeners:
            try:
                self.bind()
            except ActivatorError:
                self._set(K.FAILED, Result.RESOURCES)
                raise
        self.result = Result.SUCCESS
        self._set(K.LISTENING)
        self.trigger_limit.reset()
        svc = self.daemon.services.get(self.service_name)
        if not self.section.Accept and svc is not None and svc.active:
            self._set(K.RUNNING)  # the service already holds our fds
        else:
            self._watch()

    async def stop(self, *, result: Result = Result.SUCCESS, stop_instances: bool = True) -> None:
        """Close the listeners (RemoveOnStop=) and stop the instances of an Accept=yes socket.

        ``stop_instances=False`` (a reload rebinding the socket) leaves the connections
        already accepted running.
        """
        self._unwatch()
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        if self.section.Accept and stop_instances:
            await self.daemon.stop_instances(self)
        if self.lane is not None:  # its thread is gone (_unwatch); these listeners go now
            self.lane.dispose()
        self.lane, self._lane_unfit = None, None
        close_listeners(self.listeners, self.section, remove=True)
        self.listeners = []
        if self.state != K.INACTIVE or result != Result.SUCCESS:
            self.daemon.log("stop", self.name, result=None if result == Result.SUCCESS else result)
            self._set(K.FAILED if result != Result.SUCCESS else K.INACTIVE, result)

    # ------------------------------------------------------------ watching
    def _watch(self) -> None:
        if self._watching:
            return
        if self.lane is not None:
            self.lane.start()
            self._watching = True
            return
        if not self.section.Accept:
            handler = self._on_traffic
        elif self._lane_unfit is None:
            # Undecided: the first connection plans the lane and starts its thread, so a
            # socket nobody connects to costs no thread (and start-up no planning).
            handler = self._first_connection
        else:
            handler = self._on_connection
        loop = asyncio.get_running_loop()
        for lst in self.listeners:
            # An Accept=no service shares the open file description and clears O_NONBLOCK
            # (systemd's NonBlocking=no): take it back before the loop reads from it again.
            os.set_blocking(lst.fd, False)
            loop.add_reader(lst.fd, handler, lst)
        self._watching = True

    @property
    def accept_path(self) -> str | None:
        """Accept=yes: who accepts and spawns (None: not decided before a connection)."""
        if not self.section.Accept or (self.lane is None and self._lane_unfit is None):
            return None
        if self.lane is not None:
            return "accept lane (C thread)"
        return f"event loop ({self._lane_unfit})"

    def _first_connection(self, lst: Listener) -> None:
        self._unwatch()
        self._lane()  # the lane, or the reason for the Python path
        self._watch()  # the lane's thread, or our reader, takes the waiting connection

    def _unwatch(self) -> None:
        if not self._watching:
            return
        if self.lane is not None:
            self.lane.close()
            self._watching = False
            return
        loop = asyncio.get_running_loop()
        for lst in self.listeners:
            loop.remove_reader(lst.fd)
        self._watching = False

    def _lane(self) -> AcceptLane | None:
        """The accept lane of these listeners, made on first use; None: the Python path."""
        if self.lane is None and self._lane_unfit is None:
            why = acceptlane.unfit(self.daemon, self) if acceptlane.enabled() else "turned off"
            if why is None:
                try:
                    self.lane = AcceptLane(self.daemon, self)
                except (ActivatorError, OSError, ValueError) as e:
                    why = str(e)
            self._lane_unfit = why
        return self.lane

    def replan_lane(self) -> None:
        """After a reload: plan the lane again from the current units (or go without)."""
        if not self.section.Accept:
            return
        watching = self._watching
        self._unwatch()
        if self.lane is not None:
            self.lane.dispose()
        self.lane, self._lane_unfit = None, None
        if watching:
            self._watch()

    def _trigger_allowed(self) -> bool:
        if self.trigger_limit.below():
            return True
        # systemd fails the socket for good here (sd#15633); activator pauses it for the
        # rest of the interval and then listens again by itself.
        self.refused_trigger += 1
        self._unwatch()
        delay = self.trigger_limit.remaining()
        self.daemon.log(
            "pause",
            self.name,
            result=Result.TRIGGER_LIMIT_HIT,
            reason=f"trigger limit hit ({self.trigger_limit.burst} in "
            f"{self.trigger_limit.interval:g}s), listening again in {delay:.2f}s",
        )
        self._set(K.PAUSED, Result.TRIGGER_LIMIT_HIT)
        self._resume = asyncio.get_running_loop().call_later(delay, self._unpause)
        return False

    def _unpause(self) -> None:
        self._resume = None
        if self.state != K.PAUSED:
            return
        self.trigger_limit.reset()
        self._set(K.LISTENING, Result.SUCCESS)
        self.daemon.log("resume", self.name)
        svc = self.daemon.services.get(self.service_name)
        if not self.section.Accept and svc is not None and svc.active:
            self._set(K.RUNNING)
        else:
            self._watch()

    # ------------------------------------------------------------ Accept=no
    def _on_traffic(self, lst: Listener) -> None:
        if not self._trigger_allowed():
            return
        self._unwatch()
        svc = self.daemon.services.get(self.service_name)
        if svc is None:
            return
        self._set(K.RUNNING)
        self.daemon.log("trigger", self.name, service=self.service_name, address=lst.address)
        if not svc.active:
            svc.start()

    def service_changed(self, svc: Service) -> None:
        """Accept=no: follow the service, as systemd's socket_trigger_notify()."""
        if self.state not in (K.LISTENING, K.RUNNING) or self.daemon.stopping:
            return
        if svc.state == ServiceState.FAILED and svc.result == Result.START_LIMIT_HIT:
            asyncio.ensure_future(self.stop(result=Result.SERVICE_START_LIMIT_HIT))
            return
        if svc.state in (ServiceState.INACTIVE, ServiceState.FAILED):
            if self.section.FlushPending:
                self._flush()
            self._set(K.LISTENING)
            self._watch()
        elif svc.active:
            self._unwatch()
            self._set(K.RUNNING)

    def _flush(self) -> None:
        """FlushPending=yes: drop what queued up while the service ran."""
        for lst in self.listeners:
            if lst.sock is None:
                continue
            # The service shared the file description and may have left it blocking
            # (NonBlocking=no): an accept() on it would block the loop once the queue is empty.
            os.set_blocking(lst.fd, False)
            while True:
                try:
                    if lst.accepting:
                        fd, _ = lst.sock._accept()
                        os.close(fd)
                    else:
                        lst.sock.recv(65536, socket.MSG_DONTWAIT)
                except OSError:
                    break

    # ------------------------------------------------------------ Accept=yes (hot path)
    def _on_connection(self, lst: Listener) -> None:
        sock = lst.sock
        for _ in range(_ACCEPT_BATCH):
            try:
                fd, addr = sock._accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in _CAPACITY:
                    self.daemon.log(
                        "warning",
                        self.name,
                        reason=f"unable to accept: {e.strerror}, retrying in 100ms",
                    )
                    self._unwatch()
                    asyncio.get_running_loop().call_later(0.1, self._rewatch)
                    return
                if e.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                    continue  # that connection is gone; the next one may be fine
                raise
            try:
                self._handle(lst, fd, addr)
            except Exception as e:  # one connection's failure drops that connection only
                with contextlib.suppress(OSError):
                    os.close(fd)
                self.daemon.log("reject", self.name, reason=str(e))
                if not isinstance(e, ActivatorError):
                    self.daemon.log_exception(e)
            if not self._watching:
                return

    def _rewatch(self) -> None:
        if self.state == K.LISTENING:
            self._watch()

    def _handle(self, lst: Listener, fd: int, addr) -> None:
        if not self._trigger_allowed():
            os.close(fd)
            return
        n = self.n_accepted
        self.n_accepted = n + 1
        sec = self.section
        remote, rport = _peer(lst, fd, addr)
        if self.n_connections >= sec.MaxConnections:
            # Instances that have exited but are not reaped yet still count; reap them first
            # so that the limit counts what really runs.
            self.daemon.reaper.reap_now()
        if self.n_connections >= sec.MaxConnections:
            os.close(fd)
            self.n_refused += 1
            self.refused_limit += 1
            self.daemon.log(
                "reject",
                self.name,
                peer=fmt_peer(remote, rport),
                reason=f"too many incoming connections ({self.n_connections})",
            )
            return
        if sec.MaxConnectionsPerSource and remote is not None and lst.family != socket.AF_UNIX:
            if self.per_source[remote] >= sec.MaxConnectionsPerSource:
                os.close(fd)
                self.n_refused += 1
                self.refused_per_source += 1
                self.daemon.log(
                    "reject",
                    self.name,
                    peer=remote,
                    reason=f"too many connections from {remote} ({self.per_source[remote]})",
                )
                return
        if self._with_options:
            apply_options(fd, lst.family, lst.type, sec, listening=False)
        instance, env = self._describe(lst, fd, n, remote, rport)
        self.n_connections += 1
        if remote is not None and lst.family != socket.AF_UNIX:
            self.per_source[remote] += 1
        try:
            self.daemon.spawn_instance(self, instance, fd, env, remote, rport)
        finally:
            os.close(fd)

    def instance_gone(self, remote: str | None, family_unix: bool) -> None:
        self.n_connections -= 1
        if remote is not None and not family_unix:
            left = self.per_source[remote] - 1
            if left > 0:
                self.per_source[remote] = left
            else:
                del self.per_source[remote]

    def _describe(
        self, lst: Listener, fd: int, n: int, remote, rport
    ) -> tuple[str, dict[str, str]]:
        """The instance string systemd gives this connection (``NAME@<it>.service``), and
        REMOTE_*/UCSPI variables."""
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
            local, lport = _unmap(sa[0]), sa[1]
        env["REMOTE_ADDR"] = remote
        env["REMOTE_PORT"] = str(rport)
        if self.section.UCSPI:
            env.update(
                PROTO="TCP6" if ":" in local else "TCP",
                TCPREMOTEIP=remote,
                TCPREMOTEPORT=str(rport),
                TCPLOCALIP=local,
                TCPLOCALPORT=str(lport),
            )
        return f"{n}-{local}:{lport}-{remote}:{rport}", env


def _unmap(host: str) -> str:
    return host[7:] if host.startswith("::ffff:") and "." in host else host


def _peer(lst: Listener, fd: int, addr) -> tuple[str | None, int]:
    if lst.family in (socket.AF_INET, socket.AF_INET6) and isinstance(addr, tuple):
        return _unmap(addr[0]), addr[1]
    return None, 0

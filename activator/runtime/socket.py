"""Socket units at run time: watching listeners, triggering services, accepting connections.

Accept=no: while the socket is ``listening`` activator watches its fds for
readability; the first connection or datagram starts the service, which gets every
listener and does the accepting itself. While the service runs activator does not
read the sockets; when it exits they are watched again, and if traffic is already
queued the service starts again at once — nothing is lost.

Accept=yes: activator accepts, and starts one instance of ``NAME@.service`` per
connection, named as systemd names instances. Who accepts is decided at the first
connection: an accept lane (lane.py, a C thread) when the instance's start is one
exec, else the event loop (acceptloop.py). Both keep the socket's ``AcceptBooks``
(books.py); the instances are the socket's (``instances``, and the lane's records).

A listener that stops listening (its service called shutdown() on it) fails the socket
at once, as systemd fails it (Result: resources), rather than being re-bound behind the
back of a service that holds the dead one: hangup.py watches every bound listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from ..core.errors import ActivatorError, AlreadyActiveError, NotActiveError, RefusedError
from ..core.ratelimit import RateLimit
from ..core.states import (
    SOCKET_PUBLIC,
    SOCKET_TRANSITIONS,
    Result,
    ServiceState,
    ServiceSubState,
    SocketState,
)
from ..core.states import check as check_transition
from ..exec.bind import (
    Listener,
    adopt_listener,
    bind_unit,
    close_listeners,
    fmt_peer,
    options_needed,
    set_filter,
)
from ..units.model import SocketUnit
from . import hangup, status
from . import lane as lanes
from .acceptloop import AcceptLoop, LoopContext
from .admission import Admission
from .books import AcceptBooks
from .context import Connection, ServiceRef
from .hangup import HangupWatch
from .lane import AcceptLane, Conn
from .service import Service
from .socketexec import SocketExec, has_commands
from .unit import RuntimeUnitBase

if TYPE_CHECKING:  # imported where used: most daemons proxy nothing (idle RSS)
    from .proxy import Proxy

K = SocketState


class BuiltinServer(Protocol):
    """A server of activator's own on a socket unit's listeners (X-Activator-Metrics=yes:
    control/metrics.py), served on the event loop with no service behind it."""

    def serve_fds(self, name: str, fds: list[int]) -> None:
        """Serve on these listeners (the caller keeps its fds: the server dups them)."""
        ...

    def unserve(self, name: str) -> None: ...


class SocketContext(LoopContext, Protocol):
    """What a socket uses of the manager: the service's context, plus its services."""

    builtin: BuiltinServer | None

    def service(self, name: str) -> Service | None:
        """The (non-template) service of that name, if there is one to be had."""
        ...

    def activate(self, service: str, socket: str) -> None:
        """Start ``service`` for traffic on ``socket`` (with what it needs: a job)."""
        ...

    @property
    def hangups(self) -> HangupWatch | None:
        """Where bound listeners are watched for hang-ups (None: not watched, in tests)."""
        ...


class SocketRuntime(RuntimeUnitBase):
    kind = "socket"

    def __init__(self, ctx: SocketContext, unit: SocketUnit) -> None:
        self.ctx = ctx
        self.unit = unit
        self.name = unit.name
        sec = unit.Socket
        self.section = sec
        self.state = K.INACTIVE
        self.result = Result.SUCCESS
        self.since = time.time()
        self.listeners: list[Listener] = []
        self.observers: list[Callable[[SocketRuntime], None]] = []  # state changes
        self.service_name = ctx.units.service_of(unit.name)
        self.fdname = sec.FileDescriptorName or unit.name
        self.books = AcceptBooks(unit.name, ctx.log)
        self.instances: dict[str, Service] = {}  # Accept=yes: instances that are Services
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
        self.options_on_accept = options_needed(sec)  # socket options per connection
        self.admission = Admission(sec)  # address rules, sources, rates (admission.py)
        self._watching = False
        self._resume: asyncio.TimerHandle | None = None
        # Accept=yes on the event loop (acceptloop.py): made by the first connection that
        # takes that path (its queue is 0.7 KiB; most sockets never need it)
        self._loop_path: AcceptLoop | None = None
        # Accept=yes: the C accept lane for these listeners, if the service can take it
        self.lane: AcceptLane | None = None
        self._lane_unfit: str | None = None  # why not, once decided
        # X-Activator-ProxyTo=: activator accepts and relays (proxy.py); kept across reloads
        # with the connections it relays
        self.proxy: Proxy | None = None
        # X-Activator-IdleStopSec= of the service (idle.py): traffic seen since the last look
        self._idle_traffic = False
        self._idle_reading = False  # a reader on the listeners while the service runs
        self._idle_mark = 0.0  # the proxy's activity up to here was seen
        self._idle_warned = False
        self._filtered = bool(sec.IPAddressAllow or sec.IPAddressDeny)  # a BPF filter is on
        # the socket's own Exec*= lines (socketexec.py), made when first needed
        self.exec: SocketExec | None = None

    # ------------------------------------------------------------ state
    def _set(self, new: SocketState, result: Result | None = None) -> None:
        check_transition(SOCKET_TRANSITIONS, self.name, self.state, new)
        if result is not None:
            self.result = result
        if new != self.state:
            public = self.active_state
            self.state = new
            self.since = time.time()
            if self.active_state != public:
                for cb in list(self.observers):
                    cb(self)

    def observe(self, callback: Callable[[SocketRuntime], None]) -> None:
        self.observers.append(callback)

    @property
    def active_state(self) -> str:
        return SOCKET_PUBLIC[self.state]

    @property
    def sub_state(self) -> str:
        return "dead" if self.state == K.INACTIVE else str(self.state)

    @property
    def watching(self) -> bool:
        return self._watching

    @property
    def loop_path(self) -> AcceptLoop:
        """The event loop's accepting (acceptloop.py), made on first use."""
        if self._loop_path is None:
            self._loop_path = AcceptLoop(self.ctx, self)
        return self._loop_path

    def _pending(self) -> Iterable[tuple[Listener, int, Any]]:
        """Connections accepted and held (short of fds), not yet set up."""
        return self._loop_path.pending if self._loop_path is not None else ()

    def _service(self) -> Service | None:
        return self.ctx.service(self.service_name)

    # ------------------------------------------------------------ start / stop
    def bind(self) -> None:
        """Bind all listeners (as root, before the loop serves anything). Raises BindError."""
        self.listeners = bind_unit(self.name, self.section)
        self._filtered = self.admission.rules is not None
        for lst in self.listeners:
            self.ctx.log("listen", self.name, address=lst.address, fd=lst.fd)
        self._watch_hangups()

    def _watch_hangups(self) -> None:
        watch = self.ctx.hangups
        if watch is not None:
            for lst in self.listeners:
                if lst.sock is not None:
                    watch.watch(lst.fd, functools.partial(self.hung_up, lst))

    def hung_up(self, lst: Listener, events: int) -> None:
        """A listener stopped listening (a service shut it down): fail the socket, as
        systemd does. Its service keeps running with its own, dead, copies."""
        if lst not in self.listeners or self.state in (K.INACTIVE, K.FAILED):
            return
        self.unwatch()
        self.ctx.log(
            "failed",
            self.name,
            result=Result.RESOURCES,
            address=lst.address,
            reason=hangup.describe(events),
        )
        asyncio.ensure_future(self.stop(result=Result.RESOURCES, stop_instances=False))

    def start(self) -> None:
        """Start watching; binds first if needed. Raises ActivatorError (state FAILED), or
        AlreadyActiveError when its Accept=no service runs without it. With ExecStartPre=/
        ExecStartPost= the start goes on in the background (socketexec.py; settle())."""
        if self.state not in (K.INACTIVE, K.FAILED):
            return  # up, or on its way up or down
        svc = self._service()
        if self.section.ProxyTo is not None and self.proxy is None:
            from .proxy import Proxy

            self.proxy = Proxy(self, self.ctx.log)
        if not self.section.Accept and not self._proxying:
            # systemd's socket_start(): the service holds (or is about to get) fds we would
            # not share with it; the operator has to stop it first. A service waiting to
            # restart holds none yet, and will collect the new ones.
            if svc is not None and svc.active and svc.sub != ServiceSubState.AUTO_RESTART:
                raise AlreadyActiveError(
                    f"{self.name}: socket service {self.service_name} already active, refusing"
                )
        if not self.listeners and (self.section.ExecStartPre or self.section.ExecStartPost):
            self._commands().begin_start(self.bind, self._enter_listening, self._close)
            return
        if not self.listeners:
            try:
                self.bind()
            except ActivatorError:
                self._set(K.FAILED, Result.RESOURCES)
                raise
        self._enter_listening()

    def _enter_listening(self) -> None:
        svc = self._service()
        self.result = Result.SUCCESS
        self._set(K.LISTENING)
        self.trigger_limit.reset()
        running = not self.section.Accept and svc is not None and svc.active
        if running:
            self._set(K.RUNNING)  # the service already holds our fds (or we relay to it)
        if self._proxying or not running:
            self._watch()

    async def stop(
        self,
        *,
        result: Result = Result.SUCCESS,
        stop_instances: bool = True,
        restart: bool = False,
    ) -> None:
        """Close the listeners (RemoveOnStop=) and stop the instances of an Accept=yes socket.

        ``stop_instances=False`` (a reload rebinding the socket) leaves the connections
        already accepted running. ``restart`` changes nothing for a socket.
        """
        self.unwatch()
        if self._loop_path is not None:
            self._loop_path.drop_pending()
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        if self.section.Accept and stop_instances:
            await self.stop_instances()
        if self.lane is not None:  # its thread is gone (unwatch); these listeners go now
            self.lane.dispose()
        if self.proxy is not None:  # relayed connections are the service's, until we go
            self.proxy.close(relays=self.ctx.stopping)
        self._idle_sample(False)
        svc = self._service()
        if svc is not None and svc.idle_stop is not None:
            svc.idle_stop.detach(self)
        self.lane, self._lane_unfit = None, None
        busy = self.state not in (K.INACTIVE, K.FAILED)
        if (busy and has_commands(self.section)) or (self.exec is not None and self.exec.starting):
            self.ctx.log("stop", self.name, result=None if result == Result.SUCCESS else result)
            await self._commands().stop(result, self._close)  # ExecStopPre=, close, ExecStopPost=
            return
        self._close()
        if self.state != K.INACTIVE or result != Result.SUCCESS:
            self.ctx.log("stop", self.name, result=None if result == Result.SUCCESS else result)
            self._set(K.FAILED if result != Result.SUCCESS else K.INACTIVE, result)

    def _commands(self) -> SocketExec:
        if self.exec is None:
            self.exec = SocketExec(self.ctx, self)
        return self.exec

    def _close(self) -> None:
        watch = self.ctx.hangups
        if watch is not None:
            for lst in self.listeners:
                watch.unwatch(lst.fd)
        close_listeners(self.listeners, self.section, remove=True)
        self.listeners = []

    async def restart(self) -> None:
        await self.stop()
        self.start()

    # ------------------------------------------------------------ a re-exec (manager/reexec.py)
    def serialize(self, keep: Callable[[int], int]) -> dict[str, Any]:
        """State, listeners (``keep`` marks each fd to be handed over), the books, and the
        instances: Services as Service.serialize() says, the lane's records as records."""
        books = self.books
        return {
            "state": str(self.state),
            "result": str(self.result),
            "since": self.since,
            "listeners": [[lst.address, keep(lst.fd), lst.symlinks] for lst in self.listeners],
            "books": [
                books.n_accepted,
                books.n_refused,
                books.refused_limit,
                books.refused_per_source,
                books.refused_trigger,
            ],
            "lane": self.lane is not None,
            "instances": {
                name: {
                    **svc.serialize(keep),
                    "peer": svc.connection.peer if svc.connection else None,
                    "remote": svc.connection.remote if svc.connection else None,
                    "lane_pid": svc.connection.lane_pid if svc.connection else None,
                }
                for name, svc in self.instances.items()
            },
            "records": [c.serialize() for c in self.lane.conns.values()] if self.lane else [],
            "pending": [[lst.address, keep(fd), addr] for lst, fd, addr in self._pending()],
        }

    def restore(self, d: dict[str, Any]) -> list[int]:
        """Carry on from ``serialize()``: the listeners adopted (by address; one the unit no
        longer has is closed, one it has anew is bound), state, books, instances. Returns
        the fds it did not take (to be closed)."""
        unused: list[int] = []
        carried = {address: (fd, links) for address, fd, links in d["listeners"]}
        state = K(d["state"])
        if carried or state in (K.LISTENING, K.RUNNING, K.PAUSED):
            listeners = []
            for spec in self.section.Listen:
                got = carried.pop(spec.text, None)
                if got is not None:
                    listeners.append(adopt_listener(self.name, spec, got[0], self.section, got[1]))
            unused += [fd for fd, _ in carried.values()]
            if len(listeners) == len(self.section.Listen):
                self.listeners = listeners
                self._watch_hangups()
            else:  # the unit's listeners changed meanwhile: bind them as a start would
                close_listeners(listeners, self.section, remove=False)
                with contextlib.suppress(ActivatorError):
                    self.bind()
        self.state = state if self.listeners or state in (K.INACTIVE, K.FAILED) else K.FAILED
        if self.state == K.PAUSED:
            self.state = K.LISTENING  # the trigger limit starts afresh
        self.result = Result(d["result"])
        self.since = d["since"]
        b = self.books
        (b.n_accepted, b.n_refused, b.refused_limit, b.refused_per_source, b.refused_trigger) = d[
            "books"
        ]
        if d["lane"] and self.listeners:
            self._plan_lane()
        for name, sd in d["instances"].items():
            svc = self._restore_instance(name, sd)
            if svc is None:
                unused += [fd for fd in (sd["owned_fd"],) if fd is not None]
                unused += [fd for fd, _n, _p in sd["fd_store"]]
        for rec in d["records"]:
            if self.lane is not None:
                self.lane.carry_on(rec)
            else:  # no lane for it now: the instance becomes a Service
                self._restore_record(rec)
        by_address = {lst.address: lst for lst in self.listeners}
        for address, fd, addr in d["pending"]:
            lst = by_address.get(address)
            if lst is None:
                unused.append(fd)
            else:
                self.loop_path.pending.append(
                    (lst, fd, tuple(addr) if isinstance(addr, list) else addr)
                )
        if self._loop_path is not None:
            self._loop_path.retry_later()
        if self.state == K.LISTENING:
            self._watch()
        return unused

    def _restore_instance(self, name: str, d: dict[str, Any]) -> Service | None:
        instance = name[name.index("@") + 1 : name.rindex(".")]
        try:
            unit = self.ctx.units.instantiate(self.service_name, instance)
        except (KeyError, ActivatorError):
            return None
        lane_pid = d["lane_pid"] if self.lane is not None else None
        conn = Connection(self, d["peer"], d["remote"], self.lane if lane_pid else None, lane_pid)
        svc = Service(self.ctx, unit, conn)
        svc.restore(d)
        self.instances[name] = svc
        self.books.connected(d["remote"])
        if lane_pid and self.lane is not None:
            self.lane.lane.adopt(lane_pid)
        return svc

    def _restore_record(self, rec: dict[str, Any]) -> None:
        try:
            unit = self.ctx.units.instantiate(self.service_name, rec["instance"])
        except (KeyError, ActivatorError):
            return
        peer = fmt_peer(rec["remote"], rec["rport"])
        svc = Service(self.ctx, unit, Connection(self, peer, rec["remote"]))
        self.instances[unit.name] = svc
        self.books.connected(rec["remote"])
        svc.adopt_instance(rec["pid"], rec["invocation"], rec["since"])

    # ------------------------------------------------------------ the unit interface
    def check(self, verb: str) -> None:
        super().check(verb)
        if verb == "reload":
            raise RefusedError(
                f"{self.name}: a socket cannot be reloaded (restart it, or reload its service)"
            )
        if verb == "kill":
            raise NotActiveError(f"{self.name} has no process to signal")

    async def reload(self) -> None:
        self.check("reload")

    def kill(self, sig: int) -> int | None:
        self.check("kill")
        return None

    def reset_failed(self) -> bool:
        was = self.state == K.FAILED
        if was:
            self._set(K.INACTIVE, Result.SUCCESS)
        self.result = Result.SUCCESS
        return was

    async def settle(self, verb: str) -> str | None:
        """A start with ExecStartPre=/ExecStartPost= goes on after start() returns; every
        other start and stop is done when it returns."""
        if self.exec is not None and self.exec.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self.exec.task)
        if verb in ("start", "restart") and self.state == K.FAILED:
            return (
                f"{self.name} failed to {verb} (result: {self.result}); "
                f"see 'activatorctl status {self.name}'"
            )
        return None

    def describe(self) -> dict[str, Any]:
        svc = self._service()
        if svc is not None:
            triggered = svc.active_state
        else:  # Accept=yes: the template counts as active while instances run
            triggered = "active" if self.books.n_connections else "inactive"
        d = status.describe_socket(self, triggered, self.instance_list())
        if self.proxy is not None:
            d["proxy"] = self.proxy.describe()
        return d

    def properties(self) -> dict[str, str]:
        return status.socket_properties(self)

    # ------------------------------------------------------------ watching
    def _watch(self) -> None:
        if self._watching:
            return
        if self.section.Metrics:
            builtin = self.ctx.builtin
            if builtin is None:
                self.ctx.log("warning", self.name, reason="X-Activator-Metrics=yes: no server")
            else:
                builtin.serve_fds(self.name, [lst.fd for lst in self.listeners])
            self._watching = True
            return
        if self.lane is not None:
            self.lane.start()
            self._watching = True
            return
        if self._proxying:
            assert self.proxy is not None
            handler = self.proxy.on_connection
        elif not self.section.Accept:
            handler = self._on_traffic
        elif self._lane_unfit is None:
            # Undecided: the first connection plans the lane and starts its thread, so a
            # socket nobody connects to costs no thread (and start-up no planning).
            handler = self._first_connection
        else:
            handler = self.loop_path.on_connection
        loop = asyncio.get_running_loop()
        for lst in self.listeners:
            # An Accept=no service shares the open file description and clears O_NONBLOCK
            # (systemd's NonBlocking=no): take it back before the loop reads from it again.
            os.set_blocking(lst.fd, False)
            loop.add_reader(lst.fd, handler, lst)
        self._watching = True

    def unwatch(self) -> None:
        """Stop reading the listeners (they stay bound; connections queue in the kernel)."""
        if not self._watching:
            return
        if self.section.Metrics:
            if self.ctx.builtin is not None:
                self.ctx.builtin.unserve(self.name)
            self._watching = False
            return
        if self.lane is not None:
            self.lane.close()
            self._watching = False
            return
        loop = asyncio.get_running_loop()
        for lst in self.listeners:
            loop.remove_reader(lst.fd)
        self._watching = False

    def rewatch_later(self, delay: float) -> None:
        """Back off (out of fds or memory): listen again after ``delay`` if still listening."""
        asyncio.get_running_loop().call_later(delay, self._rewatch)

    def _rewatch(self) -> None:
        if self.state == K.LISTENING or (self._proxying and self.state == K.RUNNING):
            self._watch()

    @property
    def accept_path(self) -> str | None:
        """Accept=yes: who accepts and spawns (None: not decided before a connection)."""
        if not self.section.Accept or (self.lane is None and self._lane_unfit is None):
            return None
        if self.lane is not None:
            return "accept lane (C thread)"
        return f"event loop ({self._lane_unfit})"

    def _first_connection(self, lst: Listener) -> None:
        self.unwatch()
        self._plan_lane()  # the lane, or the reason for the Python path
        self._watch()  # the lane's thread, or our reader, takes the waiting connection

    def _plan_lane(self) -> None:
        """The accept lane of these listeners, made on first use (or why not)."""
        if self.lane is None and self._lane_unfit is None:
            why = lanes.unfit(self.ctx, self) if lanes.enabled() else "turned off"
            if why is None:
                try:
                    self.lane = AcceptLane(self.ctx, self)
                except (ActivatorError, OSError, ValueError) as e:
                    why = str(e)
            self._lane_unfit = why

    def replan_lane(self) -> None:
        """After a reload: the address filter and the lane again from the current units (a
        listener kept its fd: its filter is swapped in place, atomically)."""
        self._refilter()
        if not self.section.Accept:
            return
        watching = self._watching
        self.unwatch()
        if self.lane is not None:
            self.lane.dispose()
        self.lane, self._lane_unfit = None, None
        if watching:
            self._watch()

    def _refilter(self) -> None:
        rules = self.admission.rules
        if rules is None and not self._filtered:
            return  # no filter on the listeners: nothing to detach
        self._filtered = rules is not None
        for lst in self.listeners:
            if lst.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                set_filter(lst.fd, rules, stream=lst.accepting)
            except (OSError, ValueError) as e:  # the old filter stays: say so
                self.ctx.log("failed", self.name, reason=f"unable to filter {lst.address}: {e}")

    def trigger_allowed(self) -> bool:
        """Count one trigger; False (and paused) when it is over TriggerLimitBurst=."""
        if self.trigger_limit.below():
            return True
        # systemd fails the socket for good here (sd#15633); activator pauses it for the
        # rest of the interval and then listens again by itself.
        self.books.refused_trigger += 1
        self.unwatch()
        delay = self.trigger_limit.remaining()
        self.ctx.log(
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
        self.ctx.log("resume", self.name)
        svc = self._service()
        if not self.section.Accept and svc is not None and svc.active:
            self._set(K.RUNNING)
        else:
            self._watch()

    # ------------------------------------------------------------ Accept=no
    @property
    def _proxying(self) -> bool:
        return self.proxy is not None and self.section.ProxyTo is not None

    def trigger_service(self, lst: Listener) -> bool:
        """The proxy's trigger: start the service (through a job, with what it needs, as
        _on_traffic) unless it is on its way already; False when it cannot start now (the
        trigger limit paused the socket, or the service is missing: the socket fails)."""
        svc = self._service()
        if svc is None:
            self.refuse(self.ctx.why_missing(self.service_name))
            return False
        if svc.active or self.state == K.RUNNING:  # up, or its start job is under way
            return True
        if not self.trigger_allowed():
            return False
        self._set(K.RUNNING)
        self.ctx.log("trigger", self.name, service=self.service_name, address=lst.address)
        self.ctx.activate(self.service_name, self.name)
        return True

    def service_active(self) -> bool:
        svc = self._service()
        return svc is not None and svc.state in (ServiceState.ACTIVE, ServiceState.RELOADING)

    def service_start_timeout(self) -> float:
        svc = self._service()
        return svc.unit.Service.TimeoutStartSec if svc is not None else 90.0

    def _on_traffic(self, lst: Listener) -> None:
        events = hangup.hung_up(lst.fd)
        if events:  # not traffic: the listener is dead (its hang-up watch may come second)
            self.hung_up(lst, events)
            return
        if not self.trigger_allowed():
            return
        self.unwatch()
        svc = self._service()
        if svc is None:
            self.refuse(self.ctx.why_missing(self.service_name))
            return
        self._set(K.RUNNING)
        self.books.n_triggered += 1
        self.ctx.log("trigger", self.name, service=self.service_name, address=lst.address)
        if not svc.active:
            self.ctx.activate(self.service_name, self.name)

    def refuse(self, why: str) -> None:
        """The service cannot be had (missing, masked, not instantiable): fail, as systemd
        does (Result: resources). Closing the listeners resets what is queued, so a
        client gets an answer, not a hang."""
        self.ctx.log("failed", self.name, result=Result.RESOURCES, reason=why)
        asyncio.ensure_future(self.stop(result=Result.RESOURCES))

    def service_changed(self, svc: Service) -> None:
        """Accept=no: follow the service, as systemd's socket_trigger_notify()."""
        if self.state not in (K.LISTENING, K.RUNNING) or self.ctx.stopping:
            return
        if svc.state == ServiceState.FAILED and svc.result == Result.START_LIMIT_HIT:
            asyncio.ensure_future(self.stop(result=Result.SERVICE_START_LIMIT_HIT))
            return
        self._idle_follow(svc)
        if self._proxying:  # we keep accepting; the service comes and goes behind us
            assert self.proxy is not None
            if svc.state in (ServiceState.INACTIVE, ServiceState.FAILED):
                self._set(K.LISTENING)
                if self.proxy.service_down() and self.listeners:  # clients wait: start again
                    self.trigger_service(self.listeners[0])
            elif svc.active:
                self._set(K.RUNNING)
                if svc.state == ServiceState.ACTIVE:
                    self.proxy.service_up()
                elif svc.state == ServiceState.DEACTIVATING:
                    self.proxy.service_going()
            return
        if svc.state in (ServiceState.INACTIVE, ServiceState.FAILED):
            if self.section.FlushPending:
                self._flush()
            self._set(K.LISTENING)
            self._watch()
        elif svc.active:
            self.unwatch()
            self._set(K.RUNNING)

    # ------------------------------------------------------------ idle stop (idle.py)
    def _idle_follow(self, svc: Service) -> None:
        """X-Activator-IdleStopSec=: the service's watch looks while the service is active."""
        if svc.unit.Service.IdleStopSec <= 0 and svc.idle_stop is None:
            return
        from .idle import IdleStop  # only a daemon with an idle stop pays for it

        watch = IdleStop.of(svc, self.ctx.log)
        if svc.state == ServiceState.ACTIVE and svc.unit.Service.IdleStopSec > 0:
            watch.attach(self)
            self._idle_mark = time.monotonic()
            self._idle_sample(not self._proxying)
            watch.arm()
        else:
            watch.disarm()
            self._idle_sample(False)  # before the socket watches its listeners again

    def _idle_sample(self, on: bool) -> None:
        """A reader on the listeners while the service accepts on them: a connection that
        comes and goes between two looks still makes them readable once."""
        if on == self._idle_reading:
            return
        loop = asyncio.get_running_loop()
        for lst in self.listeners:
            if on:
                loop.add_reader(lst.fd, self._idle_seen)
            else:
                loop.remove_reader(lst.fd)
        self._idle_reading = on

    def _idle_seen(self) -> None:
        self._idle_traffic = True
        self._idle_sample(False)  # one wake-up per look is enough

    def idle_busy(self) -> bool:
        if self._proxying:
            assert self.proxy is not None
            busy = self.proxy.connections() > 0 or self.proxy.last_activity > self._idle_mark
            self._idle_mark = time.monotonic()
            return busy
        n = self.idle_connections()
        busy = n != 0 or self._idle_traffic
        self._idle_traffic = False
        if self.state == K.RUNNING:
            self._idle_sample(True)
        return busy

    def idle_connections(self) -> int:
        """Connections now: relayed and waiting, or (the service accepts) the kernel's count;
        -1 where it cannot be known (not a stream socket: never idle)."""
        if self._proxying:
            assert self.proxy is not None
            return self.proxy.connections()
        from ..core import sockdiag

        n = 0
        try:
            for lst in self.listeners:
                if lst.family in (socket.AF_INET, socket.AF_INET6) and lst.accepting:
                    assert lst.local is not None
                    n += sockdiag.tcp_connections(lst.family, lst.local[1], lst.local[0])
                elif lst.family == socket.AF_UNIX and lst.accepting and lst.sock is not None:
                    name = lst.sock.getsockname()
                    raw = name.encode() if isinstance(name, str) else bytes(name)
                    n += sockdiag.unix_connections(raw, lst.type)
                else:
                    raise OSError(0, f"{lst.address} is not a stream socket")
        except OSError as e:
            if not self._idle_warned:
                self._idle_warned = True
                self.ctx.log(
                    "warning",
                    self.name,
                    reason=f"X-Activator-IdleStopSec=: unable to count connections ({e.strerror}); "
                    "the service is not stopped for idleness",
                )
            return -1
        return n

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
                        fd, _ = lst.accept_fd()
                        os.close(fd)
                    else:
                        lst.sock.recv(65536, socket.MSG_DONTWAIT)
                except OSError:
                    break

    # ------------------------------------------------------------ Accept=yes instances
    def instance_done(self, svc: ServiceRef) -> None:
        """An instance is over (its Service is dead or failed): count it out."""
        c = svc.connection
        if c is not None and self.instances.pop(svc.name, None) is not None:
            self.books.gone(c.remote)
            if c.lane is not None and c.lane_pid is not None:  # the lane's slot is free now
                c.lane.gone(c.lane_pid)
            if self._loop_path is not None:  # its fds are free: a held connection may go on
                self._loop_path.retry_later(0)

    def find_instance(self, name: str) -> Service | None:
        """An instance by name; one the lane keeps as a record becomes a Service now."""
        svc = self.instances.get(name)
        if svc is None and self.lane is not None:
            conn = self.lane.find(name)
            if conn is not None:
                return self.lane.materialize(conn)
        return svc

    def instance_list(self) -> list[Service | Conn]:
        """The running instances: Services, and the accept lane's records."""
        out: list[Service | Conn] = list(self.instances.values())
        if self.lane is not None:
            out += self.lane.conns.values()
        return out

    def materialize_instances(self) -> None:
        """Every instance the lane keeps as a record becomes a Service (to be stopped)."""
        if self.lane is not None:
            self.lane.materialize_all()

    async def stop_instances(self) -> None:
        self.materialize_instances()
        if self.instances:
            await asyncio.gather(
                *(s.stop() for s in list(self.instances.values())), return_exceptions=True
            )

"""Accept=yes at tcpserver's speed: a lane accepts and spawns in C, the loop keeps the books.

For an instance whose whole start is one exec, activator's Python path (activation.py →
Service) spent more per connection than tcpserver does in all: the state machine, two
log lines, the ExecSpec, and the loop thread suspended in vfork until the child's execve.
A lane (``activator/exec/_lane.c``) is one thread per such socket that accepts, names the
connection as systemd does, fills in REMOTE_*/UCSPI/INVOCATION_ID, and spawns from an
ExecSpec planned here once — by the same plan.py code as every other start, with
placeholders for the connection and its variables. The thread never runs Python.

The loop drains the lane's records in batches (the reaper wakes for them as for
SIGCHLD, at most once per HOLD_OFF under load), watches the pids with the one reaper,
logs the same ``start``/``exit``/``failed``/``reject`` lines as the Python path and
keeps the socket's books (books.py). An instance lives as a small `Conn` record; when
an operator asks for it by name (stop, kill …) or its process group outlives the main
process, it becomes a full `Service` (`Service.adopt_instance`) and the state machine
takes over.

`unfit()` says which units take the lane. Everything it refuses runs on the Python path,
unchanged, so no systemd semantics depend on the lane. ``ACTIVATOR_ACCEPT_LANE=0`` turns
the lane off (for comparison and debugging).
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..core.errors import StartError
from ..core.exitstatus import exit_fields, exit_of, main_result
from ..core.ratelimit import RateLimit
from ..core.states import Result, ServiceState, ServiceSubState
from ..exec import plan
from ..exec._spawn import Lane
from ..exec.bind import Listener, fmt_peer
from ..exec.dynamic import DynamicCreds
from ..exec.spec import spawn_args
from ..units import UnitSet
from ..units.model import RestartPolicy, ServiceType, ServiceUnit, SocketSection
from . import status
from .admission import IP_DENY, Admission
from .books import AcceptBooks
from .context import Connection, InstanceOwner, ServiceContext
from .service import Service
from .unit import RuntimeUnitBase


class LaneContext(ServiceContext, Protocol):
    """What a lane uses of the manager."""

    units: UnitSet


class LaneSocket(InstanceOwner, Protocol):
    """The socket a lane accepts for (socket.SocketRuntime)."""

    section: SocketSection
    service_name: str
    listeners: list[Listener]
    books: AcceptBooks
    instances: dict[str, Service]
    options_on_accept: bool
    trigger_limit: RateLimit
    admission: Admission


#: In the planned ExecSpec's stdio and fds: "the connection" (_lane.c's CONN_FD).
CONN_FD = 2**31 - 1
#: The per-connection variables, in _lane.c's order (enum var).
_VARS = (
    "INVOCATION_ID",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "PROTO",
    "TCPREMOTEIP",
    "TCPREMOTEPORT",
    "TCPLOCALIP",
    "TCPLOCALPORT",
)
_MARK = "\x01lane:"  # a placeholder value no unit can produce (build_environment copies it)
SPAWNED, FAILED, NOFORK, REFUSED, ACCEPT_ERROR, DENIED = range(6)


def enabled() -> bool:
    return os.environ.get("ACTIVATOR_ACCEPT_LANE", "1") != "0"


def unfit(ctx: LaneContext, sock: LaneSocket) -> str | None:
    """Why the instances of this socket need more than one exec from the state machine;
    None when a lane can run them exactly as the Python path would."""
    sec = sock.section
    if not sec.Accept:
        return "Accept=no"
    if sec.MaxConnectionsPerSource:
        return "MaxConnectionsPerSource="
    if sec.ConnectionRate or sec.ConnectionRateTotal:
        return "X-Activator-ConnectionRate="
    if sock.trigger_limit.burst:
        return "TriggerLimitBurst="
    if sock.options_on_accept:
        return "socket options on accepted connections"
    families = {lst.family for lst in sock.listeners}
    if not families or not (
        families <= {socket.AF_INET, socket.AF_INET6} or families == {socket.AF_UNIX}
    ):
        return "listeners of mixed or other families"
    if any(not lst.accepting or lst.sock is None for lst in sock.listeners):
        return "a listener that does not accept"
    units = ctx.units
    template = units.services.get(sock.service_name)
    if template is None:
        return "no service"
    if not units.instances_share_template(sock.service_name):
        return "the unit depends on the instance name"
    if template.Unit.Conditions:
        return "Condition*/Assert*"
    u = template.Unit
    if u.Requires or u.Wants or u.BindsTo or u.Requisite or u.Upholds:
        return "dependencies to start first"
    svc = template.Service
    if svc.Type not in (ServiceType.SIMPLE, ServiceType.EXEC):
        return f"Type={svc.Type}"
    if not svc.single_exec:
        return "more than one command"
    if svc.Restart != RestartPolicy.NO or svc.RuntimeMaxSec != math.inf or svc.WatchdogSec:
        return "Restart=, RuntimeMaxSec= or WatchdogSec="
    if svc.PIDFile or svc.EnvironmentFile or svc.FileDescriptorStoreMax:
        return "PIDFile=, EnvironmentFile= or the fd store"
    if svc.NotifyAccess not in (None, "none"):
        return "NotifyAccess="
    if any(
        getattr(svc, f)
        for f in (
            "RuntimeDirectory",
            "StateDirectory",
            "CacheDirectory",
            "LogsDirectory",
            "ConfigurationDirectory",
        )
    ):
        return "*Directory="
    cmd = svc.ExecStart[0]
    if not cmd.no_env_expand and any("$" in a for a in cmd.argv):
        return "$VARIABLES in ExecStart="
    return None


def plan_spec(
    ctx: LaneContext, sock: LaneSocket, dynamic: DynamicCreds | None = None
) -> tuple[dict[str, Any], tuple[tuple[int, int], ...]]:
    """The spawn arguments every connection shares, with CONN_FD for the connection, and
    where in the environment the per-connection variables go; ``dynamic``: the template's
    dynamic user (DynamicUser=), which every instance shares. Raises StartError."""
    template = ctx.units.services[sock.service_name]
    svc = template.Service
    inetd = "socket" in (svc.StandardInput, svc.StandardOutput, svc.StandardError)
    generated = {"INVOCATION_ID": _MARK + "INVOCATION_ID"}
    if sock.listeners[0].family != socket.AF_UNIX:
        names = _VARS[1:] if sock.section.UCSPI else _VARS[1:3]
        generated.update((k, _MARK + k) for k in names)
    if not inetd:
        generated["LISTEN_FDS"] = "1"
        generated["LISTEN_FDNAMES"] = "connection"
    prepared = ctx.prepared(template)
    if dynamic is not None:
        prepared = dataclasses.replace(prepared, creds=dynamic.credentials)
    env = plan.build_environment(svc, prepared.creds, generated)
    stdio, opened = plan.open_stdio(svc, CONN_FD, {}, journal_fds(ctx, template))
    for fd in opened:
        os.close(fd)
    if opened:
        raise StartError("a file on stdio is opened per start")
    spec = plan.make_spec(
        svc,
        prepared,
        svc.ExecStart[0],
        env,
        fds=() if inetd else (CONN_FD,),
        stdio=stdio,
        listen_pid=not inetd,
        nonblocking=svc.NonBlocking,
    )
    slots = []
    for i, item in enumerate(spec.env):
        key, _, value = item.decode().partition("=")
        if value == _MARK + key:
            slots.append((i, _VARS.index(key)))
    args = spawn_args(spec)
    args["in_place"] = False
    return args, tuple(slots)


def journal_fds(ctx: ServiceContext, template: ServiceUnit) -> tuple[int, int]:
    """The capture's streams of the template, for every instance's stdout/stderr that goes
    to the journal (-1: not captured; the inetd case, where both are the connection)."""
    out, err = plan.journal_streams(template.Service)
    if ctx.capture is None or not (out or err):
        return (-1, -1)
    return ctx.capture.fds(template.name, plan.syslog_identifier(template.Service), out, err)


class Conn(RuntimeUnitBase):
    """One connection's instance while nobody has asked about it: what status shows.

    Reads like a running `Service` for the control plane; anything that acts on it makes
    it a Service first (`AcceptLane.materialize()`) and acts on that.
    """

    __slots__ = ("lane", "instance", "name", "main_pid", "remote", "rport", "invocation", "since")
    kind = "service"
    state = ServiceState.ACTIVE
    sub = ServiceSubState.RUNNING
    result = reload_result = Result.SUCCESS
    active_state = "active"
    sub_state = "running"
    control_pid = None
    last_exit = None
    n_restarts = 0
    status_text = ""
    status_errno = 0
    fd_store = ()
    idle_stop = None

    def __init__(
        self,
        lane: AcceptLane,
        instance: str,
        name: str,
        pid: int,
        remote: str | None,
        rport: int,
        invocation: str,
        since: float,
    ) -> None:
        self.lane = lane
        self.instance = instance
        self.name = name
        self.main_pid = pid
        self.remote = remote
        self.rport = rport
        self.invocation = invocation
        self.since = since

    @property
    def peer(self) -> str | None:
        return fmt_peer(self.remote, self.rport)

    @property
    def unit(self) -> ServiceUnit:
        return self.lane.ctx.units.instantiate(self.lane.sock.service_name, self.instance)

    def _service(self) -> Service:
        return self.lane.materialize(self)

    def serialize(self) -> dict[str, Any]:
        """What a re-exec hands over of this record (AcceptLane.carry_on() takes it)."""
        return {
            "instance": self.instance,
            "pid": self.main_pid,
            "remote": self.remote,
            "rport": self.rport,
            "invocation": self.invocation,
            "since": self.since,
        }

    def observe(self, callback: Callable[[Any], None]) -> None:
        pass  # a record does not change: it becomes a Service first

    # -- the unit interface: reading here, acting through the Service it becomes
    def start(self) -> None:
        self._service().start()

    async def stop(self, *, restart: bool = False) -> None:
        await self._service().stop(restart=restart)

    async def restart(self) -> None:
        await self._service().restart()

    async def reload(self) -> None:
        await self._service().reload()

    def kill(self, sig: int) -> int | None:
        return self._service().kill(sig)

    def reset_failed(self) -> bool:
        return False  # running: nothing to forget

    async def settle(self, verb: str) -> str | None:
        return None

    def describe(self) -> dict[str, Any]:
        return status.describe_service(self, [self.lane.sock.name])

    def properties(self) -> dict[str, str]:
        return status.service_properties(self, self.lane.sock.name)


class AcceptLane:
    """The Python side of one socket's lane: its records, its instances, their exits."""

    def __init__(self, ctx: LaneContext, sock: LaneSocket) -> None:
        self.ctx = ctx
        self.sock = sock
        template = ctx.units.services[sock.service_name]
        # DynamicUser=: one user for every instance, held while the lane or one of its
        # instances is there (released in _free_if_done)
        self.dynamic = ctx.acquire_dynamic(template) if template.Service.DynamicUser else None
        try:
            args, slots = plan_spec(ctx, sock, self.dynamic)
        except BaseException:
            if self.dynamic is not None:
                self.dynamic.release()
            raise
        self.svc = template.Service
        self.command = self.svc.ExecStart[0].path
        self.path = os.fsdecode(args["path"])
        self.cwd = os.fsdecode(args["cwd"] or b"")
        self.prefix = sock.service_name[: -len(".service")]  # "echo@"
        self.lane = Lane(
            args,
            tuple(lst.fd for lst in sock.listeners),
            ctx.reaper.births_fd,  # the reaper drains every lane when it wakes
            sock.section.MaxConnections,
            slots,
            sock.books.n_accepted,  # connections are numbered on from the last listener's
            tuple(lst.bound for lst in sock.listeners),  # None: the lane asks the connection
            # IPAddressAllow=/IPAddressDeny=: the connections queued before the BPF filter
            deny=b"" if sock.admission.rules is None else sock.admission.rules.table(),
            invocation_prefix=ctx.run_id,  # INVOCATION_ID begins with it
        )
        self.conns: dict[int, Conn] = {}
        # the capture, when the instances' output goes to it: it learns their pids here
        self.capture = ctx.capture if journal_fds(ctx, template) != (-1, -1) else None
        self._running = False
        self._disposed = False
        self._registered = False

    # ------------------------------------------------------------ life
    def start(self) -> None:
        for lst in self.sock.listeners:
            os.set_blocking(lst.fd, False)
        if not self._registered:
            self.ctx.reaper.add_lane(self)
            self._registered = True
        self.lane.start()
        self._running = True

    def close(self) -> None:
        """Stop accepting (before the listeners close). Instances already running stay
        in the books: their exits still arrive."""
        if not self._running:
            return
        self._running = False
        self.lane.close()
        self.drain()

    def dispose(self) -> None:
        """These listeners are done with (the socket stopped, was rebound or replanned).
        The lane leaves the reaper's books with its last instance."""
        self.close()
        self._disposed = True
        self._free_if_done()

    def _free_if_done(self) -> None:
        if self._disposed and not self.conns and self._registered:
            self.ctx.reaper.remove_lane(self)
            self._registered = False
        if self._disposed and not self.conns and self.dynamic is not None:
            self.dynamic.release()
            self.dynamic = None

    def resolve(self, pid: int) -> bool:
        """The reaper met a pid it does not know: it may be ours, its record not drained
        yet, or not even queued (the thread is between vfork() and the record). True: it
        may still turn out to be ours (the reaper keeps its exit until it is claimed)."""
        spawning = self.lane.spawning  # first: false means every record so far is queued
        self.drain()
        return spawning and pid not in self.conns

    # ------------------------------------------------------------ the records
    def drain(self) -> None:
        """The lane's records since the last drain (the reaper calls this on every wake-up,
        and before it takes an unknown pid for an orphan)."""
        now = time.time()
        reaper = self.ctx.reaper
        books, log, watch = self.sock.books, self.ctx.log, reaper.watch
        capture, template = self.capture, self.sock.service_name
        tally = self.ctx.tally
        records = self.lane.drain()
        for rec in records:
            kind = rec[0]
            if kind == ACCEPT_ERROR:
                log(
                    "warning",
                    self.sock.name,
                    reason=f"unable to accept: {os.strerror(rec[1])}, retrying in 100ms",
                )
                continue
            if kind == DENIED:
                books.refuse(IP_DENY, fmt_peer(rec[4], rec[5]))
                continue
            _, pid, n, instance, remote, rport = rec[:6]
            books.n_accepted = n + 1
            name = f"{self.prefix}{instance}.service"
            if kind == REFUSED:
                books.refuse_limit(fmt_peer(remote, rport), rec[6])
            elif kind == SPAWNED:
                books.n_connections += 1
                self.conns[pid] = Conn(self, instance, name, pid, remote, rport, rec[6], now)
                watch(pid, self._exited)
                tally.started(template)
                if capture is not None:
                    capture.attribute(pid, name, template)
                log("start", name, pid=pid, command=self.command, peer=fmt_peer(remote, rport))
            elif kind == FAILED:  # before exec: a zombie with systemd's exit code
                books.n_connections += 1
                tally.started(template)
                step, verb, err, code = rec[7:11]
                self.conns[pid] = Conn(self, instance, name, pid, remote, rport, rec[6], now)
                watch(pid, self._failed)
                where = self.cwd if step == "chdir" else self.path
                log(
                    "failed",
                    name,
                    pid=pid,
                    step=step,
                    status=code,
                    reason=f"unable to {verb} {where}: {os.strerror(err)}",
                )
            else:  # NOFORK
                log(
                    "failed",
                    name,
                    result=Result.RESOURCES,
                    reason=f"unable to spawn {self.command}: {os.strerror(rec[7])}",
                )
                log("failed", name, result=Result.RESOURCES)
                tally.ended(template, Result.RESOURCES)
        if records:
            reaper.settle()

    def carry_on(self, rec: dict[str, Any]) -> None:
        """An instance the lane of the activator this process replaced spawned (a re-exec):
        a record again, its exit watched, its slot counted against MaxConnections=."""
        pid = rec["pid"]
        name = f"{self.prefix}{rec['instance']}.service"
        self.conns[pid] = Conn(
            self, rec["instance"], name, pid, rec["remote"], rec["rport"], rec["invocation"],
            rec["since"],
        )  # fmt: skip
        self.lane.adopt(pid)
        self.sock.books.n_connections += 1
        if not self._registered:
            self.ctx.reaper.add_lane(self)
            self._registered = True
        self.ctx.reaper.watch(pid, self._exited)

    # ------------------------------------------------------------ exits
    def _release(self, pid: int) -> Conn | None:
        conn = self.conns.pop(pid, None)
        if conn is not None:
            self.lane.exited(pid)
            self.sock.books.n_connections -= 1
            self._free_if_done()
        return conn

    def _exited(self, pid: int, status: int) -> None:
        conn = self.conns.get(pid)
        if conn is None:
            return
        if self.ctx.host.signal(pid, 0, group=True):
            # Something it started outlives it: the state machine stops the group, as for
            # any service (SIGTERM, TimeoutStopSec=, SIGKILL).
            self.materialize(conn, watch=False)._on_main_exit(pid, status)
            return
        self._release(pid)
        how, value, dumped = exit_of(status)
        log = self.ctx.log
        log("exit", conn.name, pid=pid, **exit_fields(how, value))
        cmd = self.svc.ExecStart[0]
        f = main_result(self.svc, how, value, dumped)
        if cmd.ignore_failure:
            f = Result.SUCCESS
        self.ctx.tally.ended(self.sock.service_name, f)
        if f != Result.SUCCESS:
            log("failed", conn.name, result=f)

    def _failed(self, pid: int, status: int) -> None:
        conn = self._release(pid)
        if conn is not None:
            self.ctx.tally.ended(self.sock.service_name, Result.EXIT_CODE)
            self.ctx.log("failed", conn.name, result=Result.EXIT_CODE)

    # ------------------------------------------------------------ becoming a Service
    def find(self, name: str) -> Conn | None:
        for conn in self.conns.values():
            if conn.name == name:
                return conn
        return None

    def materialize(self, conn: Conn, *, watch: bool = True) -> Service:
        """The instance as a full Service (running, main pid adopted) from now on."""
        sock = self.sock
        unit = self.ctx.units.instantiate(sock.service_name, conn.instance)
        svc = Service(self.ctx, unit, Connection(sock, conn.peer, conn.remote, self, conn.main_pid))
        self.conns.pop(conn.main_pid, None)
        sock.instances[unit.name] = svc
        if not watch:
            self.ctx.reaper.forget(conn.main_pid)
        svc.adopt_instance(conn.main_pid, conn.invocation, conn.since, watch=watch)
        return svc

    def materialize_all(self) -> list[Service]:
        return [self.materialize(c) for c in list(self.conns.values())]

    def gone(self, pid: int) -> None:
        """A materialized instance is done (its socket's instance_done): free its slot."""
        self.lane.exited(pid)
        self._free_if_done()

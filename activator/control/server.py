"""The control socket: activatorctl's verbs carried out on the running daemon.

Root only by default: the node is created with mode 0600 (a umask around bind(), no
chmod window), and every peer is checked again with SO_PEERCRED, so a node made
reachable by mistake still lets nobody else in. ``--control-group GROUP`` makes the
node 0660 with that group and admits the peers that have it as their primary or
supplementary group (SO_PEERGROUPS, /proc as a fallback).

One request per connection, in protocol.py's wire format. Every failure becomes an
error code from ``protocol.ERRORS``; a bug becomes "internal" in the answer and a
traceback in activator's log, never in the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import grp
import json
import os
import signal
import socket
import stat
import struct
import time
from typing import TYPE_CHECKING, Any

from ..core.errors import ActivatorError, RefusedError
from ..core.states import Result, ServiceState, ServiceSubState, SocketState
from ..manager.reload import operation_lock, reload_units
from ..runtime.service import Service
from ..runtime.socket import SocketRuntime
from . import protocol
from .protocol import ProtocolError

if TYPE_CHECKING:
    from ..manager.manager import Daemon

S = ServiceState
U = ServiceSubState
_SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)  # Linux 4.13
_MUTATING = {"start", "stop", "restart", "reload", "kill", "reset-failed"}


class ControlServer:
    def __init__(self, daemon: Daemon, path: str, group: str | None = None) -> None:
        self.daemon = daemon
        self.path = path
        self.group = group
        self.gid: int | None = None
        self._server: asyncio.base_events.Server | None = None
        self._ino: int | None = None  # our node, so close() never unlinks another daemon's
        self._tasks: set[asyncio.Task] = set()  # --no-block operations still running
        self._verbs = {
            "ping": self.verb_ping, "status": self.verb_status, "list-units": self.verb_list_units,
            "list-sockets": self.verb_list_sockets,
            "start": self.verb_start, "stop": self.verb_stop,
            "restart": self.verb_restart, "reload": self.verb_reload, "kill": self.verb_kill,
            "reset-failed": self.verb_reset_failed, "cat": self.verb_cat, "show": self.verb_show,
        }  # fmt: skip
        assert set(self._verbs) == set(protocol.VERBS)

    # ------------------------------------------------------------ the socket
    async def start(self) -> None:
        """Bind and serve. Raises ActivatorError naming the path (or group) and the cause."""
        if self.group is not None:
            self.gid = _group_id(self.group)
        try:
            sock = self._bind()
        except OSError as e:
            raise ActivatorError(
                f"unable to bind control socket {self.path}: {e.strerror or e}"
            ) from None
        self._server = await asyncio.start_unix_server(
            self._serve, sock=sock, limit=protocol.MAX_REQUEST
        )

    def _bind(self) -> socket.socket:
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o755, exist_ok=True)
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISSOCK(st.st_mode):
                raise OSError(errno.EEXIST, "exists and is not a socket")
            if _answers(self.path):
                raise OSError(errno.EADDRINUSE, "another activator is serving it")
            os.unlink(self.path)  # a stale node from an earlier run
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            mode = 0o660 if self.gid is not None else 0o600
            old = os.umask(~mode & 0o777)
            try:
                sock.bind(self.path)
            finally:
                os.umask(old)
            if self.gid is not None:
                os.chown(self.path, -1, self.gid)  # 0660 root:root until here: fails closed
            self._ino = os.stat(self.path).st_ino
            sock.listen(64)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 1)
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._ino:
                os.unlink(self.path)

    # ------------------------------------------------------------ who may talk
    def _allowed(self, sock: socket.socket, pid: int, uid: int, gid: int) -> bool:
        if uid == 0 or uid == os.geteuid():
            return True
        if self.gid is None:
            return False
        if gid == self.gid:
            return True
        return self.gid in _peer_groups(sock, pid)

    # ------------------------------------------------------------ one connection
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            pid, uid, gid = struct.unpack("3i", creds)
            if not self._allowed(sock, pid, uid, gid):
                self.daemon.log(
                    "reject",
                    None,
                    control=self.path,
                    pid=pid,
                    uid=uid,
                    reason="not allowed to use the control socket",
                )
                who = "root" if self.gid is None else f"root and group {self.group}"
                writer.write(
                    protocol.error("permission-denied", f"the control socket is for {who} only")
                )
            else:
                writer.write(await self._answer(reader, pid, uid))
            # a client that does not read its answer holds this connection, not the daemon
            await asyncio.wait_for(writer.drain(), protocol.REQUEST_TIMEOUT)
        except (ConnectionError, OSError, TimeoutError):
            pass  # the client went away or stopped reading; nothing to tell it
        except Exception as e:  # a bug in this function: log it, keep serving
            self.daemon.log("failed", None, reason=f"control connection failed: {e!r}")
            self.daemon.log_exception(e)
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, pid: int, uid: int) -> bytes:
        try:
            line = await asyncio.wait_for(reader.readuntil(b"\n"), protocol.REQUEST_TIMEOUT)
        except asyncio.LimitOverrunError:
            return protocol.error(
                "bad-request", f"request larger than {protocol.MAX_REQUEST} bytes"
            )
        except asyncio.IncompleteReadError as e:
            if not e.partial.strip():
                return protocol.error("bad-request", "empty request")
            line = e.partial  # the client shut down its side without a newline: fine
        except TimeoutError:
            return protocol.error("bad-request", f"no request within {protocol.REQUEST_TIMEOUT:g}s")
        return await self.handle(line, pid=pid, uid=uid)

    async def handle(self, line: bytes, *, pid: int = 0, uid: int = 0) -> bytes:
        """One request line → one answer line. Never raises (but CancelledError)."""
        try:
            verb, units, args = protocol.decode_request(line)
            if verb in _MUTATING and self.daemon.stopping:
                raise ProtocolError("refused", "activator is shutting down")
            if verb in _MUTATING:
                self.daemon.log(
                    "control", None, verb=verb, units=" ".join(units) or None, pid=pid, uid=uid
                )
            return protocol.ok(await self._verbs[verb](units, args))
        except ProtocolError as e:
            return protocol.error(e.code, e.message)
        except RefusedError as e:
            return protocol.error("refused", str(e))
        except ActivatorError as e:
            return protocol.error("failed", str(e))
        except Exception as e:
            self.daemon.log("failed", None, reason=f"control request failed: {e!r}")
            self.daemon.log_exception(e)
            return protocol.error("internal", "internal error; activator's log has the details")

    # ------------------------------------------------------------ lookup
    def _find(self, name: str) -> SocketRuntime | Service | None:
        d = self.daemon
        real = d.units.resolve(_full_name(name))
        return d.sockets.get(real) or d.services.get(real) or d.find_instance(real)

    def _units(self, names: list[str]) -> list[Any]:
        """The runtime objects, all of them or an unknown-unit error naming what is missing."""
        if not names:
            raise ProtocolError("bad-request", "this verb needs at least one unit")
        found = [(n, self._find(n)) for n in names]
        missing = [_full_name(n) for n, t in found if t is None]
        if missing:
            templates = [
                n for n in missing if n.endswith("@.service") and n in self.daemon.units.services
            ]
            if templates:
                raise ProtocolError(
                    "refused",
                    f"{templates[0]} is a template: its instances are started "
                    "by connections to its socket",
                )
            raise ProtocolError(
                "unknown-unit",
                f"unit{'s' if len(missing) > 1 else ''} {', '.join(missing)} not found",
            )
        return [t for _, t in found]

    def _all(self) -> list[Any]:
        d = self.daemon
        lanes = [c for s in d.sockets.values() if s.lane is not None for c in s.lane.conns.values()]
        return [*d.sockets.values(), *d.services.values(), *d.instances.values(), *lanes]

    # ------------------------------------------------------------ verbs: reading
    async def verb_ping(self, units, args) -> dict:
        return {"pid": os.getpid(), "protocol": protocol.VERSION, "since": self.daemon.started}

    async def verb_status(self, units, args) -> list[dict]:
        if not units:
            return [describe(self.daemon, t) for t in self._all()]
        out = []
        for name in units:
            t = self._find(name)
            out.append(
                describe(self.daemon, t) if t is not None else self._not_loaded(_full_name(name))
            )
        return out

    def _not_loaded(self, name: str) -> dict:
        """status of a name with no runtime unit: a unit that failed to load, or nothing."""
        problems = [
            str(p) for p in self.daemon.problems if p.unit == name and p.severity == "error"
        ]
        return {
            "unit": name,
            "kind": _kind(name),
            "load": "error" if problems else "not-found",
            "active": "inactive",
            "sub": "dead",
            "state": "inactive",
            "result": "success",
            "description": "",
            "problems": problems,
        }

    async def verb_list_units(self, units, args) -> list[dict]:
        return [brief(t) for t in self._all()]

    async def verb_list_sockets(self, units, args) -> list[dict]:
        out = []
        for s in self.daemon.sockets.values():
            for spec in s.section.Listen:
                out.append(
                    {
                        "listen": spec.text,
                        "type": _listen_type(spec),
                        "unit": s.name,
                        "activates": s.service_name,
                        "fdname": s.fdname,
                        "state": str(s.state),
                    }
                )
        return out

    async def verb_cat(self, units, args) -> list[dict]:
        if not units:
            raise ProtocolError("bad-request", "this verb needs at least one unit")
        d = self.daemon
        out = []
        for name in units:
            t = self._find(name)
            unit = t.unit if t is not None else d.units.get(_full_name(name))
            if unit is None:
                raise ProtocolError("unknown-unit", f"unit {_full_name(name)} not found")
            path = _unit_path(d, unit)
            texts = []
            for p in [path, *unit.dropins] if path else list(unit.dropins):
                try:
                    with open(p) as f:
                        texts.append({"path": p, "text": f.read()})
                except OSError as e:
                    texts.append({"path": p, "text": f"# unable to read: {e.strerror}\n"})
            out.append({"unit": unit.name, "files": texts})
        return out

    async def verb_show(self, units, args) -> list[dict]:
        return [properties(self.daemon, t) for t in self._units(units)]

    # ------------------------------------------------------------ verbs: changing
    async def verb_start(self, units, args) -> list[dict]:
        targets = self._units(units)
        for t in targets:
            _may(t, "start")
        async with operation_lock(self.daemon):
            for t in targets:
                self._start(t)
        return await self._outcome(targets, args, "start")

    def _start(self, t) -> None:
        if isinstance(t, SocketRuntime):
            try:
                t.start()
            except RefusedError as e:  # systemd's words: "… already active, refusing"
                raise ProtocolError("already-active", str(e)) from None
            return
        if t.state == S.DEACTIVATING:
            raise ProtocolError("refused", f"{t.name} is stopping; start it when it has stopped")
        t.start()

    async def _outcome(self, targets, args, verb: str) -> list[dict]:
        """Wait for the services to settle (unless no_block), then say how each ended.

        A service that ends failed fails the request, as a failed systemctl job does.
        """
        if not args.get("no_block"):
            services = [t for t in targets if isinstance(t, Service)]
            await asyncio.gather(*(_settled(t) for t in services))
            failures = [f for f in (_job_failure(t, verb) for t in services) if f]
            if failures:
                raise ProtocolError("failed", "; ".join(failures))
        return [brief(t) for t in targets]

    async def verb_stop(self, units, args) -> list[dict]:
        targets = self._units(units)
        for t in targets:
            _may(t, "stop")
        if args.get("no_block"):
            self._background(asyncio.gather(*(t.stop() for t in targets), return_exceptions=True))
            return [brief(t) for t in targets]
        async with operation_lock(self.daemon):
            await asyncio.gather(*(t.stop() for t in targets))
        return [brief(t) for t in targets]

    async def verb_restart(self, units, args) -> list[dict]:
        targets = self._units(units)
        for t in targets:
            _may(t, "stop")
            _may(t, "start")
        async with operation_lock(self.daemon):
            await asyncio.gather(*(self._restart(t) for t in targets))
        return await self._outcome(targets, args, "restart")

    async def _restart(self, t) -> None:
        if isinstance(t, Service):
            await t.restart()  # RestartKillSignal=; the fd store survives it
        else:
            await t.stop()
            self._start(t)

    async def verb_reload(self, units, args) -> Any:
        if not units:
            r = await reload_units(self.daemon, dry_run=bool(args.get("dry_run")))
            if r.errors:
                raise ProtocolError(
                    "refused",
                    "\n".join(["unit files have errors; nothing was changed:", *r.problems]),
                )
            if not r.applied and not r.dry_run:
                raise ProtocolError("refused", "\n".join(["nothing was changed:", *r.problems]))
            if r.failed:
                raise ProtocolError(
                    "failed", "\n".join(["reloaded, but some units failed:", *r.failed])
                )
            return r.as_dict()
        targets = self._units(units)
        for t in targets:
            if not isinstance(t, Service):
                raise ProtocolError(
                    "refused",
                    f"{t.name}: a socket cannot be reloaded (restart it, or reload its service)",
                )
            if t.state not in (S.ACTIVE, S.RELOADING):
                raise ProtocolError("not-active", f"{t.name} is not active, cannot reload")
        async with operation_lock(self.daemon):
            await asyncio.gather(*(t.reload() for t in targets))
        return await self._outcome(targets, args, "reload")

    async def verb_kill(self, units, args) -> list[dict]:
        signum = _signal_number(args.get("signal", "SIGTERM"))
        targets = self._units(units)
        for t in targets:
            if not isinstance(t, Service) or t.main_pid is None:
                raise ProtocolError("not-active", f"{t.name} has no process to signal")
        out = []
        for t in targets:
            t.kill(signum)
            out.append({"unit": t.name, "pid": t.main_pid, "signal": _signal_name(signum)})
        return out

    async def verb_reset_failed(self, units, args) -> list[str]:
        targets = self._units(units) if units else self._all()
        done = []
        for t in targets:
            if t.state in (ServiceState.FAILED, SocketState.FAILED):
                done.append(t.name)
            if isinstance(t, Service):  # as systemd's service_reset_failed()
                t.reset_failed()
                t.n_restarts = 0
            else:
                if t.state == SocketState.FAILED:
                    t._set(SocketState.INACTIVE, Result.SUCCESS)
                t.result = Result.SUCCESS
        return done

    def _background(self, aw) -> None:
        task = asyncio.ensure_future(aw)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


# ---------------------------------------------------------------- helpers


def _full_name(name: str) -> str:
    """systemctl's rule: a name without a unit suffix is a service."""
    return name if name.endswith((".socket", ".service")) else name + ".service"


def _kind(name: str) -> str:
    return "socket" if name.endswith(".socket") else "service"


def _may(t, verb: str) -> None:
    """Refuse what the unit refuses (RefuseManualStart=/Stop=), and restarting an instance."""
    unit = t.unit.Unit
    if (verb == "start" and unit.RefuseManualStart) or (verb == "stop" and unit.RefuseManualStop):
        raise ProtocolError(
            "refused", f"{t.name}: manual {verb} refused (RefuseManual{verb.title()}=yes)"
        )
    instance = isinstance(t, Service) and getattr(t, "socket", None) is not None
    if verb == "start" and instance and t.state in (S.INACTIVE, S.FAILED):
        raise ProtocolError(
            "refused", f"{t.name} is an instance for one connection; it cannot be started again"
        )


async def _settled(svc: Service) -> None:
    """Until a start or stop has run its course, as a systemctl job: the service is
    running or exited, or dead, failed or waiting to restart; bounded by TimeoutStartSec=."""
    done = (U.RUNNING, U.EXITED, U.DEAD, U.FAILED, U.AUTO_RESTART)
    if svc.sub in done:
        return
    fut = asyncio.get_running_loop().create_future()

    def changed(_svc: Service) -> None:
        if svc.sub in done and not fut.done():
            fut.set_result(None)

    svc.listeners.append(changed)
    timeout = svc.unit.Service.TimeoutStartSec
    try:
        await asyncio.wait_for(fut, None if timeout in (0, float("inf")) else timeout)
    except TimeoutError:
        pass  # still on its way: report it as it is, as systemctl --no-block would
    finally:
        with contextlib.suppress(ValueError):
            svc.listeners.remove(changed)


def _group_id(group: str) -> int:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        if group.isdigit():
            return int(group)
        raise ActivatorError(f"unable to use control group {group}: no such group") from None


def _answers(path: str) -> bool:
    """Is a live server behind this unix socket node?"""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.setblocking(False)
        try:
            s.connect(path)
        except (BlockingIOError, InterruptedError):
            return True  # its backlog is full: very much alive
        except OSError:
            return False
        return True


def _peer_groups(sock: socket.socket, pid: int) -> set[int]:
    """The peer's groups when it connected (SO_PEERGROUPS), else what /proc says now."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, _SO_PEERGROUPS, 1024)  # Python's maximum
        return set(struct.unpack(f"{len(raw) // 4}I", raw))
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Groups:"):
                    return {int(g) for g in line.split()[1:]}
    except (OSError, ValueError):
        pass
    return set()


def _job_failure(t: Service, verb: str) -> str | None:
    """Why a start/restart/reload "job" failed: the service failed (or failed and waits
    for Restart= to try again), or its ExecReload= failed; None when it did not."""
    if t.sub in (U.FAILED, U.AUTO_RESTART):
        result = t.result
    elif verb == "reload" and t.reload_result != Result.SUCCESS:
        result = t.reload_result
    else:
        return None
    return f"{t.name} failed to {verb} (result: {result}); see 'activatorctl status {t.name}'"


def _signal_name(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"SIGRTMIN+{n - signal.SIGRTMIN}" if n >= signal.SIGRTMIN else str(n)


def _unit_path(daemon: Daemon, unit) -> str:
    """The file a unit came from; a generated instance, its template's."""
    if unit.path or "@" not in unit.name:
        return unit.path
    template = daemon.units.services.get(unit.name[: unit.name.index("@") + 1] + ".service")
    return template.path if template is not None else ""


def _signal_number(sig) -> int:
    text = str(sig).strip().upper()
    try:
        if text.isdigit():
            n = int(text)
            if not 1 <= n <= signal.SIGRTMAX:
                raise ValueError
            return n
        return signal.Signals[text if text.startswith("SIG") else "SIG" + text].value
    except (KeyError, ValueError):
        raise ProtocolError("bad-request", f"unknown signal {str(sig)[:32]!r}") from None


# ---------------------------------------------------------------- descriptions


def _active_sub(t) -> tuple[str, str]:
    """systemd's ActiveState and SubState of a runtime unit."""
    s = t.state
    if isinstance(t, SocketRuntime):
        active = {"listening": "active", "running": "active", "paused": "active"}.get(s, str(s))
        return active, "dead" if s == SocketState.INACTIVE else str(s)
    return str(s), str(t.sub)


def brief(t) -> dict:
    active, sub = _active_sub(t)
    return {
        "unit": t.name,
        "kind": _kind(t.name),
        "load": "loaded",
        "active": active,
        "sub": sub,
        "state": str(t.state),
        "result": str(t.result),
        "description": t.unit.Unit.Description,
    }


def describe(daemon: Daemon, t) -> dict:
    """Everything `activatorctl status` shows about one unit."""
    d = brief(t)
    d.update(
        since=t.since,
        path=_unit_path(daemon, t.unit),
        dropins=list(t.unit.dropins),
        log=recent_log(daemon, t.name),
    )
    if isinstance(t, SocketRuntime):
        svc = daemon.services.get(t.service_name)
        if svc is not None:
            triggered = _active_sub(svc)[0]
        else:  # Accept=yes: the template counts as active while instances run
            triggered = "active" if t.n_connections else "inactive"
        d.update(
            listen=[
                {"address": spec.text, "type": _listen_type(spec), "fdname": t.fdname}
                for spec in t.section.Listen
            ],
            accept=t.section.Accept,
            triggers=t.service_name,
            triggers_active=triggered,
            NAccepted=t.n_accepted,
            NConnections=t.n_connections,
            NRefused=t.n_refused,
            refused={
                "limit": t.refused_limit,
                "per_source": t.refused_per_source,
                "trigger_limit": t.refused_trigger,
            },
            max_connections=t.section.MaxConnections,
            accept_path=t.accept_path,
        )
        if t.section.Accept:
            d["instances"] = [
                {"unit": i.name, "pid": i.main_pid, "peer": i.peer, "since": i.since}
                for i in daemon.instances_of(t)
            ]
    else:
        sock = getattr(t, "socket", None)
        d.update(
            main_pid=t.main_pid,
            command=_comm(t.main_pid),
            control_pid=t.control_pid,
            last_exit=None
            if t.last_exit is None
            else {"how": t.last_exit[0], "value": t.last_exit[1]},
            restarts=t.n_restarts,
            status_text=t.status_text,
            status_errno=t.status_errno,
            fd_store=len(t.fd_store),
            memory=_memory(t.main_pid),
            triggered_by=list(daemon.units.sockets_of(t.name)) if sock is None else [sock.name],
            peer=t.peer,
            invocation=t.invocation,
        )
    return d


def recent_log(daemon: Daemon, name: str) -> list[dict]:
    """The unit's last log lines: {"ts": seconds or None, "text": "event=… key=value …"}.

    The log keeps the lines of every instance of a template together; an instance gets
    those that name it. ``unit=`` is left out: it is the unit asked about.
    """
    at = name.find("@")
    key = name if at < 0 else name[: at + 1] + ".service"
    out = []
    for line in list(daemon.log.recent.get(key, ())):
        rec = None
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                rec = json.loads(line)
        if isinstance(rec, dict):
            if at >= 0 and rec.get("unit") != name:
                continue
            out.append({"ts": rec.get("ts"), "text": _text_line(rec)})
        else:
            if f"unit={name} " not in line + " ":
                continue
            out.append(
                {"ts": None, "text": (line + " ").replace(f" unit={name} ", " ", 1).rstrip()}
            )
    return out


def _text_line(rec: dict) -> str:
    parts = [f"event={rec.get('event')}"]
    for k, v in rec.items():
        if k in ("ts", "event", "unit") or v is None:
            continue
        text = str(v)
        if not text or any(c in text for c in ' "=\n'):
            text = json.dumps(text)
        parts.append(f"{k}={text}")
    return " ".join(parts)


def _listen_type(spec) -> str:
    """systemctl's word for a listener: Stream, Datagram, SequentialPacket, FIFO …"""
    if spec.family in ("inet", "unix"):
        return {"stream": "Stream", "datagram": "Datagram", "seqpacket": "SequentialPacket"}[
            str(spec.type)
        ]
    return {
        "fifo": "FIFO",
        "special": "Special",
        "netlink": "Netlink",
        "mqueue": "MessageQueue",
    }.get(spec.family, spec.family)


def _proc_status(pid: int | None, field: str) -> str | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return line.split(None, 1)[1].strip()
    except OSError:
        return None
    return None


def _memory(pid: int | None) -> int | None:
    """Resident memory of the main process in bytes (VmRSS), while it runs."""
    rss = _proc_status(pid, "VmRSS")
    return int(rss.split()[0]) * 1024 if rss else None


def _comm(pid: int | None) -> str | None:
    return _proc_status(pid, "Name")


# ---------------------------------------------------------------- show


def properties(daemon: Daemon, t) -> dict[str, str]:
    """`systemctl show`-style key=value pairs: runtime properties, then the unit's directives."""
    active, sub = _active_sub(t)
    names = [t.name, *sorted(a for a, real in daemon.units.aliases.items() if real == t.name)]
    props: dict[str, str] = {
        "Id": t.name,
        "Names": " ".join(names),
        "Description": t.unit.Unit.Description,
        "LoadState": "loaded",
        "ActiveState": active,
        "SubState": sub,
        "Result": str(t.result),
        "FragmentPath": t.unit.path,
        "DropInPaths": " ".join(t.unit.dropins),
        "StateChangeTimestamp": _timestamp(t.since),
        "StateChangeTimestampEpoch": f"{t.since:.6f}",
    }
    if isinstance(t, Service):
        sock = getattr(t, "socket", None)
        props.update(
            MainPID=str(t.main_pid or 0),
            ControlPID=str(t.control_pid or 0),
            NRestarts=str(t.n_restarts),
            StatusText=t.status_text,
            StatusErrno=str(t.status_errno),
            ReloadResult=str(t.reload_result),
            NFileDescriptorStore=str(len(t.fd_store)),
            InvocationID=t.invocation,
            MemoryCurrent=str(_memory(t.main_pid) or "[not set]"),
            TriggeredBy=" ".join(daemon.units.sockets_of(t.name)) if sock is None else sock.name,
        )
        if t.last_exit is not None:
            props["ExecMainCode"] = (
                "1" if t.last_exit[0] == "exited" else "2"
            )  # CLD_EXITED / CLD_KILLED
            props["ExecMainStatus"] = str(t.last_exit[1])
        if t.peer:
            props["RemotePeer"] = t.peer
        section = t.unit.Service
    else:
        props.update(
            Triggers=t.service_name,
            NAccepted=str(t.n_accepted),
            NConnections=str(t.n_connections),
            NRefused=str(t.n_refused),
            NRefusedPerSource=str(t.refused_per_source),
            NRefusedTriggerLimit=str(t.refused_trigger),
            Listen=" ".join(f"{spec.text} ({_listen_type(spec)})" for spec in t.section.Listen),
        )
        section = t.unit.Socket
    for key, value in section.model_dump(mode="json").items():
        props.setdefault(key, _flat(key, value))
    return props


def _timestamp(t: float) -> str:
    return time.strftime("%a %Y-%m-%d %H:%M:%S %Z", time.localtime(t))


def _flat(key: str, value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return ""
    if key.endswith("Mode") or key == "UMask":
        return f"{value:04o}" if isinstance(value, int) else str(value)
    if key.endswith("Sec") and isinstance(value, (int, float)):
        return _timespan(value)
    if isinstance(value, (list, tuple)):
        return " ".join(_flat("", v) for v in value)
    if isinstance(value, dict):
        if "argv" in value:  # an Exec*= line, as systemctl show prints it
            flags = "yes" if value.get("ignore_failure") else "no"
            argv = " ".join(value["argv"])
            return f"{{ path={value['path']} ; argv[]={argv} ; ignore_errors={flags} }}"
        if "text" in value:
            return value["text"]
        if set(value) == {"soft", "hard"}:
            soft, hard = (
                "infinity" if v is None else str(v) for v in (value["soft"], value["hard"])
            )
            return soft if soft == hard else f"{soft}:{hard}"
        if set(value) == {"codes", "signals"}:
            sigs = []
            for n in value["signals"]:
                try:
                    sigs.append(signal.Signals(n).name)
                except ValueError:
                    sigs.append(str(n))
            return " ".join([*map(str, sorted(value["codes"])), *sorted(sigs)])
        if "optional" in value and "path" in value:
            return ("-" if value["optional"] else "") + value["path"]
        return " ".join(f"{k}={_flat('', v)}" for k, v in value.items())
    return str(value)


def _timespan(seconds: float) -> str:
    """systemd's format_timespan(): 90 → "1min 30s", inf → "infinity"."""
    if seconds == float("inf"):
        return "infinity"
    if seconds == 0:
        return "0"
    parts = []
    rest = seconds
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if rest >= size:
            n = int(rest // size)
            parts.append(f"{n}{unit}")
            rest -= n * size
    if rest >= 1 or (rest > 0 and not parts):
        parts.append(f"{rest:g}s" if rest >= 1 else f"{rest * 1000:g}ms")
    return " ".join(parts)

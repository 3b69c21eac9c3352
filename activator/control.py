"""The control socket: activatorctl's verbs carried out on the running daemon.

Root only by default (mode 0600, peer checked with SO_PEERCRED); ``--control-group``
lets one group in (mode 0660). The wire format is protocol.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import signal
import socket
import struct
import time
from typing import TYPE_CHECKING, Any

from . import protocol
from .errors import ActivatorError
from .protocol import ProtocolError
from .states import Result, ServiceState, SocketState

if TYPE_CHECKING:
    from .activation import SocketRuntime
    from .daemon import Daemon
    from .service import Service


class ControlServer:
    def __init__(self, daemon: Daemon, path: str, group: str | None = None) -> None:
        self.daemon = daemon
        self.path = path
        self.gid = grp.getgrnam(group).gr_gid if group else None
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o755, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        mode = 0o660 if self.gid is not None else 0o600
        old = os.umask(~mode & 0o777)
        try:
            sock.bind(self.path)
        finally:
            os.umask(old)
        if self.gid is not None:
            os.chown(self.path, -1, self.gid)
        sock.listen(64)
        sock.setblocking(False)
        self._server = await asyncio.start_unix_server(self._serve, sock=sock)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def _allowed(self, sock: socket.socket) -> bool:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", creds)
        if uid == 0 or uid == os.geteuid():
            return True
        if self.gid is None:
            return False
        if gid == self.gid:
            return True
        try:  # supplementary groups of the peer
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("Groups:"):
                        return str(self.gid) in line.split()[1:]
        except OSError:
            pass
        return False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            if not self._allowed(sock):
                writer.write(protocol.error("permission-denied", "the control socket is for root only"))
                return
            try:
                line = await asyncio.wait_for(reader.readuntil(b"\n"), 10)
            except asyncio.LimitOverrunError:
                writer.write(protocol.error("bad-request", "request too large"))
                return
            except (asyncio.IncompleteReadError, TimeoutError):
                writer.write(protocol.error("bad-request", "incomplete request"))
                return
            writer.write(await self.handle(line))
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                await writer.drain()
                writer.close()

    async def handle(self, line: bytes) -> bytes:
        try:
            verb, units, args = protocol.decode_request(line)
            result = await getattr(self, "verb_" + verb.replace("-", "_"))(units, args)
            return protocol.ok(result)
        except ProtocolError as e:
            return protocol.error(e.code, e.message)
        except ActivatorError as e:
            return protocol.error("failed", str(e))
        except Exception as e:
            self.daemon.log("failed", None, reason=f"control request failed: {e!r}")
            self.daemon.log_exception(e)
            return protocol.error("internal", "internal error; see activator's log")

    # ------------------------------------------------------------ lookup
    def _unit(self, name: str) -> SocketRuntime | Service:
        d = self.daemon
        if "." not in name:
            name += ".service"
        real = d.units.aliases.get(name, name)
        obj = d.sockets.get(real) or d.services.get(real) or d.instances.get(real)
        if obj is None:
            raise ProtocolError("unknown-unit", f"unit {name} not found")
        return obj

    def _all(self) -> list[Any]:
        d = self.daemon
        return [*d.sockets.values(), *d.services.values(), *d.instances.values()]

    # ------------------------------------------------------------ verbs
    async def verb_ping(self, units, args) -> dict:
        return {"pid": os.getpid(), "version": 1}

    async def verb_status(self, units, args) -> list[dict]:
        targets = [self._unit(u) for u in units] if units else self._all()
        return [describe(self.daemon, t) for t in targets]

    async def verb_list_units(self, units, args) -> list[dict]:
        return [brief(t) for t in self._all()]

    async def verb_list_sockets(self, units, args) -> list[dict]:
        out = []
        for s in self.daemon.sockets.values():
            for lst in s.listeners or []:
                out.append({"listen": lst.address, "unit": s.name, "activates": s.service_name,
                            "fdname": s.fdname, "state": str(s.state)})
            if not s.listeners:
                for spec in s.section.Listen:
                    out.append({"listen": spec.text, "unit": s.name, "activates": s.service_name,
                                "fdname": s.fdname, "state": str(s.state)})
        return out

    async def verb_start(self, units, args) -> list[str]:
        self._need(units)
        from .activation import SocketRuntime

        for name in units:
            t = self._unit(name)
            if isinstance(t, SocketRuntime):
                t.start()
            else:
                if t.unit.Unit.RefuseManualStart:
                    raise ProtocolError("refused", f"{t.name}: manual start refused (RefuseManualStart=yes)")
                if t.state == ServiceState.FAILED and t.result == Result.START_LIMIT_HIT:
                    t.start_limit.reset()  # an operator's start clears the limit, as systemctl start does
                t.start()
        return [self._unit(n).name for n in units]

    async def verb_stop(self, units, args) -> list[str]:
        self._need(units)
        targets = [self._unit(n) for n in units]
        await asyncio.gather(*(t.stop() for t in targets))
        return [t.name for t in targets]

    async def verb_restart(self, units, args) -> list[str]:
        await self.verb_stop(units, args)
        return await self.verb_start(units, args)

    async def verb_reload(self, units, args) -> dict:
        if not units:
            problems = await self.daemon.reload_units()
            return {"reloaded": True, "problems": [str(p) for p in problems]}
        from .service import Service

        for name in units:
            t = self._unit(name)
            if not isinstance(t, Service):
                raise ProtocolError("refused", f"{t.name}: only services can be reloaded")
            if t.state != ServiceState.ACTIVE:
                raise ProtocolError("not-active", f"{t.name} is not active")
            await t.reload()
        return {"reloaded": units}

    async def verb_kill(self, units, args) -> list[str]:
        self._need(units)
        sig = args.get("signal", "SIGTERM")
        try:
            signum = int(sig) if str(sig).isdigit() else signal.Signals(
                sig if str(sig).startswith("SIG") else "SIG" + str(sig)).value
        except (KeyError, ValueError):
            raise ProtocolError("bad-request", f"unknown signal {sig!r}") from None
        out = []
        for name in units:
            t = self._unit(name)
            if not hasattr(t, "kill") or not t.kill(signum):
                raise ProtocolError("not-active", f"{t.name} has no process to signal")
            out.append(t.name)
        return out

    async def verb_reset_failed(self, units, args) -> list[str]:
        targets = [self._unit(u) for u in units] if units else self._all()
        done = []
        for t in targets:
            if t.state in (ServiceState.FAILED, SocketState.FAILED):
                t._set(type(t.state)("inactive"), Result.SUCCESS)
                done.append(t.name)
            if hasattr(t, "start_limit"):
                t.start_limit.reset()
        return done

    async def verb_cat(self, units, args) -> list[dict]:
        self._need(units)
        out = []
        for name in units:
            unit = self._unit(name).unit
            files = [unit.path, *unit.dropins] if unit.path else list(unit.dropins)
            texts = []
            for path in files:
                try:
                    with open(path) as f:
                        texts.append({"path": path, "text": f.read()})
                except OSError as e:
                    texts.append({"path": path, "text": f"# unable to read: {e.strerror}\n"})
            out.append({"unit": unit.name, "files": texts})
        return out

    async def verb_show(self, units, args) -> list[dict]:
        self._need(units)
        return [properties(self.daemon, self._unit(n)) for n in units]

    def _need(self, units) -> None:
        if not units:
            raise ProtocolError("bad-request", "this verb needs at least one unit")


# ---------------------------------------------------------------- descriptions


def brief(t) -> dict:
    return {"unit": t.name, "kind": "socket" if t.name.endswith(".socket") else "service",
            "state": str(t.state), "result": str(t.result),
            "description": t.unit.Unit.Description}


def describe(daemon: Daemon, t) -> dict:
    from .activation import SocketRuntime

    d = brief(t)
    d["since"] = t.since
    d["path"] = t.unit.path
    d["log"] = list(daemon.log.recent.get(t.name, ()))
    if isinstance(t, SocketRuntime):
        d.update(
            listen=[{"address": spec.text, "fdname": t.fdname} for spec in t.section.Listen],
            accept=t.section.Accept,
            triggers=t.service_name,
            NAccepted=t.n_accepted,
            NConnections=t.n_connections,
            NRefused=t.n_refused,
            refused={"limit": t.refused_limit, "per_source": t.refused_per_source,
                     "trigger_limit": t.refused_trigger},
        )
        if t.section.Accept:
            d["instances"] = [
                {"unit": i.name, "pid": i.main_pid, "peer": i.peer}
                for i in daemon.instances.values() if getattr(i, "socket", None) is t
            ]
    else:
        d.update(
            main_pid=t.main_pid,
            last_exit=None if t.last_exit is None else {"how": t.last_exit[0], "value": t.last_exit[1]},
            restarts=t.n_restarts,
            status_text=t.status_text,
            memory=_memory(t.main_pid),
            sockets=list(daemon.units.sockets_of(t.name)) if t.name in daemon.services else [],
            peer=t.peer,
        )
    return d


def _memory(pid: int | None) -> int | None:
    """Resident memory of the main process in bytes (VmRSS), when it runs."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def properties(daemon: Daemon, t) -> dict[str, str]:
    """`systemctl show`-style key=value pairs: runtime properties, then the unit's directives."""
    props: dict[str, str] = {
        "Id": t.name,
        "Description": t.unit.Unit.Description,
        "ActiveState": _active_state(t),
        "SubState": str(t.state),
        "Result": str(t.result),
        "FragmentPath": t.unit.path,
        "StateChangeTimestamp": time.strftime("%a %Y-%m-%d %H:%M:%S %Z", time.localtime(t.since)),
    }
    if hasattr(t, "main_pid"):
        props["MainPID"] = str(t.main_pid or 0)
        props["NRestarts"] = str(t.n_restarts)
        props["StatusText"] = t.status_text
        if t.last_exit is not None:
            props["ExecMainCode"] = "1" if t.last_exit[0] == "exited" else "2"
            props["ExecMainStatus"] = str(t.last_exit[1])
        section = t.unit.Service
    else:
        props["NAccepted"] = str(t.n_accepted)
        props["NConnections"] = str(t.n_connections)
        props["NRefused"] = str(t.n_refused)
        props["Triggers"] = t.service_name
        section = t.unit.Socket
    for key, value in section.model_dump(mode="json").items():
        props.setdefault(key, _flat(value))
    return props


def _active_state(t) -> str:
    s = str(t.state)
    return {"listening": "active", "running": "active", "paused": "active"}.get(s, s)


def _flat(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(_flat(v) for v in value)
    if isinstance(value, dict):
        if "argv" in value:
            return " ".join(value["argv"])
        if "text" in value:
            return value["text"]
        return " ".join(f"{k}={_flat(v)}" for k, v in value.items())
    return str(value)

"""Re-reading unit files without dropping a connection (SIGHUP, `activatorctl reload`).

The rules: if the new files have errors, nothing changes (the problems are
reported). Otherwise new units start, removed ones stop, changed services get the
new definition (an active one is restarted), and a socket is rebound only when
its listen settings changed — an unchanged listener keeps its fd, so the kernel
keeps queueing connections through the whole reload.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .activation import SocketRuntime
from .errors import ActivatorError
from .units import Problem, load_units

if TYPE_CHECKING:
    from .daemon import Daemon

# Settings that live in the bound fds; anything else can change under a live listener.
_BIND_KEYS = {
    "Listen", "Accept", "SocketUser", "SocketGroup", "SocketMode", "DirectoryMode", "Backlog",
    "BindIPv6Only", "BindToDevice", "SocketProtocol", "ReusePort", "FreeBind", "Transparent",
    "Broadcast", "PassCredentials", "PassSecurity", "PassPacketInfo", "Timestamping", "KeepAlive",
    "KeepAliveTimeSec", "KeepAliveIntervalSec", "KeepAliveProbes", "NoDelay", "DeferAcceptSec",
    "Priority", "ReceiveBuffer", "SendBuffer", "IPTOS", "IPTTL", "Mark", "TCPCongestion",
    "PipeSize", "Writable", "Symlinks",
}


def _bind_settings(unit) -> dict:
    return {k: v for k, v in unit.Socket.model_dump().items() if k in _BIND_KEYS}


async def reload_units(d: Daemon) -> list[Problem]:
    new, problems = load_units(d.unit_dirs, strict=d.strict)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        for p in errors:
            d.log("reload-refused", p.unit, problem=str(p))
        return problems
    d.log("reload", None, sockets=len(new.sockets), services=len(new.services))
    old = d.units
    d.units = new
    d.problems = problems
    d._prepared.clear()

    # Services: removed → stop; changed → new definition (restart if active); new → add.
    for name in list(d.services):
        if name not in new.services:
            svc = d.services.pop(name)
            await svc.stop()
            d.log("removed", name)
    for name, unit in new.services.items():
        if unit.is_template:
            continue
        svc = d.services.get(name)
        if svc is None:
            d._add_service(unit)
            d.log("added", name)
        elif svc.unit != unit:
            was_active = svc.active
            if was_active:
                await svc.stop()
            svc.unit = unit
            d.log("changed", name)
            if was_active:
                svc.start()

    # Sockets: keep the fds of unchanged listeners.
    for name in list(d.sockets):
        if name not in new.sockets:
            sock = d.sockets.pop(name)
            await sock.stop()
            d.log("removed", name)
    for name, unit in new.sockets.items():
        sock = d.sockets.get(name)
        if sock is None:
            sock = d.sockets[name] = SocketRuntime(d, unit)
            try:
                sock.start()
            except ActivatorError as e:
                d.log("failed", name, reason=str(e))
            d.log("added", name)
            continue
        if sock.unit == unit:
            sock.service_name = new.service_of(name)
            continue
        if _bind_settings(sock.unit) != _bind_settings(unit):
            await sock.stop()
            sock = d.sockets[name] = SocketRuntime(d, unit)
            try:
                sock.start()
            except ActivatorError as e:
                d.log("failed", name, reason=str(e))
            d.log("rebound", name)
        else:
            # Same listeners: carry the fds and counters over to the new definition.
            fresh = SocketRuntime(d, unit)
            fresh.listeners, sock.listeners = sock.listeners, []
            for attr in ("state", "since", "n_accepted", "n_connections", "n_refused", "refused_limit",
                         "refused_per_source", "refused_trigger", "per_source", "_watching"):
                setattr(fresh, attr, getattr(sock, attr))
            if fresh._watching:
                sock._watching = True
                sock.listeners = fresh.listeners
                sock._unwatch()
                sock.listeners = []
                fresh._watching = False
                fresh._watch()
            for inst in d.instances.values():
                if getattr(inst, "socket", None) is sock:
                    inst.socket = fresh  # type: ignore[attr-defined]
            d.sockets[name] = fresh
            d.log("changed", name)
    del old
    return problems

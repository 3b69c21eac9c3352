"""What ``status`` and ``show`` say of a socket and of a service, kind by kind.

The unit interface's ``describe()`` and ``properties()`` are these functions; the control
plane adds what every unit has (name, states, since, files, log lines). A Service and
an accept lane's record (lane.Conn) read alike: both are described from the same
attributes (main_pid, last_exit, peer …).
"""

from __future__ import annotations

import socket
from typing import Any

from ..core import procfs
from ..exec.bind import kernel_drops
from ..units.listen import listen_type


def describe_service(s: Any, triggered_by: list[str]) -> dict[str, Any]:
    pid = s.main_pid
    return {
        "main_pid": pid,
        "command": procfs.comm(pid),
        "control_pid": s.control_pid,
        "last_exit": None
        if s.last_exit is None
        else {"how": s.last_exit[0], "value": s.last_exit[1]},
        "restarts": s.n_restarts,
        "status_text": s.status_text,
        "status_errno": s.status_errno,
        "fd_store": len(s.fd_store),
        "memory": procfs.memory(pid),
        "triggered_by": triggered_by,
        "peer": s.peer,
        "invocation": s.invocation,
        "idle_stop": s.idle_stop.report() if s.idle_stop is not None else None,
    }


def service_properties(s: Any, triggered_by: str) -> dict[str, str]:
    props = {
        "MainPID": str(s.main_pid or 0),
        "ControlPID": str(s.control_pid or 0),
        "NRestarts": str(s.n_restarts),
        "StatusText": s.status_text,
        "StatusErrno": str(s.status_errno),
        "ReloadResult": str(s.reload_result),
        "NFileDescriptorStore": str(len(s.fd_store)),
        "InvocationID": s.invocation,
        "MemoryCurrent": str(procfs.memory(s.main_pid) or "[not set]"),
        "TriggeredBy": triggered_by,
    }
    if s.last_exit is not None:
        props["ExecMainCode"] = "1" if s.last_exit[0] == "exited" else "2"  # CLD_EXITED/KILLED
        props["ExecMainStatus"] = str(s.last_exit[1])
    if s.peer:
        props["RemotePeer"] = s.peer
    return props


def describe_socket(sock: Any, triggers_active: str, instances: list) -> dict[str, Any]:
    sec = sock.section
    bound = {lst.address for lst in sock.listeners}  # what activator holds open right now
    d: dict[str, Any] = {
        "listen": [
            {
                "address": spec.text,
                "type": listen_type(spec),
                "fdname": sock.fdname,
                "listening": spec.text in bound,
            }
            for spec in sec.Listen
        ],
        "accept": sec.Accept,
        "triggers": sock.service_name,
        "triggers_active": triggers_active,
        **sock.books.counters(),
        "max_connections": sec.MaxConnections,
        "accept_path": sock.accept_path,
    }
    if sec.Accept:
        d["instances"] = [
            {"unit": i.name, "pid": i.main_pid, "peer": i.peer, "since": i.since} for i in instances
        ]
    if sock.admission.rules is not None:
        drops = [
            kernel_drops(lst.fd)
            for lst in sock.listeners
            if lst.family in (socket.AF_INET, socket.AF_INET6)
        ]
        d["filter"] = {
            "allow": list(sec.IPAddressAllow),
            "deny": list(sec.IPAddressDeny),
            # packets the kernel dropped on the listeners: the BPF filter's refusals (SYNs,
            # datagrams), and listen-queue overflows
            "kernel_drops": sum(x for x in drops if x is not None) if drops else None,
        }
    return d


def socket_properties(sock: Any) -> dict[str, str]:
    b = sock.books
    return {
        "Triggers": sock.service_name,
        "NAccepted": str(b.n_accepted),
        "NConnections": str(b.n_connections),
        "NRefused": str(b.n_refused),
        "NRefusedPerSource": str(b.refused_per_source),
        "NRefusedTriggerLimit": str(b.refused_trigger),
        "NRefusedIPDeny": str(b.refused_by["ip-deny"]),
        "NRefusedRate": str(b.refused_by["rate"]),
        "NRefusedRateTotal": str(b.refused_by["rate-total"]),
        "Listen": " ".join(f"{spec.text} ({listen_type(spec)})" for spec in sock.section.Listen),
    }

"""A unit model → its TOML form (what ``activatorctl import`` writes).

Only values that differ from systemd's defaults are written, under systemd's directive
names, so the file reads like the unit it came from. Strings are written so that the
TOML reader gives them back unchanged: ``%`` doubled (values are specifier-expanded
on reading), list items quoted where they contain blanks or quotes, command lines
re-quoted, modes as octal strings ("0660"), signals by name, infinite times as
"infinity". Loading the result gives a model equal to the input (name, path and
drop-ins aside, which come from the file's own name and place).
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Any

import tomli_w

from .directives.network import format_rate
from .model import (
    ExecCommand,
    ExitStatusSet,
    FifoListen,
    InetListen,
    MessageQueueListen,
    NetlinkListen,
    Rate,
    Rlimit,
    ServiceUnit,
    SocketType,
    SocketUnit,
    SpecialListen,
    TargetUnit,
    UnixListen,
)
from .specifiers import escape_percent
from .values import format_exec, quote_word, signal_name

_MODES = frozenset(
    {
        "UMask", "SocketMode", "DirectoryMode", "RuntimeDirectoryMode", "StateDirectoryMode",
        "CacheDirectoryMode", "LogsDirectoryMode", "ConfigurationDirectoryMode",
    }
)  # fmt: skip
_SIGNALS = frozenset({"KillSignal", "RestartKillSignal", "FinalKillSignal", "WatchdogSignal"})
# list directives whose value is split into words on reading: items must be quoted
_WORD_LISTS = frozenset(
    {
        "Documentation", "Requires", "Requisite", "Wants", "BindsTo", "PartOf", "Conflicts",
        "Before", "After", "OnFailure", "WantedBy", "RequiredBy", "Alias", "Also",
        "SupplementaryGroups", "PassEnvironment", "UnsetEnvironment", "RuntimeDirectory",
        "StateDirectory", "CacheDirectory", "LogsDirectory", "ConfigurationDirectory",
        "Symlinks", "Sockets",
    }
)  # fmt: skip
_RENAMED = {
    "UCSPI": "X-Activator-UCSPI",
    "PerSourcePrefix": "X-Activator-PerSourcePrefix",
    "ConnectionRate": "X-Activator-ConnectionRate",
    "ConnectionRateTotal": "X-Activator-ConnectionRateTotal",
    "ProxyTo": "X-Activator-ProxyTo",
    "ProxyProtocol": "X-Activator-ProxyProtocol",
    "IdleStopSec": "X-Activator-IdleStopSec",
    "Metrics": "X-Activator-Metrics",
}


def _listen_directive(lst: Any) -> str:
    if isinstance(lst, (InetListen, UnixListen)):
        return {
            SocketType.STREAM: "ListenStream",
            SocketType.DATAGRAM: "ListenDatagram",
            SocketType.SEQPACKET: "ListenSequentialPacket",
        }[lst.type]
    names: dict[type, str] = {
        FifoListen: "ListenFIFO",
        SpecialListen: "ListenSpecial",
        NetlinkListen: "ListenNetlink",
        MessageQueueListen: "ListenMessageQueue",
    }
    return names[type(lst)]


def _time(value: float) -> float | str:
    return "infinity" if math.isinf(value) else value


def _rlimit_part(v: int | None) -> str:
    return "infinity" if v is None else str(v)


def _scalar(field: str, value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if field in _MODES:
        return f"{value:04o}"
    if field in _SIGNALS:
        return signal_name(value)
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, float):
        return _time(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return escape_percent(value)
    if isinstance(value, Rlimit):
        if value.soft == value.hard:
            return _rlimit_part(value.soft)
        return f"{_rlimit_part(value.soft)}:{_rlimit_part(value.hard)}"
    if isinstance(value, ExitStatusSet):
        words = [str(c) for c in sorted(value.codes)] + [
            signal_name(s) for s in sorted(value.signals)
        ]
        return " ".join(words)
    raise TypeError(f"{field}: cannot export {type(value).__name__}")  # pragma: no cover


def _section(model: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, info in type(model).model_fields.items():
        value = getattr(model, field)
        if value == info.default:
            continue
        key = _RENAMED.get(field, field)
        if field == "Listen":
            _listen(value, out)
        elif field == "PerSourcePrefix":
            out[key] = f"{value[0]}/{value[1]}"
        elif isinstance(value, Rate):
            out[key] = format_rate(value)
        elif isinstance(value, (InetListen, UnixListen)):  # X-Activator-ProxyTo=
            out[key] = escape_percent(value.text)
        elif field == "Conditions":
            for directive, cond in value:
                out.setdefault(directive, []).append(escape_percent(cond))
        elif field == "Environment":
            out[key] = {k: escape_percent(v) for k, v in value.items()}
        elif field in ("CapabilityBoundingSet", "AmbientCapabilities"):
            out[key] = " ".join(value)  # "" is the empty set
        elif isinstance(value, tuple) and value and isinstance(value[0], ExecCommand):
            out[key] = [format_exec(c, escape_percent) for c in value]
        elif field == "EnvironmentFile":
            out[key] = [escape_percent(("-" if e.optional else "") + e.path) for e in value]
        elif field in _WORD_LISTS:
            out[key] = [quote_word(escape_percent(v)) for v in value]
        elif isinstance(value, tuple):
            out[key] = [_scalar(field, v) for v in value]
        else:
            out[key] = _scalar(field, value)
    # One value reads better than a one-element list; the reader takes either.
    return {
        k: (v[0] if isinstance(v, list) and len(v) == 1 and k != "Listen" else v)
        for k, v in out.items()
    }


def _listen(listens: tuple[Any, ...], out: dict[str, Any]) -> None:
    keys = [_listen_directive(lst) for lst in listens]
    runs = [k for i, k in enumerate(keys) if i == 0 or keys[i - 1] != k]
    if len(runs) == len(set(runs)):
        for k, lst in zip(keys, listens, strict=True):
            out.setdefault(k, []).append(escape_percent(lst.text))
    else:
        # Kinds interleave and fd order follows line order: TOML cannot repeat a key,
        # so use the reader's Listen = [{ListenStream = …}, …] form.
        out["Listen"] = [
            {k: escape_percent(lst.text)} for k, lst in zip(keys, listens, strict=True)
        ]


def unit_to_dict(unit: SocketUnit | ServiceUnit | TargetUnit) -> dict[str, Any]:
    """The TOML document (as a dict) for ``unit``."""
    doc: dict[str, Any] = {}
    unit_sec = _section(unit.Unit)
    if unit_sec:
        doc["Unit"] = unit_sec
    if isinstance(unit, SocketUnit):
        doc["Socket"] = _section(unit.Socket)
    elif isinstance(unit, ServiceUnit):
        doc["Service"] = _section(unit.Service)
    install = _section(unit.Install)
    if install:
        doc["Install"] = install
    return doc


def unit_to_toml(unit: SocketUnit | ServiceUnit | TargetUnit, *, source: str | None = None) -> str:
    """The TOML form of ``unit``; loading it (as NAME.socket.toml …) gives an equal model.

    ``source`` adds a comment naming the file it was imported from.
    """
    head = f"# {unit.name}"
    if source:
        head += f", imported from {source} (drop-ins merged)"
    return head + "\n" + tomli_w.dumps(unit_to_dict(unit), multiline_strings=False)

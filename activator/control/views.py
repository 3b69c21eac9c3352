"""What ``status``, ``list-units`` and ``show`` print: every unit's common part, plus what
the unit itself says of its kind (the unit interface's ``describe()``/``properties()``).

``show`` speaks systemctl's language: ActiveState=, SubState=, timestamps and spans as
systemd formats them, then every directive of the unit's section, flattened.
"""

from __future__ import annotations

import json
import signal
import time
from typing import TYPE_CHECKING, Any

from ..core.log import Recent
from ..runtime.unit import RuntimeUnit
from ..units.names import parse_unit_name
from ..units.targets import BOOT_TARGETS

if TYPE_CHECKING:  # loaded by the first status that asks (an idle daemon never does)
    from ..units.install import Lookup


def kind_of(name: str) -> str:
    """A unit's type from its name: "web.socket" → "socket"."""
    return name.rpartition(".")[2] or "service"


def brief(t: RuntimeUnit) -> dict[str, Any]:
    return {
        "unit": t.name,
        "kind": t.kind,
        "load": "loaded",
        "active": t.active_state,
        "sub": t.sub_state,
        "state": str(t.state),
        "result": str(t.result),
        "description": t.unit.Unit.Description,
    }


def not_loaded(name: str, problems: list[str], *, masked: bool = False) -> dict[str, Any]:
    """status of a name with no runtime unit: masked, a unit that failed to load, or nothing."""
    return {
        "unit": name,
        "kind": kind_of(name),
        "load": "masked" if masked else "error" if problems else "not-found",
        "active": "inactive",
        "sub": "dead",
        "state": "inactive",
        "result": "success",
        "description": "",
        "problems": problems,
    }


def describe(
    t: RuntimeUnit, *, path: str, recent: list[Recent], unit_file: tuple[str, str] | None = None
) -> dict[str, Any]:
    """Everything `activatorctl status` shows about one unit; ``unit_file`` is its unit
    file state and preset (``Loaded: loaded (PATH; enabled; preset: enabled)``)."""
    d = brief(t)
    d.update(since=t.since, path=path, dropins=list(t.unit.dropins), log=recent_log(recent, t.name))
    if unit_file is not None:
        d.update(unit_file_state=unit_file[0], unit_file_preset=unit_file[1])
    d.update(t.describe())
    return d


def unit_file(lookup: Lookup, t: RuntimeUnit, *, boot_enables: bool) -> tuple[str, str] | None:
    """(state, preset) of the unit's file as systemctl status shows them, along the
    daemon's own load path; None when there is no file to speak of. ``boot_enables``:
    without --systemd activator starts at boot what [Install] says a boot target wants
    (units/loader.py), so such a unit is enabled rather than disabled."""
    from ..units.install import InstallFailure

    try:
        state = lookup.state(t.name)
    except InstallFailure:
        return None
    if state == "disabled" and boot_enables and _wanted_at_boot(t):
        state = "enabled"
    return state, lookup.preset(t.name)


def _wanted_at_boot(t: RuntimeUnit) -> bool:
    i = t.unit.Install
    p = parse_unit_name(t.name)
    if p is not None and p.instance and p.instance != i.DefaultInstance:
        return False  # a template's [Install] is its DefaultInstance='s
    return any(n in BOOT_TARGETS for n in (*i.WantedBy, *i.RequiredBy, *i.UpheldBy))


def recent_log(records: list[Recent], name: str) -> list[dict[str, Any]]:
    """The unit's last log lines: {"ts": seconds, "text": …}. A service's own output reads
    as the journal shows it (``ident[pid]: text``), activator's events as ``event=… key=…``.

    The log keeps the lines of every instance of a template together; an instance gets
    those that name it. ``unit=`` is left out: it is the unit asked about.
    """
    instance = "@" in name and not name.endswith("@.service")
    out = []
    for ts, event, unit, fields, msg in records:
        if instance and unit != name:
            continue
        out.append({"ts": ts, "text": line_text(event, fields, msg)})
    return out


def line_text(event: str, fields: dict[str, Any], msg: str) -> str:
    """One line of a unit as status and logs print it."""
    if event == "output":
        return f"{fields.get('ident', '')}[{fields.get('pid', '?')}]: {msg}"
    parts = [f"event={event}"]
    for k, v in fields.items():
        text = str(v)
        if not text or any(c in text for c in ' "=\n'):
            text = json.dumps(text)
        parts.append(f"{k}={text}")
    return " ".join(parts)


# ---------------------------------------------------------------- show


def properties(t: RuntimeUnit, *, names: list[str]) -> dict[str, str]:
    """`systemctl show`-style key=value pairs: runtime properties, then the unit's directives."""
    unit = t.unit
    props: dict[str, str] = {
        "Id": t.name,
        "Names": " ".join(names),
        "Description": unit.Unit.Description,
        "LoadState": "loaded",
        "ActiveState": t.active_state,
        "SubState": t.sub_state,
        "Result": str(t.result),
        "FragmentPath": unit.path,
        "DropInPaths": " ".join(unit.dropins),
        "StateChangeTimestamp": _timestamp(t.since),
        "StateChangeTimestampEpoch": f"{t.since:.6f}",
    }
    props.update(t.properties())
    for key, value in unit.section.model_dump(mode="json").items():
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
        return _flat_table(value)
    return str(value)


def _flat_table(value: dict) -> str:
    if "argv" in value:  # an Exec*= line, as systemctl show prints it
        flags = "yes" if value.get("ignore_failure") else "no"
        argv = " ".join(value["argv"])
        return f"{{ path={value['path']} ; argv[]={argv} ; ignore_errors={flags} }}"
    if "text" in value:
        return value["text"]
    if set(value) == {"soft", "hard"}:
        soft, hard = ("infinity" if v is None else str(v) for v in (value["soft"], value["hard"]))
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

"""`activatorctl`: steer a running activator, as systemctl steers systemd.

    activatorctl [--control PATH] [--json] VERB [ARGS…]

Verbs: start|stop|restart UNIT… [--no-block], reload [UNIT…|--dry-run], status [UNIT…],
list-units, list-sockets, cat UNIT…, show UNIT… [-p PROP] [--value],
kill [--signal SIG] UNIT…, reset-failed [UNIT…], and the offline verify PATH…
[--strict] and import FILE… [-o DIR]. A unit name without a suffix is a service.
The enablement verbs (enable, disable, is-enabled, list-unit-files, list-dependencies,
daemon-reload) are install.py's.

Exit codes, as systemctl's: 0 success (status: every unit named is active; status
without units: 0 whenever activator answers); 3 status of an inactive or failed
unit; 4 no such unit; 1 any other failure (activator unreachable, permission
denied, the operation failed); 2 bad usage.

This module imports only the wire protocol and the standard library pieces it
needs, so a status call stays fast; the offline verbs load the unit model lazily.
tests/control/test_client.py holds it to that.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time

from ..control import protocol
from ..control.protocol import ProtocolError
from . import install

DEFAULT_CONTROL = "/run/activator/control.sock"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INACTIVE, EXIT_NO_UNIT = 0, 1, 2, 3, 4
# What `status` counts as running (exit 0), as systemctl: activating, deactivating and
# waiting to restart are not (exit 3).
_ACTIVE = ("active", "reloading")
# Verbs that wait for services to start or stop: activator bounds those waits with
# each unit's TimeoutStartSec=/TimeoutStopSec=, so the client does not add its own.
_WAITING = ("start", "stop", "restart", "reload")
_TIMEOUT = 30.0


def call(
    path: str, verb: str, units: list[str] | None = None, timeout: float | None = _TIMEOUT, **args
):
    """One request to the daemon; returns the result.

    Raises ProtocolError for an error answer, OSError when activator cannot be reached.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        try:
            s.sendall(protocol.request(verb, units, **args))
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before it read the request: the answer says why
        buf = b""
        while b"\n" not in buf:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            buf += data
    return protocol.decode_answer(buf)


def _parser() -> argparse.ArgumentParser:
    # --json and --control are accepted before and after the verb, as systemctl's options.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--control",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help=f"control socket (default $ACTIVATOR_CONTROL or {DEFAULT_CONTROL})",
    )
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    p = argparse.ArgumentParser(
        prog="activatorctl", description="control a running activator", parents=[common]
    )
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, help: str):
        return sub.add_parser(name, parents=[common], help=help, description=help)

    for name, what in (
        ("start", "start units (a socket binds and listens; a service gets its sockets)"),
        ("stop", "stop units (a socket closes its listeners and stops its instances)"),
        ("restart", "stop, then start units"),
    ):
        v = verb(name, what)
        v.add_argument("units", nargs="+", metavar="UNIT")
        v.add_argument("--no-block", action="store_true", help="do not wait for services to settle")
    r = verb("reload", "re-read the unit files, or reload services (ExecReload=, else restart)")
    r.add_argument("units", nargs="*", metavar="UNIT")
    r.add_argument(
        "--dry-run", action="store_true", help="say what re-reading the unit files would do"
    )
    verb("status", "show the state of units (all without arguments)").add_argument(
        "units", nargs="*", metavar="UNIT"
    )
    verb(
        "reset-failed", "forget the failed state and start limits of units (all without arguments)"
    ).add_argument("units", nargs="*", metavar="UNIT")
    verb("list-units", "list the units")
    verb("list-sockets", "list the listeners and what they activate")
    verb("cat", "print the unit files").add_argument("units", nargs="+", metavar="UNIT")
    s = verb("show", "print properties as key=value, as systemctl show")
    s.add_argument("units", nargs="+", metavar="UNIT")
    s.add_argument(
        "-p",
        "--property",
        action="append",
        metavar="NAME",
        help="only these (repeat, or NAME,NAME)",
    )
    s.add_argument("--value", action="store_true", help="print values only")
    k = verb("kill", "send a signal to the main process of services")
    k.add_argument(
        "-s", "--signal", default="SIGTERM", help="signal name or number (default SIGTERM)"
    )
    k.add_argument("units", nargs="+", metavar="UNIT")
    v = verb("verify", "check unit files offline, like systemd-analyze verify")
    v.add_argument("paths", nargs="+", metavar="PATH")
    v.add_argument("--strict", action="store_true", help="warnings are errors")
    i = verb("import", "write the TOML form of unit files (offline)")
    i.add_argument("files", nargs="+", metavar="FILE")
    i.add_argument("-o", "--output", metavar="DIR")
    install.add_parsers(verb)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:
        return EXIT_USAGE if e.code else EXIT_OK
    # (not set_defaults(): the parent's actions are shared with every verb's parser)
    args.control = getattr(args, "control", None)
    args.json = getattr(args, "json", False)
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `activatorctl … | head`: the reader left; stop quietly, as systemctl does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _run(args) -> int:
    if args.verb == "verify":
        from .offline import run_verify

        return run_verify(args.paths, strict=args.strict, json=args.json)
    if args.verb == "import":
        from .offline import run_import

        return run_import(args.files, args.output)
    path = args.control or os.environ.get("ACTIVATOR_CONTROL") or DEFAULT_CONTROL
    if args.verb == "daemon-reload":
        args.verb, args.units = "reload", []
    if args.verb in install.VERBS:
        return install.run(args, path, call=call, table=_table, dot=_dot)
    units = getattr(args, "units", None) or []
    extra: dict = {}
    if args.verb == "kill":
        extra["signal"] = args.signal
    if getattr(args, "no_block", False):
        extra["no_block"] = True
    if getattr(args, "dry_run", False):
        if units:
            print(
                "activatorctl: reload: --dry-run is for re-reading the unit files", file=sys.stderr
            )
            return EXIT_USAGE
        extra["dry_run"] = True
    timeout = None if args.verb in _WAITING else _TIMEOUT
    try:
        result = call(path, args.verb, units, timeout=timeout, **extra)
    except ProtocolError as e:
        return _fail(
            args, e.code, e.message, EXIT_NO_UNIT if e.code == "unknown-unit" else EXIT_FAILURE
        )
    except OSError as e:
        why = e.strerror or str(e) or type(e).__name__
        return _fail(
            args, "unreachable", f"unable to reach activator at {path}: {why}", EXIT_FAILURE
        )
    if args.verb == "show":
        result = [_select(props, args.property) for props in result]
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print(args, result)
    if args.verb == "status":
        missing = [u["unit"] for u in result if u.get("load") == "not-found"]
        for name in missing:
            print(f"Unit {name} could not be found.", file=sys.stderr)
        if missing:
            return EXIT_NO_UNIT
        if units and not all(u["active"] in _ACTIVE for u in result):
            return EXIT_INACTIVE
    return EXIT_OK


def _fail(args, code: str, message: str, status: int) -> int:
    if args.json:
        json.dump({"error": code, "message": message}, sys.stdout)
        sys.stdout.write("\n")
    print(f"activatorctl: {args.verb}: {message}", file=sys.stderr)
    return status


def _select(props: dict, wanted: list[str] | None) -> dict:
    if not wanted:
        return props
    names = [n for w in wanted for n in w.split(",") if n]
    return {n: props[n] for n in names if n in props}


# ---------------------------------------------------------------- human output


def _print(args, result) -> None:
    out = sys.stdout.write
    verb = args.verb
    if verb == "status":
        color = _color()
        now = time.time()
        for i, u in enumerate(result):
            if u.get("load") == "not-found":
                continue
            if i:
                out("\n")
            out(_status_text(u, now, color))
    elif verb == "list-units":
        rows = [(u["unit"], u["load"], u["active"], u["sub"], u["description"]) for u in result]
        _table(("UNIT", "LOAD", "ACTIVE", "SUB", "DESCRIPTION"), rows)
        out(f"\n{len(rows)} loaded unit{'s' if len(rows) != 1 else ''} listed.\n")
    elif verb == "list-sockets":
        rows = [(s["listen"], s["type"], s["unit"], s["activates"], s["state"]) for s in result]
        _table(("LISTEN", "TYPE", "UNIT", "ACTIVATES", "STATE"), rows)
        out(f"\n{len(rows)} socket{'s' if len(rows) != 1 else ''} listed.\n")
    elif verb == "cat":
        for i, u in enumerate(result):
            for j, f in enumerate(u["files"]):
                if i or j:
                    out("\n")
                out(f"# {f['path']}\n{f['text']}")
                if f["text"] and not f["text"].endswith("\n"):
                    out("\n")
    elif verb == "show":
        for i, props in enumerate(result):
            if i:
                out("\n")
            for k, v in props.items():
                out(f"{v}\n" if args.value else f"{k}={v}\n")
    elif verb == "reload" and not args.units:
        for p in result.get("problems", []):
            print(p, file=sys.stderr)
        kinds = ("added", "removed", "changed", "rebound", "restarted")
        counts = ", ".join(f"{len(result[k])} {k}" for k in kinds)
        out(f"{'would reload' if result.get('dry_run') else 'reloaded'}: {counts}\n")
        for k in kinds:
            if result[k]:
                out(f"  {k}: {' '.join(result[k])}\n")


def _table(header: tuple, rows: list[tuple]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    for r in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(r, widths, strict=False)]
        sys.stdout.write(" ".join([*cells, str(r[-1])]).rstrip() + "\n")


def _color() -> bool:
    return (
        sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    )


def _paint(text: str, code: str, color: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if color else text


def _dot(active: str, color: bool) -> str:
    if active == "failed":
        return _paint("×", "1;31", color)
    if active == "active":
        return _paint("●", "1;32", color)
    return "○" if active == "inactive" else "●"


def _status_text(u: dict, now: float, color: bool) -> str:
    """One unit as `systemctl status` prints it."""
    lines = []

    def row(label: str, text: str) -> None:
        lines.append(f"{label:>11}: {text}")

    desc = f" - {u['description']}" if u.get("description") else ""
    lines.append(f"{_dot(u['active'], color)} {u['unit']}{desc}")
    if u.get("load") == "error":
        row("Loaded", _paint("error", "1;31", color) + " (the unit file has errors)")
        for p in u.get("problems", []):
            lines.append(f"{'':>13}{p}")
        return "\n".join(lines) + "\n"
    if u.get("load") == "masked":
        row("Loaded", f"masked (Reason: Unit {u['unit']} is masked.)")
        row("Active", "inactive (dead)")
        return "\n".join(lines) + "\n"
    row("Loaded", _loaded(u, color))
    for p in u.get("dropins", []):
        row("Drop-In", p)
    active = u["active"]
    state = f"{active} ({u['sub']})"
    if active == "failed":
        state = _paint(f"failed (Result: {u['result']})", "1;31", color)
    elif active == "active":
        state = _paint(state, "1;32", color)
    row("Active", f"{state} since {_date(u['since'])}; {_ago(now - u['since'])} ago")
    if "listen" in u:
        if u.get("triggers"):
            row(
                "Triggers", f"{_dot(u.get('triggers_active') or 'inactive', color)} {u['triggers']}"
            )
        for lst in u["listen"]:
            row("Listen", f"{lst['address']} ({lst['type']}) as {lst['fdname']}")
        r = u["refused"]
        insts = u.get("instances") or []
        if u.get("accept"):  # an Accept=no socket accepts nothing itself: no counters
            row(
                "Accepted",
                f"{u['NAccepted']}; Connected: {u['NConnections']}; Refused: {u['NRefused']}"
                f" (MaxConnections= {r['limit']}, MaxConnectionsPerSource= {r['per_source']})",
            )
            if u.get("accept_path"):
                row("Spawning", u["accept_path"])
            row("Instances", f"{len(insts)} (max {u['max_connections']})")
            shown = insts[:10]
            for j, inst in enumerate(shown):
                branch = "└─" if j == len(shown) - 1 and len(insts) <= 10 else "├─"
                peer = f" from {inst['peer']}" if inst.get("peer") else ""
                lines.append(f"{'':>13}{branch}{inst['unit']} (pid {inst['pid']}){peer}")
            if len(insts) > 10:
                lines.append(f"{'':>13}└─… {len(insts) - 10} more")
        if r["trigger_limit"]:
            row("Paused", f"{r['trigger_limit']} time(s) by the trigger limit")
    else:
        for s in u.get("triggered_by") or []:
            row("TriggeredBy", f"● {s}")
        if u.get("peer"):
            row("Peer", u["peer"])
        if u.get("main_pid"):
            row("Main PID", f"{u['main_pid']} ({u.get('command') or '?'})")
        if u.get("control_pid"):
            row("Control PID", str(u["control_pid"]))
        if u.get("status_text"):
            row("Status", f'"{u["status_text"]}"')
        if u.get("status_errno"):
            row("Error", str(u["status_errno"]))
        if u.get("fd_store"):
            row("FD Store", str(u["fd_store"]))
        if u.get("memory"):
            row("Memory", _bytes(u["memory"]))
        le = u.get("last_exit")
        if le:
            row("Last exit", _exit_text(le["how"], le["value"]))
        if u.get("restarts"):
            row("Restarts", str(u["restarts"]))
    log = u.get("log") or []
    if log:
        lines.append("")
        for entry in log:
            ts = entry.get("ts")
            stamp = time.strftime("%b %d %H:%M:%S ", time.localtime(ts)) if ts else ""
            lines.append(stamp + entry["text"])
    return "\n".join(lines) + "\n"


def _loaded(u: dict, color: bool) -> str:
    """systemctl's "loaded (PATH; enabled; preset: enabled)": the unit file state, and the
    preset unless the state makes it moot (alias, static, generated, transient)."""
    state = u.get("unit_file_state")
    if not u.get("path") or not state:
        return f"loaded ({u['path']})" if u.get("path") else "loaded"
    hue = {"enabled": "1;32", "disabled": "1;33"}
    text = _paint(state, hue[state], color) if state in hue else state
    preset = u.get("unit_file_preset")
    if preset and state not in ("alias", "static", "generated", "transient"):
        text += "; preset: " + (_paint(preset, hue[preset], color) if preset in hue else preset)
    return f"loaded ({u['path']}; {text})"


def _date(t: float) -> str:
    return time.strftime("%a %Y-%m-%d %H:%M:%S %Z", time.localtime(t))


def _ago(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}min {s}s" if s else f"{m}min"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h {m}min" if m else f"{h}h"
    d, h = divmod(h, 24)
    return f"{d} day{'s' if d != 1 else ''} {h}h" if h else f"{d} day{'s' if d != 1 else ''}"


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{n}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return str(n)


def _exit_text(how: str, value: int) -> str:
    if how == "exited":
        return f"code=exited, status={value}"
    import signal  # only here: a status call should not pay for the Signals enum

    try:
        name = signal.Signals(value).name[3:]
    except ValueError:
        name = str(value)
    return f"code=killed, signal={name}"


if __name__ == "__main__":
    sys.exit(main())

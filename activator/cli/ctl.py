"""`activatorctl`: steer a running activator, as systemctl steers systemd.

    activatorctl [OPTIONS…] [VERB] [ARGS…]

The verbs and options are cli/verbtable.py's (``activatorctl --help``); without a verb,
list-units. A unit name without a suffix is a service. Most verbs are the daemon's
(one request on the control socket); is-active and is-failed are answered
here from ``status`` (``CLIENT_VERBS``); verify and import work offline; the
enablement verbs (enable, disable, is-enabled, list-unit-files, list-dependencies)
are cli/install.py's.

Exit codes, as systemctl's: 0 success (status: every unit named is active; status
without units: 0 whenever activator answers); 3 status of an inactive or failed unit,
is-active of units none of which is active; 4 no such unit; 1 any other failure
(activator unreachable, permission denied, the operation failed; is-failed with no unit
failed, is-enabled with none enabled, is-system-running not running); 2 bad usage.

This module imports only the wire protocol, the verb table and the standard library
pieces it needs, so a status call stays fast; the offline verbs load the unit model
lazily. tests/control/test_client.py holds it to that.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import sys
import time

from ..control import protocol
from ..control.protocol import ProtocolError
from . import install, verbtable

DEFAULT_CONTROL = "/run/activator/control.sock"  # as root; rootless: see _default_control()
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
        # A blocking connect waits while activator's backlog is full (a burst of clients)
        # instead of failing with EAGAIN as a non-blocking one does; SO_SNDTIMEO bounds it.
        wait = _TIMEOUT if timeout is None else timeout
        s.setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", int(wait), int(wait % 1 * 1e6))
        )
        s.connect(path)
        s.settimeout(timeout)
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


def _default_control() -> str:
    """The daemon's default: /run/activator/control.sock as root, else the user's run
    directory (core/rundir.py; imported only here, so a status call stays light)."""
    if os.geteuid() == 0:
        return DEFAULT_CONTROL
    from ..core.rundir import run_dir

    return os.path.join(run_dir(), "control.sock")


def _parser() -> argparse.ArgumentParser:
    """Made from cli/verbtable.py. The options every verb takes are accepted before and
    after the verb, as systemctl's; -h and --version are answered in main()."""
    common = argparse.ArgumentParser(add_help=False)
    for o in verbtable.OPTIONS:
        if o.long in verbtable.GLOBAL:
            _add(common, o)
    common.add_argument("--version", action="store_true", default=argparse.SUPPRESS)
    p = argparse.ArgumentParser(prog="activatorctl", add_help=False, parents=[common])
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    for v in verbtable.VERBS:
        vp = sub.add_parser(v.name, parents=[common], add_help=False)
        for name in v.options:
            _add(vp, verbtable.option(name), default=verbtable.option(name).default)
        for word in v.args.split():
            required = not word.startswith("[")
            dest, _ = verbtable.ARGS[word.strip("[]…")]
            vp.add_argument(dest, nargs="+" if required else "*", metavar=word.strip("[]…"))
    return p


def _add(p: argparse.ArgumentParser, o: verbtable.Option, default=argparse.SUPPRESS) -> None:
    # (SUPPRESS for the shared ones: the parent's actions are shared with every verb's
    # parser, so a default would overwrite what was given before the verb)
    kw: dict = {"default": default, "help": o.help}
    if o.metavar is None:
        kw["action"] = "store_true"
    else:
        kw["metavar"] = o.metavar
        if o.long == "--property":
            kw["action"] = "append"
        elif o.long == "--lines":
            kw["type"] = int
        elif o.long == "--format":
            kw["choices"] = ("toml", "ini")
        elif o.long == "--units":  # `units` is the verbs' positional UNIT…
            kw["dest"], kw["action"] = "units_dirs", "append"
        elif o.long == "--type":
            kw["action"] = "append"
    p.add_argument(*o.flags, **kw)


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line, every option filled in. Raises SystemExit as argparse does."""
    args = _parser().parse_args(argv)
    for o in verbtable.OPTIONS:
        if o.long in verbtable.GLOBAL and not hasattr(args, o.dest):
            setattr(args, o.dest, o.default if o.metavar else False)
    args.verb = args.verb or verbtable.DEFAULT_VERB
    if args.failed:
        args.state = ",".join(filter(None, [args.state, "failed"]))
    return args


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    if "-h" in words or "--help" in words:  # before parsing: `start --help` needs no UNIT
        v = next((v for w in words if (v := verbtable.verb(w)) is not None), None)
        sys.stdout.write(verbtable.verb_help(v) if v else verbtable.help_text())
        return EXIT_OK
    try:
        args = parse(argv)
    except SystemExit as e:
        return EXIT_USAGE if e.code else EXIT_OK
    if getattr(args, "version", False):
        from .. import __version__

        print(f"activator {__version__}")
        return EXIT_OK
    if args.state == "help":
        print("\n".join(STATES))
        return EXIT_OK
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `activatorctl … | head`: the reader left; stop quietly, as systemctl does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


#: What --state= filters by: load, active and sub states (--state=help prints them).
STATES = (
    "loaded", "not-found", "error",
    "active", "reloading", "inactive", "failed", "activating", "deactivating",
    "dead", "running", "exited", "listening", "start-pre", "start", "start-post", "reload",
    "stop", "stop-sigterm", "stop-sigkill", "stop-post", "final-sigterm", "final-sigkill",
    "auto-restart", "paused",
)  # fmt: skip


def _run(args) -> int:
    if args.verb == "verify":
        from .offline import run_verify

        return run_verify(args.paths, strict=args.strict, json=args.json)
    if args.verb == "import":
        from .offline import run_import

        return run_import(args.files, args.output, fmt=args.format)
    path = args.control or os.environ.get("ACTIVATOR_CONTROL") or _default_control()
    if args.verb == "daemon-reload":
        args.verb, args.units = "reload", []
    if args.verb in install.VERBS:
        return _install(args, path)
    units = getattr(args, "units", None) or []
    if args.verb in CLIENT_VERBS:
        return _client_verb(args, path, units)
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
    if args.verb == "logs":
        if args.lines < 0:
            print("activatorctl: logs: -n takes a number of lines, 0 or more", file=sys.stderr)
            return EXIT_USAGE
        extra["n"] = args.lines
        if args.follow:
            extra["follow"] = True
    # list-units and list-sockets take patterns, which the client matches
    asked = [] if args.verb in ("list-units", "list-sockets") else units
    timeout = None if args.verb in _WAITING or extra.get("follow") else _TIMEOUT
    try:
        if extra.get("follow"):
            return _follow(args, path, units, extra)
        result = call(path, args.verb, asked, timeout=timeout, **extra)
    except ProtocolError as e:
        return _fail(
            args, e.code, e.message, EXIT_NO_UNIT if e.code == "unknown-unit" else EXIT_FAILURE
        )
    except OSError as e:
        offline = args.verb == "is-system-running"
        if offline:
            _say(args, {"state": "offline"}, "offline")  # as systemctl without its manager
        return _fail(args, "unreachable", _unreachable(path, e), EXIT_FAILURE, quiet=offline)
    if args.verb == "daemon-reexec":
        return _reexecuted(args, path, result)
    if args.verb == "show":
        result = [_select(props, args.property) for props in result]
    elif args.verb in ("list-units", "list-sockets"):
        result = _filter(args, result, units)
    if args.verb == "is-system-running":
        _say(args, result, result["state"])
        return EXIT_OK if result["state"] == "running" else EXIT_FAILURE
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


def _unreachable(path: str, e: OSError) -> str:
    why = e.strerror or str(e) or type(e).__name__
    return f"unable to reach activator at {path}: {why}"


def _follow(args, path: str, units: list[str], extra: dict) -> int:
    """`logs -f`: the answer, then a line per new line, until interrupted. Raises as call()."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(protocol.request("logs", units, **extra))
        buf = b""
        while True:
            data = s.recv(65536)
            if not data:
                return EXIT_OK  # activator stopped
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                for entry in protocol.decode_answer(line):
                    if args.json:
                        print(json.dumps(entry))
                    else:
                        sys.stdout.write(_log_line(entry))
                sys.stdout.flush()


def _log_line(e: dict) -> str:
    stamp = time.strftime("%b %d %H:%M:%S ", time.localtime(e["ts"])) if e.get("ts") else ""
    if e.get("unit") is None:
        return f"{stamp}-- {e['text']}\n"
    return f"{stamp}{e['unit']}[{e.get('pid')}]: {e['text']}\n"


def _reexecuted(args, path: str, result: dict) -> int:
    """daemon-reexec was answered before the exec: the next request is the new program's
    (the control socket's queue is handed over), so a ping says whether it took place."""
    try:
        pong = call(path, "ping", timeout=60)
    except (ProtocolError, OSError) as e:
        return _fail(args, "unreachable", f"no answer after daemon-reexec: {e}", EXIT_FAILURE)
    if pong.get("generation") != result["generation"]:
        return _fail(
            args,
            "failed",
            "daemon-reexec did not take place; activator's log says why",
            EXIT_FAILURE,
        )
    if args.json:
        json.dump(pong, sys.stdout)
        sys.stdout.write("\n")
    return EXIT_OK


def _fail(args, code: str, message: str, status: int, quiet: bool = False) -> int:
    if args.json and not quiet:
        json.dump({"error": code, "message": message}, sys.stdout)
        sys.stdout.write("\n")
    print(f"activatorctl: {args.verb}: {message}", file=sys.stderr)
    return status


def _say(args, answer, text: str) -> None:
    """The one-word answers of is-* verbs: the word, JSON, or nothing with -q."""
    if args.quiet:
        return
    if args.json:
        json.dump(answer, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(text)


def _select(props: dict, wanted: list[str] | None) -> dict:
    if not wanted:
        return props
    names = [n for w in wanted for n in w.split(",") if n]
    return {n: props[n] for n in names if n in props}


def _filter(args, rows: list[dict], patterns: list[str]) -> list[dict]:
    """list-units/list-sockets as systemctl shows them: by pattern, by --state=, and (units
    without --all or --state=) without the inactive ones."""
    from fnmatch import fnmatchcase

    if patterns:
        rows = [r for r in rows if any(fnmatchcase(r["unit"], p) for p in patterns)]
    if args.state:
        wanted = set(args.state.split(","))
        rows = [r for r in rows if wanted & {r.get("load"), r.get("active"), r.get("sub"),
                                             r.get("state")}]  # fmt: skip
    elif args.verb == "list-units" and not args.all:
        rows = [r for r in rows if r["active"] != "inactive"]
    return rows


# ---------------------------------------------------------------- client verbs


def _install(args, path: str) -> int:
    """The enablement verbs (cli/install.py), their arguments as install.py reads them."""
    if args.verb == "list-dependencies":
        if len(args.units) > 1:
            print("activatorctl: list-dependencies: one unit at most", file=sys.stderr)
            return EXIT_USAGE
        args.unit = args.units[0] if args.units else "default.target"
    if args.verb == "list-unit-files":
        args.patterns = args.units
    if isinstance(args.state, str):
        args.state = [args.state]
    return install.run(
        args, path, call=call, table=lambda header, rows: _table(args, header, rows), dot=_dot
    )


def _client_verb(args, path: str, units: list[str]) -> int:
    """is-active, is-failed: systemctl's answers, made from ``status``."""
    try:
        result = call(path, "status", units)
    except ProtocolError as e:
        return _fail(args, e.code, e.message, EXIT_FAILURE)
    except OSError as e:
        return _fail(args, "unreachable", _unreachable(path, e), EXIT_FAILURE)
    return CLIENT_VERBS[args.verb](args, result)


def _is_state(good: tuple[str, ...], otherwise: int):
    """systemd 252's check_unit_generic(): print each unit's active state; exit 0 when any
    unit is in a good state, else ``otherwise`` (a unit not found is inactive)."""

    def verb(args, result: list[dict]) -> int:
        states = [u["active"] if u.get("load") != "not-found" else "inactive" for u in result]
        _say(args, [{"unit": u["unit"], "active": s} for u, s in zip(result, states, strict=True)],
             "\n".join(states))  # fmt: skip
        return EXIT_OK if any(s in good for s in states) else otherwise

    return verb


CLIENT_VERBS = {
    "is-active": _is_state(("active", "reloading"), EXIT_INACTIVE),  # LSB: not running
    "is-failed": _is_state(("failed",), EXIT_FAILURE),
}


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
            text = _status_text(u, now, color, lines=args.lines, every=args.full)
            width = _width(args)
            out("".join(_fit(line, width) + "\n" for line in text.splitlines()))
    elif verb == "list-units":
        rows = [(u["unit"], u["load"], u["active"], u["sub"], u["description"]) for u in result]
        _table(args, ("UNIT", "LOAD", "ACTIVE", "SUB", "DESCRIPTION"), rows)
        if not args.no_legend:
            hint = (
                ""
                if args.all or args.state
                else " Pass --all to see loaded but inactive units, too."
            )
            out(f"\n{len(rows)} loaded unit{'s' if len(rows) != 1 else ''} listed.{hint}\n")
    elif verb == "list-sockets":
        rows = [(s["listen"], s["type"], s["unit"], s["activates"], s["state"]) for s in result]
        _table(args, ("LISTEN", "TYPE", "UNIT", "ACTIVATES", "STATE"), rows)
        if not args.no_legend:
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
    elif verb == "logs":
        for entry in result:
            out(_log_line(entry))
    elif verb == "reload" and not args.units:
        for p in result.get("problems", []):
            print(p, file=sys.stderr)
        kinds = ("added", "removed", "changed", "rebound", "restarted")
        counts = ", ".join(f"{len(result[k])} {k}" for k in kinds)
        out(f"{'would reload' if result.get('dry_run') else 'reloaded'}: {counts}\n")
        for k in kinds:
            if result[k]:
                out(f"  {k}: {' '.join(result[k])}\n")


def _table(args, header: tuple, rows: list[tuple]) -> None:
    """Columns as systemctl's; cut to the terminal's width on a terminal, unless --full."""
    shown = rows if args.no_legend else [header, *rows]
    if not shown:
        return
    widths = [max(len(str(r[i])) for r in shown) for i in range(len(header) - 1)]
    width = _width(args)
    for r in shown:
        cells = [str(c).ljust(w) for c, w in zip(r, widths, strict=False)]
        sys.stdout.write(_fit(" ".join([*cells, str(r[-1])]).rstrip(), width) + "\n")


def _width(args) -> int | None:
    """The terminal's columns ($COLUMNS first) when stdout is one and not --full, else None."""
    if args.full or not sys.stdout.isatty():
        return None
    import shutil

    return shutil.get_terminal_size().columns


def _fit(line: str, width: int | None) -> str:
    return line if width is None or len(line) <= width else line[: max(width - 1, 0)] + "…"


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


def _status_text(u: dict, now: float, color: bool, lines: int = 10, every: bool = False) -> str:
    """One unit as `systemctl status` prints it: the last ``lines`` log lines, ten of its
    instances (``every``: all of them)."""
    out: list[str] = []

    def row(label: str, text: str) -> None:
        out.append(f"{label:>11}: {text}")

    desc = f" - {u['description']}" if u.get("description") else ""
    out.append(f"{_dot(u['active'], color)} {u['unit']}{desc}")
    if u.get("load") == "error":
        row("Loaded", _paint("error", "1;31", color) + " (the unit file has errors)")
        for p in u.get("problems", []):
            out.append(f"{'':>13}{p}")
        return "\n".join(out) + "\n"
    if u.get("load") == "masked":
        row("Loaded", f"masked (Reason: Unit {u['unit']} is masked.)")
        row("Active", "inactive (dead)")
        return "\n".join(out) + "\n"
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
            closed = "" if lst.get("listening", True) else " (closed)"
            row("Listen", f"{lst['address']} ({lst['type']}) as {lst['fdname']}{closed}")
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
            most = len(insts) if every else 10
            shown = insts[:most]
            for j, inst in enumerate(shown):
                branch = "└─" if j == len(shown) - 1 and len(insts) <= most else "├─"
                peer = f" from {inst['peer']}" if inst.get("peer") else ""
                out.append(f"{'':>13}{branch}{inst['unit']} (pid {inst['pid']}){peer}")
            if len(insts) > most:
                out.append(f"{'':>13}└─… {len(insts) - most} more (--full shows them)")
        if r["trigger_limit"]:
            row("Paused", f"{r['trigger_limit']} time(s) by the trigger limit")
        _network_rows(u, row)
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
        if u.get("idle_stop"):
            row("Idle stop", _idle_text(u["idle_stop"]))
    log = (u.get("log") or [])[-lines:] if lines > 0 else []
    if log:
        out.append("")
        for entry in log:
            ts = entry.get("ts")
            stamp = time.strftime("%b %d %H:%M:%S ", time.localtime(ts)) if ts else ""
            out.append(stamp + entry["text"])
    return "\n".join(out) + "\n"


def _network_rows(u: dict, row) -> None:
    """A socket's address filter, admission refusals, proxy and idle stop (issue 16)."""
    r = u["refused"]
    f = u.get("filter")
    if f:
        drops = f.get("kernel_drops")
        row(
            "Filter",
            f"allow {len(f['allow'])}, deny {len(f['deny'])} prefixes (BPF on the listener)"
            + (f"; kernel dropped {drops} packets" if drops else ""),
        )
    refused = [(k, r.get(k) or 0) for k in ("ip_deny", "rate", "rate_total")]
    if any(n for _, n in refused):
        row("Reset", ", ".join(f"{n} {k.replace('_', '-')}" for k, n in refused if n))
    p = u.get("proxy")
    if p:
        row(
            "Proxy",
            f"to {p['to']} ({p['backend']}); relaying {p['active']}, waiting {p['pending']}, "
            f"relayed {p['relayed']}" + (f", PROXY protocol {p['header']}" if p["header"] else ""),
        )
    idle = u.get("idle_stop")
    if idle:
        row("Idle stop", _idle_text(idle))


def _idle_text(idle: dict) -> str:
    left = idle.get("stop_in")
    when = f"stops in {_ago(left)} without a connection" if left is not None else "not armed"
    return f"{when} (X-Activator-IdleStopSec={idle['after']:g}s; {idle['connections']} open)"


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

"""`activatorctl`: steer a running activator, as systemctl steers systemd.

    activatorctl [--control PATH] [--json] VERB [ARGS…]

Verbs: start|stop|restart UNIT…, reload [UNIT…], status [UNIT…], list-units,
list-sockets, cat UNIT…, show UNIT…, kill [--signal SIG] UNIT…, reset-failed [UNIT…],
and the offline verify PATH… and import FILE… [-o DIR].

Exit codes, as systemctl's: 0 success (status: every unit active); 3 status of an
inactive or failed unit; 4 no such unit; 1 any other failure; 2 bad usage.

This module imports only the wire protocol, so a status call stays fast; the
offline verbs load the unit model lazily.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time

from . import protocol
from .protocol import ProtocolError

DEFAULT_CONTROL = "/run/activator/control.sock"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INACTIVE, EXIT_NO_UNIT = 0, 1, 2, 3, 4


def call(path: str, verb: str, units: list[str] | None = None, timeout: float = 30.0, **args):
    """One request to the daemon; returns the result or raises ProtocolError/OSError."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(protocol.request(verb, units, **args))
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    return protocol.decode_answer(b"".join(chunks))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="activatorctl", description="control a running activator")
    p.add_argument("--control", metavar="PATH", help=f"control socket (default $ACTIVATOR_CONTROL or {DEFAULT_CONTROL})")
    p.add_argument("--json", action="store_true", help="print JSON")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb in ("start", "stop", "restart", "cat", "show"):
        sub.add_parser(verb).add_argument("units", nargs="+", metavar="UNIT")
    for verb in ("reload", "status", "reset-failed"):
        sub.add_parser(verb).add_argument("units", nargs="*", metavar="UNIT")
    sub.add_parser("list-units")
    sub.add_parser("list-sockets")
    k = sub.add_parser("kill")
    k.add_argument("--signal", "-s", default="SIGTERM")
    k.add_argument("units", nargs="+", metavar="UNIT")
    v = sub.add_parser("verify", help="check unit files offline")
    v.add_argument("paths", nargs="+", metavar="PATH")
    v.add_argument("--strict", action="store_true")
    i = sub.add_parser("import", help="write the TOML form of unit files")
    i.add_argument("files", nargs="+", metavar="FILE")
    i.add_argument("-o", "--output", metavar="DIR")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:
        return EXIT_USAGE if e.code else EXIT_OK
    if args.verb == "verify":
        from .offline import run_verify

        return run_verify(args.paths, strict=args.strict, json=args.json)
    if args.verb == "import":
        from .offline import run_import

        return run_import(args.files, args.output)
    path = args.control or os.environ.get("ACTIVATOR_CONTROL", DEFAULT_CONTROL)
    units = getattr(args, "units", None) or []
    extra = {"signal": args.signal} if args.verb == "kill" else {}
    try:
        result = call(path, args.verb, units, **extra)
    except ProtocolError as e:
        print(f"activatorctl: {args.verb}: {e.message}", file=sys.stderr)
        return EXIT_NO_UNIT if e.code == "unknown-unit" else EXIT_FAILURE
    except OSError as e:
        print(f"activatorctl: unable to reach activator at {path}: {e.strerror or e}", file=sys.stderr)
        return EXIT_FAILURE
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print(args.verb, result)
    if args.verb == "status":
        return EXIT_OK if all(_active(u) for u in result) else EXIT_INACTIVE
    return EXIT_OK


def _active(u: dict) -> bool:
    return u["state"] in ("active", "listening", "running", "paused", "activating", "reloading")


def _print(verb: str, result) -> None:
    out = sys.stdout.write
    if verb == "status":
        for u in result:
            _print_status(u)
    elif verb == "list-units":
        out(f"{'UNIT':40} {'STATE':12} {'RESULT':14} DESCRIPTION\n")
        for u in result:
            out(f"{u['unit']:40} {u['state']:12} {u['result']:14} {u['description']}\n")
    elif verb == "list-sockets":
        out(f"{'LISTEN':32} {'UNIT':28} {'ACTIVATES':28} STATE\n")
        for s in result:
            out(f"{s['listen']:32} {s['unit']:28} {s['activates']:28} {s['state']}\n")
    elif verb == "cat":
        for u in result:
            for f in u["files"]:
                out(f"# {f['path']}\n{f['text']}")
                if not f["text"].endswith("\n"):
                    out("\n")
    elif verb == "show":
        for i, props in enumerate(result):
            if i:
                out("\n")
            for k, v in props.items():
                out(f"{k}={v}\n")
    elif verb == "reload" and isinstance(result, dict) and result.get("problems"):
        for p in result["problems"]:
            out(p + "\n")


def _print_status(u: dict) -> None:
    out = sys.stdout.write
    dot = "●" if _active(u) else ("×" if u["state"] == "failed" else "○")
    desc = f" - {u['description']}" if u.get("description") else ""
    out(f"{dot} {u['unit']}{desc}\n")
    if u.get("path"):
        out(f"     Loaded: {u['path']}\n")
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(u["since"]))
    why = f" (Result: {u['result']})" if u["result"] != "success" else ""
    out(f"     Active: {u['state']}{why} since {since}\n")
    if "listen" in u:
        for lst in u["listen"]:
            out(f"     Listen: {lst['address']} (fd name {lst['fdname']})\n")
        out(f"   Triggers: {u['triggers']}\n")
        r = u["refused"]
        out(f"   Accepted: {u['NAccepted']}; Connected: {u['NConnections']}; Refused: {u['NRefused']}"
            f" (limit {r['limit']}, per source {r['per_source']}, trigger limit {r['trigger_limit']})\n")
        for inst in u.get("instances", []):
            out(f"   Instance: {inst['unit']} pid {inst['pid']} peer {inst['peer']}\n")
    else:
        if u.get("main_pid"):
            mem = f", memory {u['memory'] // 1024} KiB" if u.get("memory") else ""
            out(f"   Main PID: {u['main_pid']}{mem}\n")
        if u.get("last_exit"):
            le = u["last_exit"]
            out(f"  Last exit: {'status' if le['how'] == 'exited' else 'signal'} {le['value']}\n")
        if u.get("restarts"):
            out(f"   Restarts: {u['restarts']}\n")
        if u.get("status_text"):
            out(f"     Status: \"{u['status_text']}\"\n")
    for line in u.get("log", []):
        out(f"  {line}\n")
    out("\n")


if __name__ == "__main__":
    sys.exit(main())

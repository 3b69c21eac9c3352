"""`activator`: the daemon's command line — argv in, exit code out.

    activator [--units DIR]… [--control PATH] [--control-group GROUP]
              [--loop auto|asyncio|uvloop] [--log-format text|json] [--strict]

Exit codes: 0 after a clean stop (SIGTERM/SIGINT), 1 on a failure while running,
2 for a bad command line. Units that fail to load are reported and left out;
the others run.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..core.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE

DEFAULT_UNITS = "/etc/activator/units"
DEFAULT_CONTROL = "/run/activator/control.sock"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="activator", description="socket-activation supervisor")
    p.add_argument(
        "--units",
        action="append",
        metavar="DIR",
        help=f"unit directory (repeatable; default $ACTIVATOR_UNITS or {DEFAULT_UNITS})",
    )
    p.add_argument(
        "--control",
        metavar="PATH",
        help=f"control socket (default $ACTIVATOR_CONTROL, or {DEFAULT_CONTROL}; not as "
        "root $XDG_RUNTIME_DIR/activator/control.sock or /tmp/activator-UID/control.sock); "
        "'none' disables it",
    )
    p.add_argument(
        "--control-group", metavar="GROUP", help="let this group use the control socket too"
    )
    p.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    p.add_argument("--strict", action="store_true", help="treat unit warnings as errors")
    p.add_argument(
        "--systemd",
        action="store_true",
        help="read systemd's unit search path (after the --units dirs) and start "
        "default.target with what it wants, as systemd boots",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as e:
        return EXIT_USAGE if e.code else EXIT_OK
    from ..core.log import EventLog
    from ..core.loops import run
    from ..manager.manager import Manager
    from ..runtime.reaper import Reaper

    Reaper.block_early()  # before any thread exists (the loop's executors, the lanes)

    units = args.units or (
        [] if args.systemd else os.environ.get("ACTIVATOR_UNITS", DEFAULT_UNITS).split(":")
    )
    control = args.control or os.environ.get("ACTIVATOR_CONTROL")
    log = EventLog(args.log_format)
    if os.geteuid() != 0 and (control is None or control == "none"):
        # Rootless: the user's run directory instead of /run/activator (core/rundir.py)
        from ..core.errors import ActivatorError
        from ..core.rundir import ensure_private, run_dir

        try:
            ensure_private(run_dir())
        except ActivatorError as e:
            log("failed", None, reason=str(e))
            return EXIT_FAILURE
        control = control or os.path.join(run_dir(), "control.sock")
    control = control or DEFAULT_CONTROL
    if control == "none":
        control = None
    manager = Manager(
        units, control_path=control, log=log, strict=args.strict, systemd=args.systemd
    )
    server = None
    if control is not None:
        from ..control.server import ControlServer

        server = ControlServer(manager, control, args.control_group)
    try:
        code = run(manager.run(server), args.loop)
    except ImportError as e:
        log("failed", None, reason=f"unable to use the {args.loop} loop: {e}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        log.flush()  # the lines of the loop's last iteration
    return code if code is not None else EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())

"""`activator`: the daemon's command line — argv in, exit code out.

    activator [--units DIR]… [--systemd] [--control PATH] [--control-group GROUP]
              [--loop auto|asyncio|uvloop] [--log-format text|json] [--log-time yes|no]
              [--log-level debug|info|warning|error] [--strict]
              [--on-failure continue|exit] [--default-timeout-stop-sec SEC]
              [--stop-deadline SEC] [--metrics ADDR] [--ready-fd N] [--version]

Readiness goes up to a supervisor above activator when it asks (manager/upward.py):
sd_notify(3) to ``NOTIFY_SOCKET`` (systemd's Type=notify), a newline on ``--ready-fd``
(s6's notification-fd).

Exit codes (README "Exit codes of activator", core/errors.py): 0 after a clean stop,
1 on a failure of activator itself, 2 for a bad command line, 3 a unit failed to load
and 4 a unit failed while running (--on-failure=exit), 5 a service ended failed while
activator stopped; a unit's FailureAction=/SuccessAction= exit with their own status.
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any

from .. import __version__
from ..core.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE

DEFAULT_UNITS = "/etc/activator/units"
DEFAULT_CONTROL = "/run/activator/control.sock"


def parser():  # -> argparse.ArgumentParser (imported here only: see parse_args)
    """The command line (tools/generate.py writes activator(8)'s OPTIONS from it)."""
    import argparse

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
    p.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="the event loop; auto: uvloop when it is installed (default auto)",
    )
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=os.environ.get("ACTIVATOR_LOG_FORMAT") or "text",
        help="text (logfmt) or JSON lines (default $ACTIVATOR_LOG_FORMAT or text)",
    )
    p.add_argument(
        "--log-time",
        choices=("yes", "no"),
        default="yes",
        help="an RFC 3339 UTC time on each line; no: leave it to the container runtime",
    )
    p.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="the least level logged (default info)",
    )
    p.add_argument(
        "--on-failure",
        choices=("continue", "exit"),
        default="continue",
        help="exit: a unit that fails to load or while running stops activator (exit 3, 4)",
    )
    p.add_argument(
        "--default-timeout-stop-sec",
        type=_seconds,
        metavar="SEC",
        help="TimeoutStopSec= of units that set none (systemd's DefaultTimeoutStopSec=, 90)",
    )
    p.add_argument(
        "--stop-deadline",
        type=_seconds,
        metavar="SEC",
        help="the whole shutdown's budget: what is left then is killed (ExecStopPost= "
        "still runs) and activator exits within SEC",
    )
    p.add_argument(
        "--metrics",
        metavar="ADDR",
        help="serve Prometheus /metrics on ADDR (HOST:PORT, [V6]:PORT or a unix socket path)",
    )
    p.add_argument("--strict", action="store_true", help="treat unit warnings as errors")
    p.add_argument(
        "--systemd",
        action="store_true",
        help="read systemd's unit search path (after the --units dirs) and start "
        "default.target with what it wants, as systemd boots",
    )
    p.add_argument(
        "--ready-fd",
        type=int,
        metavar="N",
        help="when ready, write a newline to fd N and close it (s6's notification-fd)",
    )
    p.add_argument("--version", action="version", version=f"activator {__version__}")
    # what a live re-exec (SIGUSR2, activatorctl daemon-reexec) hands the new program
    p.add_argument("--deserialize", type=int, metavar="FD", help=argparse.SUPPRESS)
    return p


def parse_args(argv: list[str] | None) -> types.SimpleNamespace:
    """The options, as a plain namespace: argparse (with gettext, 0.4 MiB) is dropped once
    they are read — the daemon idles for the rest of its life (README: idle RSS)."""
    p = parser()
    try:
        return types.SimpleNamespace(**vars(p.parse_args(argv)))
    finally:
        del p
        for name in ("argparse", "gettext"):
            sys.modules.pop(name, None)


def _seconds(text: str) -> float:
    """A time as systemd writes it: 90, 1min 30s, 500ms (argparse's type)."""
    import argparse

    from ..units.values import BadValue, parse_timespan

    try:
        value = parse_timespan(text)
    except BadValue as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


class _MetricsOnDemand:
    """The metrics server for X-Activator-Metrics=yes sockets, made at the first one."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager
        self.server: Any = None

    def serve_fds(self, name: str, fds: list[int]) -> None:
        if self.server is None:
            from ..control.metrics import MetricsServer

            self.server = MetricsServer(self.manager, None)
        self.server.serve_fds(name, fds)

    def unserve(self, name: str) -> None:
        if self.server is not None:
            self.server.unserve(name)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as e:
        return EXIT_USAGE if e.code else EXIT_OK
    if args.log_format not in ("text", "json"):
        print(f"activator: ACTIVATOR_LOG_FORMAT={args.log_format!r}: text or json", file=sys.stderr)
        return EXIT_USAGE
    from ..core.errors import ActivatorError
    from ..core.log import EventLog
    from ..core.loops import run
    from ..manager import reexec
    from ..manager.manager import Manager
    from ..manager.policy import Policy
    from ..manager.upward import ReadyFdError, Upward, check_ready_fd
    from ..runtime.reaper import Reaper

    try:
        ready_fd = None if args.ready_fd is None else check_ready_fd(args.ready_fd)
    except ReadyFdError as e:
        print(f"activator: {e}", file=sys.stderr)
        return EXIT_USAGE

    Reaper.block_early()  # before any thread exists (the loop's executors, the lanes)

    units = args.units or (
        [] if args.systemd else os.environ.get("ACTIVATOR_UNITS", DEFAULT_UNITS).split(":")
    )
    control = args.control or os.environ.get("ACTIVATOR_CONTROL")
    log = EventLog(args.log_format, timestamps=args.log_time == "yes", level=args.log_level)
    if os.geteuid() != 0 and (control is None or control == "none"):
        # Rootless: the user's run directory instead of /run/activator (core/rundir.py)
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
    upward = Upward.from_environ(log, ready_fd=ready_fd)
    policy = Policy(
        on_failure=args.on_failure,
        default_timeout_stop=90.0
        if args.default_timeout_stop_sec is None
        else args.default_timeout_stop_sec,
        stop_deadline=args.stop_deadline,
    )
    carried = None
    if args.deserialize is not None:
        try:
            carried = reexec.read_state(args.deserialize)
        except ActivatorError as e:
            log("failed", None, reason=str(e))
            return EXIT_FAILURE
    manager = Manager(
        units,
        control_path=control,
        log=log,
        strict=args.strict,
        systemd=args.systemd,
        upward=upward,
        policy=policy,
        argv=sys.argv[1:] if argv is None else argv,
        carried=carried,
    )
    server = None
    if control is not None:
        from ..control.server import ControlServer

        server = ControlServer(manager, control, args.control_group)
    # The metrics server: on --metrics ADDR, and on X-Activator-Metrics=yes sockets (made
    # and imported only then: an idle daemon's memory is a budget).
    servers = []
    if args.metrics:
        from ..control.metrics import MetricsServer

        metrics = MetricsServer(manager, args.metrics)
        manager.builtin = metrics
        servers.append(metrics)
    else:
        manager.builtin = _MetricsOnDemand(manager)
    try:
        code = run(manager.run(server, servers), args.loop)
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

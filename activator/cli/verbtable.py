"""activatorctl's verbs and options, written down once.

``activatorctl --help``, its argument parser (cli/ctl.py), the manual page
activatorctl(1) and the bash completion (tools/generate.py writes both, and
tests/test_generated.py checks they are current) are all made from these tables, so a
new verb is one row here plus its code — in the daemon (control/verbs.py, with its
name in control/protocol.py VERBS), in the client (cli/ctl.py ``CLIENT_VERBS``: answered
from another verb's answer), or offline (cli/offline.py).

Standard library only, and little of it: activatorctl imports this on every call.
"""

from __future__ import annotations

import textwrap
from typing import NamedTuple


class Verb(NamedTuple):
    name: str
    #: The arguments, as the synopsis shows them: ``UNIT…`` (one or more), ``[UNIT…]``
    #: (any number), ``PATH…``, ``FILE…``, ``[PATTERN…]``, or "" for none.
    args: str
    help: str  # one line, for --help and the manual page
    group: str  # the heading it is listed under
    #: Options only this verb takes (names from OPTIONS, by their long flag).
    options: tuple[str, ...] = ()
    #: Where the answer comes from: "daemon" (a protocol verb), "client" (made by
    #: activatorctl from another verb's answer), "offline" (no daemon needed).
    where: str = "daemon"


UNITS = "Unit commands"
SYSTEM = "System commands"
UNIT_FILES = "Unit file commands (as systemctl's, on the files: no daemon needed)"
OFFLINE = "Unit files, offline"

VERBS: tuple[Verb, ...] = (
    Verb("list-units", "[PATTERN…]", "list the units (inactive ones too with --all)", UNITS),
    Verb("list-sockets", "[PATTERN…]", "list the listeners and what they activate", UNITS),
    Verb("status", "[UNIT…]", "show the state of units (every unit without arguments)", UNITS),
    Verb("show", "UNIT…", "print properties as key=value, as systemctl show", UNITS,
         ("--property", "--value")),
    Verb("cat", "UNIT…", "print the unit files", UNITS),
    Verb("logs", "UNIT…", "print what services wrote to stdout and stderr (journalctl -u)",
         UNITS, ("--follow",)),
    Verb("is-active", "UNIT…", "exit 0 if a unit is active, else 3; print the states",
         UNITS, where="client"),
    Verb("is-failed", "UNIT…", "exit 0 if a unit is failed, else 1; print the states",
         UNITS, where="client"),
    Verb("start", "UNIT…", "start units (a socket listens; a service gets its sockets)",
         UNITS, ("--no-block",)),
    Verb("stop", "UNIT…", "stop units (a socket closes its listeners, stops its instances)",
         UNITS, ("--no-block",)),
    Verb("restart", "UNIT…", "stop, then start units", UNITS, ("--no-block",)),
    Verb("reload", "[UNIT…]", "re-read the unit files, or reload services (ExecReload=)",
         UNITS, ("--no-block", "--dry-run")),
    Verb("kill", "UNIT…", "send a signal to the processes of services", UNITS,
         ("--signal",)),
    Verb("reset-failed", "[UNIT…]", "forget the failed state and start limits of units",
         UNITS),
    Verb("list-dependencies", "[UNIT]", "print the units a unit pulls in, as a tree "
         "(default.target without one)", UNITS, ("--reverse", "--root")),
    Verb("is-system-running", "", "print starting, running, degraded or stopping; 0 if running",
         SYSTEM),
    Verb("daemon-reload", "", "re-read the unit files (the same as reload without units)",
         SYSTEM, where="client"),
    Verb("daemon-reexec", "", "replace activator with a fresh exec of itself, handing "
         "everything over", SYSTEM),
    Verb("enable", "UNIT…", "enable units: make the links their [Install] section asks for",
         UNIT_FILES, ("--root", "--units", "--now", "--no-reload"), where="offline"),
    Verb("disable", "UNIT…", "disable units: remove every link to them", UNIT_FILES,
         ("--root", "--units", "--now", "--no-reload"), where="offline"),
    Verb("is-enabled", "UNIT…", "print the unit files' enablement (exit 0 if any is enabled "
         "or static)", UNIT_FILES, ("--root", "--units"), where="offline"),
    Verb("list-unit-files", "[PATTERN…]", "list unit files with their enablement state and "
         "preset", UNIT_FILES, ("--root", "--units", "--type"), where="offline"),
    Verb("verify", "PATH…", "check unit files, like systemd-analyze verify", OFFLINE,
         ("--strict",), where="offline"),
    Verb("import", "FILE…", "write unit files as TOML (or INI), their text kept", OFFLINE,
         ("--output", "--format"), where="offline"),
)  # fmt: skip

#: The verb when none is given, as systemctl's.
DEFAULT_VERB = "list-units"

#: How each argument word is parsed: (argparse dest, completion kind).
ARGS = {"UNIT": ("units", "unit"), "PATTERN": ("units", "unit"), "PATH": ("paths", "file"),
        "FILE": ("files", "file")}  # fmt: skip


class Option(NamedTuple):
    flags: tuple[str, ...]  # the long flag last: it names the option
    metavar: str | None  # None: a switch
    help: str
    default: object = None
    #: What completes the value: "file", "dir", "state", "signal", "property", or "".
    values: str = ""

    @property
    def long(self) -> str:
        return self.flags[-1]

    @property
    def dest(self) -> str:
        return self.long.lstrip("-").replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    # Accepted by every verb, before or after it, as systemctl's.
    Option(("--control",), "PATH",
           "the control socket (default $ACTIVATOR_CONTROL, or /run/activator/control.sock; not "
           "as root $XDG_RUNTIME_DIR/activator/control.sock or /tmp/activator-UID/control.sock)",
           values="file"),
    Option(("--json",), None, "print the answer as JSON (an error as {\"error\", \"message\"})"),
    Option(("-q", "--quiet"), None, "print nothing for is-active, is-failed, is-enabled, "
           "is-system-running: the exit code answers"),
    Option(("-a", "--all"), None, "list-units: inactive units too"),
    Option(("--state",), "STATE[,STATE…]",
           "list-units, list-sockets: only units in these load, active or sub states "
           "(--state=help lists them)", values="state"),
    Option(("--failed",), None, "the same as --state=failed"),
    Option(("-l", "--full"), None, "never cut lines to the terminal's width; status: every "
           "instance"),
    Option(("-n", "--lines"), "N", "status, logs: show the last N log lines of each unit",
           default=10),
    Option(("--no-legend",), None, "list-units, list-sockets: no header, no footer"),
    Option(("--no-pager",), None, "accepted for systemctl's scripts: activatorctl never pages"),
    # Verb options (Verb.options names them).
    Option(("--no-block",), None, "do not wait for services to start or stop"),
    Option(("--dry-run",), None, "reload: say what re-reading the unit files would do"),
    Option(("-p", "--property"), "NAME", "show: only these properties (repeat, or NAME,NAME)",
           values="property"),
    Option(("--value",), None, "show: print values only"),
    Option(("-s", "--signal"), "SIGNAL", "kill: the signal, a name or a number (default "
           "SIGTERM)", default="SIGTERM", values="signal"),
    Option(("-f", "--follow"), None, "logs: then print new lines as they come, until "
           "interrupted"),
    Option(("--root",), "DIR", "enable, disable, is-enabled, list-unit-files: the unit files "
           "below DIR (default /); list-dependencies: load DIR's units instead of asking "
           "activator", values="dir"),
    Option(("--units",), "DIR", "enable, disable, is-enabled, list-unit-files: a unit "
           "directory searched before systemd's, inside the root (repeat)", values="dir"),
    Option(("--now",), None, "enable, disable: also start (enable) or stop (disable) them"),
    Option(("--no-reload",), None, "enable, disable: do not tell a running activator"),
    Option(("-t", "--type"), "TYPE", "list-unit-files: only these unit types (repeat, or "
           "TYPE,TYPE)"),
    Option(("--reverse",), None, "list-dependencies: what pulls the unit in"),
    Option(("--strict",), None, "verify: warnings are errors"),
    Option(("-o", "--output"), "DIR", "import: write the files here (default: the current "
           "directory)",
           values="dir"),
    Option(("--format",), "toml|ini", "import: write TOML (default) or systemd's INI syntax",
           default="toml", values="format"),
)  # fmt: skip

#: The options every verb takes; the others belong to the verbs that name them.
GLOBAL = frozenset(o.long for o in OPTIONS) - {n for v in VERBS for n in v.options}


def option(long: str) -> Option:
    return next(o for o in OPTIONS if o.long == long)


def verb(name: str) -> Verb | None:
    return next((v for v in VERBS if v.name == name), None)


def synopsis(v: Verb) -> str:
    opts = " ".join(f"[{option(n).flags[0]}{_meta(option(n))}]" for n in v.options)
    return " ".join(part for part in (v.name, v.args, opts) if part)


def _meta(o: Option) -> str:
    return f" {o.metavar}" if o.metavar else ""


def verb_help(v: Verb) -> str:
    """``activatorctl VERB --help``."""
    out = [f"activatorctl {synopsis(v)}", "", v.help]
    if v.options:
        out += ["", "Options:"]
        out += [
            f"  {', '.join(option(n).flags)}{_meta(option(n))}: {option(n).help}" for n in v.options
        ]
    return "\n".join(out) + "\n"


def help_text(prog: str = "activatorctl") -> str:
    """``activatorctl --help``: every verb with its line, then the options."""
    out = [
        f"{prog} [OPTIONS…] [VERB] [ARGS…]",
        "",
        f"Steer a running activator, as systemctl steers systemd. Without a verb: {DEFAULT_VERB}.",
        "A unit name without a suffix is a service.",
    ]
    width = max(len(synopsis(v)) for v in VERBS) + 2
    for group in dict.fromkeys(v.group for v in VERBS):
        out += ["", f"{group}:"]
        out += [f"  {synopsis(v):<{width}}{v.help}" for v in VERBS if v.group == group]
    out += ["", "Options:"]
    flags = [(", ".join(o.flags) + _meta(o), o.help) for o in OPTIONS]
    flags += [("-h, --help", "show this help"), ("--version", "print the version")]
    width = max(len(f) for f, _ in flags) + 2
    for f, h in flags:  # wrapped to 100 columns, as the rest of activator's text
        lines = textwrap.wrap(h, 98 - width) or [""]
        out.append(f"  {f:<{width}}{lines[0]}")
        out += [" " * (width + 2) + more for more in lines[1:]]
    out += ["", "Exit codes: 0 success, 1 failure, 2 bad usage, 3 not active, 4 no such unit."]
    return "\n".join(out) + "\n"

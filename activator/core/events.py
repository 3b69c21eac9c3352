"""The log's vocabulary: every event activator logs, its level, its fields and its message.

One table, so that a line means the same whoever logs it: ``EventLog`` (log.py) takes the
level and the human ``msg`` from here, ``docs/log-events.schema.json`` is generated from
it (``python -m activator.core.events``; tests/test_log_schema.py checks the file is
current, that every event the code logs is here and in the README, and validates every
JSON line the test suite's activators write against the schema).

A field has one type across all events (``FIELDS``): ``status`` is always an exit status
(an integer), ``signal`` always a signal's name (a string) …; a field whose value is None
is left out of the line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

#: Every field an event may carry, with its JSON type.
FIELDS: dict[str, str] = {
    "pid": "integer",  # a process (the service's, an orphan's, activator's own)
    "status": "integer",  # an exit status
    "signal": "string",  # a signal's name: SIGTERM
    "result": "string",  # systemd's result: exit-code, timeout, start-limit-hit, dependency …
    "reason": "string",  # why, in words
    "command": "string",  # a program, or the Exec*= directive a control process ran
    "peer": "string",  # an Accept=yes connection's peer: 127.0.0.1:5555
    "address": "string",  # a listener's address
    "fd": "integer",
    "service": "string",  # the service a socket triggers
    "delay": "string",  # RestartSec=, as 100ms or 5s
    "phase": "string",  # the sub-state a timeout hit
    "by": "string",  # who asked: notify
    "step": "string",  # the spawn core's step that failed: exec, setuid …
    "previous": "integer",  # the main pid before MAINPID=
    "remain": "boolean",  # RemainAfterExit=: active without a process
    "added": "integer",
    "removed": "integer",
    "changed": "integer",
    "rebound": "integer",
    "restarted": "integer",
    "failed": "integer",
    "errors": "integer",
    "applied": "boolean",
    "stored": "integer",  # fds in the fd store
    "name": "string",  # an fd name
    "units": "integer",  # how many units
    "sockets": "integer",  # how many socket units
    "loop": "string",  # asyncio or uvloop
    "control": "string",  # the control socket's path
    "metrics": "string",  # the metrics server's address
    "verb": "string",  # an operator's verb
    "names": "string",  # the units an operator named
    "uid": "integer",
    "line": "string",  # a traceback line
    "problem": "string",  # a unit file's problem, with file and line
    "stream": "string",  # stdout or stderr of a service
    "ident": "string",  # SyslogIdentifier=, else the program's name
    "dropped": "integer",  # lines (or bytes of a service's output) dropped
    "deadline": "number",  # --stop-deadline, seconds
    "source": "string",  # the source a per-source rule counts: 10.1.2.3/32, 2001:db8::/64
    "suppressed": "integer",  # rejects not logged since the last line (a line rate limit)
    "pids": "string",  # processes, space-separated: what a dead activator left behind
    "generation": "integer",  # live re-execs so far
    "fds": "integer",  # how many fds a re-exec hands over
    "user": "string",  # a user's name
}


def _p(f: dict[str, Any], key: str, fmt: str) -> str:
    """``fmt`` with the field filled in, or nothing when the line lacks it."""
    v = f.get(key)
    return "" if v is None else fmt.format(v)


# start and exit come twice per connection of a busy Accept=yes socket: plain formatting.
def _start(f: dict[str, Any]) -> str:
    peer = f.get("peer")
    return f"started {f.get('command')} as pid {f.get('pid')}" + (" for " + peer if peer else "")


def _exit(f: dict[str, Any]) -> str:
    sig = f.get("signal")
    how = "killed by " + sig if sig else "exited with status " + str(f.get("status"))
    what = f.get("command")
    reason = f.get("reason")
    return (
        (what + " process " if what else "process ")
        + str(f.get("pid"))
        + " "
        + how
        + (": " + reason if reason else "")
    )


def _failed(f: dict[str, Any]) -> str:
    return "failed" + _p(f, "result", " (result: {})") + _p(f, "reason", ": {}")


Msg = Callable[[dict[str, Any]], str]


class Event:
    __slots__ = ("level", "fields", "msg", "about")

    def __init__(self, level: str, fields: str, msg: Msg, about: str) -> None:
        self.level = level
        self.fields = tuple(fields.split())
        self.msg = msg
        self.about = about  # the README's vocabulary, one line


E = Event
#: event -> level, the fields it may carry, its message, what it means.
EVENTS: dict[str, Event] = {
    "listen": E("info", "address fd metrics", lambda f: f"listening on {f.get('address')}",
                "a listener bound, as root (also the metrics server's)"),
    "trigger": E("info", "service address",
                 lambda f: f"traffic on {f.get('address')}, starting {f.get('service')}",
                 "traffic on an Accept=no socket"),
    "start": E("info", "pid command peer", _start,
               "a process started (for an Accept=yes instance, with the connection's peer)"),
    "reject": E("warning", "peer reason control pid uid source suppressed",
                lambda f: "refused " + _p(f, "peer", "{} ") + _p(f, "reason", ": {}"),
                "a connection refused by a limit, or a control client refused"),
    "exit": E("info", "pid status signal command reason", _exit,
              "a process exited (with status or signal); unit-less: activator itself"),
    "restart": E("info", "result delay",
                 lambda f: "restarting" + _p(f, "delay", " in {}") + _p(f, "result", " after {}"),
                 "Restart= applies"),
    "stop": E("info", "pid by result pids reason",
              lambda f: "stopping" + _p(f, "pid", " pid {}") + _p(f, "by", " (by {})")
              + _p(f, "result", " (result: {})"),
              "a unit stops"),
    "failed": E("error", "result reason pid step status address", _failed,
                "a unit failed, with the result and the reason (result=dependency: a job "
                "that failed for a dependency)"),
    "pause": E("warning", "result reason", lambda f: "paused" + _p(f, "reason", ": {}"),
               "a socket paused by its trigger limit"),
    "resume": E("info", "", lambda f: "listening again", "the pause is over"),
    "idle": E("info", "reason", lambda f: "stopping, idle" + _p(f, "reason", ": {}"),
              "a service stopped by X-Activator-IdleStopSec= (its sockets listen on)"),
    "rootless": E("warning", "uid user reason", lambda f: str(f.get("reason")),
                  "activator is not root: what that changes (once, at start-up)"),
    "reexec": E("info", "pid generation fds",
                lambda f: "re-executing in place" + _p(f, "generation", " (generation {})")
                + _p(f, "fds", ", handing over {} fds"),
                "activator execs itself, same pid (daemon-reexec, SIGUSR2)"),
    "reached": E("info", "", lambda f: "reached target", "a target is active"),
    "reap": E("info", "pid status signal",
              lambda f: f"reaped orphan {f.get('pid')}"
              + (f" (killed by {f['signal']})" if f.get("signal") else
                 f" (status {f.get('status')})"),
              "an orphan reaped (as PID 1 or subreaper)"),
    "ready": E("info", "pid remain units sockets loop control metrics generation",
               lambda f: "ready" + _p(f, "units", ": {} units") + _p(f, "sockets", ", {} sockets")
               + _p(f, "loop", ", {} loop") + _p(f, "pid", " (pid {})"),
               "a service is up by its own word; unit-less: activator after the boot job"),
    "shutdown": E("info", "reason status", lambda f: "shutting down" + _p(f, "reason", ": {}"),
                  "activator stops everything (a signal, or the failure policy)"),
    "kill": E("warning", "pid signal reason pids",
              lambda f: f"sent {f.get('signal')} to pid {f.get('pid') or f.get('pids')}"
              + _p(f, "reason", ": {}"),
              "a process killed at the end of a stop timeout"),
    "timeout": E("warning", "phase reason deadline",
                 lambda f: "timed out" + _p(f, "phase", " in {}") + _p(f, "reason", ": {}"),
                 "a start or stop step timed out (or the --stop-deadline ran out)"),
    "watchdog": E("warning", "pid signal reason",
                  lambda f: f"watchdog: {f.get('reason')}, sending {f.get('signal')}",
                  "WatchdogSec= ran out"),
    "reload": E("info", "pid signal by", lambda f: "reloading" + _p(f, "by", " (by {})"),
                "a service reloads"),
    "reloaded": E("info", "result", lambda f: "reloaded" + _p(f, "result", " (result: {})"),
                  "the reload is over"),
    "mainpid": E("info", "pid previous", lambda f: f"main process is now pid {f.get('pid')}",
                 "MAINPID= moved the main process"),
    "fdstore": E("info", "added removed name stored reason",
                 lambda f: f"fd store holds {f.get('stored')} fds" + _p(f, "reason", ": {}"),
                 "fds were stored or removed"),
    "skipped": E("info", "pid status reason", lambda f: "start skipped" + _p(f, "reason", ": {}"),
                 "a condition was not met"),
    "warning": E("warning", "pid reason dropped uid control pids", lambda f: str(f.get("reason")),
                 "something to look at, in words"),
    "unit-error": E("error", "problem", lambda f: str(f.get("problem")),
                    "a unit file that cannot be loaded"),
    "unit-warning": E("warning", "problem", lambda f: str(f.get("problem")),
                      "a unit file loaded with a warning"),
    "traceback": E("error", "line", lambda f: str(f.get("line")), "a bug's traceback, a line each"),
    "control": E("info", "verb names pid uid",
                 lambda f: f"{f.get('verb')} " + _p(f, "names", "{} ") + f"by uid {f.get('uid')}",
                 "an operator's request that changes something"),
    "daemon-reload": E("info", "applied added removed changed rebound restarted failed errors "
                       "reason",
                       lambda f: ("unit files re-read" if f.get("applied") else
                                  "unit files not re-read") + _p(f, "reason", ": {}"),
                       "the unit files were re-read (SIGHUP, activatorctl reload)"),
    "added": E("info", "", lambda f: "added by the reload", "a reload added the unit"),
    "removed": E("info", "", lambda f: "removed by the reload", "a reload removed the unit"),
    "changed": E("info", "", lambda f: "changed by the reload", "a reload changed the unit"),
    "rebound": E("info", "", lambda f: "listeners bound again by the reload",
                 "a reload bound a socket again"),
    "output": E("info", "pid stream ident dropped", lambda f: "",
                "a line a service wrote to its stdout or stderr (msg is the line)"),
    "leniency": E("debug", "pid reason",
                  lambda f: str(f.get("reason")),
                  "a start step let pass as systemd does in a container (--log-level debug)"),
}  # fmt: skip

LEVELS = ("debug", "info", "warning", "error")
#: For a service's output: syslog priorities of a ``<N>`` prefix (SyslogLevelPrefix=).
PRIORITY_LEVELS = ("error", "error", "error", "error", "warning", "info", "info", "debug")


def schema() -> dict[str, Any]:
    """The JSON schema of a JSON log line (docs/log-events.schema.json)."""
    props: dict[str, Any] = {
        "time": {"type": "string", "format": "date-time",
                 "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$"},
        "level": {"enum": list(LEVELS)},
        "event": {"enum": list(EVENTS)},
        "unit": {"type": "string"},
        "msg": {"type": "string"},
    }  # fmt: skip
    props.update((k, {"type": t}) for k, t in FIELDS.items())
    common = ["time", "level", "event", "unit", "msg"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://activator.invalid/log-events.schema.json",
        "title": "activator's JSON log line (--log-format json)",
        "type": "object",
        "required": ["level", "event", "msg"],
        "properties": props,
        "additionalProperties": False,
        "allOf": [
            {
                "if": {"properties": {"event": {"const": name}}},
                "then": {"propertyNames": {"enum": [*common, *ev.fields]}},
            }
            for name, ev in EVENTS.items()
        ],
    }


if __name__ == "__main__":
    json.dump(schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")

"""One line per event on stderr, logfmt or a JSON object:

    time=2026-01-02T03:04:05.123456Z level=info event=start unit=web.service pid=42 msg="…"
    {"time": "2026-01-02T03:04:05.123456Z", "level": "info", "event": "start", …, "msg": "…"}

The vocabulary is fixed (events.py: listen, start, reject, exit, restart, stop, failed,
…, each with its level and its fields, one type per field) so that a log can be grepped,
parsed and shipped; a line about a unit names it. Recent lines are kept per unit for
``activatorctl status``.

A log that is not read must not stop the supervisor: when stderr is a pipe (a
container's log driver), lines go through a non-blocking description of that pipe of
our own (services that share stderr keep the blocking one). What the pipe does not
take waits in a bounded backlog, written as the pipe drains; past the bound whole
batches are dropped and counted, and a ``warning`` line says how many once the pipe
takes lines again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import re
import select
import stat
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from .events import EVENTS, LEVELS

_KEEP_PER_UNIT = 10
_BACKLOG = 1 << 20  # bytes of lines kept while the log pipe is full
_NEEDS_QUOTES = re.compile(r'[\s"=\\]')
_RANK = {name: i for i, name in enumerate(LEVELS)}
#: LogLevelMax= (a syslog level) → the least urgent of our levels it lets through. Our
#: ``info`` is syslog's info, so notice lets warnings and errors through, as systemd does.
_FLOOR = {"emerg": _RANK["error"], "alert": _RANK["error"], "crit": _RANK["error"],
          "err": _RANK["error"], "warning": _RANK["warning"], "notice": _RANK["warning"],
          "info": _RANK["info"], "debug": _RANK["debug"]}  # fmt: skip
#: What status shows of a unit's recent lines: (time, event, unit, fields, msg).
Recent = tuple[float, str, str, dict[str, Any], str]


def template_key(unit: str) -> str:
    """Where a unit's recent lines are kept: an instance's with its template's."""
    at = unit.find("@")
    return unit if at < 0 or unit.endswith("@.service") else unit[: at + 1] + ".service"


def _quoted(value: Any) -> str:
    """A value of a text line: as is, or JSON-quoted when it is empty or holds a space, a
    quote, an equals sign, a backslash or a control character."""
    if type(value) is not str:
        return ("true" if value else "false") if type(value) is bool else str(value)
    text = value
    if not text or _NEEDS_QUOTES.search(text) or not text.isprintable():
        return _json(text)
    return text


# One encoder for every line. JSONEncoder.encode() builds its C encoder anew per call, and
# a busy Accept=yes socket writes two lines per connection: build it once (same output:
# ", "/": " separators, ASCII, NaN allowed, no circular check — a record is flat).
def _encoder() -> Callable[[Any], str]:
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator
        return json.JSONEncoder(default=str).encode
    c = make(None, str, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True)
    return lambda record: "".join(c(record, 0))


_json = _encoder()


class EventLog:
    """Lines go out at the end of the event loop's current iteration, all in one write:
    a busy Accept=yes socket logs a batch of connections per wake-up, and a write per
    line was a system call per line. Outside a running loop (start-up, exit) at once.

    A line has an RFC 3339 UTC time with microseconds (``timestamps=False``: none, for a
    runtime that stamps lines itself), the event's level and a one-line ``msg`` (both
    from the vocabulary, events.py), then the fields; lines below ``level`` are dropped.
    """

    def __init__(
        self,
        fmt: str = "text",
        stream: TextIO | None = None,
        *,
        timestamps: bool = True,
        level: str = "info",
    ) -> None:
        self.fmt = fmt
        self.stream = stream if stream is not None else sys.stderr
        self.timestamps = timestamps
        self.min_level = _RANK[level]
        self._floors: dict[str, int] = {}  # unit (template for instances) → LogLevelMax=
        # the last lines of each unit, for status: (time, event, unit, fields)
        self.recent: dict[str, collections.deque[Recent]] = {}
        self._pending: list[str] = []
        self._fd = -1  # our non-blocking description of a stderr pipe (nonblocking())
        self._backlog = bytearray()
        self._dropped = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._second = -1
        self._stamp = ""
        self._closing = False  # the last lines: kept whatever the backlog holds
        self.lines = 0  # lines written or queued (metrics)
        self.dropped_total = 0  # lines dropped because the log was not read (metrics)

    def nonblocking(self, loop: asyncio.AbstractEventLoop) -> None:
        """From now on never block on a stderr pipe (see the module's docstring)."""
        try:
            fd = self.stream.fileno()
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                return  # a file or a terminal takes what it is given; a socket: as before
            # Opening the pipe again gives a description of our own to make non-blocking.
            self._fd = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, ValueError, AttributeError):
            return
        self._loop = loop

    def limit_units(self, levels: dict[str, str]) -> None:
        """LogLevelMax= of each unit that sets it (a template's holds for its instances):
        that unit's lines below the level are dropped before anything is made of them —
        activator's about it (an Accept=yes socket's two lines per connection: tcpserver's
        -q) and its processes' own output alike."""
        self._floors = {unit: _FLOOR[level] for unit, level in levels.items()}

    def unit_allows(self, level: str, unit: str) -> bool:
        """Whether ``unit``'s LogLevelMax= lets a line of ``level`` through (a service's
        output it does not is not kept for `activatorctl logs` either, as in systemd)."""
        floor = self._floors.get(template_key(unit)) if self._floors else None
        return floor is None or _RANK[level] >= floor

    def __call__(self, event: str, unit: str | None = None, /, **fields: Any) -> None:
        self.emit(event, unit, fields)

    def time(self, now: float) -> str:
        """``now`` as RFC 3339 in UTC with microseconds: 2026-01-02T03:04:05.123456Z."""
        second = int(now)
        if second != self._second:  # strftime once a second, not once a line
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return "%s.%06dZ" % (self._stamp, (now - second) * 1e6)  # noqa: UP031 (cheaper)

    def emit(
        self,
        event: str,
        unit: str | None,
        fields: dict[str, Any],
        *,
        level: str | None = None,
        msg: str | None = None,
    ) -> None:
        """One line. ``level``/``msg`` default to the event's (a service's output brings
        its own)."""
        ev = EVENTS.get(event)
        if level is None:
            level = ev.level if ev is not None else "info"
        if _RANK[level] < self.min_level:
            return
        floors = self._floors
        if floors and unit is not None:
            floor = floors.get(template_key(unit))
            if floor is not None and _RANK[level] < floor:
                return
        now = time.time()
        if None in fields.values():
            for key in [k for k, v in fields.items() if v is None]:
                del fields[key]
        if msg is None:
            msg = ev.msg(fields) if ev is not None else event
            if unit is not None:
                msg = f"{unit}: {msg}"
        if self.fmt == "json":
            record: dict[str, Any] = {"time": self.time(now)} if self.timestamps else {}
            record["level"] = level
            record["event"] = event
            if unit is not None:
                record["unit"] = unit
            record.update(fields)
            record["msg"] = msg
            line = _json(record)
        else:
            parts = [f"time={self.time(now)}"] if self.timestamps else []
            parts.append(f"level={level}")
            parts.append(f"event={event}")
            if unit is not None:
                parts.append(f"unit={_quoted(unit)}")
            for key, value in fields.items():
                parts.append(f"{key}={_quoted(value)}")
            # Always quoted: whatever a message holds (a service's text), it stays one value.
            parts.append("msg=" + _json(msg))
            line = " ".join(parts)
        self.lines += 1
        pending = self._pending
        pending.append(line)
        if len(pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop running: now
                self.flush()
        if unit is not None:
            # Instances of an Accept=yes socket are countless: keep their lines under the template.
            key = template_key(unit)
            dq = self.recent.get(key)
            if dq is None:
                dq = self.recent[key] = collections.deque(maxlen=_KEEP_PER_UNIT)
            dq.append((now, event, unit, fields, msg))

    def flush_now(self, timeout: float = 2.0) -> None:
        """Write every line, waiting up to ``timeout`` for a slow reader (before an exec)."""
        loop, self._loop = self._loop, None  # as at the end: write, do not queue
        try:
            self.flush()
            if self._backlog:
                self._finish(timeout)
        finally:
            self._loop = loop

    def flush(self) -> None:
        if not self._pending:
            if self._backlog and (self._loop is None or not self._loop.is_running()):
                self._finish(2.0)  # the end: what the pipe has not taken yet
            return
        text = "\n".join(self._pending) + "\n"
        self._pending.clear()
        if self._fd < 0:
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # a closed stderr must not take the supervisor down
            return
        data = text.encode(getattr(self.stream, "encoding", None) or "utf-8", "backslashreplace")
        if self._loop is None or not self._loop.is_running():
            self._backlog += data  # the last lines (the loop is gone): wait for the reader a bit
            self._finish(2.0)
            return
        if self._backlog:
            self._keep(data)
            return
        try:
            n = os.write(self._fd, data)
        except BlockingIOError:
            n = 0
        except OSError:
            return
        if n < len(data):
            self._keep(data[n:])

    def closing(self) -> None:
        """What is logged from now on (activator's exit line) is never dropped for a full
        backlog: it is the line a container's log most needs."""
        self._closing = True

    def _keep(self, data: bytes) -> None:
        if len(self._backlog) + len(data) > _BACKLOG and not self._closing:
            n = data.count(b"\n")
            self._dropped += n
            self.dropped_total += n
        else:
            self._backlog += data
        if self._loop is not None and self._loop.is_running():
            with contextlib.suppress(RuntimeError):
                self._loop.add_writer(self._fd, self._drain)

    def _finish(self, timeout: float) -> None:
        """Write the backlog, waiting up to `timeout` for a slow reader; not forever: a
        reader that is gone or stuck must not keep the supervisor from exiting."""
        deadline = time.monotonic() + timeout
        while self._backlog:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [self._fd], [], left)[1]:
                return
            try:
                del self._backlog[: os.write(self._fd, self._backlog)]
            except BlockingIOError:
                continue
            except OSError:
                return
        self._say_dropped()

    def _drain(self) -> None:
        try:
            n = os.write(self._fd, self._backlog)
        except BlockingIOError:
            return
        except OSError:
            n = len(self._backlog)  # the reader is gone: nothing more to write
        del self._backlog[:n]
        if self._backlog:
            return
        assert self._loop is not None
        self._loop.remove_writer(self._fd)
        self._say_dropped()

    def _say_dropped(self) -> None:
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            self(
                "warning",
                None,
                reason=f"the log was not read: {dropped} lines dropped",
                dropped=dropped,
            )

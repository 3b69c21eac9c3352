"""What services write to stdout and stderr (systemd's StandardOutput=journal), as log lines.

Each service unit gets, when it first starts a process whose output goes to the journal,
one stream socket pair per stream (stdout, stderr): the process gets one end as fd 1 or
2 — a stream socket, as systemd's journal gives — and activator reads the other on the
event loop. The socket carries the writer's pid with every write (SO_PASSCRED), so one
pair serves every process of the unit: its restarts, its control processes, its forked
workers, and every instance of an Accept=yes socket (the pair is the template's, so a
connection costs no pipe and no reader; the instance is known by its pid).

The reader splits what arrives into lines per writer (a line longer than systemd's
``LineMax=``, 48 KiB, is cut there), turns each into one ``output`` line of activator's
log, attributed (``unit``, ``pid``, ``stream``, ``ident``: SyslogIdentifier= or the
program's name) with the text in ``msg`` — JSON-escaped, or quoted in the text format,
so nothing a service writes can pass for a line of activator's own — and keeps the last
lines of each unit in a ring for ``activatorctl logs`` (and its followers, ``-f``). A
``<N>`` prefix sets the line's level, as systemd's SyslogLevelPrefix=.

Never blocking a service: activator reads as fast as the loop turns (at most ``_BATCH``
bytes per wake-up, so one chatty service cannot starve the others), and what it
re-emits goes through the daemon's own log, which never blocks on an unread pipe and
drops with a count (core/log.py). Bytes are bytes: invalid UTF-8 is escaped, not lost.
"""

from __future__ import annotations

import asyncio
import collections
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from ..core.events import PRIORITY_LEVELS
from ..core.log import EventLog, template_key

LINE_MAX = 48 * 1024  # systemd's LineMax= default
_BATCH = 256 * 1024  # bytes read per wake-up of one stream
_RECV = 64 * 1024
_CREDS = socket.CMSG_SPACE(struct.calcsize("3i"))
_PARTIALS = 64  # writers with an unfinished line, per stream
RING_LINES = 1000  # per unit, for activatorctl logs
RING_BYTES = 256 * 1024
_RING_COST = 64  # what an entry costs besides its text (for the byte bound)

#: One line of a unit's ring: (time, unit, pid, stream, level, text).
Entry = tuple[float, str, int, str, str, str]


class _Stream:
    __slots__ = ("key", "stream", "ident", "sock", "wfd", "partial")

    def __init__(
        self, key: str, stream: str, ident: str, fds: tuple[int, int] | None = None
    ) -> None:
        self.key = key  # the unit (a template for the instances of an Accept=yes socket)
        self.stream = stream
        self.ident = ident
        if fds is None:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            ours.shutdown(socket.SHUT_WR)  # nothing goes to the service this way
            wfd = theirs.detach()
        else:  # handed over by a re-exec: the services still hold the other end
            ours = socket.socket(fileno=fds[0])
            wfd = fds[1]
            for fd in fds:
                os.set_inheritable(fd, False)
        ours.setblocking(False)
        self.sock = ours
        self.wfd = wfd  # close-on-exec here; the spawn core dup2()s it to 1 or 2
        self.partial: dict[int, bytes] = {}  # pid -> an unfinished line


class _Ring:
    __slots__ = ("lines", "size")

    def __init__(self) -> None:
        self.lines: collections.deque[Entry] = collections.deque()
        self.size = 0

    def add(self, entry: Entry) -> None:
        self.lines.append(entry)
        self.size += len(entry[5]) + _RING_COST
        while len(self.lines) > RING_LINES or self.size > RING_BYTES:
            self.size -= len(self.lines.popleft()[5]) + _RING_COST


class Capture:
    """The read ends of every unit's output streams, their rings and their followers."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._pids: dict[int, tuple[str, str]] = {}  # pid -> (its unit, the unit's streams)
        self._pending: set[_Stream] = set()  # streams with an unfinished line
        self.rings: dict[str, _Ring] = {}
        self._followers: dict[str, set[Callable[[Entry], None]]] = {}
        self.lines = 0  # lines captured (metrics)
        self.bytes = 0

    # ------------------------------------------------------------ for a start
    def fds(self, key: str, ident: str, stdout: bool, stderr: bool) -> tuple[int, int]:
        """The fds a process of unit ``key`` gets as stdout and stderr (-1: not captured:
        activator's own, when no stream can be made); made on first use, kept for the
        unit's life."""
        try:
            return (
                self._stream(key, "stdout", ident).wfd if stdout else -1,
                self._stream(key, "stderr", ident).wfd if stderr else -1,
            )
        except OSError as e:  # out of fds: the output goes where activator's goes, raw
            self.log("warning", key, reason=f"unable to capture the output: {e.strerror}")
            return (-1, -1)

    def _stream(self, key: str, stream: str, ident: str) -> _Stream:
        s = self._streams.get((key, stream))
        if s is None:
            s = _Stream(key, stream, ident)
            asyncio.get_running_loop().add_reader(s.sock.fileno(), self._readable, s)
            self._streams[(key, stream)] = s
        s.ident = ident  # a reload may have changed SyslogIdentifier=
        return s

    def attribute(self, pid: int, unit: str, key: str) -> None:
        """``pid`` writes for ``unit`` into the streams of ``key`` (an Accept=yes instance
        into its template's)."""
        self._pids[pid] = (unit, key)

    def exited(self, pid: int) -> None:
        """A process is gone (the reaper, before it reports the exit): what it wrote comes
        first, its unfinished line too."""
        known = self._pids.pop(pid, None)
        unit = None
        if known is not None:
            unit, key = known
            for stream in ("stdout", "stderr"):
                s = self._streams.get((key, stream))
                if s is not None:
                    self._read(s, (pid, unit))
        for s in list(self._pending):
            rest = s.partial.pop(pid, None)
            if rest is not None:
                self._line(s, pid, rest, None if unit is None else (pid, unit))
            if not s.partial:
                self._pending.discard(s)

    # ------------------------------------------------------------ reading
    def _readable(self, s: _Stream) -> None:
        self._read(s, None)

    def _read(self, s: _Stream, gone: tuple[int, str] | None) -> None:
        got = 0
        while got < _BATCH:
            try:
                data, anc, _flags, _addr = s.sock.recvmsg(_RECV, _CREDS)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.log("warning", s.key, reason=f"unable to read the {s.stream}: {e.strerror}")
                return
            if not data:
                return
            got += len(data)
            pid = 0
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", raw[:12])[0]
            self._feed(s, pid, data, gone)

    def _feed(self, s: _Stream, pid: int, data: bytes, gone: tuple[int, str] | None) -> None:
        self.bytes += len(data)
        rest = s.partial.pop(pid, None)
        if rest is not None:
            data = rest + data
        start = 0
        end = len(data)
        while start < end:
            nl = data.find(b"\n", start, start + LINE_MAX + 1)
            if nl < 0:
                if end - start < LINE_MAX:
                    break
                nl = start + LINE_MAX  # systemd's LineMax=: the rest is the next line
                self._line(s, pid, data[start:nl], gone)
                start = nl
                continue
            self._line(s, pid, data[start:nl], gone)
            start = nl + 1
        if start < end:
            if len(s.partial) >= _PARTIALS:  # too many writers mid-line: the oldest goes out
                old = next(iter(s.partial))
                self._line(s, old, s.partial.pop(old), gone)
            s.partial[pid] = data[start:]
            self._pending.add(s)
        elif not s.partial:
            self._pending.discard(s)

    def _line(self, s: _Stream, pid: int, raw: bytes, gone: tuple[int, str] | None) -> None:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        level = "info"
        if len(raw) >= 3 and raw[0] == 0x3C and raw[2] == 0x3E and 0x30 <= raw[1] <= 0x37:
            level = PRIORITY_LEVELS[raw[1] - 0x30]  # <3>… as SyslogLevelPrefix=yes
            raw = raw[3:]
        known = self._pids.get(pid)
        if known is not None:
            unit = known[0]
        else:  # a process that is gone, or one its main process started (a worker)
            unit = gone[1] if gone is not None and gone[0] == pid else s.key
        if not self.log.unit_allows(level, unit):
            return  # LogLevelMax=: dropped first, as systemd's journal does
        text = raw.decode("utf-8", "backslashreplace")
        self.lines += 1
        self.log.emit(
            "output",
            unit,
            {"pid": pid or None, "stream": s.stream, "ident": s.ident},
            level=level,
            msg=text,
        )
        key = s.key
        entry = (time.time(), unit, pid, s.stream, level, text)
        ring = self.rings.get(key)
        if ring is None:
            ring = self.rings[key] = _Ring()
        ring.add(entry)
        for follow in self._followers.get(key, ()):
            follow(entry)

    # ------------------------------------------------------------ for activatorctl logs
    def _key_of(self, unit: str) -> str:
        """Where a unit's lines are: its own ring, or (an Accept=yes instance) its template's."""
        if unit in self.rings or (unit, "stdout") in self._streams:
            return unit
        return template_key(unit)

    def tail(self, unit: str, n: int) -> list[Entry]:
        """The last ``n`` lines of a unit (an instance: those of its own processes)."""
        key = self._key_of(unit)
        ring = self.rings.get(key)
        if ring is None or n <= 0:
            return []
        lines = list(ring.lines)
        if unit != key:
            lines = [e for e in lines if e[1] == unit]
        return lines[-n:]

    def follow(self, unit: str, callback: Callable[[Entry], None]) -> Callable[[], None]:
        """Call ``callback`` with every new line of ``unit``; returns the unsubscribe."""
        key = self._key_of(unit)
        instance = unit != key

        def cb(entry: Entry) -> None:
            if not instance or entry[1] == unit:
                callback(entry)

        self._followers.setdefault(key, set()).add(cb)

        def stop() -> None:
            subs = self._followers.get(key)
            if subs is not None:
                subs.discard(cb)
                if not subs:
                    del self._followers[key]

        return stop

    # ------------------------------------------------------------ live re-exec
    def serialize(self, carry: Callable[[int], int]) -> dict[str, Any]:
        """What the next program needs to read on (manager/reexec.py): every stream's two
        fds — a service writing to its stdout must never see the reader go away — with
        the unfinished lines, who writes for whom, and the rings for `logs`."""
        streams = []
        for s in self._streams.values():
            self._read(s, None)  # what is queued now is read by us, not lost
            streams.append(
                [
                    s.key,
                    s.stream,
                    s.ident,
                    carry(s.sock.fileno()),
                    carry(s.wfd),
                    {str(pid): rest.decode("latin-1") for pid, rest in s.partial.items()},
                ]
            )
        return {
            "streams": streams,
            "pids": {str(pid): list(v) for pid, v in self._pids.items()},
            "rings": {key: [list(e) for e in ring.lines] for key, ring in self.rings.items()},
            "lines": self.lines,
            "bytes": self.bytes,
        }

    def restore(self, d: dict[str, Any]) -> None:
        """Read on where the replaced program stopped (``serialize()``'s document)."""
        loop = asyncio.get_running_loop()
        for key, stream, ident, rfd, wfd, partial in d["streams"]:
            s = _Stream(key, stream, ident, (rfd, wfd))
            s.partial = {int(pid): rest.encode("latin-1") for pid, rest in partial.items()}
            if s.partial:
                self._pending.add(s)
            self._streams[(key, stream)] = s
            loop.add_reader(s.sock.fileno(), self._readable, s)
        self._pids.update((int(pid), (unit, key)) for pid, (unit, key) in d["pids"].items())
        for key, lines in d["rings"].items():
            ring = self.rings.setdefault(key, _Ring())
            for e in lines:
                ring.add(tuple(e))
        self.lines, self.bytes = d["lines"], d["bytes"]

    def stats(self) -> dict[str, Any]:
        return {"streams": len(self._streams), "lines": self.lines, "bytes": self.bytes}

    def close(self) -> None:
        """activator stops: read what is left, then close every stream."""
        loop = asyncio.get_running_loop()
        for s in list(self._streams.values()):
            self._read(s, None)
            for pid, rest in list(s.partial.items()):
                self._line(s, pid, rest, None)
            s.partial.clear()
            loop.remove_reader(s.sock.fileno())
            s.sock.close()
            os.close(s.wfd)
        self._streams.clear()
        self._pending.clear()

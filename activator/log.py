"""One line per event on stderr: ``event=start unit=web.service pid=42`` or a JSON object.

The vocabulary is fixed (bind, listen, start, accept, reject, exit, restart, stop,
failed, …) so that a log can be grepped and parsed; every line names the unit.
Recent lines are kept per unit for ``activatorctl status``.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import sys
import time
from typing import Any, TextIO

_KEEP_PER_UNIT = 10
_NEEDS_QUOTES = re.compile(r'[\s"=]')
# One encoder for every line. JSONEncoder.encode() builds its C encoder anew per call, and
# a busy Accept=yes socket writes two lines per connection: build it once (same output:
# ", "/": " separators, ASCII, NaN allowed, no circular check — a record is flat).
try:
    from json.encoder import c_make_encoder, encode_basestring_ascii

    _c = c_make_encoder(None, str, encode_basestring_ascii, None, ": ", ", ", False, False, True)

    def _json(record: dict) -> str:
        return "".join(_c(record, 0))
except (ImportError, TypeError):  # no C accelerator
    _json = json.JSONEncoder(default=str).encode


class EventLog:
    """Lines go out at the end of the event loop's current iteration, all in one write:
    a busy Accept=yes socket logs a batch of connections per wake-up, and a write per
    line was a system call per line. Outside a running loop (start-up, exit) at once."""

    def __init__(self, fmt: str = "text", stream: TextIO | None = None) -> None:
        self.fmt = fmt
        self.stream = stream if stream is not None else sys.stderr
        self.recent: dict[str, collections.deque[str]] = {}
        self._pending: list[str] = []

    def __call__(self, event: str, unit: str | None = None, /, **fields: Any) -> None:
        self.emit(event, unit, fields)

    def emit(self, event: str, unit: str | None, fields: dict[str, Any]) -> None:
        if self.fmt == "json":
            record = {"ts": round(time.time(), 6), "event": event}
            if unit is not None:
                record["unit"] = unit
            record.update(fields)
            line = _json(record)
        else:
            parts = [f"event={event}"]
            if unit is not None:
                parts.append(f"unit={unit}")
            for key, value in fields.items():
                if value is None:
                    continue
                text = str(value)
                if not text or _NEEDS_QUOTES.search(text):
                    text = json.dumps(text)
                parts.append(f"{key}={text}")
            line = " ".join(parts)
        pending = self._pending
        pending.append(line)
        if len(pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop running: now
                self.flush()
        if unit is not None:
            # Instances of an Accept=yes socket are countless: keep their lines under the template.
            at = unit.find("@")
            key = unit if at < 0 or unit.endswith("@.service") else unit[: at + 1] + ".service"
            dq = self.recent.get(key)
            if dq is None:
                dq = self.recent[key] = collections.deque(maxlen=_KEEP_PER_UNIT)
            dq.append(line)

    def flush(self) -> None:
        if not self._pending:
            return
        text = "\n".join(self._pending) + "\n"
        self._pending.clear()
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed stderr must not take the supervisor down

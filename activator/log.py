"""One line per event on stderr: ``event=start unit=web.service pid=42`` or a JSON object.

The vocabulary is fixed (bind, listen, start, accept, reject, exit, restart, stop,
failed, …) so that a log can be grepped and parsed; every line names the unit.
Recent lines are kept per unit for ``activatorctl status``.
"""

from __future__ import annotations

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
    def __init__(self, fmt: str = "text", stream: TextIO | None = None) -> None:
        self.fmt = fmt
        self.stream = stream if stream is not None else sys.stderr
        # stderr is line-buffered (Python >= 3.9): one write per line is already one syscall
        self._flush = not getattr(self.stream, "line_buffering", False)
        self.recent: dict[str, collections.deque[str]] = {}

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
        try:
            self.stream.write(line + "\n")
            if self._flush:
                self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed stderr must not take the supervisor down
        if unit is not None:
            # Instances of an Accept=yes socket are countless: keep their lines under the template.
            at = unit.find("@")
            key = unit if at < 0 or unit.endswith("@.service") else unit[: at + 1] + ".service"
            dq = self.recent.get(key)
            if dq is None:
                dq = self.recent[key] = collections.deque(maxlen=_KEEP_PER_UNIT)
            dq.append(line)

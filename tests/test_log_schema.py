"""The log's vocabulary (issue 13 item 5): one table (core/events.py), its JSON schema in the
repository, every event the code logs in the table and in the README, one type per field.

Every JSON line the suite's activators write is validated against the schema by
tests/harness.py (``Activator._read_log``); this file checks the schema itself and the
EventLog that writes the lines, without processes.
"""

from __future__ import annotations

import ast
import io
import json
import re
from pathlib import Path

import pytest
from harness import LOG_SCHEMA, log_line_problems

from activator.core.events import EVENTS, FIELDS, schema
from activator.core.log import EventLog

ROOT = Path(__file__).parents[1]


def logged_events() -> dict[str, set[str]]:
    """Every event the code logs: the first argument of ``log(…)``/``….log(…)``/``emit(…)``
    (and EventLog's own ``self(…)``), with the fields each call passes."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "activator").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            if name not in ("log", "emit", "self") or (name == "self" and path.name != "log.py"):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                events = [first.value]
            elif isinstance(first, ast.BinOp):  # "unit-" + p.severity
                events = ["unit-error", "unit-warning"]
            else:
                continue
            fields = {k.arg for k in node.keywords if k.arg is not None}
            if name == "emit" and len(node.args) > 2 and isinstance(node.args[2], ast.Dict):
                fields = {k.value for k in node.args[2].keys if isinstance(k, ast.Constant)}
            for event in events:
                found.setdefault(event, set()).update(fields - {"level", "msg"})
    return found


def test_the_schema_in_the_repository_is_current():
    """docs/log-events.schema.json is what `python -m activator.core.events` writes."""
    assert json.loads(LOG_SCHEMA.read_text()) == schema(), (
        "run: .venv/bin/python tools/generate.py (make docs)"
    )


def test_every_logged_event_is_in_the_vocabulary_with_its_fields():
    found = logged_events()
    assert {"start", "exit", "failed", "ready", "output"} <= set(found)
    for event, fields in found.items():
        assert event in EVENTS, f"{event} is logged but not in core/events.py"
        extra = fields - set(EVENTS[event].fields)
        assert not extra, f"{event} is logged with {sorted(extra)}, not in its fields"
    for event in EVENTS:
        assert event in found, f"{event} is in core/events.py but nothing logs it"
    for ev in EVENTS.values():
        assert set(ev.fields) <= set(FIELDS)


def test_the_readme_lists_every_event():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Log lines") :]
    section = section[: section.index("\n## ")]
    listed = set(re.findall(r"^\| `([a-z-]+)` \|", section, re.M))
    assert listed == set(EVENTS), (
        f"README lacks {sorted(set(EVENTS) - listed)}, lists unknown {sorted(listed - set(EVENTS))}"
    )


def _line(fmt: str, event: str, unit: str | None, **fields) -> str:
    out = io.StringIO()
    log = EventLog(fmt, out)
    log(event, unit, **fields)
    return out.getvalue()


def test_a_json_line_has_time_level_msg_and_validates():
    line = _line("json", "exit", "web.service", pid=42, status=0)
    rec = json.loads(line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", rec["time"])
    assert rec["level"] == "info" and rec["status"] == 0
    assert rec["msg"] == "web.service: process 42 exited with status 0"
    assert log_line_problems(line.encode()) == []
    rec = json.loads(_line("json", "failed", "web.service", result="timeout", pid=None))
    assert rec["level"] == "error" and "pid" not in rec  # None is left out, not null


def test_the_schema_refuses_a_field_of_the_wrong_type_or_event():
    good = json.loads(_line("json", "exit", "web.service", pid=42, status=0))
    assert log_line_problems(json.dumps(good).encode()) == []
    assert log_line_problems(json.dumps({**good, "status": "0"}).encode())  # "0" is not 0
    assert log_line_problems(json.dumps({**good, "peer": "1.2.3.4:5"}).encode())  # not exit's
    assert log_line_problems(json.dumps({**good, "event": "nonsense"}).encode())
    assert log_line_problems(b"httpd: 127.0.0.1 GET /x 200")  # a raw line


def test_a_text_line_is_logfmt_with_time_first_and_msg_last():
    line = _line("text", "start", "web.service", pid=42, command="/usr/bin/x", peer=None)
    assert re.fullmatch(
        r"time=\S+Z level=info event=start unit=web.service pid=42 command=/usr/bin/x "
        r'msg="web.service: started /usr/bin/x as pid 42"\n',
        line,
    )


def test_log_time_no_and_level_filter():
    out = io.StringIO()
    log = EventLog("json", out, timestamps=False, level="warning")
    log("start", "a.service", pid=1)  # info: below warning
    log("kill", "a.service", pid=1, signal="SIGKILL")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "time" not in json.loads(lines[0])


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_message_cannot_make_a_line_of_its_own(fmt):
    """Issue 15 item 8: what a service writes is one value of one line, whatever it holds."""
    forged = 'x\nevent=ready unit=evil.service {"event": "ready"} "quoted" \\ \x1b[31m'
    out = io.StringIO()
    EventLog(fmt, out).emit(
        "output", "s.service", {"pid": 5, "stream": "stdout"}, level="info", msg=forged
    )
    text = out.getvalue()
    assert text.count("\n") == 1 and "\x1b" not in text
    if fmt == "json":
        assert json.loads(text)["msg"] == forged
    else:
        assert text.startswith("time=") and " event=output " in text
        assert text.rstrip("\n").endswith("msg=" + json.dumps(forged))

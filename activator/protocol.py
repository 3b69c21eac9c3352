"""The control protocol, shared by the daemon and activatorctl — and nothing else.

One request per connection over the unix control socket: the client sends one
JSON object and a newline, the daemon answers with one JSON object and a newline,
then closes.

    request:  {"v": 1, "verb": "status", "units": ["web.socket"], "args": {…}}
    answer:   {"v": 1, "ok": true, "result": …}
              {"v": 1, "ok": false, "error": "unknown-unit", "message": "…"}

Error codes are the ``ERRORS`` below; a client never sees a traceback (the daemon
logs its own). A request larger than ``MAX_REQUEST`` bytes is refused.
"""

from __future__ import annotations

import json
from typing import Any

VERSION = 1
MAX_REQUEST = 64 * 1024

ERRORS = {
    "bad-request": "the request is not valid JSON or lacks a field",
    "bad-version": "the protocol version is not supported",
    "unknown-verb": "no such verb",
    "unknown-unit": "no such unit",
    "already-active": "the unit is already active",
    "not-active": "the unit is not active",
    "refused": "the unit's state or configuration does not allow it",
    "permission-denied": "the caller may not use the control socket",
    "failed": "the operation was tried and failed",
    "internal": "activator hit a bug; its log has the details",
}

VERBS = ("start", "stop", "restart", "reload", "status", "list-units", "list-sockets",
         "cat", "show", "kill", "reset-failed", "ping")


class ProtocolError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str).encode() + b"\n"


def request(verb: str, units: list[str] | None = None, **args: Any) -> bytes:
    return encode({"v": VERSION, "verb": verb, "units": units or [], "args": args})


def ok(result: Any) -> bytes:
    return encode({"v": VERSION, "ok": True, "result": result})


def error(code: str, message: str) -> bytes:
    assert code in ERRORS, code
    return encode({"v": VERSION, "ok": False, "error": code, "message": message})


def decode_request(data: bytes) -> tuple[str, list[str], dict[str, Any]]:
    """Raises ProtocolError("bad-request" | "bad-version" | "unknown-verb")."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("bad-request", "request is not valid JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad-request", "request must be a JSON object")
    if obj.get("v") != VERSION:
        raise ProtocolError("bad-version", f"protocol version {obj.get('v')!r} not supported (want {VERSION})")
    verb, units, args = obj.get("verb"), obj.get("units", []), obj.get("args", {})
    if not isinstance(verb, str):
        raise ProtocolError("bad-request", "missing 'verb'")
    if verb not in VERBS:
        raise ProtocolError("unknown-verb", f"unknown verb {verb!r}")
    if not isinstance(units, list) or not all(isinstance(u, str) for u in units):
        raise ProtocolError("bad-request", "'units' must be a list of unit names")
    if not isinstance(args, dict):
        raise ProtocolError("bad-request", "'args' must be an object")
    return verb, units, args


def decode_answer(data: bytes) -> Any:
    """The result of a successful answer; raises ProtocolError for an error answer."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("bad-request", "answer is not valid JSON") from None
    if not obj.get("ok"):
        raise ProtocolError(obj.get("error", "internal"), obj.get("message", "unknown error"))
    return obj.get("result")

"""The control protocol, shared by the daemon and activatorctl — and nothing else.

One request per connection over the unix control socket: the client sends one
JSON object (UTF-8; no duplicate keys, NaN or Infinity) and a newline, the daemon
answers with one JSON object and a newline, then closes. ``logs`` with ``"follow": true``
is the one exception: after its answer the daemon sends one more answer line per new log
line (``"result": [entry]``) until the client closes the connection or activator stops.

    request:  {"v": 1, "verb": "status", "units": ["web.socket"], "args": {…}}
    answer:   {"v": 1, "ok": true, "result": …}
              {"v": 1, "ok": false, "error": "unknown-unit", "message": "…"}

Error codes are the ``ERRORS`` below; a client never sees a traceback (the daemon
logs its own). A request larger than ``MAX_REQUEST`` bytes is refused.

This module is imported by activatorctl on every call, so it imports only the
standard library's json (no typing, no pydantic): keep it that way.
"""

from __future__ import annotations

import json

VERSION = 1
MAX_REQUEST = 64 * 1024
REQUEST_TIMEOUT = 10.0  # seconds the daemon waits for a request line

ERRORS = {
    "bad-request": "the request is not valid JSON, lacks a field or is too large",
    "bad-version": "the protocol version is not supported",
    "unknown-verb": "no such verb",
    "unknown-unit": "no such unit",
    "already-active": "the unit (or the service a socket triggers) is already active",
    "not-active": "the unit is not active",
    "refused": "the unit's state or configuration does not allow it",
    "permission-denied": "the caller may not use the control socket",
    "failed": "the operation was tried and failed",
    "internal": "activator hit a bug; its log has the details",
}

VERBS = (
    "ping",
    "start",
    "stop",
    "restart",
    "reload",
    "status",
    "list-units",
    "list-sockets",
    "cat",
    "show",
    "kill",
    "reset-failed",
    "is-system-running",
    "logs",
    "daemon-reexec",
    "list-dependencies",
)


class ProtocolError(Exception):
    """An error answer (or a request that earns one): ``code`` is one of ``ERRORS``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def encode(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str).encode() + b"\n"


def request(verb: str, units: list[str] | None = None, **args) -> bytes:
    return encode({"v": VERSION, "verb": verb, "units": units or [], "args": args})


def ok(result) -> bytes:
    return encode({"v": VERSION, "ok": True, "result": result})


def error(code: str, message: str) -> bytes:
    assert code in ERRORS, code
    return encode({"v": VERSION, "ok": False, "error": code, "message": message})


class _Refused(ValueError):
    """What the strict decoding hooks below refuse; the message is the answer's."""


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    # json keeps the last of repeated keys; a request meaning two things is refused.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"duplicate key {key[:64]!r}")
            seen.add(key)
    return obj


def _no_constant(name: str) -> object:
    raise _Refused(f"{name} is not allowed (JSON numbers are finite)")


def _finite_float(text: str) -> float:
    f = float(text)
    if f in (float("inf"), float("-inf")):  # 1e999 overflows to infinity
        raise _Refused(f"number {text[:64]} is out of range")
    return f


_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicates, parse_constant=_no_constant, parse_float=_finite_float
)


def _loads(data: bytes) -> object:
    """Strict JSON: one value, no duplicate keys, no NaN/Infinity, UTF-8 without lone
    surrogates (json.loads would guess UTF-16/32 and let "\ud800" through)."""
    text = data.decode("utf-8")
    obj = _DECODER.decode(text)
    if "\\u" in text and _has_surrogate(obj):
        raise _Refused("a string holds a lone surrogate (\\ud800-\\udfff): not valid UTF-8")
    return obj


def _has_surrogate(obj: object) -> bool:
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def decode_request(data: bytes) -> tuple[str, list[str], dict]:
    """(verb, units, args) of one request line.

    Raises ProtocolError "bad-request" (not JSON — strictly: UTF-8, no duplicate keys,
    no NaN or Infinity, no lone surrogates —, not an object, a field of the wrong
    type), "bad-version" or "unknown-verb"; nothing else, whatever ``data`` holds. The
    version is checked before the verb, so a future client gets "bad-version", not a
    confusing "unknown-verb".
    """
    try:
        obj = _loads(data)
    except _Refused as e:
        raise ProtocolError("bad-request", str(e)) from None
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ProtocolError("bad-request", "request is not valid JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad-request", "request must be a JSON object")
    if "v" not in obj:
        raise ProtocolError("bad-request", "request lacks the protocol version 'v'")
    v = obj["v"]
    if v != VERSION or isinstance(v, bool):
        raise ProtocolError(
            "bad-version", f"protocol version {v!r} not supported (this activator speaks {VERSION})"
        )
    verb, units, args = obj.get("verb"), obj.get("units", []), obj.get("args", {})
    if not isinstance(verb, str):
        raise ProtocolError("bad-request", "request lacks 'verb'")
    if verb not in VERBS:
        raise ProtocolError("unknown-verb", f"unknown verb {verb[:64]!r}")
    if not isinstance(units, list) or not all(isinstance(u, str) and u for u in units):
        raise ProtocolError("bad-request", "'units' must be a list of unit names")
    if not isinstance(args, dict):
        raise ProtocolError("bad-request", "'args' must be an object")
    return verb, units, args


def decode_answer(data: bytes):
    """The result of a successful answer; raises ProtocolError for an error answer.

    An answer that is not one of ours (empty: the daemon closed without answering;
    not JSON) raises ProtocolError("internal").
    """
    if not data:
        raise ProtocolError("internal", "activator closed the connection without an answer")
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ProtocolError("internal", "the answer is not valid JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError("internal", "the answer is not a JSON object")
    if not obj.get("ok"):
        code = obj.get("error")
        raise ProtocolError(
            code if code in ERRORS else "internal", str(obj.get("message", "unknown error"))
        )
    return obj.get("result")

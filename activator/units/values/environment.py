"""The environment: Environment= assignments, EnvironmentFile= references and the files.

``parse_environment_file`` is systemd's parse_env_file() state machine
(src/basic/env-file.c), kept in its shape so that it can be read beside the C.
``read_environment_file`` is what the runtime calls at each start: systemd reads an
EnvironmentFile= then, not at load, so an edit applies without a reload.
"""

from __future__ import annotations

import re

from ..errors import BadValue, q
from ..files import read_regular_file
from ..model import EnvironmentFile
from .words import WHITESPACE, split_words

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def env_name_is_valid(name: str) -> bool:
    return _ENV_NAME.fullmatch(name) is not None


def parse_environment_assignments(text: str) -> list[tuple[str, str]]:
    """``Environment=`` value: quoted ``NAME=value`` words → [(NAME, value)] in order."""
    out: list[tuple[str, str]] = []
    for word in split_words(text):
        name, sep, value = word.partition("=")
        if not sep or not env_name_is_valid(name):
            raise BadValue(f"{q(word)}: expected a NAME=VALUE assignment")
        out.append((name, value))
    return out


def parse_environment_file_ref(text: str) -> EnvironmentFile:
    """``EnvironmentFile=`` value: an absolute path, "-" prefix when it may be missing."""
    optional = text.startswith("-")
    path = text[1:] if optional else text
    if not path.startswith("/"):
        raise BadValue(f"{q(text)}: expected an absolute path (optionally prefixed with -)")
    return EnvironmentFile(path=path, optional=optional)


_SHELL_NEED_ESCAPE = '"\\`$'


def parse_environment_file(text: str) -> dict[str, str]:
    """The contents of an EnvironmentFile=: shell-like ``KEY=VALUE`` lines.

    systemd's parse_env_file() state machine: ``#``/``;`` comment lines, single quotes
    literal, double quotes with backslash escapes for ``"\\`$``, backslash-newline
    continues a line, trailing whitespace of unquoted values dropped. Lines with an
    invalid name are skipped, as systemd does (it logs them). A NUL ends the text: systemd
    walks the file as a C string, and no value with a NUL could be passed to execve().
    """
    text = text.partition("\0")[0]
    out: dict[str, str] = {}
    state = "pre_key"
    key: list[str] = []
    value: list[str] = []
    last_value_ws = -1  # index in value after which only unescaped whitespace follows
    last_key_ws = -1

    def push() -> None:
        k = "".join(key[:last_key_ws] if last_key_ws >= 0 else key)
        if env_name_is_valid(k):
            out[k] = "".join(value)

    for c in text:
        if state == "pre_key":
            if c in "#;":
                state = "comment"
            elif c not in WHITESPACE:
                state, key, last_key_ws = "key", [c], -1
        elif state == "key":
            if c in "\n\r":
                state = "pre_key"
            elif c == "=":
                state, value, last_value_ws = "pre_value", [], -1
            else:
                if c in WHITESPACE:
                    if last_key_ws < 0:
                        last_key_ws = len(key)
                else:
                    last_key_ws = -1
                key.append(c)
        elif state == "pre_value":
            if c in "\n\r":
                state = "pre_key"
                push()
            elif c == "'":
                state = "single"
            elif c == '"':
                state = "double"
            elif c == "\\":
                state = "value_escape"
            elif c not in WHITESPACE:
                state = "value"
                value.append(c)
        elif state == "value":
            if c in "\n\r":
                state = "pre_key"
                if last_value_ws >= 0:
                    del value[last_value_ws:]
                push()
            elif c == "\\":
                state = "value_escape"
                last_value_ws = -1
            else:
                if c in WHITESPACE:
                    if last_value_ws < 0:
                        last_value_ws = len(value)
                else:
                    last_value_ws = -1
                value.append(c)
        elif state == "value_escape":
            state = "value"
            if c not in "\n\r":
                value.append(c)
        elif state == "single":
            if c == "'":
                state = "pre_value"
            else:
                value.append(c)
        elif state == "double":
            if c == '"':
                state = "pre_value"
            elif c == "\\":
                state = "double_escape"
            else:
                value.append(c)
        elif state == "double_escape":
            state = "double"
            if c in _SHELL_NEED_ESCAPE:
                value.append(c)
            elif c not in "\n\r":
                value.append("\\")
                value.append(c)
        elif state == "comment":
            if c == "\\":
                state = "comment_escape"
            elif c in "\n\r":
                state = "pre_key"
        elif state == "comment_escape":
            state = "comment"
    if state in ("pre_value", "value", "value_escape", "single", "double", "double_escape"):
        if state == "value" and last_value_ws >= 0:
            del value[last_value_ws:]
        push()
    return out


def read_environment_file(path: str) -> dict[str, str]:
    """Read and parse an EnvironmentFile=.

    Raises OSError when the file cannot be read (the caller decides whether a missing
    optional "-" file is fine), also for a file that is not a regular one or is larger
    than 4 MiB (``files.FileRefused``: a FIFO must not block the start), and BadValue
    when it is not valid UTF-8.
    """
    data = read_regular_file(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadValue(f"{q(path)}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    return parse_environment_file(text)

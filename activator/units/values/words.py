"""Word splitting and quoting: systemd's extract_first_word() (src/basic/extract-word.c)
with cunescape_one() (escape.c).

List values, command lines and Environment= all split by these rules, so the other value
modules build on this one; ``quote_word`` is the inverse, for the TOML export. The
runtime splits ``$VAR`` used as a whole word with ``split_command_line``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from ..errors import BadValue, q

WHITESPACE = " \t\n\r"


_C_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", '"': '"', "'": "'", "s": " ",
}  # fmt: skip


def _cunescape_one(s: str, i: int) -> tuple[str, int] | None:
    """Decode the C escape whose letter is at s[i] (after the backslash).

    Returns (text, index after it) or None if it is not a valid escape.
    """
    c = s[i]
    if c in _C_ESCAPES:
        return _C_ESCAPES[c], i + 1
    if c == "x":
        h = s[i + 1 : i + 3]
        if len(h) == 2 and all(d in "0123456789abcdefABCDEF" for d in h) and int(h, 16):
            return chr(int(h, 16)), i + 3
        return None
    if c in "uU":
        n = 4 if c == "u" else 8
        h = s[i + 1 : i + 1 + n]
        if len(h) == n and all(d in "0123456789abcdefABCDEF" for d in h):
            cp = int(h, 16)
            if 0 < cp <= 0x10FFFF:
                return chr(cp), i + 1 + n
        return None
    if c in "0123":
        o = s[i : i + 3]
        if len(o) == 3 and all(d in "01234567" for d in o) and int(o, 8):
            return chr(int(o, 8)), i + 3
        return None
    return None


class QuotingError(BadValue):
    """Bad quoting or escaping; ``reason`` lets callers name the whole value instead."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"{q(text)}: {reason}")
        self.reason = reason


def _extract_words(
    s: str,
    *,
    cunescape: bool,
    relax: bool = False,
    on_unknown_escape: Callable[[str], None] | None = None,
    retain_escape: bool = False,
) -> Iterator[tuple[str, int]]:
    """systemd's extract_first_word() in a loop: yields (word, end index in s).

    Quotes (single or double) may open anywhere in a word and are removed. With
    ``cunescape`` backslashes introduce C escapes (``\\n``, ``\\x41``, ``\\s``…);
    an unknown escape is an error, or with ``relax`` is kept as written (systemd's
    EXTRACT_CUNESCAPE_RELAX, used for command lines). Without ``cunescape`` a backslash
    takes the next character literally, and with ``retain_escape`` keeps itself too
    (EXTRACT_RETAIN_ESCAPE, for unit names such as ``dev-sda\\x2d1.device``).
    """
    n = len(s)
    i = 0
    while True:
        while i < n and s[i] in WHITESPACE:
            i += 1
        if i >= n:
            return
        out: list[str] = []
        quote = ""
        while i < n:
            c = s[i]
            if c == "\\":
                if i + 1 >= n:
                    raise QuotingError(s, "trailing backslash")
                if cunescape:
                    dec = _cunescape_one(s, i + 1)
                    if dec is None:
                        if not relax:
                            raise QuotingError(s, f"invalid escape sequence \\{s[i + 1]}")
                        if on_unknown_escape:
                            on_unknown_escape("\\" + s[i + 1])
                        out.append("\\" + s[i + 1])
                        i += 2
                    else:
                        out.append(dec[0])
                        i = dec[1]
                else:
                    out.append(s[i : i + 2] if retain_escape else s[i + 1])
                    i += 2
                continue
            if quote:
                if c == quote:
                    quote = ""
                else:
                    out.append(c)
                i += 1
                continue
            if c in "'\"":
                quote = c
                i += 1
                continue
            if c in WHITESPACE:
                break
            out.append(c)
            i += 1
        if quote:
            raise QuotingError(s, "unbalanced quoting")
        yield "".join(out), i


def split_words(text: str, *, cunescape: bool = True, retain_escape: bool = False) -> list[str]:
    """Split a list value into words with systemd's quoting rules ("a b" 'c' d\\ e);
    ``retain_escape`` (without ``cunescape``) keeps backslash escapes as written."""
    # Fast path; str.split() would also split on characters systemd does not (\v, \f…).
    if (
        text.isascii()
        and text.replace("\t", " ").isprintable()
        and not any(c in text for c in "\\'\"")
    ):
        return text.split()
    return [w for w, _ in _extract_words(text, cunescape=cunescape, retain_escape=retain_escape)]


def split_command_line(text: str) -> list[str]:
    """Split one command line into words (quotes, C escapes, unknown escapes kept).

    This is the splitting the runtime applies to ``$VAR`` used as a whole word.
    """
    return [w for w, _ in _extract_words(text, cunescape=True, relax=True)]


_SAFE_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def quote_word(word: str) -> str:
    """Quote ``word`` so that splitting gives it back unchanged (used by the TOML export)."""
    if word and _SAFE_WORD.fullmatch(word) and word != ";":
        return word
    out = ['"']
    for c in word:
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif c == "\r":
            out.append("\\r")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)

"""``Exec*=`` command lines: config_parse_exec() (src/core/load-fragment.c) and its inverse.

``parse_exec`` turns one value into ``ExecCommand``s (prefixes ``-@:+!``, argv[0], lone
``;`` separators), ``format_exec`` writes one back for the TOML export; the path helpers
are the checks config_parse_exec() makes on the executable (path_simplify(),
filename_is_valid()). Named execline, not exec, so the module does not shadow the builtin.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import BadValue, q
from ..model import ExecCommand
from .words import WHITESPACE, QuotingError, _extract_words, quote_word


def _path_simplify(path: str) -> str:
    """systemd's path_simplify(): drop duplicate slashes, "/./" and a trailing slash.

    Unlike os.path.normpath it keeps ".." (that would change what the path means).
    """
    absolute = path.startswith("/")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    out = "/".join(parts)
    return ("/" + out) if absolute else (out or ".")


def _filename_is_valid(name: str) -> bool:
    return bool(name) and "/" not in name and name not in (".", "..") and len(name) <= 255


def parse_exec(
    text: str,
    expand: Callable[[str], str] | None = None,
    *,
    on_unknown_escape: Callable[[str], None] | None = None,
) -> list[ExecCommand]:
    """One ``Exec*=`` value → its command lines (several when separated by a lone ";").

    Follows config_parse_exec(): prefixes ``-@:+!`` / ``!!`` on the first word, ``@``
    makes the next word argv[0], ``\\;`` is a literal ";". ``expand`` (specifier
    expansion) is applied to each word after unquoting, as systemd does; ``$VAR`` is left
    alone. ``on_unknown_escape`` is told about escapes systemd keeps with a warning.
    """
    try:
        return _parse_exec(text, expand or (lambda w: w), on_unknown_escape)
    except QuotingError as e:
        raise BadValue(f"{q(text)}: {e.reason}") from None


def _parse_exec(
    text: str, expand: Callable[[str], str], on_unknown_escape: Callable[[str], None] | None
) -> list[ExecCommand]:
    commands: list[ExecCommand] = []
    n = len(text)
    i = 0
    while True:
        while i < n and text[i] in WHITESPACE:
            i += 1
        if i >= n:
            break
        words = _extract_words(
            text[i:], cunescape=True, relax=True, on_unknown_escape=on_unknown_escape
        )
        first = next(words, None)
        if first is None:
            break
        firstword, end = first
        i += end
        ignore = no_env = privileged = no_setuid = ambient = separate_argv0 = False
        f = 0
        while f < len(firstword):
            c = firstword[f]
            if c == "-" and not ignore:
                ignore = True
            elif c == "@" and not separate_argv0:
                separate_argv0 = True
            elif c == ":" and not no_env:
                no_env = True
            elif c == "+" and not (privileged or no_setuid or ambient):
                privileged = True
            elif c == "!" and not (privileged or ambient):
                if no_setuid:  # "!!"
                    no_setuid, ambient = False, True
                else:
                    no_setuid = True
            else:
                break
            f += 1
        path = expand(firstword[f:])
        if not path:
            raise BadValue(f"{q(text)}: empty executable path")
        if path.startswith("$"):
            raise BadValue(f"{q(path)}: the executable may not be a variable")
        if path.endswith(("/", "/.", "/..")) or path in (".", ".."):
            raise BadValue(f"{q(path)}: executable path names a directory")
        if not path.startswith("/") and not _filename_is_valid(path):
            raise BadValue(f"{q(path)}: neither a valid executable name nor an absolute path")
        argv: list[str] = [] if separate_argv0 else [path]
        path = _path_simplify(path)
        # The rest of this command: words up to a lone ";".
        while True:
            while i < n and text[i] in WHITESPACE:
                i += 1
            if i >= n:
                break
            if text[i] == ";" and (i + 1 >= n or text[i + 1] in WHITESPACE):
                i += 1
                break
            if (
                text[i] == "\\"
                and text[i + 1 : i + 2] == ";"
                and (i + 2 >= n or text[i + 2] in WHITESPACE)
            ):
                argv.append(";")
                i += 2
                continue
            word_iter = _extract_words(
                text[i:], cunescape=True, relax=True, on_unknown_escape=on_unknown_escape
            )
            w = next(word_iter, None)
            if w is None:
                break
            argv.append(expand(w[0]))
            i += w[1]
        if not argv:
            raise BadValue(f"{q(text)}: @ needs argv[0] after the executable")
        commands.append(
            ExecCommand(
                path=path,
                argv=tuple(argv),
                ignore_failure=ignore,
                no_env_expand=no_env,
                privileged=privileged,
                no_setuid=no_setuid,
                ambient_magic=ambient,
            )
        )
    return commands


def format_exec(cmd: ExecCommand, escape: Callable[[str], str] = lambda w: w) -> str:
    """The command line that ``parse_exec`` reads back as ``cmd`` (for the TOML export).

    ``escape`` is applied to each word before quoting (the exporter doubles ``%``).
    """
    prefix = ""
    if cmd.ignore_failure:
        prefix += "-"
    if cmd.no_env_expand:
        prefix += ":"
    if cmd.privileged:
        prefix += "+"
    if cmd.no_setuid:
        prefix += "!"
    if cmd.ambient_magic:
        prefix += "!!"
    words = [escape(w) for w in cmd.argv]
    # A quote may open mid-word, so the prefix can be glued to a quoted path.
    if cmd.argv[0] != cmd.path:
        head = [prefix + "@" + quote_word(escape(cmd.path)), quote_word(words[0])]
    else:
        head = [prefix + quote_word(words[0])]
    rest = ["\\;" if w == ";" else quote_word(w) for w in words[1:]]
    return " ".join(head + rest)

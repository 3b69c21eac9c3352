#!/usr/bin/env python3
"""Write what is made from one source: the manual pages and the bash completion.

    python tools/generate.py          # (re)write them
    python tools/generate.py --check  # exit 1, naming them, when any is not current

Sources: README.md's sections (the prose), activatorctl's verb table
(activator/cli/verbtable.py: verbs, options, their one-line help) and activator's
argument parser (activator/cli/daemon.py). Outputs, committed and installed with the
package (setup.py data_files):

    man/man8/activator.8                the daemon
    man/man1/activatorctl.1             the control command
    man/man5/activator.unit.5           unit files: what activator reads, what differs from systemd
    contrib/bash-completion/activatorctl

tests/test_generated.py runs ``--check``, so a verb added to the table without running
this fails the suite with the command to run.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from activator import __version__  # noqa: E402
from activator.cli import daemon, verbtable  # noqa: E402
from activator.core import events  # noqa: E402

OUTPUTS = {
    "man/man8/activator.8": lambda readme: activator_8(readme),
    "man/man1/activatorctl.1": lambda readme: activatorctl_1(readme),
    "man/man5/activator.unit.5": lambda readme: activator_unit_5(readme),
    "contrib/bash-completion/activatorctl": lambda readme: bash_completion(),
    "docs/log-events.schema.json": lambda readme: json.dumps(events.schema(), indent=2) + "\n",
}

# ---------------------------------------------------------------- README → sections


def sections(readme: str) -> dict[str, str]:
    """Every ``##`` and ``###`` section by its title; a ``##`` one holds its ``###`` ones.
    The text before the first heading (after the title) is ``""``."""
    out: dict[str, list[str]] = {"": []}
    level2 = level3 = None
    fence = False
    for line in readme.splitlines()[1:]:
        if line.startswith("```"):
            fence = not fence
        m = None if fence else re.match(r"(#{2,3}) (.*)", line)
        if m:
            title = m.group(2).strip()
            if len(m.group(1)) == 2:
                level2, level3 = title, None
            else:
                level3 = title
            out[title] = []
            continue
        for title in [t for t in (level2, level3) if t] or [""]:
            out[title].append(line)
    return {k: "\n".join(v).strip("\n") + "\n" for k, v in out.items()}


# ---------------------------------------------------------------- Markdown → roff

_SPECIAL = {"—": r"\(em", "–": r"\(en", "…": "...", "→": r"\(->", "×": r"\(mu", "≤": r"\(<=",
            "≥": r"\(>=", "●": "*", "○": "o", "“": r"\(lq", "”": r"\(rq", "’": "'"}  # fmt: skip


def inline(text: str) -> str:
    """Inline Markdown (`code`, **bold**, *emphasis*) in roff, escaped."""
    out = []
    for i, part in enumerate(re.split(r"(`[^`]*`)", text)):
        if i % 2:
            out.append(r"\fB" + _escape(part[1:-1]).replace("-", r"\-") + r"\fR")
            continue
        part = _escape(part)
        part = re.sub(r"\*\*(.+?)\*\*", r"\\fB\1\\fR", part)
        part = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\\fI\1\\fR", part)
        out.append(part)
    return "".join(out)


def _escape(text: str) -> str:
    text = text.replace("\\", r"\e")
    for char, roff in _SPECIAL.items():
        text = text.replace(char, roff)
    # anything else beyond ASCII by its code point, which groff knows without preconv
    return re.sub(r"[^\x00-\x7f]", lambda m: f"\\[u{ord(m.group()):04X}]", text)


def _line(text: str) -> str:
    """A roff text line: one that starts with . or ' would be a request."""
    return "\\&" + text if text[:1] in (".", "'") else text


def roff(markdown: str) -> str:
    """Paragraphs, bullet lists, code blocks and tables of README's Markdown, as man(7)."""
    out: list[str] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            block = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                block.append(lines[i])
                i += 1
            i += 1
            out += [".PP", ".RS 4", ".nf", *(_line(_escape(b)) for b in block), ".fi", ".RE"]
            continue
        if not line.strip():
            i += 1
            continue
        if line.startswith("|"):  # a table: rows of cells, as preformatted text
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip("|").split("|")]
                if not all(set(c) <= set("-: ") for c in cells):
                    rows.append(cells)
                i += 1
            out += [".PP", ".TS", "tab(\t);", " ".join("l" for _ in rows[0]) + "."]
            out += ["\t".join(inline(c) for c in r) for r in rows] + [".TE"]
            continue
        bullet = re.match(r"(\s*)- (.*)", line)
        text = [bullet.group(2) if bullet else line.strip()]
        i += 1
        while i < len(lines) and lines[i].strip() and not re.match(r"\s*(- |```|\|)", lines[i]):
            text.append(lines[i].strip())
            i += 1
        para = inline(" ".join(text))
        if bullet:
            out += [r".IP \(bu 2", _line(para)]
        else:
            out += [".PP", _line(para)]
    return "\n".join(out) + "\n"


def _header(name: str, section: int, what: str) -> list[str]:
    return [
        '.\\" Made by tools/generate.py from README.md and activator/cli; edit those.',
        f'.TH {name.upper()} {section} "" "activator {__version__}" "activator"',
        ".SH NAME",
        f"{name} \\- {what}",
    ]


def _section(title: str, body: str) -> list[str]:
    return [f".SH {title.upper()}", body.rstrip("\n")]


def _options(items: list[tuple[str, str]]) -> str:
    out = []
    for flags, text in items:
        out += [".TP", r"\fB" + _escape(flags).replace("-", r"\-") + r"\fR", _line(inline(text))]
    return "\n".join(out)


# ---------------------------------------------------------------- the pages


def activator_8(readme: str) -> str:
    s = sections(readme)
    intro = s[""]
    options = []
    for a in daemon.parser()._actions:
        if not a.option_strings:
            continue
        meta = a.metavar or ("|".join(a.choices) if a.choices else None)
        flags = ", ".join(a.option_strings) + (f" {meta}" if meta and a.nargs != 0 else "")
        options.append((flags, (a.help or "").replace("%(prog)s", "activator")))
    text = s["activator"]
    synopsis, rest = text.split("```\n\n", 1)
    page = _header("activator", 8, "socket-activation supervisor with systemd's LISTEN_FDS")
    page += _section("Synopsis", roff(synopsis + "```"))
    page += _section("Description", roff(intro) + roff(rest))
    page += _section("Options", _options(options))
    page += _section("Files", roff(
        "`/etc/activator/units` the units (`ACTIVATOR_UNITS`); `/run/activator/control.sock` "
        "the control socket (`ACTIVATOR_CONTROL`); `/run/activator/notify` the services' "
        "`NOTIFY_SOCKET`."))  # fmt: skip
    page += _section("See also", roff("activatorctl(1), activator.unit(5), systemd.socket(5), "
                                      "sd_notify(3), s6-supervise(8)"))  # fmt: skip
    return "\n".join(page) + "\n"


def activatorctl_1(readme: str) -> str:
    s = sections(readme)
    synopsis, rest = s["activatorctl"].split("```\n\n", 1)
    page = _header("activatorctl", 1, "steer a running activator, as systemctl steers systemd")
    page += _section("Synopsis", roff(synopsis + "```"))
    page += _section("Description", roff(rest))
    for group in dict.fromkeys(v.group for v in verbtable.VERBS):
        verbs = [(verbtable.synopsis(v), v.help) for v in verbtable.VERBS if v.group == group]
        page += _section(group, _options(verbs))
    opts = [(", ".join(o.flags) + (f" {o.metavar}" if o.metavar else ""), o.help)
            for o in verbtable.OPTIONS]  # fmt: skip
    opts += [("-h, --help", "show the verbs and options"), ("--version", "print the version")]
    page += _section("Options", _options(opts))
    page += _section("Control protocol", roff(s["The control protocol"]))
    page += _section("See also", roff("activator(8), activator.unit(5), systemctl(1)"))
    return "\n".join(page) + "\n"


def activator_unit_5(readme: str) -> str:
    s = sections(readme)
    page = _header("activator.unit", 5, "the socket and service units activator reads")
    page += _section("Description", roff(s["Units"]))
    page += _section("Service lifecycle", roff(s["Service lifecycle"]))
    page += _section("How Accept=yes runs", roff(s["How Accept=yes runs"]))
    page += _section("Differences from systemd", roff(s["How it differs from systemd"]))
    page += _section("See also", roff("activator(8), activatorctl(1), systemd.socket(5), "
                                      "systemd.service(5), systemd.exec(5)"))  # fmt: skip
    return "\n".join(page) + "\n"


# ---------------------------------------------------------------- bash completion

_COMPLETION = r"""# bash completion for activatorctl.
# Made by tools/generate.py from activator/cli/verbtable.py; edit that.
# Unit names come from the running activator (`activatorctl list-units --all --no-legend`).

_activatorctl() {
    local cur prev words cword
    _init_completion 2>/dev/null || {
        cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
    }
    local verbs="@VERBS@"
    local options="@OPTIONS@"
    local with_value="@WITH_VALUE@"
    local unit_verbs="@UNIT_VERBS@"
    local file_verbs="@FILE_VERBS@"
    local i verb="" control=()
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            --control) control=(--control "${words[i+1]}") ;;
            --control=*) control=("${words[i]}") ;;
        esac
        if [[ -z $verb && " $verbs " == *" ${words[i]} "* ]]; then
            verb=${words[i]}
        fi
    done
    case $prev in
@VALUE_CASES@
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$options" -- "$cur"))
    elif [[ -z $verb ]]; then
        COMPREPLY=($(compgen -W "$verbs" -- "$cur"))
    elif [[ " $unit_verbs " == *" $verb "* ]]; then
        local units
        units=$(activatorctl "${control[@]}" list-units --all --no-legend 2>/dev/null \
            | while read -r unit _; do echo "$unit"; done)
        COMPREPLY=($(compgen -W "$units" -- "$cur"))
    elif [[ " $file_verbs " == *" $verb "* ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
complete -F _activatorctl activatorctl
"""

_VALUES = {
    "file": 'COMPREPLY=($(compgen -f -- "$cur"))',
    "dir": 'COMPREPLY=($(compgen -d -- "$cur"))',
    "state": 'COMPREPLY=($(compgen -W "$(activatorctl --state=help)" -- "$cur"))',
    "signal": "COMPREPLY=($(compgen -W \"$(kill -l | tr -s '\\t )0123456789' '\\n')\""
    ' -- "$cur"))',
    "property": 'COMPREPLY=($(compgen -W "Id ActiveState SubState MainPID NAccepted '
    'NConnections Result" -- "$cur"))',
    "format": 'COMPREPLY=($(compgen -W "toml ini" -- "$cur"))',
    "": "COMPREPLY=()",
}


def bash_completion() -> str:
    flags = [f for o in verbtable.OPTIONS for f in o.flags] + ["--help", "--version"]
    with_value = [o for o in verbtable.OPTIONS if o.metavar]
    cases = []
    for o in with_value:
        cases.append(f"        {'|'.join(o.flags)})\n            {_VALUES[o.values]}\n"
                     "            return ;;")  # fmt: skip
    words = {v.name: verbtable.ARGS.get(v.args.strip("[]…"), ("", ""))[1] for v in verbtable.VERBS}
    text = _COMPLETION
    for key, value in {
        "@VERBS@": " ".join(v.name for v in verbtable.VERBS),
        "@OPTIONS@": " ".join(flags),
        "@WITH_VALUE@": " ".join(f for o in with_value for f in o.flags),
        "@UNIT_VERBS@": " ".join(n for n, k in words.items() if k == "unit"),
        "@FILE_VERBS@": " ".join(n for n, k in words.items() if k == "file"),
        "@VALUE_CASES@": "\n".join(cases),
    }.items():
        text = text.replace(key, value)
    return text


# ---------------------------------------------------------------- main


def generated() -> dict[Path, str]:
    readme = (ROOT / "README.md").read_text()
    return {ROOT / name: make(readme) for name, make in OUTPUTS.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only say which are not current")
    args = p.parse_args(argv)
    stale = []
    for path, text in generated().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if args.check and stale:
        names = ", ".join(map(str, stale))
        print(f"not current: {names}; run `python tools/generate.py` (make docs)", file=sys.stderr)
        return 1
    for path in stale:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

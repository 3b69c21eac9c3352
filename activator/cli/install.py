"""activatorctl's enablement verbs, as systemctl's: enable, disable, is-enabled,
list-unit-files, list-dependencies, and daemon-reload (an alias of ``reload``).

``enable``/``disable`` make and remove the links themselves, under ``--root DIR``
(default /), as systemctl does when no systemd runs (a Dockerfile's ``RUN`` line), with
systemctl's messages on stderr (units/install.py does the work). With the root / and an
activator answering on the control socket they then tell it to re-read its units
(``reload``) and, with ``--now``, start (enable) or stop (disable) the units named through
it — a disabled unit is stopped before the reload, which in ``--systemd`` mode drops it.
``is-enabled`` and ``list-unit-files`` read the root; ``list-dependencies`` asks the
daemon for its dependency tree, or with ``--root`` loads the root's units itself.

Only the standard library is imported here (activatorctl stays light); the unit layer is
loaded when one of these verbs runs.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from ..control.protocol import ProtocolError

VERBS = frozenset({"enable", "disable", "is-enabled", "list-unit-files", "list-dependencies"})
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_NO_UNIT = 0, 1, 2, 4
#: unit_name_mangle()'s characters: anything else in a name is escaped as \xNN.
_VALID = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:-_.\\@")
_TYPES = ("service", "socket", "target", "device", "mount", "automount", "swap", "timer",
          "path", "slice", "scope")  # fmt: skip

Call = Callable[..., Any]
Table = Callable[[tuple, list[tuple]], None]
Dot = Callable[[str, bool], str]


def run(args: argparse.Namespace, control: str, *, call: Call, table: Table, dot: Dot) -> int:
    """One of VERBS; ``call``/``table``/``dot`` are activatorctl's (the control client, its
    table printer and its state marks). Returns the exit code."""
    if args.verb in ("enable", "disable"):
        return _change(args, control, call)
    if args.verb == "is-enabled":
        return _is_enabled(args)
    if args.verb == "list-unit-files":
        return _list_unit_files(args, table)
    return _list_dependencies(args, control, call, dot)


def _err(line: str) -> None:
    print(line, file=sys.stderr)


def _fail(verb: str, message: str) -> int:
    _err(f"activatorctl: {verb}: {message}")
    return EXIT_FAILURE


# ---------------------------------------------------------------- names


def mangle(name: str, operation: str) -> str:
    """systemctl's unit_name_mangle_with_suffix(): a name without a unit type is a service;
    characters a unit name may not have are escaped (and said so)."""
    p = name.rsplit(".", 1)
    if len(p) == 2 and p[1] in _TYPES and p[0] and all(c in _VALID for c in name):
        return name
    suggest = True
    if any(c in name for c in "*?[") and all(c in _VALID or c in "*?[]!-" for c in name):
        _err(f"Glob pattern passed {operation}, but globs are not supported for this.")
        suggest = False
    out = "".join(
        "-" if c == "/" else c if c in _VALID else "".join(f"\\x{b:02x}" for b in c.encode())
        for c in name
    )
    if out != name:
        hint = " (maybe you should use systemd-escape?)" if suggest else ""
        _err(f'Invalid unit name "{name}" escaped as "{out}"{hint}.')
    tail = out.rsplit(".", 1)
    return out if len(tail) == 2 and tail[1] in _TYPES else out + ".service"


def _names(args: argparse.Namespace) -> list[str]:
    out = []
    for n in args.units:
        if "/" in n and args.verb == "enable":
            out.append(n)  # enable PATH: a unit file, linked in if outside the search path
        elif "/" in n:
            _err(f"Warning: Can't execute {args.verb} on the unit file path. Proceeding with "
                 "the unit name.")  # fmt: skip
            out.append(mangle(os.path.basename(n), f"to {args.verb}"))
        else:
            out.append(mangle(n, f"to {args.verb}"))
    return out


# ---------------------------------------------------------------- enable, disable


def _change(args: argparse.Namespace, control: str, call: Call) -> int:
    from ..units import install

    root = args.root or "/"
    online = os.path.abspath(root) == "/"
    if args.now and not online:
        return _usage(args.verb, "--now needs the root / (the running activator's)")
    names = _names(args)
    paths = install.Paths.system(root, args.units_dirs or ())
    op = install.enable if args.verb == "enable" else install.disable
    outcome = op(paths, names)
    for line in outcome.log:
        _err(line)
    for line in install.messages(outcome, args.verb, quiet=args.quiet):
        _err(line)
    if outcome.r < 0:
        return EXIT_FAILURE
    if args.verb == "enable" and outcome.r == 0 and not args.quiet:
        _err(install.NO_INSTALL_HINT)
    if not online:
        return EXIT_OK
    units = [os.path.basename(n) for n in names]
    steps: list[tuple[str, list[str], bool]] = []  # (request, its units, needs a daemon)
    if args.now and args.verb == "disable":
        steps.append(("stop", units, True))  # before the reload, which may drop the unit
    if not args.no_reload:
        steps.append(("reload", [], False))
    if args.now and args.verb == "enable":
        steps.append(("start", units, True))  # after it: the reload loads the unit
    for what, which, required in steps:
        status = _tell(call, control, args.verb, what, which, required=required)
        if status is not None:
            return status
    return EXIT_OK


def _tell(
    call: Call, control: str, verb: str, what: str, units: list[str], *, required: bool
) -> int | None:
    """One request to the running activator; None when it went well, or when nobody
    answers and ``required`` is false (offline: the links are all there is to do)."""
    try:
        call(control, what, units, timeout=None)
    except ProtocolError as e:
        if what == "stop" and e.code == "unknown-unit":
            return None  # not loaded, so not running: nothing to stop
        _err(f"activatorctl: {verb}: {what}: {e.message}")
        return EXIT_NO_UNIT if e.code == "unknown-unit" else EXIT_FAILURE
    except OSError as e:
        if not required:
            return None
        why = e.strerror or str(e) or type(e).__name__
        return _fail(verb, f"--now: unable to reach activator at {control}: {why}")
    return None


def _usage(verb: str, message: str) -> int:
    _err(f"activatorctl: {verb}: {message}")
    return EXIT_USAGE


# ---------------------------------------------------------------- reading states


def _is_enabled(args: argparse.Namespace) -> int:
    """systemctl is-enabled: one state per unit; exit 0 if any is enabled (or static,
    alias, indirect …). A unit without a file is "not-found" (systemctl 252 stops with
    an error there instead; later ones answer so)."""
    from ..units import install

    lookup = install.Lookup(install.Paths.system(args.root or "/", args.units_dirs or ()))
    answers = []
    enabled = False
    for n in args.units:
        name = n if "/" in n else mangle(n, "to check")
        try:
            state = lookup.state(name)
        except install.InstallFailure as e:
            state = "not-found" if e.err == errno.ENOENT else ""
            if not state:
                _flush(lookup.log)
                _err(f"Failed to get unit file state for {name}: {os.strerror(e.err)}")
                return EXIT_FAILURE
        _flush(lookup.log)
        enabled = enabled or state in install.ENABLED_STATES
        answers.append({"unit": name, "state": state})
        if not args.quiet and not args.json:
            print(state)
    if args.json:
        json.dump(answers, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return EXIT_OK if enabled else EXIT_FAILURE


def _flush(log: list[str]) -> None:
    for line in log:
        _err(line)
    log.clear()


def _split(values: list[str] | None) -> set[str]:
    return {v for item in values or () for v in item.split(",") if v}


def _list_unit_files(args: argparse.Namespace, table: Table) -> int:
    """systemctl list-unit-files: by type, then name; exit 1 when none is listed."""
    from ..units import install

    lookup = install.Lookup(install.Paths.system(args.root or "/", args.units_dirs or ()))
    states, types = _split(args.state), _split(args.type)
    rows = []
    for path, state in lookup.unit_files(args.patterns):
        name = os.path.basename(path).removesuffix(".toml")
        if (states and state not in states) or (types and name.rsplit(".", 1)[-1] not in types):
            continue
        rows.append((name, state))
    rows.sort(key=lambda r: (r[0][r[0].rfind(".") :].lower(), r[0].lower()))
    out = [(n, s, "-" if s in install.NO_PRESET_STATES else lookup.preset(n)) for n, s in rows]
    _flush(lookup.log)
    if args.json:
        doc = [{"unit_file": n, "state": s, "preset": p} for n, s, p in out]
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.no_legend:
        _rows(out)
    else:
        table(("UNIT FILE", "STATE", "PRESET"), out)
        print(f"\n{len(out)} unit files listed.")
    return EXIT_OK if out else EXIT_FAILURE


def _rows(rows: list[tuple[str, str, str]]) -> None:
    """A table without its header (--no-legend): the same columns, sized by the rows."""
    if rows:
        widths = [max(len(r[i]) for r in rows) for i in range(2)]
        for n, s, p in rows:
            print(f"{n.ljust(widths[0])} {s.ljust(widths[1])} {p}".rstrip())


# ---------------------------------------------------------------- dependencies


def _list_dependencies(args: argparse.Namespace, control: str, call: Call, dot: Dot) -> int:
    name = mangle(args.unit, "to list")
    if args.root:
        tree = _offline_tree(args.root, name, reverse=args.reverse, all=args.all)
    else:
        try:
            answer = call(control, "list-dependencies", [name], reverse=args.reverse, all=args.all)
        except ProtocolError as e:
            _fail(args.verb, e.message)
            return EXIT_NO_UNIT if e.code == "unknown-unit" else EXIT_FAILURE
        except OSError as e:
            why = e.strerror or str(e) or type(e).__name__
            return _fail(args.verb, f"unable to reach activator at {control}: {why}")
        tree = [(e["depth"], e["unit"], e["active"]) for e in answer]
    if args.json:
        doc = [{"depth": d, "unit": n, "active": a} for d, n, a in tree]
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    for line in tree_lines(tree, lambda state: dot(state, color)):
        print(line)
    return EXIT_OK


def _offline_tree(root: str, name: str, *, reverse: bool, all: bool) -> list[tuple[int, str, str]]:
    """The tree from the units below ``root``: those ``name`` reaches (everything, for
    ``reverse``: what pulls a unit in may be anywhere); nothing runs, so all inactive."""
    from ..units import load_units
    from ..units.deps import Graph
    from ..units.discover import search_path

    units, _ = load_units(search_path([], root=root), roots=None if reverse else {name})
    return [(d, n, "inactive") for d, n in Graph(units).tree(name, reverse=reverse, all=all)]


def tree_lines(tree: list[tuple[int, str, str]], mark: Callable[[str], str]) -> list[str]:
    """systemctl list-dependencies' drawing: the unit, then each dependency with its state
    mark and ├─/└─ branches, │ where an ancestor has siblings below."""
    lines = []
    for k, (depth, name, state) in enumerate(tree):
        if depth == 0:
            lines.append(name)
            continue
        prefix = ""
        for level in range(1, depth):  # the ancestors: has each a sibling further down?
            prefix += "│ " if _has_next(tree, k, level) else "  "
        branch = "├─" if _has_next(tree, k, depth) else "└─"
        lines.append(f"{mark(state)} {prefix}{branch}{name}")
    return lines


def _has_next(tree: list[tuple[int, str, str]], k: int, depth: int) -> bool:
    """Whether the entry at ``depth`` on the path to tree[k] has a later sibling."""
    for d, _, _ in tree[k + 1 :]:
        if d < depth:
            return False
        if d == depth:
            return True
    return False

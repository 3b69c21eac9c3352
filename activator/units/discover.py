"""Finding unit files: the load path, symlinks (aliases, masks) and drop-in directories.

Load-path semantics follow systemd's (unit_file_build_name_map(),
unit_file_find_dropin_paths()) over the paths given (``--units`` dirs, then systemd's
search path in systemd mode): a directory contributes every ``*.socket``/``*.service``/
``*.target`` file (``.toml`` for the TOML form) and the first path that has a unit name
wins; a symlink to another unit name is an alias, to /dev/null a masked unit; drop-ins
are looked up by name in every directory given; ``NAME.wants/``, ``NAME.requires/`` and
``NAME.upholds/`` directories add dependencies of NAME (what ``systemctl enable`` writes).
Files of unit types a container does not have (.mount, .timer …) are noted as
placeholders. It says which files make a unit, and ``read_entries`` reads one (INI or
TOML by its name) into entries; what they mean is build.py's business.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import Problem, UnitError
from .files import MAX_FILE_SIZE, read_regular_file_st
from .ini import Entry, read_ini
from .model import PLACEHOLDER_KINDS
from .names import parse_unit_name
from .toml_reader import read_toml

KINDS = ("socket", "service", "target")
#: systemd's unit search path for the system manager (systemd.unit(5), "Unit File Load
#: Path"), earlier first; the generator, transient and attached directories are left out:
#: nothing writes them in a container.
SYSTEM_UNIT_PATH = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)


def search_path(units_dirs: Sequence[str], *, root: str = "/") -> list[str]:
    """``--units`` directories first, then systemd's search path below ``root``; a directory
    seen before under another name (/lib → /usr/lib on a merged-/usr system) once."""
    out: list[str] = []
    seen: set[str] = set()
    for d in [*units_dirs, *(os.path.join(root, p.lstrip("/")) for p in SYSTEM_UNIT_PATH)]:
        real = os.path.realpath(d)
        if real not in seen and os.path.isdir(d):
            seen.add(real)
            out.append(d)
    return out


#: Dependency directories: NAME.wants/X is Wants=X on NAME (systemd's unit_load_dropin()).
DEP_DIRS = {".wants": "Wants", ".requires": "Requires", ".upholds": "Upholds"}


@dataclass(frozen=True, slots=True)
class _Source:
    name: str
    path: str  # as found (given path joined with the file name)
    directory: str


def read_entries(path: str) -> tuple[list[Entry], list[UnitError]]:
    """Read one unit file or drop-in, INI or TOML by its name. Never raises.

    Only a regular file (or a symlink to one) of at most ``MAX_FILE_SIZE`` is read;
    anything else is reported (files.py says why).
    """
    try:
        data, st = read_regular_file_st(path, MAX_FILE_SIZE)
    except OSError as e:
        return [], [UnitError(f"cannot read: {e.strerror or e}", path=path)]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return [], [UnitError(f"not valid UTF-8 ({e.reason} at byte {e.start})", path=path)]
    entries, errors = read_toml(text, path) if path.endswith(".toml") else read_ini(text, path)
    if st.st_mode & stat.S_IWOTH:
        # systemd's warning (fd_warn_permissions()): activator runs what a unit says as root.
        errors.append(
            UnitError(
                "is marked world-writable: anyone may change what activator runs "
                f"(chmod o-w {path}); proceeding anyway",
                path=path,
                severity="warning",
            )
        )
    return entries, errors


def _unit_name_of(filename: str) -> str:
    return filename[:-5] if filename.endswith(".toml") else filename


def dropin_dir_names(name: str) -> list[str]:
    """Drop-in directory names for ``name``, lowest precedence first (systemd's order)."""
    parsed = parse_unit_name(name)
    if parsed is None:
        return [name + ".d"]
    prefix, instance, suffix = parsed
    out = [f"{suffix}.d"]
    parts = prefix.split("-")
    for i in range(1, len(parts)):
        out.append("-".join(parts[:i]) + f"-.{suffix}.d")
    if instance:
        out.append(f"{prefix}@.{suffix}.d")
    out.append(f"{name}.d")
    return out


class _DirCache:
    """Directory listings, read once per load (drop-in lookups are mostly misses)."""

    def __init__(self) -> None:
        self._cache: dict[str, frozenset[str]] = {}

    def names(self, d: str) -> frozenset[str]:
        hit = self._cache.get(d)
        if hit is None:
            try:
                hit = frozenset(os.listdir(d))
            except OSError:
                hit = frozenset()
            self._cache[d] = hit
        return hit


def find_dropins(name: str, search_dirs: Sequence[str], dirs: _DirCache) -> list[str]:
    """Drop-in files for ``name``: sorted by file name; for equal names, the most
    specific directory and the earliest search path win."""
    chosen: dict[str, str] = {}
    dnames = dropin_dir_names(name)
    for base in reversed(search_dirs):
        listing = dirs.names(base)
        for dn in dnames:
            if dn not in listing:
                continue
            d = os.path.join(base, dn)
            for f in dirs.names(d):
                if f.endswith((".conf", ".conf.toml")):
                    chosen[f] = os.path.join(d, f)
    return [chosen[f] for f in sorted(chosen)]


def _discover(
    paths: Iterable[str | os.PathLike[str]], problems: list[Problem], dirs: _DirCache
) -> _Discovery:
    """Unit files by name (first wins: ``sources``), symlink aliases (``link_aliases``),
    masks, placeholder files, dependency directories, drop-in search dirs and the names
    of instance drop-in dirs ("foo@bar.service.d")."""
    found = _Discovery(problems, dirs)
    for p in paths:
        found.path(os.fspath(p))
    return found.finish()


class _Discovery:
    """One _discover() pass: what it has found so far, added to path by path."""

    def __init__(self, problems: list[Problem], dirs: _DirCache) -> None:
        self.problems = problems
        self.dirs = dirs
        self.sources: dict[str, _Source] = {}
        self.link_aliases: dict[str, str] = {}
        self.search_dirs: list[str] = []
        self.instance_dirs: list[str] = []
        self.seen_real: set[str] = set()
        # Targets of alias symlinks, read after all paths unless a path has that unit.
        self.pending: list[tuple[str, str]] = []
        self.masked: dict[str, str] = {}  # name → the symlink to /dev/null
        self.placeholders: dict[str, str] = {}  # name → file (first path wins)
        # NAME → directive (Wants, Requires, Upholds) → the units its directories name
        self.dep_dirs: dict[str, dict[str, set[str]]] = {}

    def path(self, p: str) -> None:
        """One path given: a directory of units, or a unit file named explicitly."""
        if os.path.isdir(p):
            self.directory(p)
        elif os.path.exists(p) or os.path.islink(p):
            d = os.path.dirname(p) or "."
            if d not in self.search_dirs:
                self.search_dirs.append(d)
            self.add(p, d, explicit=True)
        else:
            self.problems.append(Problem(p, None, None, "no such file or directory", "error", None))

    def directory(self, p: str) -> None:
        self.search_dirs.append(p)
        with contextlib.suppress(OSError):
            if os.stat(p).st_mode & stat.S_IWOTH:
                self.problems.append(
                    Problem(p, None, None, "unit directory is world-writable: anyone may add "
                            f"units that activator runs (chmod o-w {p}); proceeding anyway",
                            "warning", None)
                )  # fmt: skip
        # One lstat a file: a file that is no symlink has the directory's real path
        # (realpath() would lstat every component of every file: 10,000 units, 100,000 calls).
        real_dir = os.path.realpath(p)
        for fname in sorted(self.dirs.names(p)):
            full = os.path.join(p, fname)
            if fname.endswith(".d"):
                u = parse_unit_name(fname[:-2])
                if u is not None and u.instance:
                    self.instance_dirs.append(fname[:-2])
                continue
            ext = os.path.splitext(fname)[1]
            if ext in DEP_DIRS:
                self.dep_dir(full, fname[: -len(ext)], DEP_DIRS[ext])
                continue
            try:
                mode = os.lstat(full).st_mode
            except OSError:
                mode = 0  # gone since the listing: read (and reported) as a file
            if stat.S_ISLNK(mode):
                if not os.path.isdir(full):
                    self.add(full, p, explicit=False)
            elif not stat.S_ISDIR(mode):
                self.add(full, p, explicit=False, real=os.path.join(real_dir, fname))

    def add(self, path: str, directory: str, explicit: bool, real: str | None = None) -> None:
        """A unit file found; ``real``: its real path, when it is known to be no symlink."""
        fname = os.path.basename(path)
        name = _unit_name_of(fname)
        parsed = parse_unit_name(name)
        if parsed is None and name.endswith((".socket", ".service")):
            self.problems.append(Problem(path, None, None, "not a valid unit name", "error", None))
            return
        if parsed is not None and parsed.suffix in PLACEHOLDER_KINDS and not explicit:
            if os.path.realpath(path) == "/dev/null":
                self.masked.setdefault(name, path)
            else:
                self.placeholders.setdefault(name, path)
            return
        if parsed is None or parsed.suffix not in KINDS:
            if explicit:
                self.problems.append(
                    Problem(path, None, None, "not a .socket or .service unit file", "error", None)
                )
            return
        if real is None and os.path.islink(path) and self.link(path, name, parsed.suffix):
            return
        self.file(path, name, directory, real)

    def link(self, path: str, name: str, suffix: str) -> bool:
        """A symlink: masked, dangling or an alias; False if it points to a file of its
        own name, which is then read like any file."""
        real = os.path.realpath(path)
        if real == "/dev/null":  # the loader says so if the unit is wanted
            self.masked.setdefault(name, path)
            return True
        if not os.path.exists(real):
            msg = f"dangling symlink to {os.readlink(path)}"
            self.problems.append(Problem(path, None, None, msg, "error", name))
            return True
        target = _unit_name_of(os.path.basename(real))
        if target == name:
            return False
        if parse_unit_name(target) is None or target.rsplit(".", 1)[-1] != suffix:
            self.problems.append(
                Problem(
                    path,
                    None,
                    None,
                    f"symlink to {real}: not a unit of the same type",
                    "error",
                    name,
                )
            )
            return True
        self.link_aliases[name] = target
        if target not in self.sources:
            self.pending.append((real, os.path.dirname(real)))
        return True

    def file(self, path: str, name: str, directory: str, real: str | None = None) -> None:
        real = real or os.path.realpath(path)
        if real in self.seen_real:
            return
        self.seen_real.add(real)
        if name in self.sources:
            other = self.sources[name]
            if other.directory == directory:
                self.problems.append(
                    Problem(
                        path,
                        None,
                        None,
                        f"{name} is defined twice: {other.path} and {path}",
                        "error",
                        name,
                    )
                )
            return  # an earlier path shadows this one, as in systemd's load path
        self.sources[name] = _Source(name, path, directory)

    def dep_dir(self, d: str, owner: str, directive: str) -> None:
        """``owner.wants/`` and friends: every unit name in it (symlinks, as systemctl
        enable makes them; an instance links to its template's file) is a dependency."""
        if parse_unit_name(owner) is None or not os.path.isdir(d):
            return
        members = self.dep_dirs.setdefault(owner, {}).setdefault(directive, set())
        for fname in self.dirs.names(d):
            name = _unit_name_of(fname)
            if parse_unit_name(name) is not None:
                members.add(name)

    def finish(self) -> _Discovery:
        for real, d in self.pending:
            name = _unit_name_of(os.path.basename(real))
            if name not in self.sources:
                self.sources[name] = _Source(name, real, d)
        return self

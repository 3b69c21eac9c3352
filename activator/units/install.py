"""Enablement: what ``systemctl enable|disable|is-enabled|list-unit-files`` do to a root.

This is systemd 252's src/shared/install.c as Debian's systemctl runs it on the client
side (``systemctl --root=DIR``, or with no systemd running), checked against that binary
(tests/units/test_install_oracle.py): the same symlinks with the same targets, the same
states, the same messages. It reads unit files ([Install] only, and the drop-ins
``NAME.d/`` and ``TEMPLATE.d/``), follows aliases and links, and makes or removes
symlinks under ``Paths.config`` (ROOT/etc/systemd/system). No daemon, no asyncio.

What systemctl 252 does that is easy to get wrong, and is done here as it does:

- Enablement links point at the unit file by its absolute path inside the root
  (``/lib/systemd/system/foo.socket``); a unit file outside the search path is linked
  into the config directory first (``enable /srv/foo.service``).
- Only links in ``/etc/systemd/system`` (enabled) and under ``/run`` (enabled-runtime)
  count for a unit's state; the vendor's ``/lib/systemd/system/*.wants/`` links do not
  (a unit they pull in is ``static``). Inside ``NAME.wants/`` only a link's own name
  counts (and, for a template, the names of its instances), not where it points.
- ``disable`` removes every link in the config directory named like the unit or leading
  to a file of that name, and links to the links it removed, then empty directories.
- Names in [Install] expand specifiers with the name being enabled (``%i`` of
  ``foo@bar.service`` is ``bar``); an instance's alias must be an instance too.

Where activator differs, it is outside what systemctl 252 can see: ``UpheldBy=`` writes
``NAME.upholds/`` links (systemctl 252 ignores the key with a warning); units in TOML
form (``NAME.toml``) are found beside the INI ones; and the standard targets activator
has built in count as present, so enabling into ``sockets.target`` in an image without
systemd's target files does not warn that it is "non-existent".

Errors are negative errno values as in install.c, carried by ``Change`` records and
``Outcome.r``; ``messages()`` words them as systemctl does.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

from .discover import read_entries
from .errors import BadValue
from .ini import Entry
from .names import UnitName, is_valid_instance, parse_unit_name
from .specifiers import Specifiers
from .targets import BUILTIN_TARGETS
from .values.words import QuotingError, split_words

#: systemd 252's system unit search path as Debian builds it (``systemd-analyze
#: unit-paths``), earlier first; the persistent config directory is where enable writes.
SEARCH_PATH = (
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/run/systemd/generator.late",
)
CONFIG_DIR = "/etc/systemd/system"
RUNTIME_DIR = "/run/systemd/system"
GENERATOR_DIRS = ("/run/systemd/generator", "/run/systemd/generator.early",
                  "/run/systemd/generator.late")  # fmt: skip
TRANSIENT_DIR = "/run/systemd/transient"
PRESET_DIRS = (
    "/etc/systemd/system-preset",
    "/run/systemd/system-preset",
    "/usr/local/lib/systemd/system-preset",
    "/usr/lib/systemd/system-preset",
    "/lib/systemd/system-preset",
)

#: Where [Install] makes links, by directive (install_info_apply()).
LINK_DIRS = (("WantedBy", ".wants/"), ("RequiredBy", ".requires/"), ("UpheldBy", ".upholds/"))
#: is-enabled's exit code is 0 if any unit is in one of these (systemctl 252's
#: verb_is_enabled(); not "transient", whatever its man page says).
ENABLED_STATES = frozenset(
    {"enabled", "enabled-runtime", "static", "alias", "indirect", "generated"}
)
#: States for which systemctl prints no preset (show_preset_for_state()).
NO_PRESET_STATES = frozenset({"alias", "static", "generated", "transient"})

_MAY_TEMPLATE = frozenset({"service", "socket", "target", "timer", "path"})
#: The sections install.c's parser knows ([Install]) or skips without a word.
_SECTIONS = frozenset({"Install", "Unit", "Automount", "Device", "Mount", "Path", "Scope",
                       "Service", "Slice", "Socket", "Swap", "Target", "Timer"})  # fmt: skip
_MAY_NOT_ALIAS = frozenset({"mount", "swap", "automount", "slice", "device", "scope"})
#: The specifiers install_name_printf() knows; any other is EBADSLT.
_INSTALL_SPECIFIERS = frozenset("abBgGHijlmnNopuUvwWAM%")
_BACKUP_SUFFIXES = frozenset(
    {"rpmnew", "rpmsave", "rpmorig", "dpkg-old", "dpkg-new", "dpkg-tmp", "dpkg-dist",
     "dpkg-bak", "dpkg-backup", "dpkg-remove", "ucf-new", "ucf-old", "ucf-dist", "swp",
     "bak", "old", "new"}
)  # fmt: skip
_FOLLOW_MAX = 64
_T = TypeVar("_T")
_EXECUTABLE = (
    "Configuration file {} is marked executable. Please remove executable permission bits. "
    "Proceeding anyway."
)
_WORLD_WRITABLE = (
    "Configuration file {} is marked world-writable. Please remove world writability "
    "permission bits. Proceeding anyway."
)

# install modes (InstallMode)
REGULAR, MASKED, ALIAS, LINKED = "regular", "masked", "alias", "linked"

# change kinds (InstallChangeType); an error is a negative errno instead
SYMLINK = "symlink"
UNLINK = "unlink"
IS_MASKED = "is-masked"
IS_DANGLING = "is-dangling"
DESTINATION_NOT_PRESENT = "destination-not-present"
AUXILIARY_FAILED = "auxiliary-failed"


class Change(NamedTuple):
    """One thing an operation did or refused: a kind above, or a negative errno."""

    kind: str | int
    path: str
    source: str | None = None


@dataclass
class Outcome:
    """What an operation returns: ``r`` (negative errno on failure, else how many links
    [Install] asked for), the changes in order, and the warnings logged meanwhile (printed
    before the changes, as systemctl logs them as it goes and dumps changes at the end)."""

    r: int
    changes: list[Change]
    log: list[str]


class InstallFailure(Exception):
    """A unit's state cannot be had (is-enabled): ``err`` is the errno."""

    def __init__(self, err: int, name: str) -> None:
        super().__init__(f"{name}: {os.strerror(err)}")
        self.err = err
        self.name = name


class _Fail(Exception):
    def __init__(self, err: int) -> None:
        super().__init__(os.strerror(err))
        self.err = err


# ---------------------------------------------------------------- paths


def in_root(root: str, path: str) -> str:
    """An absolute path inside ``root`` as a path of this system."""
    return path if root == "/" else root + path


def skip_root(root: str, path: str) -> str | None:
    """The path inside ``root`` of a path of this system; None if it is outside."""
    if root == "/":
        return path
    if path == root:
        return "/"
    if path.startswith(root + "/"):
        return path[len(root) :]
    return None


def _starts(path: str, prefix: str) -> str | None:
    """path_startswith(): the rest of ``path`` below directory ``prefix``, or None."""
    if path == prefix:
        return ""
    if path.startswith(prefix.rstrip("/") + "/"):
        return path[len(prefix.rstrip("/")) + 1 :]
    return None


@dataclass(frozen=True)
class Paths:
    """A unit search path and the directories that play a part in enablement.

    ``root`` is "/" or the directory ``--root`` names; every other path is a path of this
    system (inside the root). ``enabling``: where a link means "enabled" — the config
    directory, and the ``--units`` directories activator reads (a link in their
    ``NAME.wants/`` starts the unit, so it is enabled).
    """

    root: str
    search: tuple[str, ...]
    config: str
    config_dirs: frozenset[str]  # path_is_config(): the persistent and the runtime one
    enabling: frozenset[str]
    runtime: frozenset[str]  # the /run directories systemd counts as runtime
    generators: frozenset[str]
    transient: str

    @classmethod
    def system(cls, root: str = "/", units_dirs: Sequence[str] = ()) -> Paths:
        """systemctl's paths under ``root``, after ``units_dirs`` (paths inside the root)."""
        root = os.path.abspath(root) if root != "/" else "/"
        extra = [in_root(root, os.path.abspath(d)) for d in units_dirs]
        search = tuple(dict.fromkeys([*extra, *(in_root(root, p) for p in SEARCH_PATH)]))
        return cls._make(root, search, extra)

    @classmethod
    def of(cls, search: Sequence[str], units_dirs: Sequence[str] = ()) -> Paths:
        """The paths of a running activator: its own load path (``Manager.load_paths()``)."""
        dirs = [os.path.abspath(d) for d in search]
        return cls._make("/", tuple(dirs), [os.path.abspath(d) for d in units_dirs])

    @classmethod
    def _make(cls, root: str, search: tuple[str, ...], extra: Sequence[str]) -> Paths:
        config = in_root(root, CONFIG_DIR)
        run = ("/run/systemd/system.control", TRANSIENT_DIR, RUNTIME_DIR, *GENERATOR_DIRS)
        return cls(
            root=root,
            search=search,
            config=config,
            config_dirs=frozenset([config, in_root(root, RUNTIME_DIR)]),
            enabling=frozenset([config, *extra]),
            runtime=frozenset(in_root(root, p) for p in run),
            generators=frozenset(in_root(root, p) for p in GENERATOR_DIRS),
            transient=in_root(root, TRANSIENT_DIR),
        )

    def is_runtime(self, path: str) -> bool:
        """path_is_runtime(): everything under /run, and the runtime directories."""
        inside = skip_root(self.root, path)
        return (inside is not None and _starts(inside, "/run") is not None) or (
            path in self.runtime
        )

    def in_search_path(self, path: str) -> bool:
        return os.path.dirname(path) in self.search


# ---------------------------------------------------------------- file system helpers


def _unit_name_of(filename: str) -> str:
    """activator's TOML form: ``web.socket.toml`` is the unit ``web.socket``."""
    return filename[:-5] if filename.endswith(".toml") else filename


def _hidden_or_backup(name: str) -> bool:
    """systemd's hidden_or_backup_file(): what FOREACH_DIRENT skips."""
    if name.startswith(".") or name.endswith("~") or name in ("lost+found", "aquota.user",
                                                                  "aquota.group"):  # fmt: skip
        return True
    dot = name.rfind(".")
    return dot >= 0 and name[dot + 1 :] in _BACKUP_SUFFIXES


def _scandir(d: str) -> list[tuple[str, str]]:
    """(name, kind) of a directory in readdir order — systemctl reports removals in that
    order — without hidden and backup files; kind is dir, link, file or other."""
    out = []
    try:
        with os.scandir(d) as it:
            for e in it:
                if _hidden_or_backup(e.name):
                    continue
                try:
                    if e.is_symlink():
                        kind = "link"
                    elif e.is_dir(follow_symlinks=False):
                        kind = "dir"
                    elif e.is_file(follow_symlinks=False):
                        kind = "file"
                    else:
                        kind = "other"
                except OSError:
                    continue
                out.append((e.name, kind))
    except OSError:  # not there, not a directory, not ours to read, a loop of links
        return []
    return out


def _null_or_empty(st: os.stat_result) -> bool:
    if stat.S_ISREG(st.st_mode):
        return st.st_size == 0
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)


def chase(root: str, path: str, *, follow_last: bool = True) -> str:
    """chase_symlinks(path, root, CHASE_NONEXISTENT): ``path`` (a path of this system
    inside ``root``) with ``.``, ``..`` and symlinks resolved inside the root; what does
    not exist is kept as written. Raises _Fail(ELOOP) after 32 links."""
    inside = skip_root(root, path)
    todo = [c for c in (inside if inside is not None else path).split("/") if c]
    done = ""
    hops = 0
    while todo:
        c = todo.pop(0)
        if c == ".":
            continue
        if c == "..":
            done = done.rsplit("/", 1)[0]
            continue
        cand = f"{done}/{c}"
        if not todo and not follow_last:
            done = cand
            break
        try:
            target = os.readlink(in_root(root, cand))
        except OSError:  # not a link, or not there: keep it as it is
            done = cand
            continue
        hops += 1
        if hops > 32:
            raise _Fail(errno.ELOOP)
        if target.startswith("/"):
            done = ""
        todo[:0] = [x for x in target.split("/") if x]
    return in_root(root, done or "/")


class _Files:
    """Directory listings, link targets and parsed [Install] sections, read once per
    operation when ``cache`` (a status of every unit asks about the same directories many
    times); an operation that changes links reads afresh."""

    def __init__(self, cache: bool) -> None:
        self.cache = cache
        self._dirs: dict[str, list[tuple[str, str]]] = {}
        self._links: dict[str, str | int] = {}
        self._index: dict[str, _Links] = {}
        self._names: dict[str, frozenset[str]] = {}
        self._entries: dict[str, list[Entry]] = {}

    def _memo(self, table: dict[str, _T], key: str, make: Callable[[], _T]) -> _T:
        if not self.cache:
            return make()
        hit = table.get(key)
        if hit is None:
            hit = table[key] = make()
        return hit

    def scandir(self, d: str) -> list[tuple[str, str]]:
        return self._memo(self._dirs, d, lambda: _scandir(d))

    def exists(self, path: str) -> bool:
        if not self.cache:
            return os.path.lexists(path)
        d, name = os.path.split(path)
        return name in self._memo(self._names, d, lambda: frozenset(n for n, _ in self.scandir(d)))

    def entries(self, path: str) -> list[Entry]:
        """A unit file's entries (a syntax error skips its line, as systemd's parser does);
        read once per operation when ``cache`` (every instance of a template reads it)."""
        return self._memo(self._entries, path, lambda: read_entries(path)[0])

    def links(self, d: str) -> _Links:
        """The symlinks of directory ``d``, indexed."""
        return self._memo(self._index, d, lambda: _Links(self, d))

    def readlink(self, path: str) -> str:
        """os.readlink(); _Fail with its errno."""
        hit = self._memo(self._links, path, lambda: _readlink(path))
        if isinstance(hit, int):
            raise _Fail(hit)
        return hit


def _readlink(path: str) -> str | int:
    try:
        return os.readlink(path)
    except OSError as e:
        return e.errno or errno.EIO


class _Links:
    """The symlinks of one directory for find_symlinks(): each by its unit name with the
    unit name of what it points to (None: unreadable), and the lookups that find the few
    a unit's name can concern — by name, by target, by template (an instance's link) —
    so that a status of every unit does not read every link once per unit."""

    def __init__(self, files: _Files, d: str) -> None:
        self.files: dict[str, str] = {}  # unit name → file name
        self.dest: dict[str, str | None] = {}
        self.by_dest: dict[str, list[str]] = {}
        self.by_template: dict[str, list[str]] = {}
        self.subdirs: list[str] = []
        for fname, kind in files.scandir(d):
            dot = fname.rfind(".")
            if kind == "dir" and dot > 0 and fname[dot:] in (".wants", ".requires", ".upholds"):
                self.subdirs.append(f"{d}/{fname}")
            if kind != "link":
                continue
            name = _unit_name_of(fname)
            self.files.setdefault(name, fname)
            try:
                dest: str | None = _unit_name_of(os.path.basename(files.readlink(f"{d}/{fname}")))
            except _Fail:
                dest = None
            self.dest.setdefault(name, dest)
            if dest is not None:
                self.by_dest.setdefault(dest, []).append(name)
            p = parse_unit_name(name)
            if p is not None and p.instance:
                self.by_template.setdefault(p.template, []).append(name)

    def about(self, unit: str) -> list[str]:
        """The links that may concern ``unit``: its name, or it as target or template."""
        return list(
            dict.fromkeys(
                [*([unit] if unit in self.files else []), *self.by_dest.get(unit, ()),
                 *self.by_template.get(unit, ())]
            )
        )  # fmt: skip


# ---------------------------------------------------------------- one unit file


@dataclass(eq=False)
class _Info:
    """InstallInfo: one name met by an operation, and what its file says."""

    name: str
    path: str | None = None
    mode: str | None = None
    symlink_target: str | None = None
    auxiliary: bool = False
    aliases: list[str] = field(default_factory=list)
    wanted_by: list[str] = field(default_factory=list)
    required_by: list[str] = field(default_factory=list)
    upheld_by: list[str] = field(default_factory=list)
    also: list[str] = field(default_factory=list)
    default_instance: str | None = None

    def has_rules(self) -> bool:
        return bool(self.aliases or self.wanted_by or self.required_by or self.upheld_by)

    def links(self, directive: str) -> list[str]:
        return {"WantedBy": self.wanted_by, "RequiredBy": self.required_by,
                "UpheldBy": self.upheld_by}[directive]  # fmt: skip


def _words(value: object) -> list[str]:
    """config_parse_strv(): unquoted words, backslash escapes kept as written."""
    try:
        return split_words(str(value), cunescape=False, retain_escape=True)
    except QuotingError:
        return []


# ---------------------------------------------------------------- an operation


class _Op:
    """One operation's InstallContext: the names to process, those processed, the changes
    and the log."""

    def __init__(
        self,
        paths: Paths,
        *,
        files: _Files | None = None,
        log: list[str] | None = None,
        record: bool = True,
        follow_config: bool = True,
    ) -> None:
        self.paths = paths
        self.follow_config = follow_config  # SEARCH_FOLLOW_CONFIG_SYMLINKS
        self.root = paths.root
        self.files = files or _Files(cache=False)
        self.will: dict[str, _Info] = {}
        self.have: dict[str, _Info] = {}
        self.changes: list[Change] = []
        self.record = record
        self.log: list[str] = log if log is not None else []

    def change(self, kind: str | int, path: str, source: str | None = None) -> int:
        """install_changes_add(): record; an error's errno comes back for returning."""
        if self.record:
            self.changes.append(Change(kind, path, source))
        return kind if isinstance(kind, int) else 0

    # ------------------------------------------------------------ names
    def add(self, name: str | None, path: str | None = None, *, auxiliary: bool = False) -> _Info:
        """install_info_add(): the entry of a name (a new one to process, or the one met)."""
        if name is None:
            assert path is not None
            name = _unit_name_of(os.path.basename(path))
        if parse_unit_name(name) is None:
            raise _Fail(errno.EINVAL)
        i = self.have.get(name) or self.will.get(name)
        if i is not None:
            i.auxiliary = i.auxiliary and auxiliary
            return i
        i = _Info(name=name, path=path, auxiliary=auxiliary)
        self.will[name] = i
        return i

    def queued(self) -> Iterator[_Info]:
        """The names to process in order, each moved to the processed ones as it comes;
        what is queued meanwhile (Also=, the target of an alias) comes too."""
        while self.will:
            name = next(iter(self.will))
            yield self.have.setdefault(name, self.will.pop(name))

    def printf(self, info: _Info, text: str) -> str:
        """install_name_printf(): the specifiers of [Install], for the name enabled."""
        if "%" not in text:
            return text
        k = text.find("%")
        while 0 <= k < len(text) - 1:
            if text[k + 1] not in _INSTALL_SPECIFIERS:
                raise _Fail(errno.EBADSLT)
            k = text.find("%", k + 2)
        try:
            spec = Specifiers(info.name, info.path or "", default_instance=info.default_instance)
            return spec.expand(text)
        except BadValue:
            raise _Fail(errno.EUNATCH) from None

    # ------------------------------------------------------------ reading a file
    def load(self, info: _Info, path: str, *, load: bool, dropin: bool = False) -> int:
        """unit_file_load(): the file's install mode, and with ``load`` its [Install]; the
        number of links it asks for. _Fail(ELOOP) for a symlink (the caller reads it)."""
        if not dropin:
            p = parse_unit_name(info.name)
            if p is None:
                raise _Fail(errno.EINVAL)
            if p.instance is not None and p.suffix not in _MAY_TEMPLATE:
                self.log.append(f"{path}: unit type {p.suffix} cannot be templated, ignoring.")
                raise _Fail(errno.EINVAL)
            if not load:
                try:
                    st = os.lstat(path)
                except OSError as e:
                    raise _Fail(e.errno or errno.EIO) from None
                if _null_or_empty(st):
                    info.mode = MASKED
                elif stat.S_ISREG(st.st_mode):
                    info.mode = REGULAR
                elif stat.S_ISLNK(st.st_mode):
                    raise _Fail(errno.ELOOP)
                elif stat.S_ISDIR(st.st_mode):
                    raise _Fail(errno.EISDIR)
                else:
                    raise _Fail(errno.ENOTTY)
                return 0
            flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NOFOLLOW
            target = path
        else:
            if not load:
                return 0
            flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY
            target = chase(self.root, path)
        try:
            fd = os.open(target, flags | os.O_NONBLOCK)
        except OSError as e:
            raise _Fail(e.errno or errno.EIO) from None
        try:
            st = os.fstat(fd)
            if _null_or_empty(st):
                if not dropin:
                    info.mode = MASKED
                return 0
            if stat.S_ISDIR(st.st_mode):
                raise _Fail(errno.EISDIR)
            if not stat.S_ISREG(st.st_mode):
                raise _Fail(errno.EBADFD)
        finally:
            os.close(fd)
        if st.st_mode & 0o111:
            self.log.append(_EXECUTABLE.format(target))
        if st.st_mode & 0o002:
            self.log.append(_WORLD_WRITABLE.format(target))
        self.parse(info, target)
        if not dropin:
            info.mode = REGULAR
        return len(info.aliases) + len(info.wanted_by) + len(info.required_by) + len(info.upheld_by)

    def parse(self, info: _Info, path: str) -> None:
        """The [Install] section of one file or drop-in, as install.c's config table; a
        bad specifier in Also= or DefaultInstance= (or a bad name) fails the file."""
        entries = self.files.entries(path)
        p = parse_unit_name(info.name)
        suffix = p.suffix if p is not None else ""
        for e in entries:
            where = f"{path}:{e.where}"
            if not e.key:
                if e.section not in _SECTIONS:
                    self.log.append(f"{where}: Unknown section '{e.section}'. Ignoring.")
                continue
            if e.section != "Install":
                continue
            value = "" if e.value is None else str(e.value)
            if e.key in ("WantedBy", "RequiredBy", "UpheldBy", "Alias"):
                if e.key == "Alias" and suffix in _MAY_NOT_ALIAS:
                    self.log.append(f"{where}: Alias= is not allowed for {suffix} units, ignoring.")
                    continue
                lst = {"WantedBy": info.wanted_by, "RequiredBy": info.required_by,
                       "UpheldBy": info.upheld_by, "Alias": info.aliases}[e.key]  # fmt: skip
                if not value.strip():  # an empty assignment (TOML: []) resets the list
                    lst.clear()
                else:
                    lst.extend(_words(value))
            elif e.key == "Also":
                for w in _words(value):
                    printed = self._printf_logged(info, w, f'{where}: Failed to resolve unit '
                                                  f'name in Also="{w}"')  # fmt: skip
                    self.add(printed, auxiliary=True)
                    info.also.append(printed)
            elif e.key == "DefaultInstance":
                self._default_instance(info, p, value, where)
            elif not e.key.startswith("X-"):
                self.log.append(f"{where}: Unknown key '{e.key}' in section [Install], ignoring.")

    def _default_instance(self, info: _Info, p: UnitName | None, value: str, where: str) -> None:
        """config_parse_default_instance(): silently nothing for an instance (enabled with
        its own name), a warning for a plain unit, an error for a bad instance name."""
        if p is None or p.instance:
            return
        if p.instance is None:
            self.log.append(
                f"{where}: DefaultInstance= only makes sense for template units, ignoring."
            )
            return
        text = f'{where}: Failed to resolve instance name in DefaultInstance="{value}"'
        printed = self._printf_logged(info, value, text)
        if printed and not is_valid_instance(printed):
            self.log.append(f'{where}: Invalid DefaultInstance= value "{printed}".')
            raise _Fail(errno.EINVAL)
        info.default_instance = printed or None

    def _printf_logged(self, info: _Info, text: str, what: str) -> str:
        try:
            return self.printf(info, text)
        except _Fail as e:
            self.log.append(f"{what}: {os.strerror(e.err)}")
            raise

    def load_or_readlink(self, info: _Info, path: str, *, load: bool, dropin: bool = False) -> int:
        """unit_file_load_or_readlink(): a file, or a symlink — a mask, an alias (to a
        unit in the search path) or a link (to a file outside it)."""
        try:
            return self.load(info, path, load=load, dropin=dropin)
        except _Fail as e:
            if e.err != errno.ELOOP or dropin:
                raise
        resolved, outside = self.resolve_symlink(path)
        if self.masks(resolved):
            info.mode = MASKED
            return 0
        info.symlink_target = resolved
        info.mode = LINKED if outside else ALIAS
        return 0

    def masks(self, resolved: str) -> bool:
        """null_or_empty_path_with_root(): /dev/null inside the root, or an empty file."""
        if skip_root(self.root, resolved) == "/dev/null":
            return True
        try:
            return _null_or_empty(os.stat(chase(self.root, resolved)))
        except (OSError, _Fail):
            return False

    def resolve_symlink(self, path: str) -> tuple[str, bool]:
        """unit_file_resolve_symlink(): where a unit symlink points (one hop, inside the
        root) and whether that is outside the search path (a linked unit file)."""
        d, fname = os.path.split(path)
        target = self.files.readlink(path)
        target = in_root(self.root, target) if target.startswith("/") else f"{d}/{target}"
        simplified = chase(self.root, target, follow_last=False)
        tail = None
        for s in self.paths.search:
            tail = _starts(simplified, s)
            if tail is not None:
                break
        if tail is None:
            return simplified, True
        err = _validate_alias(_unit_name_of(fname), _unit_name_of(os.path.basename(simplified)))
        if err is not None:
            if err[1]:
                self.log.append(f"{fname}: {err[1]}")
            raise _Fail(err[0])
        if "/" in tail:
            self.log.append(
                f"Suspicious symlink {d}/{fname} \N{RIGHTWARDS ARROW} {simplified}, "
                "treating as alias."
            )
        return simplified, False

    # ------------------------------------------------------------ finding a unit
    def search(self, info: _Info, *, load: bool = True) -> int:
        """unit_file_search(): the file of a name along the search path (an instance's,
        else its template's), then its drop-ins. _Fail(ENOENT) if there is none."""
        if info.mode is not None:
            return 0
        if info.path:
            return self.load_or_readlink(info, info.path, load=load)
        p = parse_unit_name(info.name)
        candidates = [info.name]
        if p is not None and p.instance:
            candidates.append(p.template)
        result: int | None = None
        for name in candidates:
            for d in self.paths.search:
                path = f"{d}/{name}"
                if not self.files.exists(path):
                    if self.files.exists(path + ".toml"):
                        path += ".toml"
                    elif self.files.cache and not _untemplatable(name):
                        continue  # not there: load() would say ENOENT
                try:
                    result = self.load_or_readlink(info, path, load=load)
                except _Fail as e:
                    if e.err in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
                        continue
                    raise
                info.path = path
                break
            if result is not None:
                break
        if result is None:
            raise _Fail(errno.ENOENT)
        if info.mode == MASKED:
            return result
        for dropin in self._dropins(info.name, candidates[1:]):
            self.load_or_readlink(info, dropin, load=load, dropin=True)
        return result

    def _dropins(self, name: str, template: list[str]) -> list[str]:
        """NAME.d/*.conf and TEMPLATE.d/*.conf: by file name, the first directory wins."""
        chosen: dict[str, str] = {}
        for n in [name, *template]:
            for d in self.paths.search:
                dd = f"{d}/{n}.d"
                if not self.files.exists(dd):
                    continue
                for fname, kind in self.files.scandir(dd):
                    if fname.endswith((".conf", ".conf.toml")) and kind in ("file", "link"):
                        chosen.setdefault(fname, f"{dd}/{fname}")
        return [chosen[k] for k in sorted(chosen)]

    def follow(self, info: _Info, *, load: bool, ignore_different_name: bool) -> None:
        """install_info_follow(): take the file the link points to, if it bears the name."""
        assert info.symlink_target is not None
        target_name = _unit_name_of(os.path.basename(info.symlink_target))
        if not ignore_different_name and target_name != info.name:
            raise _Fail(errno.EXDEV)
        info.path, info.symlink_target, info.mode = info.symlink_target, None, None
        self.load_or_readlink(info, info.path, load=load)

    def traverse(self, start: _Info, *, load: bool = True) -> _Info:
        """install_info_traverse(): follow aliases and links to the unit file; an alias to
        another name continues with (and queues) that name's entry."""
        self.search(start, load=load)
        i = start
        hops = 0
        while i.mode in (ALIAS, LINKED):
            hops += 1
            if hops > _FOLLOW_MAX:
                raise _Fail(errno.ELOOP)
            assert i.path is not None
            if not self.follow_config and os.path.dirname(i.path) in self.paths.config_dirs:
                raise _Fail(errno.ELOOP)  # enable's second pass: an alias the admin made
            try:
                self.follow(i, load=load, ignore_different_name=i.mode == LINKED)
                continue
            except _Fail as e:
                if e.err != errno.EXDEV or i.symlink_target is None:
                    raise
            bn = _unit_name_of(os.path.basename(i.symlink_target))
            mine, theirs = parse_unit_name(i.name), parse_unit_name(bn)
            if mine and mine.instance and theirs and theirs.is_template:
                bn = bn.replace("@.", f"@{mine.instance}.", 1)
                if bn == i.name:  # the instance filled in gives our own name: take the link
                    self.follow(i, load=load, ignore_different_name=True)
                    continue
            i = self.add(bn)
            try:
                self.search(i, load=load)
            except _Fail as e:
                raise _Fail(errno.ENOLINK if e.err == errno.ENOENT else e.err) from None
        return i

    def discover(self, name_or_path: str, *, load: bool = True) -> _Info:
        """install_info_discover(): a name (or a unit file's path) to its unit file; a
        failure is recorded as a change and raised."""
        try:
            if "/" in name_or_path:
                info = self.add(None, in_root(self.root, os.path.abspath(name_or_path)))
            else:
                info = self.add(name_or_path)
            return self.traverse(info, load=load)
        except _Fail as e:
            self.change(-e.err, name_or_path)
            raise

    def exists(self, name: str) -> bool | None:
        """unit_file_exists(): True, False (not found), None (some other error). The
        standard targets activator has built in (targets.py) exist even where systemd's
        files do not: a container without systemd is told nothing false of them."""
        if name in BUILTIN_TARGETS or name == "default.target":
            return True
        other = _Op(self.paths, files=self.files, log=self.log, record=False)
        try:
            other.discover(name)
        except _Fail as e:
            return False if e.err == errno.ENOENT else None
        return True

    # ------------------------------------------------------------ state
    def state(self, name: str) -> str:
        """unit_file_lookup_state(). Raises _Fail (ENOENT: no such unit file)."""
        if parse_unit_name(name) is None:
            raise _Fail(errno.EINVAL)
        info = self.discover(name)
        assert info.path is not None
        if info.mode == MASKED:
            runtime = self.paths.is_runtime(info.path) or self.paths.is_runtime(
                os.path.dirname(info.path)
            )
            return "masked-runtime" if runtime else "masked"
        p = parse_unit_name(info.name)
        if name != _unit_name_of(os.path.basename(info.path)) and not (p and p.instance):
            return "alias"
        parent = os.path.dirname(info.path)
        if parent in self.paths.generators:
            return "generated"
        if parent == self.paths.transient:
            return "transient"
        found = self.symlinks_in_scope(info, match_name=True)
        if found:
            return found
        if self.symlinks_in_scope(info, match_name=False):
            return "indirect"
        if info.has_rules():
            return "disabled"
        return "indirect" if info.also else "static"

    def symlinks_in_scope(self, info: _Info, *, match_name: bool) -> str | None:
        """find_symlinks_in_scope() as systemctl 252 behaves: links in the config
        directory (and activator's --units directories) mean enabled, links under /run
        enabled-runtime; the vendor's links elsewhere make an instance static and mean
        nothing for other units; a link of the unit's own name to it, at the top of the
        config or a runtime directory, linked — unless that directory comes after the unit
        file in the search path, where the name is shadowed and only the target counts."""
        assert info.path is not None
        runtime = vendor = same_config = same_runtime = ignore_same = False
        for d in self.paths.search:
            enabling = d in self.paths.enabling
            found, same = self._symlinks(info, match_name, d, ignore_same)
            if found and enabling:
                return "enabled"
            if found and self.paths.is_runtime(d):
                runtime = True
            elif found:
                vendor = True
            elif same and enabling:
                same_config = True
            elif same and self.paths.is_runtime(d):
                same_runtime = True
            ignore_same = ignore_same or _starts(info.path, d) is not None
        p = parse_unit_name(info.name)
        if runtime:
            return "enabled-runtime"
        if vendor and p is not None and p.instance:
            return "static"
        if same_config:
            return "linked"
        return "linked-runtime" if same_runtime else None

    def _symlinks(
        self, info: _Info, match_name: bool, d: str, ignore_same: bool
    ) -> tuple[bool, bool]:
        """find_symlinks(): in the NAME.wants/ (.requires/, .upholds/) directories of
        ``d`` by link name only, then at its top by name or target."""
        top = self.files.links(d)
        for sub in top.subdirs:
            found, _ = self._symlinks_in(sub, info, True, match_name, d, False)
            if found:
                return True, False
        return self._symlinks_in(d, info, False, match_name, d, ignore_same)

    def _symlinks_in(
        self,
        d: str,
        info: _Info,
        ignore_destination: bool,
        match_name: bool,
        config: str,
        ignore_same: bool,
    ) -> tuple[bool, bool]:
        """find_symlinks_in_directory() → (found, a same-name link seen)."""
        same = False
        index = self.files.links(d)
        for name in index.about(info.name):
            found_dest = False
            if not ignore_destination:
                if index.dest[name] is None:
                    continue
                found_dest = index.dest[name] == info.name
            found_path = name == info.name and not ignore_same
            if not found_path and ignore_destination:
                p = parse_unit_name(name)
                if p is not None and p.instance:
                    found_dest = p.template == info.name
            if found_path and found_dest and f"{d}/{index.files[name]}" == f"{config}/{info.name}":
                same = True
            elif found_path or found_dest:
                if not match_name or _known_name(info, name):
                    return True, same
        return False, same

    # ------------------------------------------------------------ enabling
    def may_process(self, info: _Info) -> None:
        """install_info_may_process(): masked, generated and transient units refuse."""
        assert info.path is not None
        if info.mode == MASKED:
            raise _Fail(-self.change(-errno.ERFKILL, info.path))
        parent = os.path.dirname(info.path)
        if parent in self.paths.generators or parent == self.paths.transient:
            raise _Fail(-self.change(-errno.EADDRNOTAVAIL, info.path))

    def apply_all(self) -> int:
        """install_context_apply(): every name queued, Also= ones included."""
        r = 0
        for i in self.queued():
            try:
                self.traverse(i)
            except _Fail as e:
                if i.auxiliary:
                    self.change(AUXILIARY_FAILED, "", i.name)
                    continue
                return self.change(-e.err, i.name)
            if i.mode == MASKED:
                assert i.path is not None
                self.change(IS_MASKED, i.path)
                if r >= 0:
                    r += 1  # something could have been enabled: no "no [Install]" hint
                continue
            if i.mode != REGULAR:
                continue
            q = self.apply(i)
            if r >= 0:
                r = q if q < 0 else r + q
        return r

    def apply(self, info: _Info) -> int:
        """install_info_apply(): the link of a file outside the search path, Alias=,
        then WantedBy=, RequiredBy= (and UpheldBy=)."""
        linked = self.symlink_link(info)
        r = self.symlink_aliases(info)
        for directive, suffix in LINK_DIRS:
            q = self.symlink_wants(info, info.links(directive), suffix)
            if r == 0:
                r = q
        if r == 0 and linked < 0:
            r = linked
        return r

    def symlink_link(self, info: _Info) -> int:
        assert info.path is not None
        if self.paths.in_search_path(info.path):
            return 0
        return self.create_symlink(info.path, f"{self.paths.config}/{info.name}", force=False)

    def symlink_aliases(self, info: _Info) -> int:
        assert info.path is not None
        r = 0
        for alias in info.aliases:
            try:
                dst = self.printf(info, alias)
            except _Fail as e:
                self.change(-e.err, alias)
                r = r if r < 0 else -e.err
                continue
            try:
                dst = self.verify_alias(info, dst)
            except _Fail as e:
                if e.err != errno.ELOOP:
                    r = r if r < 0 else -e.err
                continue
            alias_path = dst if dst.startswith("/") else f"{self.paths.config}/{dst}"
            try:
                broken = not os.path.exists(chase(self.root, alias_path))
            except _Fail:  # a loop of links: there is something, and not ours
                broken = False
            q = self.create_symlink(info.path, alias_path, force=broken)
            r = r if r < 0 else q
        return r

    def verify_alias(self, info: _Info, dst: str) -> str:
        """unit_file_verify_alias(): ``dst`` as an alias of the unit (an instance's alias
        of a template name becomes that instance); _Fail(ELOOP) for the unit itself."""
        if "/" in dst:  # the legacy Alias=foo.target.wants/bar.service
            d, link = dst.rsplit("/", 1)
            owner = next((d[: -len(s)] for s in (".wants", ".requires") if d.endswith(s)), None)
            owner_name = parse_unit_name(os.path.basename(owner)) if owner else None
            if owner_name is None:
                raise _Fail(-self.change(-errno.EXDEV, dst))
            if not _symlink_name_compatible(link, info.name, owner_name.is_template):
                raise _Fail(-self.change(-errno.EXDEV, dst, info.name))
            return dst
        updated = dst
        target = parse_unit_name(dst)
        mine = parse_unit_name(info.name)
        if target is not None and target.is_template:
            if mine is None:
                raise _Fail(-self.change(-errno.EUCLEAN, info.name))
            if mine.instance:
                updated = dst.replace("@.", f"@{mine.instance}.", 1)
        err = _validate_alias(updated, info.name)
        if err is None:
            return updated
        if err[0] == errno.ELOOP:
            raise _Fail(errno.ELOOP)
        code = errno.EXDEV if err[0] == errno.EINVAL else err[0]
        raise _Fail(-self.change(-code, updated, info.name))

    def symlink_wants(self, info: _Info, targets: list[str], suffix: str) -> int:
        """install_info_symlink_wants(): TARGET.wants/NAME links for WantedBy= and kin;
        a template links its DefaultInstance=, or (none) only under template targets."""
        assert info.path is not None
        if not targets:
            return 0
        mine = parse_unit_name(info.name)
        template_ok = False
        if mine is not None and mine.is_template:
            if info.default_instance:
                inst = _Info(name=info.name.replace("@.", f"@{info.default_instance}.", 1))
                try:
                    self.search(inst, load=False)
                except _Fail as e:
                    return -e.err
                if inst.mode == MASKED:
                    assert inst.path is not None
                    return self.change(IS_MASKED, inst.path)
                n = inst.name
            else:
                template_ok, n = True, info.name
        else:
            n = info.name
        r = 0
        for t in targets:
            try:
                dst = self.printf(info, t)
            except _Fail as e:
                self.change(-e.err, t)
                r = r if r < 0 else -e.err
                continue
            pd = parse_unit_name(dst)
            if pd is None or (template_ok and pd.instance is None):
                q = self.change(-errno.EIDRM, dst, n) if pd else self.change(-errno.EUCLEAN, dst)
                r = r if r < 0 else q
                continue
            path = f"{self.paths.config}/{dst}{suffix}{n}"
            q = self.create_symlink(info.path, path, force=True)
            if (q < 0 and r >= 0) or r == 0:
                r = q
            if self.exists(dst) is False:
                self.change(DESTINATION_NOT_PRESENT, dst, info.path)
        return r

    def create_symlink(self, old_path: str, new_path: str, *, force: bool) -> int:
        """create_symlink(): 1 when the link is made or already right, else -errno."""
        old = skip_root(self.root, old_path) or old_path
        with contextlib.suppress(OSError):  # mkdir_parents_label(): symlink() says why
            os.makedirs(os.path.dirname(new_path), mode=0o755, exist_ok=True)
        try:
            os.symlink(old, new_path)
        except FileExistsError:
            pass
        except OSError as e:
            return self.change(-(e.errno or errno.EIO), new_path)
        else:
            self.change(SYMLINK, new_path, old)
            return 1
        try:
            dest = os.readlink(new_path)
        except OSError as e:
            err = errno.EEXIST if e.errno == errno.EINVAL else (e.errno or errno.EIO)
            return self.change(-err, new_path)
        if self._equivalent(new_path, dest, old):
            return 1
        if not force:
            return self.change(-errno.EEXIST, new_path, dest)
        tmp = f"{new_path}.#activator{os.getpid()}"
        try:
            os.symlink(old, tmp)
            os.rename(tmp, new_path)
        except OSError as e:
            return self.change(-(e.errno or errno.EIO), new_path)
        self.change(UNLINK, new_path)
        self.change(SYMLINK, new_path, old)
        return 1

    def _equivalent(self, link: str, a: str, b: str) -> bool:
        """chroot_unit_symlinks_equivalent(): two link targets that name one file."""
        d = os.path.dirname(link)
        pa = in_root(self.root, a) if a.startswith("/") else os.path.join(d, a)
        pb = in_root(self.root, b) if b.startswith("/") else os.path.join(d, b)
        if os.path.normpath(pa) == os.path.normpath(pb):
            return True
        try:
            return os.path.samefile(pa, pb)
        except OSError:
            return False

    # ------------------------------------------------------------ disabling
    def mark_for_removal(self) -> set[str]:
        """install_context_mark_for_removal(): the names whose links go (Also= included)."""
        marks: set[str] = set()
        for i in self.queued():
            try:
                self.traverse(i)
            except _Fail as e:
                where = i.path or i.name
                if e.err == errno.ENOLINK:
                    self.change(IS_DANGLING, where)
                elif e.err != errno.ENOENT or not i.auxiliary:
                    self.change(-e.err, where)
            else:
                if i.mode == MASKED:
                    self.change(IS_MASKED, i.path or i.name)
                    continue
                if i.mode != REGULAR:
                    continue
            marks.add(i.name)
        return marks

    def remove_marked(self, marks: set[str]) -> int:
        """remove_marked_symlinks(): from the config directory, again while a pass removed
        a link that others may lead to."""
        config = self.paths.config
        if not marks or not os.path.isdir(config) or os.path.islink(config):
            return 0
        r = 0
        while True:
            restart = [False]
            q = self._remove_in(marks, config, restart)
            if r == 0:
                r = q
            if not restart[0]:
                return r

    def _remove_in(self, marks: set[str], d: str, restart: list[bool]) -> int:
        r = 0
        for fname, kind in _scandir(d):
            p = f"{d}/{fname}"
            if kind == "dir":
                q = self._remove_in(marks, p, restart)
                if q < 0 and r == 0:
                    r = q
                continue
            if kind != "link" or parse_unit_name(fname) is None:
                continue
            if fname not in marks:  # by its own name it goes even if it leads nowhere
                try:
                    dest = chase(self.root, p)
                except _Fail as e:
                    self.change(-e.err, p)
                    r = r or -e.err
                    continue
                if (skip_root(self.root, dest) or dest) not in marks and (
                    os.path.basename(dest) not in marks
                ):
                    continue
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
            except OSError as e:
                r = r or -(e.errno or errno.EIO)
                self.change(-(e.errno or errno.EIO), p)
                continue
            _rmdir_parents(p, self.paths.config)
            self.change(UNLINK, p)
            inside = skip_root(self.root, p) or p
            if inside not in marks:
                marks.add(inside)
                restart[0] = True
        return r


def _untemplatable(name: str) -> bool:
    """A template or instance of a type that has none: load() refuses it, file or not."""
    p = parse_unit_name(name)
    return p is not None and p.instance is not None and p.suffix not in _MAY_TEMPLATE


def _known_name(info: _Info, name: str) -> bool:
    """is_symlink_with_known_name(): the unit's name, an Alias= as written, or the
    DefaultInstance= instance of a template."""
    if name == info.name or name in info.aliases:
        return True
    p = parse_unit_name(info.name)
    if info.default_instance and p is not None and p.is_template:
        return name == info.name.replace("@.", f"@{info.default_instance}.", 1)
    return False


def _symlink_name_compatible(link: str, target: str, instance_propagation: bool) -> bool:
    """unit_symlink_name_compatible(), for the legacy Alias=foo.target.wants/bar.service:
    a plain name must be the unit's; an instance the unit's or one of its template; a
    template only the unit's own, and only in a template's directory."""
    p = parse_unit_name(link)
    if p is None or p.instance is None:
        return link == target
    if p.is_template:
        return instance_propagation and link == target
    return link == target or p.template == target


def _validate_alias(src: str, dst: str) -> tuple[int, str] | None:
    """unit_validate_alias_symlink_or_warn(): None when ``src`` may be an alias of
    ``dst``; else (errno, what systemd says of it, "" if it says nothing)."""
    s = parse_unit_name(src)
    if s is None:
        return errno.EINVAL, f'not a valid unit name "{src}"'
    if s.suffix in _MAY_NOT_ALIAS:
        return errno.EINVAL, "symlinks are not allowed for units of this type, rejecting."
    if s.instance is not None and s.suffix not in _MAY_TEMPLATE:
        return errno.EINVAL, f"templates not allowed for {s.suffix} units, rejecting."
    if src == dst:
        return errno.ELOOP, ""
    t = parse_unit_name(dst)
    if t is None:
        return errno.EXDEV, f'points to "{dst}" which is not a valid unit name'
    kind_s = "template" if s.is_template else "instance" if s.instance else "plain"
    kind_t = "template" if t.is_template else "instance" if t.instance else "plain"
    if not (kind_s == kind_t or (kind_s == "instance" and kind_t == "template")):
        return errno.EXDEV, f'symlink target name type "{dst}" does not match source, rejecting.'
    if kind_t == "instance" and s.instance != t.instance:
        return errno.EXDEV, f'unit symlink target "{dst}" instance name doesn\'t match, rejecting.'
    if s.suffix != t.suffix:
        return errno.EXDEV, f'symlink target "{dst}" has incompatible suffix, rejecting.'
    return None


def _rmdir_parents(path: str, stop: str) -> None:
    """rmdir_parents(): remove the now empty directories between ``path`` and ``stop``."""
    d = os.path.dirname(path)
    while d != stop and _starts(d, stop):
        try:
            os.rmdir(d)
        except OSError:
            return
        d = os.path.dirname(d)


# ---------------------------------------------------------------- the verbs


def enable(paths: Paths, names: Iterable[str]) -> Outcome:
    """systemctl enable: the links [Install] asks for, for each unit (a name, or the path of
    a unit file) and its Also=. ``Outcome.r`` < 0: it failed (what was done stays done);
    0: nothing in [Install] asked for a link (systemctl's hint then applies)."""
    op = _Op(paths)
    for n in names:
        try:
            op.may_process(op.discover(n))
        except _Fail as e:
            return Outcome(-e.err, op.changes, op.log)
    # unit_file_enable() finds the units following any link, then applies them following
    # none in /etc or /run: enabling by a name an admin aliased there is refused.
    op.follow_config = False
    return Outcome(op.apply_all(), op.changes, op.log)


def disable(paths: Paths, names: Iterable[str]) -> Outcome:
    """systemctl disable: remove every link to each unit (and its Also=) from the config
    directory. Names only; -EINVAL for anything else."""
    op = _Op(paths)
    for n in names:
        if parse_unit_name(n) is None:
            return Outcome(-errno.EINVAL, op.changes, op.log)
        op.add(n)
    marks = op.mark_for_removal()
    return Outcome(op.remove_marked(marks), op.changes, op.log)


class Lookup:
    """Unit file states of one root, read through one cache: what is-enabled,
    list-unit-files and a daemon's status ask. ``log`` collects systemctl's warnings."""

    def __init__(self, paths: Paths, *, cache: bool = True) -> None:
        self.paths = paths
        self.files = _Files(cache=cache)
        self.log: list[str] = []
        self._presets: Presets | None = None

    def state(self, name: str) -> str:
        """enabled, enabled-runtime, linked, linked-runtime, alias, masked, masked-runtime,
        static, indirect, disabled, generated or transient. Raises InstallFailure (err
        ENOENT: no unit file of that name)."""
        try:
            return _Op(self.paths, files=self.files, log=self.log, record=False).state(name)
        except _Fail as e:
            raise InstallFailure(e.err, name) from None

    def unit_files(self, patterns: Sequence[str] = ()) -> list[tuple[str, str]]:
        """unit_file_get_list(): (path, state) of every unit file along the search path,
        the first of each name; "bad" for one whose state cannot be had."""
        out: dict[str, tuple[str, str]] = {}
        for d in self.paths.search:
            for fname, kind in self.files.scandir(d):
                name = _unit_name_of(fname)
                if parse_unit_name(name) is None or name in out or kind not in ("link", "file"):
                    continue
                if patterns and not any(fnmatch.fnmatchcase(name, p) for p in patterns):
                    continue
                try:
                    st = self.state(name)
                except InstallFailure:
                    st = "bad"
                out[name] = (f"{d}/{fname}", st)
        return list(out.values())

    def preset(self, name: str) -> str:
        """The vendor preset of a unit: "enabled" or "disabled"."""
        if self._presets is None:
            self._presets = read_presets(self.paths.root, self.log)
        return "enabled" if self._presets.query(name) else "disabled"


# ---------------------------------------------------------------- presets


@dataclass
class Presets:
    """systemd.preset(5) rules in order: (pattern, enable?, instances)."""

    rules: list[tuple[str, bool, tuple[str, ...]]]

    def query(self, name: str) -> bool:
        """query_presets(): the first rule whose pattern matches decides; none: enable."""
        for pattern, action, _ in self.rules:
            if fnmatch.fnmatchcase(name, pattern):
                return action
        return True


def read_presets(root: str, log: list[str] | None = None) -> Presets:
    """The *.preset files of the preset directories under ``root``, by file name (the
    first directory wins, an empty file or /dev/null link masks the name)."""
    files: dict[str, str] = {}
    for d in PRESET_DIRS:
        full = in_root(root, d)
        for fname, kind in _scandir(full):
            if fname.endswith(".preset") and kind in ("file", "link"):
                files.setdefault(fname, f"{full}/{fname}")
    rules: list[tuple[str, bool, tuple[str, ...]]] = []
    for fname in sorted(files):
        path = files[fname]
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for n, line in enumerate(lines, 1):
            text = line.strip()
            if not text or text[0] in "#;":
                continue
            rule = _preset_rule(text)
            if rule is not None:
                rules.append(rule)
            elif log is not None:
                log.append(f"{path}:{n}: Couldn't parse line '{line}'. Ignoring.")
    return Presets(rules)


def _preset_rule(line: str) -> tuple[str, bool, tuple[str, ...]] | None:
    """``enable PATTERN [INSTANCE…]`` or ``disable PATTERN``; None if it is neither."""
    word, rest = (line.split(None, 1) + [""])[:2]
    if word == "enable" and rest:
        words = _words(rest)
        p = parse_unit_name(words[0]) if words else None
        if not words or (len(words) > 1 and (p is None or not p.is_template)):
            return None
        return (words[0], True, tuple(words[1:]))
    if word == "disable" and rest:
        return (rest, False, ())
    return None


# ---------------------------------------------------------------- messages


def messages(outcome: Outcome, verb: str, *, quiet: bool = False) -> list[str]:
    """install_changes_dump(): the lines systemctl prints (all on stderr) for an operation."""
    out: list[str] = []
    logged = False
    for c in outcome.changes:
        kind, path, source = c
        if not isinstance(kind, int):
            if not quiet:
                out.append(_CHANGE_TEXT[kind].format(path=path, source=source))
            continue
        err = -kind
        text = _ERROR_TEXT.get(err)
        if err == errno.EEXIST and source:
            text = _EEXIST_LINK
        elif err == errno.EXDEV and source:
            text = "Failed to {verb} unit, cannot alias {source} as {path}."
        if text is None:
            text = 'Failed to {verb} unit, file "{path}": ' + os.strerror(err)
        out.append(text.format(verb=verb, path=path, source=source))
        logged = True
    if outcome.r < 0 and not logged:
        out.append(f"Failed to {verb}: {os.strerror(-outcome.r)}.")
    return out


_CHANGE_TEXT = {
    SYMLINK: "Created symlink {path} \N{RIGHTWARDS ARROW} {source}.",
    UNLINK: 'Removed "{path}".',
    IS_MASKED: "Unit {path} is masked, ignoring.",
    IS_DANGLING: "Unit {path} is an alias to a unit that is not present, ignoring.",
    DESTINATION_NOT_PRESENT: (
        "Unit {source} is added as a dependency to a non-existent unit {path}."
    ),
    AUXILIARY_FAILED: "Failed to enable auxiliary unit {source}, ignoring.",
}
_EEXIST_LINK = 'Failed to {verb} unit, file "{path}" already exists and is a symlink to "{source}".'
_ERROR_TEXT = {
    errno.EEXIST: 'Failed to {verb} unit, file "{path}" already exists.',
    errno.ERFKILL: "Failed to {verb} unit, unit {path} is masked.",
    errno.EADDRNOTAVAIL: "Failed to {verb} unit, unit {path} is transient or generated.",
    errno.EBADSLT: 'Failed to {verb} unit, invalid specifier in "{path}".',
    errno.EIDRM: "Failed to {verb} {source}, destination unit {path} is a non-template unit.",
    errno.EUCLEAN: 'Failed to {verb} unit, "{path}" is not a valid unit name.',
    errno.ELOOP: "Failed to {verb} unit, refusing to operate on linked unit file {path}.",
    errno.EXDEV: 'Failed to {verb} unit, invalid unit reference "{path}".',
    errno.ENOENT: "Failed to {verb} unit, unit {path} does not exist.",
    errno.EUNATCH: 'Failed to {verb} unit, cannot resolve specifiers in "{path}".',
}

#: systemctl's notice when enable found nothing to link (enable_unit()).
NO_INSTALL_HINT = """\
The unit files have no installation config (WantedBy=, RequiredBy=, Also=,
Alias= settings in the [Install] section, and DefaultInstance= for template
units). This means they are not meant to be enabled using systemctl.
\N{SPACE}
Possible reasons for having this kind of units are:
\N{BULLET} A unit may be statically enabled by being symlinked from another unit's
  .wants/ or .requires/ directory.
\N{BULLET} A unit's purpose may be to act as a helper for some other unit which has
  a requirement dependency on it.
\N{BULLET} A unit may be started when needed via activation (socket, path, timer,
  D-Bus, udev, scripted systemctl call, ...).
\N{BULLET} In case of template units, the unit is meant to be enabled with some
  instance name specified."""

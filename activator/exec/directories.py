"""RuntimeDirectory= and friends: created, owned and removed as root, symlink-safely.

systemd's setup_exec_directory(): each directory goes below a fixed root (/run,
/var/lib, /var/cache, /var/log, /etc); missing parents are created 0755 and root's; the
directory itself gets *DirectoryMode= and, except ConfigurationDirectory= (root's, left
alone once it exists), is owned by User=/Group=.

A service owns its directories, so it may put symlinks in them, or replace one of them
with a symlink while it is down. Everything below the root is therefore reached with
openat(…, O_NOFOLLOW | O_DIRECTORY) one component at a time (systemd's chase()
discipline): a symlink anywhere below the root is refused, never followed, and every
chmod/chown acts on the opened fd, never on a path looked up again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

from ..core.errors import StartError

#: (directive, root, environment variable)
DIRECTORIES = (
    ("RuntimeDirectory", "/run", "RUNTIME_DIRECTORY"),
    ("StateDirectory", "/var/lib", "STATE_DIRECTORY"),
    ("CacheDirectory", "/var/cache", "CACHE_DIRECTORY"),
    ("LogsDirectory", "/var/log", "LOGS_DIRECTORY"),
    ("ConfigurationDirectory", "/etc", "CONFIGURATION_DIRECTORY"),
)
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: Where a dynamic user's directories live below private/ (systemd's EXEC_DIRECTORY_*
#: types with a private variant; the runtime one is removed at stop anyway).
_PRIVATE = frozenset({"StateDirectory", "CacheDirectory", "LogsDirectory"})


class _Refused(Exception):
    """A path component is not a directory we may enter; the text says what it is."""


def _open_dir(name: str, parent: int) -> int:
    """openat(parent, name) of a directory, never through a symlink. Raises _Refused
    ("is a symbolic link", "exists and is not a directory") or OSError."""
    try:
        return os.open(name, _DIR, dir_fd=parent)
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
    try:
        st = os.lstat(name, dir_fd=parent)
    except OSError:
        raise _Refused("is not a directory") from None
    raise _Refused(
        "is a symbolic link" if stat.S_ISLNK(st.st_mode) else "exists and is not a directory"
    )


def below(root: str, name: str) -> str:
    """``root/name``, normalised; StartError when ``name`` leads out of ``root``."""
    path = os.path.normpath(os.path.join(root, name))
    if not path.startswith(root + "/"):
        raise StartError(f"directory {name!r} is not below {root}")
    return path


@contextlib.contextmanager
def _open_parent(root: str, path: str, *, create: bool) -> Iterator[tuple[int, str]]:
    """The parent of ``path`` opened without following a symlink below ``root`` (missing
    parents made 0755 root when ``create``), and the last component's name."""
    parts = path[len(root) + 1 :].split("/")
    if create:
        os.makedirs(root, 0o755, exist_ok=True)  # a minimal image may lack /var/cache
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the root is trusted
    try:
        for part in parts[:-1]:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            nxt = _open_dir(part, fd)
            os.close(fd)
            fd = nxt
        yield fd, parts[-1]
    finally:
        os.close(fd)


def make_directories(svc, creds) -> dict[str, str]:
    """Set up every *Directory= of a [Service] section ``svc`` for a process running with
    ``creds`` (None: root). Returns RUNTIME_DIRECTORY= … for the environment.
    Raises StartError naming the directive, the path and the cause.

    A dynamic user's (DynamicUser=) state, cache and logs live below ``private/`` of
    their root, reached through a symlink where the unit names them (systemd's layout):
    /var/lib/foo → private/foo. The uid is recycled once the service stops, and ``private``
    keeps the next owner of the number out of a directory it did not make — systemd by
    mode 0700 and a mount namespace; activator, without a namespace, by 0711 (the service
    must pass through, nobody may list it)."""
    env: dict[str, str] = {}
    uid, gid = (creds.uid, creds.gid) if creds is not None else (0, 0)
    private = creds is not None and creds.dynamic
    for field_name, root, var in DIRECTORIES:
        names = getattr(svc, field_name)
        if not names:
            continue
        mode = getattr(svc, field_name + "Mode")
        paths = []
        for name in names:
            path = below(root, name)
            try:
                if private and field_name in _PRIVATE:
                    _make_private(root, path, mode, (uid, gid))
                else:
                    own = field_name != "ConfigurationDirectory"
                    _make_one(root, path, mode, (uid, gid), own=own)
            except OSError as e:
                raise StartError(f"unable to create {field_name}= {path}: {e.strerror}") from None
            except _Refused as e:
                raise StartError(f"unable to create {field_name}= {path}: {e}") from None
            paths.append(path)
        env[var] = ":".join(paths)
    return env


def _make_one(root: str, path: str, mode: int, owner: tuple[int, int], *, own: bool) -> None:
    with _open_parent(root, path, create=True) as (parent, name):
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
            created = True
        except FileExistsError:
            created = False
        fd = _open_dir(name, parent)
        try:
            st = os.fstat(fd)
            if own:
                os.fchmod(fd, mode)
                if (st.st_uid, st.st_gid) != owner:
                    _chown_tree(fd, *owner)
            elif created:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)


def _make_private(root: str, path: str, mode: int, owner: tuple[int, int]) -> None:
    """``path`` (below ``root``) as a symlink to the same name below ``root``/private, where
    the directory is made as ``_make_one`` makes it. A directory already at ``path`` (the
    service ran without DynamicUser= before) moves there first, as systemd moves it."""
    proot = root + "/private"
    ppath = proot + path[len(root) :]
    with _open_parent(root, root + "/private", create=True) as (rootfd, name):
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o711, dir_fd=rootfd)
        fd = _open_dir(name, rootfd)
        try:
            if os.fstat(fd).st_uid == 0:
                os.fchmod(fd, 0o711)
        finally:
            os.close(fd)
    target = os.path.relpath(ppath, os.path.dirname(path))
    with _open_parent(root, path, create=True) as (parent, last):
        try:
            st: os.stat_result | None = os.lstat(last, dir_fd=parent)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            with _open_parent(proot, ppath, create=True) as (pparent, plast):
                try:
                    os.lstat(plast, dir_fd=pparent)
                except FileNotFoundError:
                    os.rename(last, plast, src_dir_fd=parent, dst_dir_fd=pparent)
                    st = None
                else:
                    raise _Refused(f"exists as a directory, and so does {ppath}: remove one")
        _make_one(proot, ppath, mode, owner, own=True)
        if st is not None and stat.S_ISLNK(st.st_mode):
            if os.readlink(last, dir_fd=parent) == target:
                return
            os.unlink(last, dir_fd=parent)
        elif st is not None:
            raise _Refused("exists and is not a directory")
        os.symlink(target, last, dir_fd=parent)


def _chown_tree(fd: int, uid: int, gid: int) -> None:
    """chown -R of an opened directory without following a symlink anywhere (the service
    may have planted some)."""
    os.fchown(fd, uid, gid)
    for _root, dirs, files, rootfd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
        for name in (*dirs, *files):
            with contextlib.suppress(FileNotFoundError):
                os.chown(name, uid, gid, dir_fd=rootfd, follow_symlinks=False)


def remove_runtime_directories(svc) -> None:
    """RuntimeDirectory= goes when the service does: removed below its parent opened
    symlink-safely; rmtree with a dir_fd follows no symlink either."""
    import shutil  # here: its bz2/lzma imports are half a MiB of idle memory

    for name in svc.RuntimeDirectory:
        with contextlib.suppress(StartError, OSError, _Refused):
            path = below("/run", name)
            with _open_parent("/run", path, create=False) as (parent, last):
                shutil.rmtree(last, dir_fd=parent, ignore_errors=True)

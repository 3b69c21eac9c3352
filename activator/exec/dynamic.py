"""DynamicUser=: a user of its own for the life of a service, as systemd's dynamic-user.c.

A name — ``User=``, else the unit's prefix (``uwsgi-app`` for ``uwsgi-app@x.service``), else
``_du`` and a hash of it — gets a uid from 61184–65519 with the gid of the same number,
and keeps it while any unit that uses the name runs: across automatic restarts, for every
instance of a template. It is released when the last of them stops.

Whoever holds a uid holds a lock on the file named by its number in the lock directory
(``/run/activator/dynamic-uid``, beside the control socket; the file holds the name), so
two activators on one machine never hand out the same uid. A candidate is refused when
the user or group database has it. The first candidates are the owners of the unit's
existing ``StateDirectory=``/``CacheDirectory=``/``LogsDirectory=`` (systemd's suggested
paths), so a service finds its files its own after a restart of activator, then a hash of
the name, then every uid of the range in turn.

As in systemd, a ``User=`` (or ``Group=``) that names a user (or group) of the system
database is used as it is, and a name that is a group but no user is refused. There is
no NSS module here: ``getpwnam()`` does not know a dynamic user (README).
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import os
import pwd
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..core.errors import StartError
from ..units.model import ExecContext
from .users import Credentials, lookup_group

UID_MIN, UID_MAX = 61184, 65519  # systemd's DYNAMIC_UID_MIN, DYNAMIC_UID_MAX
# systemd's valid_user_group_name() in its strict form (no dots, no leading digit)
_VALID = re.compile(r"[a-zA-Z_][a-zA-Z0-9_-]{0,30}")
#: The directories a dynamic user's files live in (below "private/", see directories.py).
PRIVATE_ROOTS = (("StateDirectory", "/var/lib"), ("CacheDirectory", "/var/cache"),
                 ("LogsDirectory", "/var/log"))  # fmt: skip


def _fnv(text: str) -> int:
    """A stable 64-bit hash (FNV-1a): the same name gets the same first candidate in every
    run (systemd uses siphash24; the exact numbers need not match, only be stable)."""
    h = 0xCBF29CE484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def dynamic_name(unit: str, user: str | None) -> str:
    """The name a unit's dynamic user gets (systemd's user_from_unit_name())."""
    if user:
        return user
    prefix = unit.split("@", 1)[0] if "@" in unit else unit.rsplit(".", 1)[0]
    if _VALID.fullmatch(prefix):
        return prefix
    return f"_du{_fnv(prefix):016x}"


def suggested_uids(ctx: ExecContext) -> list[int]:
    """Owners of the unit's private directories that exist already, in the dynamic range."""
    out = []
    for field, root in PRIVATE_ROOTS:
        for name in getattr(ctx, field):
            with contextlib.suppress(OSError):
                uid = os.lstat(os.path.join(root, "private", name)).st_uid
                if UID_MIN <= uid <= UID_MAX and uid not in out:
                    out.append(uid)
    return out


@dataclass
class _Held:
    number: int  # the uid (a group's gid)
    gid: int
    fd: int | None  # the lock; None for a user or group of the system database
    refs: int = 1


class DynamicCreds:
    """One unit's hold on its dynamic user (and group): ``credentials`` to run with;
    ``release()`` once, when the unit stops for good."""

    def __init__(self, users: DynamicUsers, names: list[str], credentials: Credentials) -> None:
        self._users = users
        self._names = names
        self.credentials = credentials

    def release(self) -> None:
        names, self._names = self._names, []
        for name in names:
            self._users.release(name)


class DynamicUsers:
    """The dynamic users of one activator: names → held uids, reference-counted."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._held: dict[str, _Held] = {}

    def acquire(self, unit: str, ctx: ExecContext) -> DynamicCreds:
        """The credentials of ``unit``'s dynamic user (``User=``, else named after the unit)
        and of its ``Group=`` (dynamic too unless the group database has it); held until
        ``release()``. Raises StartError naming the user and the cause."""
        name = dynamic_name(unit, ctx.User)
        taken: list[str] = []
        try:
            uid, gid = self._take(name, suggested_uids(ctx), user=True)
            taken.append(name)
            if ctx.Group is not None and ctx.Group != name:
                gid = self._take(ctx.Group, (), user=False)[1]
                taken.append(ctx.Group)
            groups = [gid]
            for g in ctx.SupplementaryGroups:
                number = lookup_group(g)
                if number not in groups:
                    groups.append(number)
        except BaseException:
            for held in taken:
                self.release(held)
            raise
        creds = Credentials(uid, gid, tuple(groups), name, "/", "/usr/sbin/nologin", dynamic=True)
        return DynamicCreds(self, taken, creds)

    def release(self, name: str) -> None:
        held = self._held.get(name)
        if held is None:
            return
        held.refs -= 1
        if held.refs > 0:
            return
        del self._held[name]
        if held.fd is not None:
            # Unlinked while still locked: whoever opened it meanwhile sees a file that is
            # no longer the one on disk, and tries again (_lock).
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.directory, str(held.number)))
            os.close(held.fd)

    # ------------------------------------------------------------ live re-exec
    def serialize(self, carry: Callable[[int], int]) -> dict[str, list[int | None]]:
        """Every held name with its uid, gid and lock fd (``carry`` hands the fd over: the
        lock must not lapse across the exec, or another activator could take the uid of a
        service still running as it)."""
        return {
            name: [h.number, h.gid, None if h.fd is None else carry(h.fd)]
            for name, h in self._held.items()
        }

    def adopt(self, held: dict[str, list[Any]]) -> None:
        """Take the replaced program's names over, held by nobody yet: each unit that runs
        as one takes it again (``acquire()``) as it is restored; ``drop_unused()`` then
        releases the rest."""
        for name, (number, gid, fd) in held.items():
            if fd is not None:
                os.set_inheritable(fd, False)
            self._held[name] = _Held(number, gid, fd, refs=0)

    def drop_unused(self) -> None:
        for name, h in list(self._held.items()):
            if h.refs <= 0:
                h.refs = 1
                self.release(name)

    def close(self) -> None:
        for name in list(self._held):
            self._held[name].refs = 1
            self.release(name)

    # ------------------------------------------------------------ allocating
    def _take(self, name: str, suggested: Iterable[int], *, user: bool) -> tuple[int, int]:
        held = self._held.get(name)
        if held is not None:
            held.refs += 1
            return held.number, held.gid
        static = self._static(name) if user else None
        if static is not None:
            self._held[name] = _Held(*static, None)
            return static
        if not user:
            with contextlib.suppress(KeyError):
                gid = grp.getgrnam(name).gr_gid
                self._held[name] = _Held(gid, gid, None)
                return gid, gid
        elif _group_exists(name):
            raise StartError(
                f"unable to allocate dynamic user {name!r}: a group of that name exists "
                "but no user (systemd refuses this too); rename User= or remove the group"
            )
        number, fd = self._allocate(name, suggested)
        self._held[name] = _Held(number, number, fd)
        return number, number

    @staticmethod
    def _static(name: str) -> tuple[int, int] | None:
        try:
            pw = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
        except (KeyError, OverflowError):
            return None
        return pw.pw_uid, pw.pw_gid

    def _allocate(self, name: str, suggested: Iterable[int]) -> tuple[int, int]:
        try:
            os.makedirs(self.directory, 0o755, exist_ok=True)
        except OSError as e:
            raise StartError(
                f"unable to allocate dynamic user {name!r}: cannot create {self.directory}: "
                f"{e.strerror}"
            ) from None
        span = UID_MAX - UID_MIN + 1
        start = _fnv(name) % span
        candidates = [*suggested, *(UID_MIN + (start + i) % span for i in range(span))]
        mine = {h.number for h in self._held.values()}
        for uid in dict.fromkeys(candidates):
            if uid in mine or not UID_MIN <= uid <= UID_MAX or _in_database(uid):
                continue
            fd = self._lock(uid, name)
            if fd is not None:
                return uid, fd
        raise StartError(
            f"unable to allocate dynamic user {name!r}: every uid of {UID_MIN}-{UID_MAX} "
            f"is taken (see {self.directory})"
        )

    def _lock(self, uid: int, name: str) -> int | None:
        """The lock on ``uid``'s file, or None when another holds it."""
        path = os.path.join(self.directory, str(uid))
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        for _ in range(3):  # the holder may unlink it between our open and our lock
            try:
                fd = os.open(path, flags, 0o644)
            except OSError as e:
                raise StartError(
                    f"unable to allocate dynamic user {name!r}: cannot open {path}: {e.strerror}"
                ) from None
            try:
                # flock(): the lock belongs to the open file, so even two registries in one
                # process (tests) exclude each other, unlike lockf()'s per-process locks
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
            except OSError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, name.encode() + b"\n")
                return fd
            os.close(fd)
        return None


def _in_database(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        pass
    try:
        grp.getgrgid(uid)
        return True
    except KeyError:
        return False


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False

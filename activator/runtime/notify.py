"""sd_notify(3) for services: the NOTIFY_SOCKETs (one per user services run as), and the
fd store.

The design is systemd's (reference/systemd.md §4): AF_UNIX datagram sockets with
SO_PASSCRED, every datagram attributed to a service by the sender's pid, which the
kernel vouches for (SCM_CREDENTIALS). Unlike systemd's one world-writable socket,
activator has one per user that services run as, writable by that user alone (see
``NotifyServer``) — except root's: a service started as root may drop privileges before
it notifies (Debian's rpcbind becomes _rpc, then sends READY=1), so root's socket is
writable by everyone, as systemd's is, and only the pid decides whose a datagram is.
A pid is a service's when it is one of the processes activator spawned for it (main,
ExecStartPre= …), or when it lives in the session or process group of one of them
(every process activator spawns leads its own session), which is how
``NotifyAccess=all`` reaches a grandchild. Which of those may actually speak
(``NotifyAccess=main|exec|all|none``) is the service's decision (service.py).

The sockets live beside the control socket (``/run/activator/notify`` for root's
services, ``/run/activator/notify.d/UID`` for a user's), so two activators on one host
never share them. Datagrams are read in the event loop;
a service's main-process exit drains the socket first (systemd gives notifications
priority over SIGCHLD), so a ``READY=1`` sent just before exiting is never lost.

Since any local user can send to it, what activator will not use is dropped cheaply
(issue 15): fds are received only from a process whose service may store them —
everyone else's are discarded by the kernel (a receive buffer with room for the
credentials alone: MSG_CTRUNC), never installed and closed one by one; every sender
has a budget (``RATE`` datagrams a second, ``BURST`` at once), past which its datagrams
are dropped unread; and a batch that held such junk is followed by a pause (``HOLD``,
at least 20 times what the batch cost), so a flood costs a bounded share of a core
while the kernel's short queue (net.unix.max_dgram_qlen) keeps a real sender's
datagram close to the front.

``FdStore`` keeps what a service sent with ``FDSTORE=1`` and hands it back at its
next start, after the socket fds (LISTEN_FDS, LISTEN_FDNAMES).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import os
import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.rundir import run_dir

#: systemd's NOTIFY_BUFFER_MAX: longer datagrams are dropped.
BUFFER_MAX = 4096
_SCM_MAX_FD = 253  # the most fds the kernel passes in one message
_CREDS = socket.CMSG_SPACE(struct.calcsize("3i"))  # credentials only: fds are dropped
_ANCILLARY = _CREDS + socket.CMSG_SPACE(_SCM_MAX_FD * 4)
_BATCH = 64  # datagrams per wake-up, so one chatty service cannot starve the loop
#: Each sender's budget: RATE datagrams a second, BURST at once; beyond, dropped unread.
RATE = 500.0
BURST = 500.0
#: After a batch with junk (not a service's, or over budget): no reading for this long,
#: or 20 times the batch's CPU time if that is longer (a flood gets at most ~5% of a core).
HOLD = 0.001
_HOLD_FACTOR = 20
_KEEP_SENDERS = 4096  # budgets kept; beyond, the table starts again (a pid flood)

#: (pid, uid, fields, fds) of one datagram; the receiver owns (and must close) the fds.
Dispatch = Callable[[int, int, dict[str, str], list[int]], None]


class Owner(Protocol):
    """A service, as the notify server sees it."""

    @property
    def wants_fds(self) -> bool:
        """Whether its notifications may carry fds it keeps (FileDescriptorStoreMax=)."""
        ...

    def notify_message(
        self, pid: int, uid: int | None, fields: dict[str, str], fds: list[int]
    ) -> None: ...


def parse(payload: bytes) -> dict[str, str]:
    """``KEY=VALUE`` lines of one datagram; the first of a repeated key wins (strv_find).

    Lines without ``=`` and lines that are not UTF-8 are ignored, as systemd ignores them.
    """
    fields: dict[str, str] = {}
    for line in payload.split(b"\n"):
        key, eq, value = line.partition(b"=")
        if not eq or not key:
            continue
        try:
            fields.setdefault(key.decode(), value.decode())
        except UnicodeDecodeError:
            continue
    return fields


class _Socket:
    """One NOTIFY_SOCKET: the user who may write to it, and a pause after junk."""

    __slots__ = ("uid", "path", "sock", "held")

    def __init__(self, uid: int, path: str, sock: socket.socket) -> None:
        self.uid = uid
        self.path = path
        self.sock = sock
        self.held: asyncio.TimerHandle | None = None


class NotifyServer:
    """The daemon's NOTIFY_SOCKETs: receive, attribute and dispatch notifications.

    One socket per user that services run as, writable by that user alone (mode 0600,
    its owner): root's at ``path``, another user's at ``path.d/UID``, made at the first
    start of a service of that user. A flood then reaches only the sockets of the users
    the flooder is, and holds up only their notifications; services of other users keep
    theirs (the kernel queues ten datagrams a socket: a shared one, kept full by a
    flooder, let nothing else in).
    """

    def __init__(self, path: str, log: Callable[..., None]) -> None:
        self.path = path
        self.log = log
        self._socks: dict[int, _Socket] = {}  # uid → its socket
        self._owners: dict[int, Any] = {}  # pid (a process activator spawned) → its service
        self._fd_senders: set[int] = set()  # tracked pids whose service may store fds
        self._budgets: dict[int, list[float]] = {}  # pid → [tokens, when last counted]
        self._loop: asyncio.AbstractEventLoop | None = None
        self.dropped = 0  # datagrams not used: nobody's, over budget, too long
        self._warned_at = 0.0

    @property
    def sock(self) -> socket.socket | None:
        """Root's socket."""
        s = self._socks.get(0)
        return s.sock if s is not None else None

    # ------------------------------------------------------------ sockets
    def bind(self) -> None:
        """Create root's socket (mode 0666: see the module's docstring; its directory
        0755). Raises OSError."""
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o755, exist_ok=True)
        sock = _bind(self.path, 0, 0)
        os.chmod(self.path, 0o666)
        self._add(0, self.path, sock)

    def path_for(self, uid: int, gid: int) -> str:
        """The NOTIFY_SOCKET of a service running as ``uid``, made now if need be (as
        root: 0600 from the start, then given to the user). Raises OSError."""
        s = self._socks.get(uid)
        if s is not None:
            return s.path
        path = self.path if uid == 0 else f"{self.path}.d/{uid}"
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        sock = _bind(path, uid, gid)
        if uid == 0:
            os.chmod(path, 0o666)
        self._add(uid, path, sock)
        return path

    def adopt(self, uid: int, path: str, fd: int) -> None:
        """A socket handed over by the activator this process replaced (a re-exec)."""
        sock = socket.socket(fileno=fd)
        os.set_inheritable(fd, False)
        sock.setblocking(False)
        self._add(uid, path, sock)

    def sockets(self) -> dict[int, tuple[str, int]]:
        """uid → (path, fd) of every socket (what a re-exec hands over)."""
        return {uid: (s.path, s.sock.fileno()) for uid, s in self._socks.items()}

    def _add(self, uid: int, path: str, sock: socket.socket) -> None:
        s = self._socks[uid] = _Socket(uid, path, sock)
        if self._loop is not None:
            self._loop.add_reader(sock.fileno(), self.drain_one, s)

    def start(self, loop) -> None:
        """Read datagrams on ``loop`` (after bind())."""
        self._loop = loop
        for s in self._socks.values():
            loop.add_reader(s.sock.fileno(), self.drain_one, s)

    def detach(self) -> None:
        """Stop reading (the sockets stay open: a re-exec hands them over)."""
        for s in self._socks.values():
            self._stop_reading(s)
        self._loop = None

    def close(self) -> None:
        for s in self._socks.values():
            self._stop_reading(s)
            s.sock.close()
            with contextlib.suppress(OSError):
                os.unlink(s.path)
        self._socks.clear()

    def _stop_reading(self, s: _Socket) -> None:
        if s.held is not None:
            s.held.cancel()
            s.held = None
        elif self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(s.sock.fileno())

    # ------------------------------------------------------------ attribution
    def track(self, pid: int, owner: Owner) -> None:
        """``pid`` (a process spawned for ``owner``, leading its own session) is owner's."""
        self._owners[pid] = owner
        self._budgets.pop(pid, None)  # a new process (pids are reused): a fresh budget
        if owner.wants_fds:
            self._fd_senders.add(pid)

    def untrack(self, pid: int, owner: Owner) -> None:
        if self._owners.get(pid) is owner:
            del self._owners[pid]
            self._fd_senders.discard(pid)

    def owner_of(self, pid: int) -> Any:
        """The service a sender belongs to: its own pid, else its session, else its group."""
        owner = self._owners.get(pid)
        if owner is not None:
            return owner
        for lookup in (os.getsid, os.getpgid):
            try:
                owner = self._owners.get(lookup(pid))
            except OSError:  # gone already (the race systemd has too) or not ours to see
                return None
            if owner is not None:
                return owner
        return None

    # ------------------------------------------------------------ receiving
    def drain(self) -> None:
        """Read what is queued on every socket (a batch at most each); never raises."""
        for s in list(self._socks.values()):
            self.drain_one(s)

    def drain_one(self, s: _Socket) -> None:
        """Read what is queued on one socket (a batch at most) and dispatch it."""
        sock = s.sock
        began = time.thread_time()
        junk = 0
        for _ in range(_BATCH):
            try:
                if self._fd_senders:
                    # Someone may send fds we keep: look at the sender before taking them.
                    _d, peek, _f, _a = sock.recvmsg(0, _CREDS, socket.MSG_PEEK)
                    pid = _creds(peek)[0]
                    room = _ANCILLARY if pid in self._fd_senders else _CREDS
                else:
                    room = _CREDS
                data, anc, flags, _addr = sock.recvmsg(
                    BUFFER_MAX + 1, room, socket.MSG_CMSG_CLOEXEC
                )
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                self.log("warning", None, reason=f"unable to receive on {s.path}: {e.strerror}")
                break
            try:
                if not self._one(data, anc, flags, fds_expected=room is _ANCILLARY):
                    junk += 1
            except Exception as e:  # a bug must not stop notifications for everyone
                self.log("warning", None, reason=f"notification dropped: {e!r}")
        if junk:
            self.dropped += junk
            self._hold(s, time.thread_time() - began)

    def _hold(self, s: _Socket, spent: float) -> None:
        """A batch held junk: leave this socket alone for a while (a flood then costs at
        most about 1/_HOLD_FACTOR of a core); what its user's services send waits."""
        loop = self._loop
        if loop is None or s.held is not None or self._socks.get(s.uid) is not s:
            return
        loop.remove_reader(s.sock.fileno())
        s.held = loop.call_later(max(HOLD, spent * _HOLD_FACTOR), self._resume, s)

    def _resume(self, s: _Socket) -> None:
        s.held = None
        if self._loop is not None and self._socks.get(s.uid) is s:
            self._loop.add_reader(s.sock.fileno(), self.drain_one, s)

    def _within_budget(self, pid: int) -> bool:
        """Count one datagram against ``pid``'s budget (a token bucket)."""
        now = time.monotonic()
        b = self._budgets.get(pid)
        if b is None:
            if len(self._budgets) >= _KEEP_SENDERS:
                self._budgets.clear()
            b = self._budgets[pid] = [BURST, now]
        else:
            b[0] = min(BURST, b[0] + (now - b[1]) * RATE)
            b[1] = now
        if b[0] < 1.0:
            return False
        b[0] -= 1.0
        return True

    def _over_budget(self, pid: int, uid: int | None) -> None:
        now = time.monotonic()
        if now - self._warned_at >= 1.0:  # one line a second at most, whoever floods
            self._warned_at = now
            self.log(
                "warning",
                None,
                pid=pid,
                uid=uid,
                reason=f"notifications over budget ({RATE:g}/s a sender): dropped "
                f"({self.dropped} dropped so far)",
            )

    def _one(self, data: bytes, anc, flags: int, *, fds_expected: bool) -> bool:
        """One datagram; False when it was of no use (nobody's, over budget, malformed)."""
        pid, uid, fds = _creds(anc)
        try:
            if not pid:
                return False  # no credentials: nobody to attribute it to
            if not self._within_budget(pid):
                self._over_budget(pid, uid)
                return False
            # MSG_CTRUNC with room for credentials only: the sender's fds were dropped, as
            # meant; with room for fds it means more than the kernel passes.
            truncated = flags & socket.MSG_TRUNC or (fds_expected and flags & socket.MSG_CTRUNC)
            if truncated or len(data) > BUFFER_MAX:
                self.log(
                    "warning",
                    None,
                    pid=pid,
                    reason="notification too long or with too many fds, dropped",
                )
                return False
            owner = self.owner_of(pid)
            if owner is None:
                return False  # not a process of any service (or already gone)
            handed, fds = fds, []
            owner.notify_message(pid, uid, parse(data), handed)
            return True
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)


def _bind(path: str, uid: int, gid: int) -> socket.socket:
    """A datagram socket at ``path``, mode 0600 from the start (a umask around bind()),
    then owned by ``uid``:``gid`` — until the chown only root may write: it fails closed."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a stale node from an earlier run, as the control socket does
    sock = socket.socket(
        socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
    )
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        with contextlib.suppress(OSError):  # room for bursts of WATCHDOG=1 from many services
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        old = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        if uid != 0 or gid != 0:
            os.chown(path, uid, gid, follow_symlinks=False)
    except BaseException:
        sock.close()
        raise
    return sock


def _creds(anc) -> tuple[int, int | None, list[int]]:
    """(pid, uid, fds) from a datagram's ancillary data (pid 0: no credentials)."""
    pid, uid = 0, None
    fds: list[int] = []
    for level, kind, payload in anc:
        if level != socket.SOL_SOCKET:
            continue
        if kind == socket.SCM_RIGHTS:
            a = array.array("i")
            a.frombytes(payload[: len(payload) - len(payload) % a.itemsize])
            fds.extend(a)
        elif kind == socket.SCM_CREDENTIALS and len(payload) >= 12:
            pid, uid, _gid = struct.unpack("3i", payload[:12])
    return pid, uid, fds


# ---------------------------------------------------------------- the fd store


@dataclass
class StoredFd:
    fd: int
    name: str
    key: tuple[int, int]  # (st_dev, st_ino): the same open file sent twice is kept once
    poll: bool


_NO_ITEMS: list[Any] = []  # shared by every empty store, never appended to (add() makes one)


class FdStore:
    """``FDSTORE=1`` fds of one service, at most ``limit`` (FileDescriptorStoreMax=).

    Stored fds are watched for POLLHUP/POLLERR (unless sent with ``FDPOLL=0``) and
    dropped when the other side is gone, as systemd drops them. ``watch(fd, cb)`` and
    ``unwatch(fd)`` put the one epoll fd this needs into the event loop.
    """

    __slots__ = ("limit", "items", "_watch", "_unwatch", "_on_drop", "_epoll")

    def __init__(
        self,
        limit: int,
        watch: Callable[[int, Callable[[], None]], None] | None = None,
        unwatch: Callable[[int], None] | None = None,
        on_drop: Callable[[StoredFd], None] | None = None,
    ) -> None:
        self.limit = limit
        self.items: list[StoredFd] = _NO_ITEMS  # a list of its own at the first fd
        self._watch, self._unwatch = watch, unwatch
        self._on_drop = on_drop
        self._epoll: select.epoll | None = None

    def __len__(self) -> int:
        return len(self.items)

    def add(self, fds: list[int], name: str, poll: bool = True) -> tuple[int, list[int]]:
        """Take ``fds`` into the store: (how many were added, the fds not taken, to close).

        A duplicate of an fd already stored is not taken; neither is anything past
        ``limit`` or an fd that cannot be fstat'ed.
        """
        added, rest = 0, []
        for fd in fds:
            try:
                st = os.fstat(fd)
            except OSError:
                rest.append(fd)
                continue
            key = (st.st_dev, st.st_ino)
            if len(self.items) >= self.limit or any(i.key == key for i in self.items):
                rest.append(fd)
                continue
            item = StoredFd(fd, name, key, poll)
            if self.items is _NO_ITEMS:
                self.items = []
            self.items.append(item)
            added += 1
            if poll:
                self._poll(item)
        return added, rest

    def remove(self, name: str) -> int:
        """``FDSTOREREMOVE=1``: close every fd stored under ``name``; how many there were."""
        gone = [i for i in self.items if i.name == name]
        for item in gone:
            self._drop(item)
        return len(gone)

    def fds(self) -> list[tuple[int, str]]:
        return [(i.fd, i.name) for i in self.items]

    def close(self) -> None:
        for item in list(self.items):
            self._drop(item)
        if self._epoll is not None:
            if self._unwatch is not None:
                self._unwatch(self._epoll.fileno())
            self._epoll.close()
            self._epoll = None

    # -- hang-up watching: one epoll fd with every stored fd, only EPOLLHUP/EPOLLERR
    def _poll(self, item: StoredFd) -> None:
        if self._watch is None:
            return
        if self._epoll is None:
            self._epoll = select.epoll()
            self._watch(self._epoll.fileno(), self._on_hangup)
        with contextlib.suppress(OSError):  # regular files cannot be polled: nothing to watch
            self._epoll.register(item.fd, 0)  # HUP and ERR are always reported

    def _on_hangup(self) -> None:
        if self._epoll is None:
            return
        for fd, _events in self._epoll.poll(0):
            for item in [i for i in self.items if i.fd == fd]:
                self._drop(item)
                if self._on_drop is not None:
                    self._on_drop(item)

    def _drop(self, item: StoredFd) -> None:
        self.items.remove(item)
        if self._epoll is not None and item.poll:
            with contextlib.suppress(OSError, ValueError):
                self._epoll.unregister(item.fd)
        with contextlib.suppress(OSError):
            os.close(item.fd)


def default_path(control_path: str | None) -> str:
    """Beside the control socket (``/run/activator/notify``), so each daemon has its own;
    without a control socket, ``notify-<pid>`` in the run directory (core/rundir.py)."""
    if control_path:
        return os.path.join(os.path.dirname(os.path.abspath(control_path)), "notify")
    return os.path.join(run_dir(), f"notify-{os.getpid()}")


def open_server(control_path: str | None, log: Callable[..., None], loop) -> NotifyServer | None:
    """The daemon's notify socket, bound and read by ``loop``; None (logged) when it cannot be."""
    server = NotifyServer(default_path(control_path), log)
    try:
        server.bind()
    except OSError as e:
        log(
            "failed",
            None,
            reason=f"unable to bind NOTIFY_SOCKET {server.path}: {e.strerror}; "
            "Type=notify services will not become active",
        )
        return None
    server.start(loop)
    return server

"""sd_notify(3) for services: one NOTIFY_SOCKET for the whole daemon, and the fd store.

The design is systemd's (reference/systemd.md §4): one AF_UNIX datagram socket with
SO_PASSCRED, mode 0666 so a service running as any User= can send to it, and every
datagram attributed to a service by the sender's pid, which the kernel vouches for
(SCM_CREDENTIALS). A pid is a service's when it is one of the processes activator
spawned for it (main, ExecStartPre= …), or when it lives in the session or process
group of one of them (every process activator spawns leads its own session), which
is how ``NotifyAccess=all`` reaches a grandchild. Which of those may actually speak
(``NotifyAccess=main|exec|all|none``) is the service's decision (service.py).

The socket lives beside the control socket (``/run/activator/notify`` by default),
so two activators on one host never share it. Datagrams are read in the event loop;
a service's main-process exit drains the socket first (systemd gives notifications
priority over SIGCHLD), so a ``READY=1`` sent just before exiting is never lost.

``FdStore`` keeps what a service sent with ``FDSTORE=1`` and hands it back at its
next start, after the socket fds (LISTEN_FDS, LISTEN_FDNAMES).
"""

from __future__ import annotations

import array
import contextlib
import os
import select
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.rundir import run_dir

#: systemd's NOTIFY_BUFFER_MAX: longer datagrams are dropped.
BUFFER_MAX = 4096
_SCM_MAX_FD = 253  # the most fds the kernel passes in one message
_ANCILLARY = socket.CMSG_SPACE(struct.calcsize("3i")) + socket.CMSG_SPACE(_SCM_MAX_FD * 4)
_BATCH = 64  # datagrams per wake-up, so one chatty service cannot starve the loop

#: (pid, uid, fields, fds) of one datagram; the receiver owns (and must close) the fds.
Dispatch = Callable[[int, int, dict[str, str], list[int]], None]


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


class NotifyServer:
    """The daemon's NOTIFY_SOCKET: receives, attributes and dispatches notifications."""

    def __init__(self, path: str, log: Callable[..., None]) -> None:
        self.path = path
        self.log = log
        self.sock: socket.socket | None = None
        self._owners: dict[int, Any] = {}  # pid (a process activator spawned) → its service
        self._loop = None

    # ------------------------------------------------------------ socket
    def bind(self) -> None:
        """Create the socket (mode 0666, its directory 0755). Raises OSError."""
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o755, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # a stale node from an earlier run, as the control socket does
        sock = socket.socket(
            socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
        )
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            with contextlib.suppress(OSError):  # room for bursts of WATCHDOG=1 from many services
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            old = os.umask(0o111)  # the node is 0666 from the start: every User= may send
            try:
                sock.bind(self.path)
            finally:
                os.umask(old)
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    def start(self, loop) -> None:
        """Read datagrams on ``loop`` (after bind())."""
        assert self.sock is not None, "bind() first"
        self._loop = loop
        loop.add_reader(self.sock.fileno(), self.drain)

    def close(self) -> None:
        if self.sock is None:
            return
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
        self.sock = None
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    # ------------------------------------------------------------ attribution
    def track(self, pid: int, owner: Any) -> None:
        """``pid`` (a process spawned for ``owner``, leading its own session) is owner's."""
        self._owners[pid] = owner

    def untrack(self, pid: int, owner: Any) -> None:
        if self._owners.get(pid) is owner:
            del self._owners[pid]

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
        """Read what is queued (a batch at most) and dispatch it; never raises."""
        sock = self.sock
        if sock is None:
            return
        for _ in range(_BATCH):
            try:
                data, anc, flags, _addr = sock.recvmsg(
                    BUFFER_MAX + 1, _ANCILLARY, socket.MSG_CMSG_CLOEXEC
                )
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.log("warning", None, reason=f"unable to receive on {self.path}: {e.strerror}")
                return
            try:
                self._one(data, anc, flags)
            except Exception as e:  # a bug must not stop notifications for everyone
                self.log("warning", None, reason=f"notification dropped: {e!r}")

    def _one(self, data: bytes, anc, flags: int) -> None:
        pid = uid = None
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
        try:
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) or len(data) > BUFFER_MAX:
                self.log(
                    "warning",
                    None,
                    pid=pid,
                    reason="notification too long or with too many fds, dropped",
                )
                return
            if not pid:
                return  # no credentials: nobody to attribute it to
            owner = self.owner_of(pid)
            if owner is None:
                return  # not a process of any service (or already gone)
            handed, fds = fds, []
            owner.notify_message(pid, uid, parse(data), handed)
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)


# ---------------------------------------------------------------- the fd store


@dataclass
class StoredFd:
    fd: int
    name: str
    key: tuple[int, int]  # (st_dev, st_ino): the same open file sent twice is kept once
    poll: bool


class FdStore:
    """``FDSTORE=1`` fds of one service, at most ``limit`` (FileDescriptorStoreMax=).

    Stored fds are watched for POLLHUP/POLLERR (unless sent with ``FDPOLL=0``) and
    dropped when the other side is gone, as systemd drops them. ``watch(fd, cb)`` and
    ``unwatch(fd)`` put the one epoll fd this needs into the event loop.
    """

    def __init__(
        self,
        limit: int,
        watch: Callable[[int, Callable[[], None]], None] | None = None,
        unwatch: Callable[[int], None] | None = None,
        on_drop: Callable[[StoredFd], None] | None = None,
    ) -> None:
        self.limit = limit
        self.items: list[StoredFd] = []
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

"""The control socket: who may talk to activator, and one request per connection.

Root only by default: the node is created with mode 0600 (a umask around bind(), no
chmod window), and every peer is checked again with SO_PEERCRED, so a node made
reachable by mistake still lets nobody else in. ``--control-group GROUP`` makes the
node 0660 with that group and admits the peers that have it as their primary or
supplementary group (SO_PEERGROUPS, /proc as a fallback).

One request per connection, in protocol.py's wire format; verbs.py carries it out.
Every failure becomes an error code from ``protocol.ERRORS`` (an error activator raises
on purpose carries its code); a bug becomes "internal" in the answer and a traceback in
activator's log, never in the client.

The server accepts by itself (not asyncio's Server) so that it can bound what clients
cost: at most ``MAX_CONNECTIONS`` are served at once, each an fd and a task. When a new
one arrives at the cap, the connection that has waited longest without sending its
request is closed to make room (a burst of idle connections cannot keep a real request
out, since a real client sends at once); when every slot is busy with a request,
accepting pauses and the kernel queues the rest (``BACKLOG``). The listening socket
can be detached and adopted again with its queue intact (a re-exec, manager/reexec.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import grp
import os
import socket
import stat
import struct
from typing import Any

from ..core import procfs
from ..core.errors import ActivatorError
from . import protocol
from .protocol import ProtocolError
from .verbs import MUTATING, ManagerView, Verbs, entry_dict, full_name

_SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)  # Linux 4.13

#: Connections served at once (an fd and a task each); the rest wait in the kernel.
MAX_CONNECTIONS = 64
#: The listen() backlog: a burst of clients queues instead of being refused.
BACKLOG = 1024
#: A connection without a request for this long, and with no bytes on their way, is idle:
#: the first to be closed when a new one needs its slot. (A real client sends at once.)
IDLE_AFTER = 0.05
_ACCEPT_BATCH = 64
_FOLLOWERS = 32  # `logs -f` connections at once
_FOLLOW_QUEUE = 4096  # lines waiting for one follower; past that they are dropped


class _Conn:
    """One connection being served: since when, whether its request has arrived, and the
    future that closes it early to make room for another."""

    __slots__ = ("sock", "since", "waiting", "evict")

    def __init__(self, sock: socket.socket, since: float, evict: asyncio.Future[None]) -> None:
        self.sock = sock
        self.since = since
        self.waiting = True  # no request line yet
        self.evict = evict

    def idle(self, now: float) -> bool:
        if not self.waiting or self.evict.done() or now - self.since < IDLE_AFTER:
            return False
        try:
            return not self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)  # b"": EOF
        except BlockingIOError:
            return True  # nothing sent
        except OSError:
            return True  # gone: closing it costs nothing


class ControlServer:
    def __init__(self, manager: ManagerView, path: str, group: str | None = None) -> None:
        self.manager = manager
        self.verbs = Verbs(manager)
        self.path = path
        self.group = group
        self.gid: int | None = None
        self._sock: socket.socket | None = None  # the listening socket
        self._loop: asyncio.AbstractEventLoop | None = None
        self._accepting = False
        self._held = False  # detaching: accept nothing more
        self._conns: dict[asyncio.Task[None], _Conn] = {}
        self._idle: asyncio.Event | None = None  # set while no connection is being served
        self._ino: int | None = None  # our node, so close() never unlinks another daemon's
        self.evicted = 0  # connections closed for lack of a request, to make room
        self._following: set[asyncio.StreamWriter] = set()  # `logs -f` connections

    # ------------------------------------------------------------ the socket
    async def start(self, fd: int | None = None) -> None:
        """Bind and serve; with ``fd``, serve that listening socket (handed over by the
        activator this process replaced, its queue intact). Raises ActivatorError naming
        the path (or group) and the cause."""
        if self.group is not None:
            self.gid = _group_id(self.group)
        if fd is not None:
            sock = socket.socket(fileno=fd)
            os.set_inheritable(fd, False)
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                self._ino = os.stat(self.path).st_ino
        else:
            try:
                sock = self._bind()
            except OSError as e:
                raise ActivatorError(
                    f"unable to bind control socket {self.path}: {e.strerror or e}"
                ) from None
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._idle = asyncio.Event()
        self._idle.set()
        self._resume()

    def _bind(self) -> socket.socket:
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o755, exist_ok=True)
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISSOCK(st.st_mode):
                raise OSError(errno.EEXIST, "exists and is not a socket")
            if _answers(self.path):
                raise OSError(errno.EADDRINUSE, "another activator is serving it")
            os.unlink(self.path)  # a stale node from an earlier run
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            mode = 0o660 if self.gid is not None else 0o600
            old = os.umask(~mode & 0o777)
            try:
                sock.bind(self.path)
            finally:
                os.umask(old)
            if self.gid is not None:
                os.chown(self.path, -1, self.gid)  # 0660 root:root until here: fails closed
            self._ino = os.stat(self.path).st_ino
            sock.listen(BACKLOG)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    async def close(self) -> None:
        if self._sock is None:
            return
        self._held = True
        self._pause()
        for w in list(self._following):
            w.close()  # their loops see the end of the connection and stop
        for task in list(self._conns):
            task.cancel()
        if self._conns:
            with contextlib.suppress(Exception):
                await asyncio.wait(list(self._conns), timeout=1)
        self._sock.close()
        self._sock = None
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._ino:
                os.unlink(self.path)

    def hold(self) -> None:
        """Accept nothing more for now (new clients queue in the kernel); ``release()``
        or ``detach()`` next."""
        self._held = True
        self._pause()

    def release(self) -> None:
        """Accept again after ``hold()``."""
        self._held = False
        self._resume()

    async def detach(self, timeout: float) -> int | None:
        """Stop accepting (new clients queue in the kernel), give the requests being
        served up to ``timeout`` to be answered, and hand over the listening fd (it stays
        open, the node stays in place). None when there is no socket."""
        if self._sock is None:
            return None
        self._held = True
        self._pause()
        if self._conns and self._idle is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout)
        for task in list(self._conns):
            task.cancel()  # still waiting after the grace: the client sees the connection end
        sock, self._sock = self._sock, None
        return sock.detach()

    def reattach(self, fd: int) -> None:
        """Serve ``fd`` again (a re-exec that did not happen)."""
        self._sock = socket.socket(fileno=fd)
        self._sock.setblocking(False)
        self._held = False
        self._resume()

    # ------------------------------------------------------------ accepting
    def _resume(self) -> None:
        if not self._accepting and self._sock is not None and self._loop is not None:
            self._loop.add_reader(self._sock.fileno(), self._accept)
            self._accepting = True

    def _pause(self) -> None:
        if self._accepting and self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
        self._accepting = False

    def _accept(self) -> None:
        assert self._sock is not None
        for _ in range(_ACCEPT_BATCH):
            if len(self._conns) >= MAX_CONNECTIONS and not self._make_room():
                # every slot is busy: the kernel queues the rest until one frees, or the
                # oldest waiting one becomes idle
                self._pause()
                assert self._loop is not None
                self._loop.call_later(IDLE_AFTER, self._resume_unless_held)
                return
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                # out of fds or memory: the client waits in the queue; try again shortly
                self.manager.log(
                    "warning", None, control=self.path, reason=f"unable to accept: {e.strerror}"
                )
                self._pause()
                assert self._loop is not None
                self._loop.call_later(0.1, self._resume_unless_held)
                return
            loop = asyncio.get_running_loop()
            evict: asyncio.Future[None] = loop.create_future()
            task = asyncio.ensure_future(self._serve_sock(conn, evict))
            self._conns[task] = _Conn(conn, loop.time(), evict)
            assert self._idle is not None
            self._idle.clear()
            task.add_done_callback(self._done)

    def _resume_unless_held(self) -> None:
        if not self._held:
            self._resume()

    def _make_room(self) -> bool:
        """At the cap: close the idle connection that has waited longest for its request."""
        assert self._loop is not None
        now = self._loop.time()
        for c in self._conns.values():  # in the order they were accepted
            if c.idle(now):
                c.evict.set_result(None)
                c.waiting = False
                self.evicted += 1
                return True
        return False

    def _done(self, task: asyncio.Task[None]) -> None:
        self._conns.pop(task, None)
        if not self._conns and self._idle is not None:
            self._idle.set()
        if not self._held:
            self._resume()  # a slot is free (or was paused at the cap)

    # ------------------------------------------------------------ who may talk
    def _allowed(self, sock: socket.socket, pid: int, uid: int, gid: int) -> bool:
        if uid == 0 or uid == os.geteuid():
            return True
        if self.gid is None:
            return False
        if gid == self.gid:
            return True
        return self.gid in _peer_groups(sock, pid)

    # ------------------------------------------------------------ one connection
    async def _serve_sock(self, conn: socket.socket, evict: asyncio.Future[None]) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(
                sock=conn, limit=protocol.MAX_REQUEST
            )
        except OSError:
            conn.close()
            return
        await self._serve(reader, writer, evict)

    async def _serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        evict: asyncio.Future[None] | None = None,
    ) -> None:
        try:
            sock = writer.get_extra_info("socket")
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            pid, uid, gid = struct.unpack("3i", creds)
            if not self._allowed(sock, pid, uid, gid):
                self.manager.log(
                    "reject",
                    None,
                    control=self.path,
                    pid=pid,
                    uid=uid,
                    reason="not allowed to use the control socket",
                )
                who = "root" if self.gid is None else f"root and group {self.group}"
                writer.write(
                    protocol.error("permission-denied", f"the control socket is for {who} only")
                )
            else:
                answer, follow = await self._answer(reader, pid, uid, evict)
                writer.write(answer)
                if follow:
                    await asyncio.wait_for(writer.drain(), protocol.REQUEST_TIMEOUT)
                    await self._follow(follow, reader, writer)
            # a client that does not read its answer holds this connection, not the daemon
            await asyncio.wait_for(writer.drain(), protocol.REQUEST_TIMEOUT)
        except (ConnectionError, OSError, TimeoutError):
            pass  # the client went away or stopped reading; nothing to tell it
        except Exception as e:  # a bug in this function: log it, keep serving
            self.manager.log("failed", None, reason=f"control connection failed: {e!r}")
            self.manager.log_exception(e)
        finally:
            writer.close()

    async def _answer(
        self,
        reader: asyncio.StreamReader,
        pid: int,
        uid: int,
        evict: asyncio.Future[None] | None = None,
    ) -> tuple[bytes, list[str]]:
        """The answer to the request on this connection, and the units whose new lines
        follow it (``logs`` with ``follow``; empty for every other request)."""
        read = asyncio.ensure_future(reader.readuntil(b"\n"))
        waits: set[asyncio.Future[Any]] = {read} if evict is None else {read, evict}
        try:
            await asyncio.wait(
                waits, timeout=protocol.REQUEST_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if not read.done():
                read.cancel()
        task = asyncio.current_task()
        if task is not None and task in self._conns:
            self._conns[task].waiting = False
        if not read.done() or read.cancelled():
            if evict is not None and evict.done():
                return protocol.error(
                    "bad-request",
                    f"no request yet while {MAX_CONNECTIONS} connections were open: "
                    "closed to make room",
                ), []
            return protocol.error(
                "bad-request", f"no request within {protocol.REQUEST_TIMEOUT:g}s"
            ), []
        try:
            line = read.result()
        except asyncio.LimitOverrunError:
            return protocol.error(
                "bad-request", f"request larger than {protocol.MAX_REQUEST} bytes"
            ), []
        except asyncio.IncompleteReadError as e:
            if not e.partial.strip():
                return protocol.error("bad-request", "empty request"), []
            line = e.partial  # the client shut down its side without a newline: fine
        answer = await self.handle(line, pid=pid, uid=uid)
        follow: list[str] = []
        if b'"follow"' in line and answer.startswith(b'{"v":1,"ok":true'):
            verb, units, args = protocol.decode_request(line)
            if verb == "logs" and args.get("follow") is True:
                if len(self._following) >= _FOLLOWERS:
                    return protocol.error(
                        "refused", f"already {_FOLLOWERS} clients follow the logs"
                    ), []
                follow = [full_name(u) for u in units]
        return answer, follow

    async def _follow(
        self, units: list[str], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """`logs -f`: an answer line per new line of these units, until the client closes
        the connection or activator stops. A client that reads too slowly loses lines
        (counted in a last line of its own), never holds activator up."""
        capture = self.manager.capture
        if capture is None:
            return
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=_FOLLOW_QUEUE)
        dropped = 0

        def put(entry: Any) -> None:
            nonlocal dropped
            try:
                queue.put_nowait(entry)
            except asyncio.QueueFull:
                dropped += 1

        stops = [capture.follow(u, put) for u in units]
        self._following.add(writer)
        gone = asyncio.ensure_future(reader.read(1))  # the client closed, or we did
        try:
            while True:
                get = asyncio.ensure_future(queue.get())
                await asyncio.wait({get, gone}, return_when=asyncio.FIRST_COMPLETED)
                if not get.done():
                    get.cancel()
                    return
                batch = [get.result()]
                while not queue.empty():
                    batch.append(queue.get_nowait())
                writer.write(b"".join(protocol.ok([entry_dict(e)]) for e in batch))
                if dropped:
                    text = f"{dropped} lines dropped: this client read too slowly"
                    writer.write(protocol.ok([{"ts": None, "unit": None, "text": text}]))
                    dropped = 0
                await asyncio.wait_for(writer.drain(), protocol.REQUEST_TIMEOUT)
        finally:
            for stop in stops:
                stop()
            gone.cancel()
            self._following.discard(writer)

    async def handle(self, line: bytes, *, pid: int = 0, uid: int = 0) -> bytes:
        """One request line → one answer line. Never raises (but CancelledError)."""
        try:
            verb, units, args = protocol.decode_request(line)
            if verb in MUTATING and self.manager.stopping:
                raise ProtocolError("refused", "activator is shutting down")
            if verb in MUTATING:
                self.manager.log(
                    "control", None, verb=verb, names=" ".join(units) or None, pid=pid, uid=uid
                )
            return protocol.ok(await self.verbs.table[verb](units, args))
        except ProtocolError as e:
            return protocol.error(e.code, e.message)
        except ActivatorError as e:  # refused, already-active, not-active, failed …
            return protocol.error(e.code, str(e))
        except Exception as e:
            self.manager.log("failed", None, reason=f"control request failed: {e!r}")
            self.manager.log_exception(e)
            return protocol.error("internal", "internal error; activator's log has the details")


# ---------------------------------------------------------------- helpers


def _group_id(group: str) -> int:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        if group.isdigit():
            return int(group)
        raise ActivatorError(f"unable to use control group {group}: no such group") from None


def _answers(path: str) -> bool:
    """Is a live server behind this unix socket node?"""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.setblocking(False)
        try:
            s.connect(path)
        except (BlockingIOError, InterruptedError):
            return True  # its backlog is full: very much alive
        except OSError:
            return False
        return True


def _peer_groups(sock: socket.socket, pid: int) -> set[int]:
    """The peer's groups when it connected (SO_PEERGROUPS), else what /proc says now."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, _SO_PEERGROUPS, 1024)  # Python's maximum
        return set(struct.unpack(f"{len(raw) // 4}I", raw))
    except OSError:
        return procfs.groups(pid)

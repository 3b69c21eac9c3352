"""notify.py on its own: the datagram format, SCM_CREDENTIALS attribution, fds; and the
rate limit behind StartLimit*= and TriggerLimit*=. Real sockets, no activator."""

from __future__ import annotations

import array
import os
import socket

import pytest

from activator.core.ratelimit import RateLimit
from activator.runtime.notify import BUFFER_MAX, FdStore, NotifyServer, default_path, parse


def test_parse():
    assert parse(b"READY=1\nSTATUS=up: 3 = three\n") == {"READY": "1", "STATUS": "up: 3 = three"}
    assert parse(b"READY=1\nREADY=0\nnoequals\n=x\n\xff=1\nA=\n") == {"READY": "1", "A": ""}


def test_default_path():
    assert default_path("/run/activator/control.sock") == "/run/activator/notify"
    assert default_path(None) == f"/run/activator/notify-{os.getpid()}"


class Owner:
    def __init__(self, wants_fds: bool = False) -> None:
        self.got: list[tuple[int, int, dict, list[int]]] = []
        self.wants_fds = wants_fds

    def notify_message(self, pid, uid, fields, fds):
        self.got.append((pid, uid, fields, list(fds)))
        fds.clear()  # taken


@pytest.fixture
def server(tmp_path):
    logged = []
    srv = NotifyServer(str(tmp_path / "sub" / "notify"), lambda *a, **k: logged.append((a, k)))
    srv.bind()
    srv.logged = logged
    yield srv
    srv.close()


def _send(path: str, payload: bytes, fds: list[int] = ()) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        s.sendmsg([payload], anc, 0, path)


def test_socket_mode_and_attribution(server):
    st = os.stat(server.path)
    # root's: writable by all (a root service may drop privileges before it notifies)
    assert st.st_mode & 0o777 == 0o666 and st.st_uid == 0
    assert os.stat(os.path.dirname(server.path)).st_mode & 0o777 == 0o755
    owner = Owner()
    _send(server.path, b"READY=1\n")
    server.drain()
    assert owner.got == []  # this process belongs to nobody yet: dropped
    server.track(os.getpid(), owner)
    _send(server.path, b"READY=1\nSTATUS=fine")
    server.drain()
    ((pid, uid, fields, fds),) = owner.got
    assert (pid, uid, fields, fds) == (
        os.getpid(),
        os.getuid(),
        {"READY": "1", "STATUS": "fine"},
        [],
    )
    server.untrack(os.getpid(), owner)
    server.track(os.getsid(0), owner)  # by session: NotifyAccess=all reaches a grandchild
    owner.got.clear()
    _send(server.path, b"WATCHDOG=1")
    server.drain()
    assert owner.got[0][2] == {"WATCHDOG": "1"}


def test_fds_are_passed_or_closed(server):
    owner = Owner(wants_fds=True)
    r, w = os.pipe()
    _send(server.path, b"FDSTORE=1", [r])  # nobody's: the fd is closed on receipt
    server.drain()
    server.track(os.getpid(), owner)
    _send(server.path, b"FDSTORE=1\nFDNAME=p", [r, w])
    server.drain()
    ((_, _, fields, fds),) = owner.got
    assert fields == {"FDSTORE": "1", "FDNAME": "p"} and len(fds) == 2
    assert os.get_inheritable(fds[0]) is False  # received close-on-exec
    assert os.fstat(fds[0]).st_ino == os.fstat(r).st_ino
    for fd in (*fds, r, w):
        os.close(fd)


def test_too_long_is_dropped(server):
    owner = Owner()
    server.track(os.getpid(), owner)
    _send(server.path, b"STATUS=" + b"x" * BUFFER_MAX)
    _send(server.path, b"READY=1")
    server.drain()
    assert [f for _, _, f, _ in owner.got] == [{"READY": "1"}]
    assert "too long" in server.logged[0][1]["reason"]


def test_fd_store_limit_and_dedup():
    store = FdStore(2)
    a, b = socket.socketpair()
    c = socket.socket()
    try:
        added, rest = store.add(
            [os.dup(a.fileno()), os.dup(a.fileno()), os.dup(b.fileno()), os.dup(c.fileno())], "n"
        )
        assert added == 2 and len(rest) == 2
        for fd in rest:
            os.close(fd)
        assert store.remove("n") == 2 and len(store) == 0
    finally:
        store.close()
        for s in (a, b, c):
            s.close()


def test_rate_limit_with_a_fake_clock():
    now = [100.0]
    rl = RateLimit(10, 3, clock=lambda: now[0])
    assert [rl.below() for _ in range(4)] == [True, True, True, False]
    now[0] += 9.9
    assert not rl.below() and rl.remaining() == pytest.approx(0.1)
    now[0] += 0.1
    assert rl.below()  # a new interval
    rl.reset()
    assert [rl.below() for _ in range(3)] == [True] * 3
    assert RateLimit(0, 3).below() and RateLimit(10, 0).below()  # 0 disables


# ---------------------------------------------------------------- issue 15 item 3: floods


class Recording:
    """The server's socket, recording how much room for ancillary data each receive had."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.rooms: list[int] = []

    def recvmsg(self, bufsize, ancbufsize=0, flags=0):
        got = self.sock.recvmsg(bufsize, ancbufsize, flags)
        if not flags & socket.MSG_PEEK:
            self.rooms.append(ancbufsize)
        return got

    def __getattr__(self, name):
        return getattr(self.sock, name)


def test_issue_15_fds_are_taken_only_from_a_sender_that_may_store_them(server):
    creds_only = socket.CMSG_SPACE(12)
    rec = server._socks[0].sock = Recording(server.sock)
    r, w = os.pipe()
    try:
        # nobody's process: its fds never enter activator (no room for them: MSG_CTRUNC)
        _send(server.path, b"READY=1", [r] * 200)
        server.drain()
        assert rec.rooms == [creds_only]
        # a service without an fd store: the text counts, the fds are dropped by the kernel
        plain = Owner()
        server.track(os.getpid(), plain)
        _send(server.path, b"STATUS=up", [r] * 200)
        server.drain()
        assert plain.got == [(os.getpid(), os.getuid(), {"STATUS": "up"}, [])]
        assert rec.rooms[-1] == creds_only
        # one with an fd store gets them
        server.untrack(os.getpid(), plain)
        keeper = Owner(wants_fds=True)
        server.track(os.getpid(), keeper)
        _send(server.path, b"FDSTORE=1", [r])
        server.drain()
        ((_, _, fields, fds),) = keeper.got
        assert fields == {"FDSTORE": "1"} and len(fds) == 1
        assert os.fstat(fds[0]).st_ino == os.fstat(r).st_ino
        os.close(fds[0])
        assert rec.rooms[-1] > creds_only
    finally:
        os.close(r)
        os.close(w)


def test_issue_15_a_sender_over_its_budget_is_dropped_and_said_once(server):
    from activator.runtime import notify

    owner = Owner()
    server.track(os.getpid(), owner)
    sent = 0
    while sent < 2 * notify.BURST:  # the kernel queues ~10 datagrams: send and drain in turns
        for _ in range(8):
            _send(server.path, b"STATUS=%d" % sent)
            sent += 1
        server.drain()
    got = len(owner.got)
    assert notify.BURST <= got < sent, (got, sent)  # the burst, plus what refilled meanwhile
    assert server.dropped == sent - got
    warnings = [k for _a, k in server.logged if "over budget" in k.get("reason", "")]
    assert len(warnings) == 1 and warnings[0]["pid"] == os.getpid()
    # a new process with that pid (reused) starts with a full budget
    server.track(os.getpid(), owner)
    _send(server.path, b"READY=1")
    server.drain()
    assert owner.got[-1][2] == {"READY": "1"}


def test_issue_15_a_batch_with_junk_pauses_reading(server):
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        server.start(loop)
        owner = Owner()
        _send(server.path, b"READY=1")  # nobody's: junk
        server.drain()
        assert server._socks[0].held is not None  # the reader is off until the pause ends
        assert server.dropped == 1
        server.track(os.getpid(), owner)
        _send(server.path, b"READY=1")
        server.drain()  # a main process's exit still drains at once
        assert [f for _, _, f, _ in owner.got] == [{"READY": "1"}]
        root = server._socks[0]
        fd = root.sock.fileno()
        assert not loop.remove_reader(fd)  # paused: no reader
        held = root.held
        assert held is not None and held.when() > loop.time()
        held.cancel()
        server._resume(root)  # what the timer does when the pause is over
        assert root.held is None and loop.remove_reader(fd)  # reading again
        loop.add_reader(fd, server.drain_one, root)
    finally:
        server.close()
        loop.close()


SEND_AS = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    s.sendto(b"READY=1", sys.argv[1])
    print("sent")
except OSError as e:
    print(e.errno)
"""


def _send_as(uid: int, path: str) -> str:
    import subprocess

    r = subprocess.run(
        ["/usr/bin/python3", "-c", SEND_AS, path],
        user=uid,
        group=uid,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return r.stdout.strip()


@pytest.mark.root
def test_issue_15_each_user_writes_to_its_own_socket_only():
    import errno

    from harness import public_dir

    server = NotifyServer(str(public_dir() / "notify"), lambda *a, **k: None)
    server.bind()
    try:
        _each_user_writes_to_its_own_socket_only(server, errno)
    finally:
        server.close()


def _each_user_writes_to_its_own_socket_only(server, errno):
    nobody = 65534
    mine = server.path_for(nobody, nobody)
    theirs = server.path_for(1, 1)  # daemon's
    assert mine == f"{server.path}.d/{nobody}" and server.path_for(nobody, nobody) == mine
    st = os.stat(mine)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (nobody, nobody, 0o600)
    assert os.stat(os.path.dirname(mine)).st_mode & 0o777 == 0o755
    assert _send_as(nobody, mine) == "sent"
    assert _send_as(nobody, theirs) == str(errno.EACCES)
    # root's services' socket takes anyone's datagram (a root service may drop privileges
    # before it notifies, as systemd's one socket does) and drops it: no service sent it
    assert _send_as(nobody, server.path) == "sent"
    server.drain()
    assert server.dropped == 2  # both that got in: nobody's and root's, from no service

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
    def __init__(self) -> None:
        self.got: list[tuple[int, int, dict, list[int]]] = []

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
    assert st.st_mode & 0o777 == 0o666  # any User= may send
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
    owner = Owner()
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

"""The services' NOTIFY_SOCKET server (runtime/notify.py) in-process, on both event loops:
real datagrams with the kernel's credentials, attributed to the owner of the sender."""

from __future__ import annotations

import array
import asyncio
import os
import socket

import pytest
import pytest_asyncio

from activator.runtime.notify import BUFFER_MAX, NotifyServer


class Owner:
    """A service as the notify server sees it: it receives what is attributed to it."""

    wants_fds = True  # FileDescriptorStoreMax= > 0: its fds are received

    def __init__(self) -> None:
        self.messages: asyncio.Queue = asyncio.Queue()

    def notify_message(self, pid: int, uid: int, fields: dict, fds: list[int]) -> None:
        self.messages.put_nowait((pid, uid, fields, fds))


@pytest_asyncio.fixture
async def server(tmp_path):
    warnings: list = []
    s = NotifyServer(str(tmp_path / "run" / "notify"), lambda *a, **kw: warnings.append(kw))
    s.bind()
    s.start(asyncio.get_running_loop())
    s.warnings = warnings
    try:
        yield s
    finally:
        s.close()


def _send(path: str, payload: bytes, fds: list[int] = ()) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as c:
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        c.sendmsg([payload], anc, 0, path)


@pytest.mark.asyncio
async def test_a_message_reaches_the_owner_of_its_sender(server):
    owner = Owner()
    server.track(os.getpid(), owner)
    _send(server.path, b"READY=1\nSTATUS=up\nREADY=0\nnot a field\n")
    pid, uid, fields, fds = await asyncio.wait_for(owner.messages.get(), 10)
    assert (pid, uid, fds) == (os.getpid(), os.getuid(), [])
    assert fields == {"READY": "1", "STATUS": "up"}  # the first of a repeated key wins
    assert os.stat(server.path).st_mode & 0o777 == 0o666  # every User= may send


@pytest.mark.asyncio
async def test_fds_are_handed_over(server):
    owner = Owner()
    server.track(os.getpid(), owner)
    r, w = os.pipe()
    try:
        _send(server.path, b"FDSTORE=1\nFDNAME=pipe\n", [r])
        _, _, fields, fds = await asyncio.wait_for(owner.messages.get(), 10)
    finally:
        os.close(r)
    try:
        assert fields["FDNAME"] == "pipe" and len(fds) == 1
        os.write(w, b"x")
        assert os.read(fds[0], 1) == b"x"  # the same pipe, a descriptor of its own
    finally:
        for fd in (*fds, w):
            os.close(fd)


@pytest.mark.asyncio
async def test_strangers_and_oversized_messages_are_dropped(server):
    owner = Owner()
    server.track(os.getpid(), owner)
    pid = os.fork()
    if pid == 0:  # another process, in a session of its own: nobody's
        try:
            os.setsid()
            _send(server.path, b"READY=1\n")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    _send(server.path, b"STATUS=" + b"x" * BUFFER_MAX)  # longer than systemd takes
    _send(server.path, b"STATUS=after\n")
    _, _, fields, _ = await asyncio.wait_for(owner.messages.get(), 10)
    assert fields == {"STATUS": "after"}  # the only one that reached the owner
    assert owner.messages.empty()
    assert any("too long" in w.get("reason", "") for w in server.warnings)


@pytest.mark.asyncio
async def test_a_burst_is_read_in_batches_and_all_arrives(server):
    owner = Owner()
    server.track(os.getpid(), owner)
    # more than one batch (64) per wake-up; from a thread, which blocks while the queue
    # is full until the loop reads
    sending = asyncio.create_task(
        asyncio.to_thread(
            lambda: [_send(server.path, f"STATUS={i}\n".encode()) for i in range(200)]
        )
    )
    got = [(await asyncio.wait_for(owner.messages.get(), 10))[2]["STATUS"] for _ in range(200)]
    assert got == [str(i) for i in range(200)]
    await sending

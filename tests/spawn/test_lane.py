"""The C accept lane (activator.exec._spawn.Lane) on its own: records, limits, errors, lifetime.

In-process, without the daemon: a listening socket on loopback, a lane that spawns real
programs for each connection, and this test reaping them with waitpid.
"""

from __future__ import annotations

import os
import select
import socket
import time
from collections.abc import Iterator

import pytest
from spawnprobe import reap

from activator.exec._spawn import Lane
from activator.exec.spec import ExecSpec, spawn_args
from activator.runtime.lane import ACCEPT_ERROR, CONN_FD, FAILED, REFUSED, SPAWNED

VARS = {"INVOCATION_ID": 0, "REMOTE_ADDR": 1, "REMOTE_PORT": 2, "PROTO": 3, "TCPREMOTEIP": 4}


def args(argv: list[bytes], *, env=(), inetd=True, **kw) -> dict:
    spec = ExecSpec(
        path=argv[0],
        argv=argv,
        env=list(env),
        stdin=CONN_FD if inetd else -1,
        stdout=CONN_FD if inetd else -1,
        stderr=-1,
        fds=() if inetd else (CONN_FD,),
        listen_pid=not inetd,
        quiet=True,
        **kw,
    )
    a = spawn_args(spec)
    a["in_place"] = False
    return a


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    s.setblocking(False)
    yield s
    s.close()


@pytest.fixture
def wake() -> Iterator[int]:
    fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
    yield fd
    os.close(fd)


def records(lane: Lane, wake: int, n: int, timeout: float = 10) -> list[tuple]:
    """n records, waiting on the lane's eventfd (bounded)."""
    out: list[tuple] = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        left = deadline - time.monotonic()
        assert left > 0, f"got {out}"
        select.select([wake], [], [], left)
        try:
            os.eventfd_read(wake)
        except BlockingIOError:
            pass
        out += lane.drain()
    return out


def read_all(c: socket.socket) -> bytes:
    data = b""
    while chunk := c.recv(4096):
        data += chunk
    return data


def test_spawns_names_and_fills_in_the_connection(listener, wake):
    port = listener.getsockname()[1]
    env = [b"PATH=/bin", b"INVOCATION_ID=x", b"REMOTE_ADDR=x", b"REMOTE_PORT=x", b"KEEP=1"]
    a = args([b"/usr/bin/env"], env=env, inetd=False)
    a["stdout"] = CONN_FD  # env writes to the connection, which is also fd 3
    lane = Lane(a, (listener.fileno(),), wake, 8, ((1, 0), (2, 1), (3, 2)), 41)
    lane.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            cport = c.getsockname()[1]
            out = read_all(c).decode()
        (rec,) = records(lane, wake, 1)
        kind, pid, n, instance, remote, rport, inv = rec
        assert (kind, n, remote, rport) == (SPAWNED, 41, "127.0.0.1", cport)
        assert instance == f"41-127.0.0.1:{port}-127.0.0.1:{cport}"
        assert len(inv) == 32 and int(inv, 16) >= 0
        got = dict(line.split("=", 1) for line in out.splitlines())
        assert got == {
            "PATH": "/bin",
            "INVOCATION_ID": inv,
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_PORT": str(cport),
            "KEEP": "1",
            "LISTEN_PID": str(pid),
        }
        assert lane.active == 1
        assert reap(pid) == 0
        assert lane.exited(pid) is True and lane.exited(pid) is False
        assert lane.active == 0 and lane.spawning is False
    finally:
        lane.close()


def test_refuses_at_the_limit_and_frees_a_slot_on_exited(listener, wake):
    port = listener.getsockname()[1]
    lane = Lane(args([b"/bin/sh", b"-c", b"read x; echo done"]), (listener.fileno(),), wake, 1, ())
    lane.start()
    pids = []
    try:
        held = socket.create_connection(("127.0.0.1", port), timeout=10)
        (first,) = records(lane, wake, 1)
        assert first[0] == SPAWNED
        pids.append(first[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            assert read_all(c) == b""  # accepted and closed: systemd's answer
        (refused,) = records(lane, wake, 1)
        assert refused[0] == REFUSED and refused[2] == 1 and refused[6] == 1  # n, active
        held.sendall(b"go\n")
        assert read_all(held) == b"done\n"
        held.close()
        reap(pids[0])
        lane.exited(pids[0])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(b"x\n")
            assert read_all(c) == b"done\n"
        (again,) = records(lane, wake, 1)
        assert again[0] == SPAWNED and again[2] == 2
        pids.append(again[1])
    finally:
        lane.close()
        for pid in pids[1:]:
            reap(pid)


def test_a_child_that_failed_before_exec_is_a_record_with_the_step(listener, wake):
    port = listener.getsockname()[1]
    lane = Lane(args([b"/nonexistent/prog"]), (listener.fileno(),), wake, 4, ())
    lane.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            assert read_all(c) == b""  # quiet: nothing written to the peer
        (rec,) = records(lane, wake, 1)
        kind, pid, _n, _inst, _r, _p, _inv, step, verb, err, code = rec
        assert (kind, step, verb, code) == (FAILED, "exec", "exec", 203)
        assert err == 2  # ENOENT
        assert reap(pid) == 203
        assert lane.active == 1 and lane.exited(pid) and lane.active == 0
    finally:
        lane.close()


def test_unix_peers_are_named_by_credentials(wake, tmp_path):
    path = str(tmp_path / "s")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(8)
    s.setblocking(False)
    lane = Lane(args([b"/bin/true"]), (s.fileno(),), wake, 4, ())
    lane.start()
    try:
        with socket.socket(socket.AF_UNIX) as c:
            c.connect(path)
            read_all(c)
        (rec,) = records(lane, wake, 1)
        assert rec[3] == f"0-{os.getpid()}-{os.getuid()}" and rec[4] is None
        reap(rec[1])
    finally:
        lane.close()
        s.close()


def test_close_stops_accepting(listener, wake):
    port = listener.getsockname()[1]
    lane = Lane(args([b"/bin/true"]), (listener.fileno(),), wake, 4, ())
    lane.start()
    lane.close()
    lane.close()  # twice is fine
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    listener.settimeout(10)
    conn, _ = listener.accept()  # it waited in the backlog: the closed lane did not take it
    conn.close()
    c.close()
    assert select.select([wake], [], [], 0)[0] == []  # nothing accepted, nothing to say
    assert lane.drain() == []


def test_bad_arguments_are_refused(listener, wake):
    fds = (listener.fileno(),)
    with pytest.raises(ValueError, match="conn_env"):
        Lane(args([b"/bin/true"], env=[b"A=1"]), fds, wake, 4, ((1, 1),))
    with pytest.raises(ValueError, match="max_connections"):
        Lane(args([b"/bin/true"]), fds, wake, 0, ())
    with pytest.raises(ValueError, match="no listener"):
        Lane(args([b"/bin/true"]), (), wake, 4, ())
    with pytest.raises(TypeError):
        Lane({"path": b"/bin/true"}, fds, wake, 4, ())
    with pytest.raises(ValueError, match="one local address"):
        Lane(args([b"/bin/true"]), fds, wake, 4, (), 0, (None, None))
    lane = Lane(args([b"/bin/true"]), fds, wake, 4, ())
    with pytest.raises(RuntimeError, match="twice"):
        lane.__init__(args([b"/bin/true"]), fds, wake, 4, ())
    empty = Lane.__new__(Lane)
    with pytest.raises(RuntimeError, match="not initialized"):
        empty.drain()


def test_accept_errors_are_records_and_back_off(wake):
    """A listener that is not listening: EINVAL from accept is reported, not spun on."""
    s = socket.socket()
    s.setblocking(False)
    lane = Lane(args([b"/bin/true"]), (s.fileno(),), wake, 4, ())
    lane.start()
    try:
        t0 = time.monotonic()
        recs = records(lane, wake, 3, timeout=10)
        took = time.monotonic() - t0
        assert [r[0] for r in recs[:3]] == [ACCEPT_ERROR] * 3
        # each error is followed by a 100 ms back-off, so 3 records take 200 ms at least
        # (load only makes that longer); a spinning thread queues them in microseconds
        assert took >= 0.19, f"{len(recs)} records in {took:.3f} s"
    finally:
        lane.close()
        s.close()


def test_denied_peers_are_reset_unspawned_and_unnumbered(listener, wake):
    """issue 16: IPAddressAllow=/IPAddressDeny= in the lane (the connections the listener's
    BPF filter did not see): a binary search in C, a RST, a DENIED record, no instance."""
    from activator.exec.ipfilter import AddressRules
    from activator.runtime.lane import DENIED

    port = listener.getsockname()[1]
    rules = AddressRules.from_lists(["127.0.0.2"], ["127.0.0.0/8", "::/0"])
    assert rules is not None
    a = args([b"/bin/echo", b"hi"])
    lane = Lane(a, (listener.fileno(),), wake, 8, (), 5, deny=rules.table())
    lane.start()
    try:
        with socket.socket() as bad:
            bad.bind(("127.0.0.3", 0))
            bad.settimeout(10)
            # the RST comes at the first read, or (a busy machine) already at connect()
            with pytest.raises(ConnectionResetError):
                bad.connect(("127.0.0.1", port))
                bad.recv(10)
        ok = socket.socket()
        ok.bind(("127.0.0.2", 0))
        ok.settimeout(10)
        ok.connect(("127.0.0.1", port))
        with ok:
            assert read_all(ok) == b"hi\n"
        denied, spawned = records(lane, wake, 2)
        assert denied[0] == DENIED and denied[4] == "127.0.0.3"
        assert spawned[0] == SPAWNED and spawned[2] == 5  # the denied one used no number
        assert reap(spawned[1]) == 0
    finally:
        lane.close()

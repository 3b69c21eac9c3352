"""The activation core end to end: real activator, real children, real sockets on loopback.

Each test names the item of reference/systemd.md §6c it checks. The probe service
(tests/probe.py, run by Debian's /usr/bin/python3 as nobody) reports what it was handed.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
from harness import (
    SYSTEM_PYTHON,
    Activator,
    free_port,
    hold_units,
    public_dir,
    read_line,
    read_report,
)

pytestmark = pytest.mark.root

SIGPIPE_BIT = 1 << (13 - 1)


def svc(probe: str, extra: str = "", mode: str = "once") -> str:
    return f"[Service]\nExecStart={SYSTEM_PYTHON} {probe} {mode}\nUser=nobody\n{extra}"


def test_accept_no_two_listeners_lazy_start(probe, loop_kind, tmp_path):
    """§6c 1, 6, 26, 31: fds 3 and 4 in line order, blocking, inherited; started lazily as nobody."""
    port = free_port()
    path = f"/run/activator-test-{os.getpid()}-{loop_kind}/a.sock"
    units = {
        "x.socket": f"[Socket]\nListenStream={path}\nListenStream=127.0.0.1:{port}\n",
        "x.service": svc(probe),
    }
    with Activator(units, loop=loop_kind) as a:
        assert a.count("start") == 0  # nothing runs before traffic
        assert a.status("x.service")["state"] == "inactive"
        rep = read_report(("127.0.0.1", port))
        env = rep["env"]
        assert env["LISTEN_FDS"] == "2"
        assert env["LISTEN_PID"] == str(rep["pid"])
        assert env["LISTEN_FDNAMES"] == "x.socket:x.socket"
        fds = rep["fds"]
        assert sorted(int(k) for k in fds) == [0, 1, 2, 3, 4]
        assert fds["3"]["family"] == "AF_UNIX" and fds["3"]["listening"]
        assert fds["4"]["family"] == "AF_INET" and fds["4"]["listening"]
        for fd in ("3", "4"):
            assert not fds[fd]["nonblock"] and not fds[fd]["cloexec"]
        assert rep["uid"] == [65534, 65534, 65534]
        assert rep["gid"] == [65534, 65534, 65534]
        assert rep["groups"] == [65534]
        assert env["USER"] == env["LOGNAME"] == "nobody"
        assert env["HOME"] == "/nonexistent" and "SHELL" in env
        assert rep["cwd"] == "/" and rep["umask"] == 0o022
        assert int(rep["sigblk"], 16) == 0
        assert int(rep["sigign"], 16) & SIGPIPE_BIT
        assert set(env) <= {
            "PATH",
            "LANG",
            "USER",
            "LOGNAME",
            "HOME",
            "SHELL",
            "INVOCATION_ID",
            "LISTEN_FDS",
            "LISTEN_PID",
            "LISTEN_FDNAMES",
        }
        a.wait_for("start", unit="x.service", pid=rep["pid"])
        # the service exited after one connection: the next connection starts it again
        a.wait_for("exit", unit="x.service")
        rep2 = read_report(path)
        assert rep2["pid"] != rep["pid"]


def test_fdname_and_two_sockets_one_service(probe, loop_kind):
    """§6c 2, 3, 4: FileDescriptorName=, two socket units feeding one service, datagram first."""
    p1, p2 = free_port(), free_port()
    units = {
        "a.socket": f"[Socket]\nListenDatagram=127.0.0.1:{p2}\nListenStream=127.0.0.1:{p1}\n"
        "FileDescriptorName=web\nService=svc.service\n",
        "b.socket": f"[Socket]\nListenStream=/run/activator-test-{os.getpid()}-{loop_kind}-b.sock\nService=svc.service\n",
        "svc.service": svc(probe),
    }
    with Activator(units, loop=loop_kind) as a:
        rep = read_report(("127.0.0.1", p1))
        env = rep["env"]
        assert env["LISTEN_FDS"] == "3"
        assert env["LISTEN_FDNAMES"] == "web:web:b.socket"  # a.socket's lines, then b.socket
        fds = rep["fds"]
        assert fds["3"]["type"] == "SOCK_DGRAM" and fds["4"]["type"] == "SOCK_STREAM"
        assert fds["5"]["family"] == "AF_UNIX"
        a.wait_for("exit", unit="svc.service")
        a.barrier()  # whatever the exit set off has been logged by now
        assert a.count("start", unit="svc.service") == 1


def test_fd_order_across_several_sockets(probe, loop_kind):
    """README "Units": the sockets that trigger a service in name order, then its own
    Sockets= in the order listed; each socket's listeners in the order of its lines;
    LISTEN_FDNAMES in the same order. Pinned fd by fd, by address."""
    pa, pc, pz = free_port(), free_port(), free_port()
    run = f"/run/activator-test-{os.getpid()}-{loop_kind}"
    units = {
        # written in an order that is neither the name order nor the fd order
        "c.socket": f"[Socket]\nListenDatagram=127.0.0.1:{pc}\nListenStream={run}-c.sock\n"
        "FileDescriptorName=cee\nService=svc.service\n",
        "a.socket": f"[Socket]\nListenStream=127.0.0.1:{pa}\nService=svc.service\n",
        # named first, but reaches svc.service only through its Sockets=: after the others
        "0.socket": f"[Socket]\nListenStream=127.0.0.1:{pz}\nFileDescriptorName=zero\n"
        "Service=other.service\n",
        "other.service": svc(probe),
        "b.socket": f"[Socket]\nListenStream={run}-b.sock\nService=svc.service\n",
        "svc.service": svc(probe, "Sockets=0.socket\n"),
    }
    with Activator(units, loop=loop_kind):
        rep = read_report(("127.0.0.1", pa))
    env, fds = rep["env"], rep["fds"]
    assert env["LISTEN_FDS"] == "5"
    assert env["LISTEN_FDNAMES"] == "a.socket:b.socket:cee:cee:zero"
    assert [fds[str(fd)]["address"] for fd in range(3, 8)] == [
        ["127.0.0.1", pa],
        f"{run}-b.sock",
        ["127.0.0.1", pc],
        f"{run}-c.sock",
        ["127.0.0.1", pz],
    ]
    assert [fds[str(fd)]["type"] for fd in range(3, 8)] == [
        "SOCK_STREAM",
        "SOCK_STREAM",
        "SOCK_DGRAM",
        "SOCK_STREAM",
        "SOCK_STREAM",
    ]


def test_stopped_and_accept_yes_sockets_pass_no_fds(probe, loop_kind):
    """Of the sockets a service gets fds from, a stopped one passes none (the others keep
    their order) and an Accept=yes one named in Sockets= passes none either: its listener
    belongs to the instances it spawns."""
    pa, pb, pc, py = free_port(), free_port(), free_port(), free_port()
    units = {
        "a.socket": f"[Socket]\nListenStream=127.0.0.1:{pa}\nService=svc.service\n",
        "b.socket": f"[Socket]\nListenStream=127.0.0.1:{pb}\nService=svc.service\n",
        "c.socket": f"[Socket]\nListenStream=127.0.0.1:{pc}\nService=svc.service\n",
        "y.socket": f"[Socket]\nListenStream=127.0.0.1:{py}\nAccept=yes\n",
        "y@.service": svc(probe),
        "svc.service": svc(probe, "Sockets=y.socket\n"),
    }
    with Activator(units, loop=loop_kind) as a:
        a.ctl("stop", "b.socket", check=True)
        rep = read_report(("127.0.0.1", pc))
    assert rep["env"]["LISTEN_FDNAMES"] == "a.socket:c.socket"
    assert [rep["fds"][str(fd)]["address"][1] for fd in (3, 4)] == [pa, pc]
    assert "5" not in rep["fds"]


def test_nonblocking(probe, loop_kind):
    """§6c 5: NonBlocking=yes sets O_NONBLOCK on the passed sockets."""
    port = free_port()
    units = {
        "n.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
        "n.service": svc(probe, "NonBlocking=yes\n"),
    }
    with Activator(units, loop=loop_kind):
        rep = _retry_report(("127.0.0.1", port))
        assert rep["fds"]["3"]["nonblock"]


def _retry_report(addr):
    # the probe accepts on a non-blocking fd here: tolerate its BlockingIOError by retrying
    for _ in range(20):
        try:
            return read_report(addr, timeout=5)
        except (ValueError, IndexError, ConnectionError):
            continue
    raise AssertionError("no report")


def test_accept_yes_instances_and_env(probe, loop_kind, accept_path):
    """§6c 10: instance names count from 0; LISTEN_FDS=1, `connection`, REMOTE_ADDR/PORT."""
    port = free_port()
    units = {
        "foo.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n",
        "foo@.service": svc(probe),
    }
    with Activator(units, loop=loop_kind, env=accept_path) as a:
        for n in range(2):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                cport = c.getsockname()[1]
                data = b""
                while chunk := c.recv(65536):
                    data += chunk
            rep = __import__("json").loads(data)
            env = rep["env"]
            assert env["LISTEN_FDS"] == "1" and env["LISTEN_FDNAMES"] == "connection"
            assert env["LISTEN_PID"] == str(rep["pid"])
            assert env["REMOTE_ADDR"] == "127.0.0.1" and env["REMOTE_PORT"] == str(cport)
            assert rep["fds"]["3"]["family"] == "AF_INET" and not rep["fds"]["3"]["listening"]
            assert not rep["fds"]["3"]["nonblock"]
            assert sorted(int(k) for k in rep["fds"]) == [0, 1, 2, 3]
            e = a.wait_for("start", unit=f"foo@{n}-127.0.0.1:{port}-127.0.0.1:{cport}.service")
            assert e["pid"] == rep["pid"]


def test_accept_yes_dual_stack_reports_ipv4(probe, loop_kind, accept_path):
    """§6c 11, 22: a bare port is one [::] socket; an IPv4 peer shows as plain IPv4."""
    port = free_port("::")
    units = {"d.socket": f"[Socket]\nListenStream={port}\nAccept=yes\n", "d@.service": svc(probe)}
    with Activator(units, loop=loop_kind, env=accept_path) as a:
        rep = read_report(("127.0.0.1", port))
        assert rep["env"]["REMOTE_ADDR"] == "127.0.0.1"
        a.until(
            lambda: any(
                ev.get("unit", "").startswith(f"d@0-127.0.0.1:{port}-127.0.0.1:") for ev in a.events
            ),
            what="an instance named for its IPv4 peer",
        )
        rep6 = read_report(("::1", port))
        assert rep6["env"]["REMOTE_ADDR"] == "::1"


def test_accept_yes_unix_instance_name(probe, loop_kind, accept_path):
    """§6c 12: AF_UNIX instances are named N-PEERPID-PEERUID, no REMOTE_ADDR."""
    path = f"/run/activator-test-{os.getpid()}-{loop_kind}-u.sock"
    units = {"u.socket": f"[Socket]\nListenStream={path}\nAccept=yes\n", "u@.service": svc(probe)}
    with Activator(units, loop=loop_kind, env=accept_path) as a:
        rep = read_report(path)
        assert "REMOTE_ADDR" not in rep["env"]
        a.wait_for("start", unit=f"u@0-{os.getpid()}-0.service")


def test_inetd_style(probe, loop_kind, accept_path):
    """§6c 13: StandardInput=socket: fds 0, 1, 2 are the connection and no LISTEN_* at all."""
    port = free_port()
    units = {
        "i.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n",
        "i@.service": svc(probe, "StandardInput=socket\n"),
    }
    with Activator(units, loop=loop_kind, env=accept_path):
        rep = read_report(("127.0.0.1", port))
        assert not any(k.startswith("LISTEN_") for k in rep["env"])
        for fd in ("0", "1", "2"):
            assert rep["fds"][fd]["family"] == "AF_INET" and not rep["fds"][fd]["listening"]
        assert sorted(int(k) for k in rep["fds"]) == [0, 1, 2]


def test_inetd_stderr_elsewhere(probe, loop_kind, accept_path):
    """StandardError=null keeps stderr off the connection."""
    port = free_port()
    units = {
        "i.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n",
        "i@.service": svc(probe, "StandardInput=socket\nStandardError=null\n"),
    }
    with Activator(units, loop=loop_kind, env=accept_path):
        rep = read_report(("127.0.0.1", port))
        assert rep["fds"]["2"]["mode"] == "chr"


def test_max_connections(probe, loop_kind, accept_path):
    """§6c 15: MaxConnections=2: the third concurrent client is closed at once; later ones work."""
    port = free_port()
    units = hold_units(port, "m", "MaxConnections=2\n")
    with Activator(units, loop=loop_kind, env=accept_path) as a:
        held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
        first = a.wait_for("start")
        second = a.wait_for("start", start=a.events.index(first) + 1)
        third = read_line(("127.0.0.1", port))
        assert third == b""
        a.wait_for("reject", unit="m.socket")
        for c in held:  # release both instances
            c.settimeout(10)
            c.sendall(b"go\n")
            assert c.recv(100).strip() == b"done"
            c.close()
        # both gone, in whichever order they exit: only then are both places free
        a.until(
            lambda: all(a.count("exit", unit=e["unit"]) for e in (first, second)),
            what="both instances exited",
        )
        assert read_line(("127.0.0.1", port), send=b"x\n") == b"done\n"
        st = a.status("m.socket")
        assert st["NRefused"] == 1 and st["refused"]["limit"] == 1


def test_max_connections_per_source(probe, loop_kind):
    """§6c 16: a second concurrent connection from 127.0.0.1 is refused, 127.0.0.2 is not."""
    port = free_port("0.0.0.0")
    units = {
        "p.socket": f"[Socket]\nListenStream=0.0.0.0:{port}\nAccept=yes\nMaxConnectionsPerSource=1\n",
        "p@.service": "[Service]\nExecStart=/bin/sh -c 'read x; echo done'\n"
        "User=nobody\nStandardInput=socket\n",
    }
    with Activator(units, loop=loop_kind) as a:
        first = socket.create_connection(("127.0.0.1", port), timeout=10)
        a.wait_for("start")
        assert read_line(("127.0.0.1", port)) == b""
        a.wait_for("reject", unit="p.socket")
        other = socket.create_connection(
            ("127.0.0.1", port), timeout=10, source_address=("127.0.0.2", 0)
        )
        a.wait_for("start", peer=f"127.0.0.2:{other.getsockname()[1]}")
        for c in (first, other):
            c.sendall(b"go\n")
            assert c.recv(100).strip() == b"done"
            c.close()
        assert a.status("p.socket")["refused"]["per_source"] == 1


def test_unix_socket_modes_and_stale_node(probe, loop_kind):
    """§6c 19, 20, 21: exact SocketMode= and owner, DirectoryMode= for new parents, stale node replaced, RemoveOnStop=."""
    base = f"/run/activator-test-{os.getpid()}-{loop_kind}-modes"
    path = f"{base}/sub/s.sock"
    os.makedirs(base, exist_ok=True)
    units = {
        "s.socket": f"[Socket]\nListenStream={path}\nSocketMode=0660\nSocketUser=nobody\n"
        f"SocketGroup=nogroup\nDirectoryMode=0750\nRemoveOnStop=yes\nSymlinks={base}/link\n",
        "s.service": svc(probe),
    }
    # a stale node from an earlier run
    os.makedirs(f"{base}/sub", exist_ok=True)
    os.chmod(f"{base}/sub", 0o700)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()
    old = os.umask(0o077)  # the supervisor's umask must not matter
    try:
        a = Activator(units, loop=loop_kind)
    finally:
        os.umask(old)
    with a:
        st = os.stat(path)
        assert st.st_mode & 0o7777 == 0o660
        assert (st.st_uid, st.st_gid) == (65534, 65534)
        assert os.readlink(f"{base}/link") == path
    assert not os.path.exists(path) and not os.path.lexists(f"{base}/link")
    # a fresh parent gets DirectoryMode=
    path2 = f"{base}/new/s.sock"
    units["s.socket"] = f"[Socket]\nListenStream={path2}\nDirectoryMode=0750\n"
    with Activator(units, loop=loop_kind):
        assert os.stat(f"{base}/new").st_mode & 0o777 == 0o750
        assert os.stat(path2).st_mode & 0o777 == 0o666
    assert os.path.exists(path2)  # no RemoveOnStop=: the node stays, as in systemd


def test_abstract_socket(probe, loop_kind):
    """§6c 23: @name is an abstract socket."""
    name = f"activator-test-{os.getpid()}-{loop_kind}"
    units = {"ab.socket": f"[Socket]\nListenStream=@{name}\n", "ab.service": svc(probe)}
    with Activator(units, loop=loop_kind):
        rep = read_report("\0" + name)
        assert rep["env"]["LISTEN_FDS"] == "1"


def test_udp_accept_no(probe, loop_kind):
    """A datagram socket: the first datagram starts the service, which answers it."""
    port = free_port()
    units = {
        "udp.socket": f"[Socket]\nListenDatagram=127.0.0.1:{port}\n",
        "udp.service": svc(probe),
    }
    with Activator(units, loop=loop_kind):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            s.sendto(b"hi", ("127.0.0.1", port))
            data, _ = s.recvfrom(65536)
        rep = __import__("json").loads(data)
        assert rep["fds"]["3"]["type"] == "SOCK_DGRAM"


def test_queued_connection_restarts_service(probe, loop_kind):
    """§6c 7: a connection queued while the service ran starts it again once it exits."""
    port = free_port()
    units = {"q.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n", "q.service": svc(probe)}
    with Activator(units, loop=loop_kind) as a:
        c1 = socket.create_connection(("127.0.0.1", port), timeout=10)
        c2 = socket.create_connection(("127.0.0.1", port), timeout=10)
        reps = []
        for c in (c1, c2):
            data = b""
            while chunk := c.recv(65536):
                data += chunk
            c.close()
            reps.append(__import__("json").loads(data))
        assert reps[0]["pid"] != reps[1]["pid"]
        a.wait_for("start", unit="q.service", pid=reps[1]["pid"])


def test_bad_input_keeps_running(probe, loop_kind):
    """Missing program, unknown user, taken port: named errors; the other units work."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    tport = taken.getsockname()[1]
    p1, p2, p3 = free_port(), free_port(), free_port()
    units = {
        "missing.socket": f"[Socket]\nListenStream=127.0.0.1:{p1}\nAccept=yes\n",
        "missing@.service": "[Service]\nExecStart=/nonexistent/program\nStandardInput=socket\n",
        "nouser.socket": f"[Socket]\nListenStream=127.0.0.1:{p2}\n",
        "nouser.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {probe}\nUser=no-such-user-xyz\n",
        "taken.socket": f"[Socket]\nListenStream=127.0.0.1:{tport}\n",
        "taken.service": svc(probe),
        "good.socket": f"[Socket]\nListenStream=127.0.0.1:{p3}\n",
        "good.service": svc(probe),
    }
    try:
        with Activator(units, loop=loop_kind) as a:
            e = a.wait_for("failed", unit="taken.socket")
            assert f"127.0.0.1:{tport}" in e["reason"] and "Address already in use" in e["reason"]
            assert read_line(("127.0.0.1", p1)) == b""
            e = a.wait_for("failed", step="exec")
            assert "/nonexistent/program" in e["reason"] and "No such file" in e["reason"]
            # The queued connection retriggers the service until the start limit fails the
            # socket (systemd's service-start-limit-hit), which closes the listener: the client
            # sees EOF or a reset, possibly before connect() returns.
            try:
                assert read_line(("127.0.0.1", p2)) == b""
            except ConnectionResetError:
                pass
            e = a.wait_for("failed", unit="nouser.service")
            assert "no-such-user-xyz" in e["reason"]
            a.wait_for("stop", unit="nouser.socket", result="service-start-limit-hit")
            assert read_report(("127.0.0.1", p3))["env"]["LISTEN_FDS"] == "1"
            assert a.status("taken.socket")["state"] == "failed"
            # the failing units' sockets are usable again
            assert a.status("missing.socket")["state"] == "listening"
    finally:
        taken.close()


def test_sigterm_stops_services_and_says_one_needed_sigkill(probe, loop_kind):
    """SIGTERM: a service that ignores SIGTERM is killed after TimeoutStopSec=, nothing is
    left; it ended failed (timeout), so activator exits 5 (issue 13), not 0."""
    d = public_dir()
    stubborn = d / "stubborn.py"
    stubborn.write_text(
        "import signal, socket\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "c, _ = socket.socket(fileno=3).accept()\n"
        "c.sendall(b'up')\n"
        "c.close()\n"
        "while True:\n"
        "    signal.pause()\n"
    )
    stubborn.chmod(0o644)
    port = free_port()
    units = {
        "t.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
        "t.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {stubborn}\nUser=nobody\nTimeoutStopSec=1\n",
    }
    with Activator(units, loop=loop_kind) as a:
        assert read_line(("127.0.0.1", port)) == b"up"  # SIGTERM is ignored from here on
        started = a.wait_for("start", unit="t.service")
        t0 = time.monotonic()
        assert a.stop() == 5
        assert time.monotonic() - t0 < 20
        a.wait_for("kill", unit="t.service", signal="SIGKILL")
        assert a.count("start") == 1  # nothing was started again during the shutdown
        with pytest.raises(ProcessLookupError):
            os.kill(started["pid"], 0)

"""Binding listeners as systemd binds them: families, options, nodes, errors."""

from __future__ import annotations

import os
import socket
import stat

import pytest
from harness import free_port

from activator.core.errors import BindError
from activator.exec.bind import bind_unit, close_listeners, host_has_ipv6
from activator.units.model import (
    FifoListen,
    InetListen,
    NetlinkListen,
    SocketSection,
    SocketType,
    SpecialListen,
    UnixListen,
)


def inet(host, port, type_=SocketType.STREAM):
    return InetListen(type=type_, host=host, port=port, text=f"{host}:{port}")


def sockopt(fd, level, name):
    s = socket.socket(fileno=fd)
    try:
        return s.getsockopt(level, name)
    finally:
        s.detach()


def test_bare_port_is_dual_stack_and_ipv6_only_separates():
    """§6c 22."""
    port = free_port("::")
    sec = SocketSection(
        Listen=(InetListen(type=SocketType.STREAM, host=None, port=port, text=str(port)),)
    )
    lst = bind_unit("d.socket", sec)
    try:
        if host_has_ipv6():
            assert lst[0].family == socket.AF_INET6
            assert sockopt(lst[0].fd, socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
        else:
            assert lst[0].family == socket.AF_INET
    finally:
        close_listeners(lst, sec, remove=True)
    # ipv6-only: a separate 0.0.0.0 listener on the same port can bind beside it
    sec6 = SocketSection(Listen=(inet("::", port), inet("0.0.0.0", port)), BindIPv6Only="ipv6-only")
    lst = bind_unit("d.socket", sec6)
    try:
        assert sockopt(lst[0].fd, socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        assert [lst_.family for lst_ in lst] == [socket.AF_INET6, socket.AF_INET]
    finally:
        close_listeners(lst, sec6, remove=True)


def test_listener_flags_and_options():
    port = free_port()
    sec = SocketSection(
        Listen=(inet("127.0.0.1", port),),
        ReusePort=True,
        KeepAlive=True,
        NoDelay=True,
        ReceiveBuffer=65536,
        Backlog=7,
        PassCredentials=True,
    )
    lst = bind_unit("o.socket", sec)
    try:
        fd = lst[0].fd
        assert not os.get_inheritable(fd) and not os.get_blocking(fd)
        assert sockopt(fd, socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        assert sockopt(fd, socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        assert sockopt(fd, socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sockopt(fd, socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert sockopt(fd, socket.SOL_SOCKET, socket.SO_RCVBUF) >= 65536
        assert sockopt(fd, socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
    finally:
        close_listeners(lst, sec, remove=True)


def test_udp_and_seqpacket_and_abstract():
    port = free_port()
    name = f"@activator-sock-test-{os.getpid()}"
    sec = SocketSection(
        Listen=(
            inet("127.0.0.1", port, SocketType.DATAGRAM),
            UnixListen(type=SocketType.SEQPACKET, path=name, text=name),
        )
    )
    lst = bind_unit("u.socket", sec)
    try:
        assert lst[0].type == socket.SOCK_DGRAM and not lst[0].accepting
        assert lst[1].type == socket.SOCK_SEQPACKET and lst[1].accepting and lst[1].node is None
    finally:
        close_listeners(lst, sec, remove=True)


@pytest.mark.root
def test_fifo_special_and_netlink(tmp_path):
    fifo = str(tmp_path / "sub" / "f.fifo")
    special = str(tmp_path / "special")
    with open(special, "w") as f:
        f.write("x")
    sec = SocketSection(
        Listen=(
            FifoListen(path=fifo, text=fifo),
            SpecialListen(path=special, text=special),
            NetlinkListen(protocol="kobject-uevent", group=1, text="kobject-uevent 1"),
        ),
        SocketMode=0o620,
        DirectoryMode=0o700,
        RemoveOnStop=True,
    )
    lst = bind_unit("f.socket", sec)
    try:
        st = os.stat(fifo)
        assert stat.S_ISFIFO(st.st_mode) and st.st_mode & 0o777 == 0o620
        assert os.stat(os.path.dirname(fifo)).st_mode & 0o777 == 0o700
        assert lst[2].family == socket.AF_NETLINK
    finally:
        close_listeners(lst, sec, remove=True)
    assert not os.path.exists(fifo)
    # a node that is not a FIFO makes the FIFO listener fail, naming unit and path
    os.unlink(special)
    os.mkdir(fifo)
    with pytest.raises(BindError, match=f"f.socket: unable to bind {fifo}"):
        bind_unit("f.socket", SocketSection(Listen=(FifoListen(path=fifo, text=fifo),)))


def test_taken_port_is_a_bind_error_and_nothing_leaks():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    ok = free_port()
    before = len(os.listdir("/proc/self/fd"))
    sec = SocketSection(Listen=(inet("127.0.0.1", ok), inet("127.0.0.1", port)))
    try:
        with pytest.raises(
            BindError, match=f"t.socket: unable to bind 127.0.0.1:{port}: Address already in use"
        ):
            bind_unit("t.socket", sec)
    finally:
        taken.close()
    assert len(os.listdir("/proc/self/fd")) == before - 1  # the first listener was closed too


def test_unknown_interface_scope_is_reported():
    sec = SocketSection(
        Listen=(
            InetListen(
                type=SocketType.STREAM,
                host="fe80::1",
                port=free_port("::"),
                scope="nosuchif0",
                text="[fe80::1]:1%nosuchif0",
            ),
        )
    )
    with pytest.raises(BindError, match="nosuchif0"):
        bind_unit("s.socket", sec)

"""Binding listeners as root, before any service runs (systemd's socket_address_listen).

Every listener is created close-on-exec and non-blocking; children get duplicates
through the spawn core, which clears both flags as systemd does. Unix socket nodes
get exactly ``SocketMode=`` through a umask around bind(), never a chmod afterwards,
so there is no moment at which the node has the wrong mode.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.errors import BindError
from ..units.model import (
    FifoListen,
    InetListen,
    MessageQueueListen,
    NetlinkListen,
    SocketSection,
    SocketType,
    SpecialListen,
    UnixListen,
)
from . import _spawn
from .users import lookup_group, lookup_user

if TYPE_CHECKING:  # ipfilter.py is imported where a unit has address rules (idle RSS)
    from .ipfilter import AddressRules

_SOCK_TYPES = {
    SocketType.STREAM: socket.SOCK_STREAM,
    SocketType.DATAGRAM: socket.SOCK_DGRAM,
    SocketType.SEQPACKET: socket.SOCK_SEQPACKET,
}
_PROTOCOLS = {"udplite": 136, "sctp": 132, "mptcp": 262}
_NETLINK = {
    "route": 0,
    "firewall": 3,
    "inet-diag": 4,
    "sock-diag": 4,
    "nflog": 5,
    "xfrm": 6,
    "selinux": 7,
    "iscsi": 8,
    "audit": 9,
    "fib-lookup": 10,
    "connector": 11,
    "netfilter": 12,
    "ip6-fw": 13,
    "dnrtmsg": 14,
    "kobject-uevent": 15,
    "generic": 16,
    "scsitransport": 18,
    "ecryptfs": 19,
    "rdma": 20,
    "crypto": 21,
}
# Linux constants the socket module does not export everywhere.
_IP_FREEBIND, _IPV6_FREEBIND = 15, 78
_IP_TRANSPARENT, _IPV6_TRANSPARENT = 19, 75
_SO_PASSSEC = 34
_SO_RCVBUFFORCE, _SO_SNDBUFFORCE = 33, 32
_SO_TIMESTAMP, _SO_TIMESTAMPNS = 29, 35
_IP_PKTINFO = 8
_IPV6_RECVPKTINFO = 49
_F_SETPIPE_SZ = 1031
_SO_DETACH_FILTER, _SO_MEMINFO, _SK_MEMINFO_DROPS = 27, 55, 8


@dataclass(eq=False)
class Listener:
    """One bound listener of a socket unit: the fd the daemon owns for its whole life."""

    unit: str
    spec: InetListen | UnixListen | FifoListen | SpecialListen | NetlinkListen | MessageQueueListen
    fd: int
    sock: socket.socket | None = None  # sockets are kept as objects: accept() is cheapest on them
    family: int = 0  # AF_* for sockets, 0 for FIFOs and special files
    type: int = 0
    accepting: bool = False  # a stream/seqpacket socket: listen() was called
    node: str | None = None  # a file-system node we created (unix path, FIFO)
    local: tuple[str, int] | None = None  # bound IP address, for instance names
    symlinks: list[str] = field(default_factory=list)

    #: accept() without a socket object for the connection: () -> (fd, peer address),
    #: raising OSError (BlockingIOError when nothing is queued). It is the stdlib's own
    #: socket._accept(), which socket.accept() wraps: on the event loop's Accept=yes path a
    #: Python object per connection is measurable.
    accept_fd: Callable[[], tuple[int, Any]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.accept_fd = getattr(self.sock, "_accept", _not_accepting)

    @property
    def address(self) -> str:
        return self.spec.text

    @property
    def bound(self) -> tuple[str, int] | None:
        """The one IP address and port this listener is bound to; None for a wildcard
        (then a connection's own address says which) or a non-IP listener."""
        if self.local is None or self.local[0] in ("::", "0.0.0.0", ""):
            return None
        return self.local

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        elif self.fd >= 0:
            os.close(self.fd)
        self.fd = -1


def _not_accepting() -> tuple[int, Any]:
    raise OSError(errno.EOPNOTSUPP, "not a socket that accepts")


def host_has_ipv6() -> bool:
    """Whether a bare port becomes ``[::]:P`` (else ``0.0.0.0:P``), as systemd decides."""
    if not socket.has_ipv6:
        return False
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()
    except OSError:
        return False
    return True


def bind_unit(unit: str, section: SocketSection, *, ipv6: bool | None = None) -> list[Listener]:
    """Bind every listener of a socket unit, in configuration order; with
    IPAddressAllow=/IPAddressDeny= each IP listener gets its BPF filter before listen(),
    so no connection is ever queued unfiltered.

    All or nothing: raises BindError (naming unit, address and OS error) and closes
    what was already bound when one listener fails.
    """
    if ipv6 is None:
        ipv6 = host_has_ipv6()
    bound: list[Listener] = []
    rules = None
    if section.IPAddressAllow or section.IPAddressDeny:
        from .ipfilter import AddressRules

        rules = AddressRules.from_lists(section.IPAddressAllow, section.IPAddressDeny)
    try:
        for spec in section.Listen:
            try:
                bound.append(_bind_one(unit, spec, section, ipv6, rules))
            except (OSError, ValueError) as e:  # ValueError: ipfilter.FilterError
                if isinstance(e, OSError):
                    why = _strerror(e) + _privileged_port_hint(spec, e)
                else:
                    why = str(e)
                raise BindError(f"{unit}: unable to bind {spec.text}: {why}") from None
        _make_symlinks(unit, section, bound)
    except BaseException:
        close_listeners(bound, section, remove=False)
        raise
    return bound


def adopt_listener(
    unit: str, spec: Any, fd: int, section: SocketSection, symlinks: list[str]
) -> Listener:
    """A listener bound by the activator this process replaced (a re-exec), open here
    under the same number: described again from the fd itself. Raises OSError."""
    os.set_inheritable(fd, False)
    st = os.fstat(fd)
    node = getattr(spec, "path", None)
    if node is not None and node.startswith("@"):
        node = None  # abstract: no node to remove
    if not stat.S_ISSOCK(st.st_mode):
        return Listener(unit, spec, fd, node=node if isinstance(spec, FifoListen) else None)
    # Not made non-blocking here: an Accept=no service may be accepting on this very open
    # file description (socket.py does it when it reads the listener again).
    s = socket.socket(fileno=fd)
    local = None
    if s.family in (socket.AF_INET, socket.AF_INET6):
        local = s.getsockname()[:2]
    lst = Listener(
        unit,
        spec,
        fd,
        s,
        s.family,
        s.type,
        s.type in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET),  # as bound: they listen
        node if s.family == socket.AF_UNIX else None,
        local=local,
    )
    lst.symlinks = list(symlinks)
    return lst


def close_listeners(listeners: list[Listener], section: SocketSection, *, remove: bool) -> None:
    """Close the fds; with RemoveOnStop= (``remove``) also unlink nodes and symlinks."""
    for lst in listeners:
        lst.close()
        if remove and section.RemoveOnStop:
            for path in [*lst.symlinks, *([lst.node] if lst.node else [])]:
                with contextlib.suppress(OSError):
                    os.unlink(path)


def _strerror(e: OSError) -> str:
    return e.strerror or str(e)


def _privileged_port_hint(spec, e: OSError) -> str:
    """What a refused bind of a low port needs: the capability, or a lower sysctl."""
    if not isinstance(spec, InetListen) or e.errno != errno.EACCES:
        return ""
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            start = int(f.read())
    except (OSError, ValueError):
        start = 1024
    if spec.port >= start:
        return ""
    return (
        f"; ports below {start} need CAP_NET_BIND_SERVICE (run activator as root, or "
        "setcap cap_net_bind_service=+ep on its interpreter, or --cap-add=NET_BIND_SERVICE) "
        f"or a lower net.ipv4.ip_unprivileged_port_start (now {start})"
    )


def _bind_one(
    unit, spec, section: SocketSection, ipv6: bool, rules: AddressRules | None
) -> Listener:
    if isinstance(spec, InetListen):
        return _bind_inet(unit, spec, section, ipv6, rules)
    if isinstance(spec, UnixListen):
        return _bind_unix(unit, spec, section)
    if isinstance(spec, FifoListen):
        return _open_fifo(unit, spec, section)
    if isinstance(spec, SpecialListen):
        return _open_special(unit, spec, section)
    if isinstance(spec, NetlinkListen):
        return _bind_netlink(unit, spec, section)
    if isinstance(spec, MessageQueueListen):
        raise OSError(errno.EOPNOTSUPP, "POSIX message queues are not supported by activator")
    raise OSError(errno.EINVAL, f"unknown listener kind {spec!r}")


def _new_socket(family: int, type_: int, proto: int = 0) -> socket.socket:
    return socket.socket(family, type_ | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK, proto)


def _bind_inet(
    unit: str, spec: InetListen, section: SocketSection, ipv6: bool, rules: AddressRules | None
) -> Listener:
    host = spec.host if spec.host is not None else ("::" if ipv6 else "0.0.0.0")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    type_ = _SOCK_TYPES[spec.type]
    proto = _PROTOCOLS.get(section.SocketProtocol or "", 0)
    s = _new_socket(family, type_, proto)
    try:
        if family == socket.AF_INET6 and section.BindIPv6Only != "default":
            s.setsockopt(
                socket.IPPROTO_IPV6,
                socket.IPV6_V6ONLY,
                1 if section.BindIPv6Only == "ipv6-only" else 0,
            )
        if section.BindToDevice:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, section.BindToDevice.encode())
        if section.ReusePort:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        v6 = family == socket.AF_INET6
        if section.FreeBind:
            s.setsockopt(
                socket.IPPROTO_IPV6 if v6 else socket.IPPROTO_IP,
                _IPV6_FREEBIND if v6 else _IP_FREEBIND,
                1,
            )
        if section.Transparent:
            s.setsockopt(
                socket.IPPROTO_IPV6 if v6 else socket.IPPROTO_IP,
                _IPV6_TRANSPARENT if v6 else _IP_TRANSPARENT,
                1,
            )
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if v6:
            scope = 0
            if spec.scope:
                scope = (
                    int(spec.scope) if spec.scope.isdigit() else socket.if_nametoindex(spec.scope)
                )
            s.bind((host, spec.port, 0, scope))
        else:
            s.bind((host, spec.port))
        accepting = type_ != socket.SOCK_DGRAM
        if rules is not None:
            set_filter(s.fileno(), rules, stream=accepting)
        if accepting:
            s.listen(min(section.Backlog, 2**31 - 1))
        apply_options(s.fileno(), family, type_, section, listening=True)
        local = s.getsockname()[:2]
    except BaseException:
        s.close()
        raise
    return Listener(unit, spec, s.fileno(), s, family, type_, accepting, local=local)


def _bind_unix(unit: str, spec: UnixListen, section: SocketSection) -> Listener:
    type_ = _SOCK_TYPES[spec.type]
    s = _new_socket(socket.AF_UNIX, type_)
    node = None
    try:
        if spec.path.startswith("@"):
            s.bind("\0" + spec.path[1:])
        else:
            node = spec.path
            _mkdir_parents(node, section.DirectoryMode)
            old = os.umask(~section.SocketMode & 0o777)
            try:
                try:
                    s.bind(node)
                except OSError as e:
                    if e.errno != errno.EADDRINUSE:
                        raise
                    # A stale node from an earlier run (or a live listener: systemd
                    # steals the path too).
                    os.unlink(node)
                    s.bind(node)
            finally:
                os.umask(old)
            _chown(node, section)
        if type_ != socket.SOCK_DGRAM:
            s.listen(min(section.Backlog, 2**31 - 1))
        apply_options(s.fileno(), socket.AF_UNIX, type_, section, listening=True)
    except BaseException:
        s.close()
        raise
    return Listener(
        unit, spec, s.fileno(), s, socket.AF_UNIX, type_, type_ != socket.SOCK_DGRAM, node
    )


def _open_fifo(unit: str, spec: FifoListen, section: SocketSection) -> Listener:
    _mkdir_parents(spec.path, section.DirectoryMode)
    old = os.umask(~section.SocketMode & 0o777)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkfifo(spec.path, section.SocketMode)
    finally:
        os.umask(old)
    fd = os.open(spec.path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISFIFO(st.st_mode):
            raise OSError(errno.EEXIST, "exists and is not a FIFO")
        if section.PipeSize:
            fcntl.fcntl(fd, _F_SETPIPE_SZ, section.PipeSize)
        _chown(spec.path, section)
    except BaseException:
        os.close(fd)
        raise
    return Listener(unit, spec, fd, node=spec.path)


def _open_special(unit: str, spec: SpecialListen, section: SocketSection) -> Listener:
    flags = (
        (os.O_RDWR if section.Writable else os.O_RDONLY)
        | os.O_CLOEXEC
        | os.O_NOCTTY
        | os.O_NONBLOCK
    )
    fd = os.open(spec.path, flags)
    st = os.fstat(fd)
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISCHR(st.st_mode)):
        os.close(fd)
        raise OSError(errno.EEXIST, "is neither a regular file nor a character device")
    return Listener(unit, spec, fd)


def _bind_netlink(unit: str, spec: NetlinkListen, section: SocketSection) -> Listener:
    proto = _NETLINK.get(spec.protocol)
    if proto is None:
        proto = int(spec.protocol) if spec.protocol.isdigit() else -1
    if proto < 0:
        raise OSError(errno.EINVAL, f"unknown netlink family {spec.protocol!r}")
    s = _new_socket(socket.AF_NETLINK, socket.SOCK_RAW, proto)
    try:
        s.bind((0, spec.group))
        apply_options(s.fileno(), socket.AF_NETLINK, socket.SOCK_RAW, section, listening=True)
    except BaseException:
        s.close()
        raise
    return Listener(unit, spec, s.fileno(), s, socket.AF_NETLINK, socket.SOCK_RAW)


def _mkdir_parents(path: str, mode: int) -> None:
    """Create missing parents with DirectoryMode= exactly; existing ones are left alone."""
    parent = os.path.dirname(path)
    missing = []
    while parent and parent != "/" and not os.path.isdir(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    old = os.umask(0)
    try:
        for d in reversed(missing):
            with contextlib.suppress(FileExistsError):
                os.mkdir(d, mode)
    finally:
        os.umask(old)


def _chown(path: str, section: SocketSection) -> None:
    if section.SocketUser is None and section.SocketGroup is None:
        return
    uid = gid = -1
    if section.SocketUser is not None:
        pw = lookup_user(section.SocketUser)
        uid, gid = pw.pw_uid, pw.pw_gid  # the group defaults to the user's primary group
    if section.SocketGroup is not None:
        gid = lookup_group(section.SocketGroup)
    try:
        os.chown(path, uid, gid, follow_symlinks=False)
    except OSError as e:
        raise OSError(e.errno, f"unable to chown {path}: {_strerror(e)}") from None


def _make_symlinks(unit: str, section: SocketSection, bound: list[Listener]) -> None:
    """Symlinks= to the one node; failing to create one is not fatal, as in systemd."""
    if not section.Symlinks:
        return
    nodes = [lst for lst in bound if lst.node]
    if len(nodes) != 1:
        return  # the loader refuses this combination; nothing sensible to link to
    target = nodes[0]
    node = str(target.node)
    for link in section.Symlinks:
        try:
            _mkdir_parents(link, section.DirectoryMode)
            if section.RemoveOnStop and os.path.lexists(link):
                os.unlink(link)
            os.symlink(node, link)
            target.symlinks.append(link)
        except OSError:
            continue


def apply_options(
    fd: int, family: int, type_: int, section: SocketSection, *, listening: bool
) -> None:
    """Socket options of [Socket], applied to listeners and to every accepted connection.

    Options that need privileges the supervisor lacks (Mark=, buffer forcing) fail
    quietly where systemd only logs; options that make no sense for the family are skipped.
    """
    s = socket.socket(family, type_, 0, fd)
    try:
        inet = family in (socket.AF_INET, socket.AF_INET6)
        tcp = inet and type_ == socket.SOCK_STREAM
        sol = socket.SOL_SOCKET

        def opt(level: int, name: int, value: int | bytes) -> None:
            with contextlib.suppress(OSError):
                s.setsockopt(level, name, value)

        if section.KeepAlive:
            opt(sol, socket.SO_KEEPALIVE, 1)
        if tcp:
            if section.KeepAliveTimeSec is not None:
                opt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, int(section.KeepAliveTimeSec))
            if section.KeepAliveIntervalSec is not None:
                opt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, int(section.KeepAliveIntervalSec))
            if section.KeepAliveProbes is not None:
                opt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, section.KeepAliveProbes)
            if section.NoDelay:
                opt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if listening and section.DeferAcceptSec:
                opt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, int(section.DeferAcceptSec))
            if section.TCPCongestion:
                opt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, section.TCPCongestion.encode())
        if section.Priority is not None:
            opt(sol, socket.SO_PRIORITY, section.Priority)
        if section.ReceiveBuffer is not None:
            try:
                s.setsockopt(sol, _SO_RCVBUFFORCE, section.ReceiveBuffer)
            except OSError:
                opt(sol, socket.SO_RCVBUF, section.ReceiveBuffer)
        if section.SendBuffer is not None:
            try:
                s.setsockopt(sol, _SO_SNDBUFFORCE, section.SendBuffer)
            except OSError:
                opt(sol, socket.SO_SNDBUF, section.SendBuffer)
        if section.Mark is not None:
            opt(sol, socket.SO_MARK, section.Mark)
        if inet and section.IPTOS is not None and family == socket.AF_INET:
            opt(socket.IPPROTO_IP, socket.IP_TOS, section.IPTOS)
        if inet and section.IPTTL is not None:
            if family == socket.AF_INET:
                opt(socket.IPPROTO_IP, socket.IP_TTL, section.IPTTL)
            else:
                opt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, section.IPTTL)
        if section.Broadcast:
            opt(sol, socket.SO_BROADCAST, 1)
        if section.PassCredentials:
            opt(sol, socket.SO_PASSCRED, 1)
        if section.PassSecurity:
            opt(sol, _SO_PASSSEC, 1)
        if section.PassPacketInfo and inet:
            if family == socket.AF_INET:
                opt(socket.IPPROTO_IP, _IP_PKTINFO, 1)
            else:
                opt(socket.IPPROTO_IPV6, _IPV6_RECVPKTINFO, 1)
        if section.Timestamping == "us":
            opt(sol, _SO_TIMESTAMP, 1)
        elif section.Timestamping == "ns":
            opt(sol, _SO_TIMESTAMPNS, 1)
    finally:
        s.detach()


def options_needed(section: SocketSection) -> bool:
    """Whether accepted connections need apply_options() at all (the hot path skips it)."""
    return bool(
        section.KeepAlive
        or section.KeepAliveTimeSec is not None
        or section.KeepAliveIntervalSec is not None
        or section.KeepAliveProbes is not None
        or section.NoDelay
        or section.Priority is not None
        or section.ReceiveBuffer is not None
        or section.SendBuffer is not None
        or section.Mark is not None
        or section.IPTOS is not None
        or section.IPTTL is not None
        or section.TCPCongestion
    )


def set_filter(fd: int, rules: AddressRules | None, *, stream: bool) -> None:
    """Attach (or replace: the kernel swaps programs atomically) the address filter of an IP
    socket; None detaches it. Raises OSError, ipfilter.FilterError (a ValueError)."""
    if rules is None:
        with contextlib.suppress(OSError):  # ENOENT: there was none
            _setsockopt_int(fd, _SO_DETACH_FILTER, 0)
        return
    _spawn.attach_filter(fd, rules.program(stream=stream))


def _setsockopt_int(fd: int, name: int, value: int) -> None:
    s = socket.socket(fileno=fd)
    try:
        s.setsockopt(socket.SOL_SOCKET, name, value)
    finally:
        s.detach()


def kernel_drops(fd: int) -> int | None:
    """Packets the kernel dropped for this socket (SK_MEMINFO_DROPS): on a listener with an
    address filter, mostly the SYNs or datagrams it refused (a listen-queue overflow
    counts too). None when the kernel does not say."""
    s = socket.socket(fileno=fd)
    try:
        raw = s.getsockopt(socket.SOL_SOCKET, _SO_MEMINFO, 9 * 4)
    except OSError:
        return None
    finally:
        s.detach()
    return int(struct.unpack("9I", raw)[_SK_MEMINFO_DROPS])


def fmt_peer(remote: str | None, port: int) -> str | None:
    """A peer as systemd's logs write it: ``1.2.3.4:5``, ``[::1]:5``; None for no address."""
    if remote is None:
        return None
    return f"[{remote}]:{port}" if ":" in remote else f"{remote}:{port}"


def unmap(host: str) -> str:
    """An IPv4-mapped IPv6 address as the IPv4 address it is ("::ffff:1.2.3.4" → "1.2.3.4"),
    as systemd prints peers (sockaddr_pretty() with translate_ipv6)."""
    return host[7:] if host.startswith("::ffff:") and "." in host else host

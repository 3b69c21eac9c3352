"""``Listen*=`` values → listener models, as systemd 252's socket_address_parse().

Accepted (reference/systemd.md §1.8): a bare port (1-65535, C number syntax as
strtoul base 0: "0x50" is 80), ``a.b.c.d:PORT``, ``[v6]:PORT``, an interface after the
port (``[::1]:80%lo`` — written ``%%lo`` in a unit file), ``/path``, ``@abstract``.
Refused, with a message that says why: ``lo:8080``, port 0 or > 65535, ``::1`` without
brackets or port, relative paths, ``127.0.0.1:80#name``, ``vsock:`` (activator does not
bind AF_VSOCK).
"""

from __future__ import annotations

import socket

from .errors import BadValue, q
from .model import (
    FifoListen,
    InetListen,
    MessageQueueListen,
    NetlinkListen,
    SocketType,
    SpecialListen,
    UnixListen,
)
from .values import c_strtol, parse_uint

SUN_PATH_MAX = 108  # sizeof(struct sockaddr_un.sun_path)
IFNAMSIZ = 16

SOCKET_TYPES = {
    "ListenStream": SocketType.STREAM,
    "ListenDatagram": SocketType.DATAGRAM,
    "ListenSequentialPacket": SocketType.SEQPACKET,
}

# systemd's netlink_family table (src/basic/socket-util.c)
NETLINK_FAMILIES = frozenset(
    {
        "route", "firewall", "inet-diag", "nflog", "xfrm", "selinux", "iscsi", "audit",
        "fib-lookup", "connector", "netfilter", "ip6-fw", "dnrtmsg", "kobject-uevent",
        "generic", "scsitransport", "ecryptfs", "rdma", "crypto", "smc",
    }
)  # fmt: skip

_FORMS = "expected PORT, IPv4:PORT, [IPv6]:PORT, /path or @abstract"


def _port(text: str, whole: str) -> int:
    n = c_strtol(text)
    if n is None:
        raise BadValue(f"{q(whole)}: {_FORMS}")
    if not 1 <= n <= 65535:
        raise BadValue(f"{q(whole)}: port must be 1-65535")
    return n


def _ifname_ok(name: str) -> bool:
    if name.isascii() and name.isdigit():  # an interface index, a positive C int
        return len(name) <= 10 and 0 < int(name) <= 2**31 - 1
    return (
        0 < len(name) < IFNAMSIZ
        and name not in (".", "..")
        and not any(c in name for c in "/:%")
        and all(c.isprintable() and not c.isspace() for c in name)
    )


def _path_is_normalized(path: str) -> bool:
    return ".." not in path.split("/") and "." not in path.split("/")[1:]


def parse_socket_address(text: str, type_: SocketType) -> InetListen | UnixListen:
    """One ListenStream=/ListenDatagram=/ListenSequentialPacket= value."""
    if not text:
        raise BadValue(f'"": {_FORMS}')
    if text[0] in "/@":
        return _unix(text, type_)
    if type_ is SocketType.SEQPACKET:
        raise BadValue(
            f"{q(text)}: ListenSequentialPacket= takes only AF_UNIX addresses (/path or @abstract)"
        )
    if text.startswith(("vsock:", "vsock-")):
        raise BadValue(f"{q(text)}: AF_VSOCK addresses are not supported by activator")
    if "#" in text:
        raise BadValue(f"{q(text)}: a #server-name suffix is not allowed here; {_FORMS}")
    addr, pct, scope = text.partition("%")
    if pct and not _ifname_ok(scope):
        raise BadValue(f"{q(text)}: {q(scope)} is not a valid network interface name")
    host: str | None
    if addr.startswith("["):
        end = addr.find("]")
        if end < 0 or addr[end + 1 : end + 2] != ":":
            raise BadValue(f"{q(text)}: {_FORMS}")
        host = addr[1:end]
        try:
            socket.inet_pton(socket.AF_INET6, host)
        except (OSError, ValueError):  # ValueError: a NUL or a lone surrogate
            raise BadValue(f"{q(text)}: {q(host)} is not an IPv6 address") from None
        port = _port(addr[end + 2 :], text)
    elif ":" in addr:
        host, _, port_text = addr.rpartition(":")
        try:
            socket.inet_pton(socket.AF_INET, host)
        except (OSError, ValueError):
            if ":" in host:
                hint = "IPv6 addresses need brackets: [ADDRESS]:PORT"
            else:
                hint = f"{q(host)} is not an IPv4 address (host names are not resolved)"
            raise BadValue(f"{q(text)}: {hint}") from None
        port = _port(port_text, text)
    else:
        if pct:
            raise BadValue(f"{q(text)}: an interface needs an address: [IPv6]:PORT%IFNAME")
        n = c_strtol(addr)
        if n is None:
            raise BadValue(f"{q(text)}: {_FORMS} (paths must be absolute)")
        if not 1 <= n <= 65535:
            raise BadValue(f"{q(text)}: port must be 1-65535")
        host, port = None, n
    return InetListen(type=type_, host=host, port=port, scope=scope if pct else None, text=text)


def _unix(text: str, type_: SocketType) -> UnixListen:
    # As the kernel will see it: a byte that is no UTF-8 (from a \xNN in an instance
    # name) is a lone surrogate in the text, and bind() gives it back as that byte.
    size = len(text.encode("utf-8", "surrogateescape"))
    if text[0] == "@":
        if len(text) == 1:
            raise BadValue(f"{q(text)}: an abstract socket needs a name after @")
        if size > SUN_PATH_MAX:
            raise BadValue(f"{q(text)}: abstract name longer than {SUN_PATH_MAX - 1} bytes")
    else:
        if size >= SUN_PATH_MAX:
            raise BadValue(f"{q(text)}: socket path longer than {SUN_PATH_MAX - 1} bytes")
        if not _path_is_normalized(text):
            raise BadValue(f"{q(text)}: socket path must be normalized (no . or .. parts)")
    return UnixListen(type=type_, path=text, text=text)


def _abs_path(text: str, what: str) -> str:
    if not text.startswith("/"):
        raise BadValue(f"{q(text)}: {what} must be an absolute path")
    if not _path_is_normalized(text):
        raise BadValue(f"{q(text)}: {what} must be normalized (no . or .. parts)")
    return text


def parse_listen(directive: str, text: str) -> object:
    """Any ``Listen*=`` directive's value → its listener model."""
    if directive in SOCKET_TYPES:
        return parse_socket_address(text, SOCKET_TYPES[directive])
    if directive == "ListenFIFO":
        return FifoListen(path=_abs_path(text, "a FIFO"), text=text)
    if directive == "ListenSpecial":
        return SpecialListen(path=_abs_path(text, "a special file"), text=text)
    if directive == "ListenMessageQueue":
        if not text.startswith("/") or "/" in text[1:] or len(text) < 2:
            raise BadValue(f'{q(text)}: expected a message queue name "/NAME" (one slash)')
        return MessageQueueListen(name=text, text=text)
    if directive == "ListenNetlink":
        words = text.split()
        if not 1 <= len(words) <= 2:
            raise BadValue(f'{q(text)}: expected "FAMILY [GROUP]", e.g. "kobject-uevent 1"')
        family = words[0]
        if family not in NETLINK_FAMILIES and c_strtol(family) is None:
            raise BadValue(
                f"{q(text)}: unknown netlink family {q(family)} "
                f"(e.g. route, audit, kobject-uevent, or a number)"
            )
        group = parse_uint(words[1]) if len(words) == 2 else 0
        return NetlinkListen(protocol=family, group=group, text=text)
    raise BadValue(f"{directive}= is not a listener directive")  # pragma: no cover


_TYPE_WORDS = {"stream": "Stream", "datagram": "Datagram", "seqpacket": "SequentialPacket"}
_KIND_WORDS = {"fifo": "FIFO", "special": "Special", "netlink": "Netlink", "mqueue": "MessageQueue"}


def listen_type(spec) -> str:
    """systemctl's word for a listener (list-sockets, status): Stream, Datagram,
    SequentialPacket, FIFO, Special, Netlink, MessageQueue."""
    if spec.family in ("inet", "unix"):
        return _TYPE_WORDS[str(spec.type)]
    return _KIND_WORDS.get(spec.family, spec.family)

"""issue 16: IPAddressAllow=/IPAddressDeny= on socket units, enforced by a BPF socket filter
on the listener (a denied SYN never gets an answer, a denied datagram never arrives) and,
for connections queued before the filter, in user space — real activator, real sockets,
IPv4, IPv6 (in a network namespace of the test's own), v4-mapped, datagrams."""

from __future__ import annotations

import select
import socket
import time
from pathlib import Path

import pytest
from harness import SYSTEM_PYTHON, Activator, free_port, public_dir, read_all
from netns import PREFIX6, NetNS

pytestmark = pytest.mark.root

HELLO = "[Service]\nExecStart=/bin/echo hello\nUser=nobody\nStandardInput=socket\n"


def units(listen: str, rules: str, extra: str = "") -> dict[str, str]:
    return {
        "h.socket": f"[Socket]\nListenStream={listen}\nAccept=yes\n{rules}{extra}",
        "h@.service": HELLO,
    }


def client(family: int, source: str, make=None) -> socket.socket:
    s = make(source) if make else socket.socket(family, socket.SOCK_STREAM)
    if not make:
        s.bind((source, 0))
    return s


def check_syns(dst: tuple, denied: list[str], allowed: list[str], make=None) -> None:
    """The denied sources' SYNs go first and are never answered; the allowed ones, sent
    after them on the same path, are served. If the filter let a denied SYN through, its
    handshake would have completed long before the allowed ones have read their answer."""
    fam = socket.AF_INET6 if ":" in dst[0] else socket.AF_INET
    pending = []
    try:
        for src in denied:
            s = client(fam, src, make)
            s.setblocking(False)
            assert s.connect_ex(dst) == 115  # EINPROGRESS: a SYN is out
            pending.append(s)
        for src in allowed:
            with client(fam, src, make) as s:
                s.settimeout(10)
                s.connect(dst)
                assert read_all(s) == b"hello\n", src
        for s in pending:
            _, writable, _ = select.select([], [s], [], 0)
            assert not writable and s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    finally:
        for s in pending:
            s.close()


def test_ipv4_allow_wins_then_deny(loop_kind, accept_path):
    port = free_port()
    rules = "IPAddressAllow=127.0.0.2 127.0.1.0/24\nIPAddressDeny=127.0.0.0/8\n"
    with Activator(units(f"127.0.0.1:{port}", rules), loop=loop_kind, env=accept_path) as a:
        check_syns(("127.0.0.1", port), ["127.0.0.3", "127.0.2.1"], ["127.0.0.2", "127.0.1.77"])
        st = a.status("h.socket")
        assert st["filter"]["deny"] == ["127.0.0.0/8"]
        assert st["filter"]["kernel_drops"] >= 2  # the SYNs the filter dropped
        assert st["NAccepted"] == 2 and st["refused"]["ip_deny"] == 0
        assert a.count("start") == 2


def test_v4_mapped_on_a_dual_stack_listener(loop_kind):
    """IPv4 peers of a [::] listener are judged by the IPv4 rules, and a rule written as
    ::ffff:a.b.c.d is that IPv4 address (systemd keeps IPv4 and IPv6 apart the same way)."""
    port = free_port("::")
    rules = "IPAddressAllow=::ffff:127.0.0.2\nIPAddressDeny=any\n"
    with Activator(units(f"[::]:{port}", rules, "BindIPv6Only=both\n"), loop=loop_kind) as a:
        check_syns(("127.0.0.1", port), ["127.0.0.3"], ["127.0.0.2"])
        check_syns(("::1", port), ["::1"], [])
        assert a.status("h.socket")["NAccepted"] == 1


def test_ipv6_any_leaves_ipv4_alone(loop_kind):
    port = free_port("::")
    with Activator(units(f"[::]:{port}", "IPAddressDeny=::/0\n", "BindIPv6Only=both\n"),
                   loop=loop_kind):  # fmt: skip
        check_syns(("::1", port), ["::1"], [])
        check_syns(("127.0.0.1", port), [], ["127.0.0.1"])


@pytest.mark.slow
def test_ipv6_sources_in_a_namespace(loop_kind, accept_path):
    """A /64 allowed, one address of it denied, everything else denied: sources bound in a
    network namespace of the test's own, activator running inside it."""
    rules = f"IPAddressAllow={PREFIX6}100/120\nIPAddressDeny={PREFIX6}/64 ::1\n"
    with NetNS() as ns:
        port = 7007
        with Activator(units(f"[::]:{port}", rules), loop=loop_kind, env=accept_path,
                       wrapper=ns.wrapper) as a:  # fmt: skip
            check_syns(
                ("::1", port),
                [f"{PREFIX6}1", f"{PREFIX6}2:1", "::1"],
                [f"{PREFIX6}100", f"{PREFIX6}1ff"],
                make=ns.client,
            )
            assert a.status("h.socket")["NAccepted"] == 2


def test_connections_queued_before_the_filter_are_reset_in_user_space(loop_kind):
    """A paused socket (trigger limit) keeps connections in its queue; a reload adds a deny
    rule, which swaps the listener's filter but cannot judge what is queued: the accept path
    does, resets the connection and counts it (ip-deny), spawning nothing."""
    port = free_port()
    limit = "TriggerLimitBurst=1\nTriggerLimitIntervalSec=2\n"
    with Activator(units(f"127.0.0.1:{port}", "", limit), loop=loop_kind) as a:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            assert read_all(s) == b"hello\n"
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            a.wait_for("pause", unit="h.socket")
        queued = client(socket.AF_INET, "127.0.0.3")
        queued.settimeout(10)
        queued.connect(("127.0.0.1", port))  # no filter yet: the handshake completes
        (a.unit_dir / "h.socket").write_text(
            f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n{limit}IPAddressDeny=127.0.0.3\n"
        )
        assert "1 changed, 0 rebound" in a.ctl("reload", check=True).stdout  # the fds stay
        a.wait_for("resume", unit="h.socket", timeout=10)
        r = a.wait_for("reject", unit="h.socket", reason="ip-deny")
        assert r["peer"].startswith("127.0.0.3:")
        with pytest.raises(ConnectionResetError):
            queued.recv(10)
        queued.close()
        st = a.status("h.socket")
        assert st["refused"]["ip_deny"] == 1 and st["NAccepted"] == 1
        assert a.count("start") == 1
        # the reload swapped the listener's filter in place: the kernel drops the next SYN
        check_syns(("127.0.0.1", port), ["127.0.0.3"], [])
        assert a.status("h.socket")["filter"]["kernel_drops"] >= 1


UDP_SERVICE = """\
import os, socket
s = socket.socket(fileno=3)
n = 0
while True:
    data, peer = s.recvfrom(512)
    n += 1
    s.sendto(b"%d %s" % (n, data), peer)
"""


def test_datagrams_from_denied_sources_never_arrive(loop_kind):
    """Accept=no on a datagram socket: a denied datagram neither triggers the service nor
    waits in the queue for it (the service counts what it received)."""
    d: Path = public_dir()
    (d / "udp.py").write_text(UDP_SERVICE)
    port = free_port()
    u = {
        "u.socket": f"[Socket]\nListenDatagram=127.0.0.1:{port}\n"
        "IPAddressAllow=127.0.0.2\nIPAddressDeny=any\n",
        "u.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {d}/udp.py\nUser=nobody\n",
    }
    with Activator(u, loop=loop_kind) as a:
        denied = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        denied.bind(("127.0.0.3", 0))
        allowed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        allowed.bind(("127.0.0.2", 0))
        allowed.settimeout(10)
        with denied, allowed:
            denied.sendto(b"no", ("127.0.0.1", port))
            deadline = time.monotonic() + 5
            while a.status("u.socket")["filter"]["kernel_drops"] < 1:
                assert time.monotonic() < deadline, "the kernel never saw the datagram"
                a.drain(0.05)
            assert a.count("trigger") == 0
            allowed.sendto(b"yes", ("127.0.0.1", port))
            assert allowed.recvfrom(512)[0] == b"1 yes"  # the first datagram it ever got
            assert a.count("trigger") == 1


def test_rules_on_a_unix_socket_are_refused_at_load(loop_kind):
    """Where the filter cannot apply, the unit does not load (and says why), rather than
    load with a rule that protects nothing."""
    path = f"{public_dir()}/h.sock"
    u = {"h.socket": f"[Socket]\nListenStream={path}\nIPAddressDeny=any\n",
         "h.service": HELLO.replace("StandardInput=socket\n", "")}  # fmt: skip
    with Activator(u, loop=loop_kind) as a:
        st = a.status("h.socket")
        assert st["load"] == "error"
        assert any("is not an IP socket" in p for p in st["problems"]), st
        assert not Path(path).exists()

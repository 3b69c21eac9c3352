"""issue 16: sources by prefix for MaxConnectionsPerSource= (X-Activator-PerSourcePrefix=) and
connection rates per source and per socket (X-Activator-ConnectionRate=, …Total=) on
Accept=yes — real activator, many sources on 127.0.0.0/8 and, in a namespace of the
test's own, in 2001:db8::/48. The proxy's share of the same rules is in test_proxy.py."""

from __future__ import annotations

import socket

import pytest
from harness import Activator, free_port
from netns import PREFIX6, NetNS

from activator.runtime.admission import MAX_SOURCES, Admission, TokenBucket
from activator.units.model import Rate, SocketSection

pytestmark = pytest.mark.root

HOLD = "[Service]\nExecStart=/bin/sh -c 'read x; echo done'\nUser=nobody\nStandardInput=socket\n"
HELLO = "[Service]\nExecStart=/bin/echo hello\nUser=nobody\nStandardInput=socket\n"


def units(listen: str, extra: str, service: str = HOLD) -> dict[str, str]:
    return {
        "h.socket": f"[Socket]\nListenStream={listen}\nAccept=yes\nMaxConnections=4096\n{extra}",
        "h@.service": service,
    }


def connect(source: str, port: int, dst: str = "127.0.0.1") -> socket.socket:
    s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET)
    try:
        s.bind((source, 0))
        s.settimeout(10)
        s.connect((dst, port))
    except BaseException:
        s.close()
        raise
    return s


def outcome(s: socket.socket) -> str:
    """What a client that waits for the answer sees: "served" (one), "closed" (FIN: refused
    by a limit) or "reset" (RST: refused by a rate or an address rule)."""
    try:
        data = s.recv(64)
    except ConnectionResetError:
        return "reset"
    return "served" if data else "closed"


def attempt(source: str, port: int) -> str:
    """Connect and wait for the answer (a reset may beat connect() back to the caller)."""
    try:
        with connect(source, port) as s:
            return outcome(s)
    except ConnectionResetError:
        return "reset"


def served(s: socket.socket) -> bool:
    """A HOLD instance answers a line."""
    s.sendall(b"x\n")
    return s.recv(64) == b"done\n"


# ---------------------------------------------------------------- pure parts


def test_source_keys_by_prefix():
    adm = Admission(SocketSection(PerSourcePrefix=(24, 56)))
    assert adm.source("10.1.2.3") == "10.1.2.0/24"
    assert adm.source("2001:db8:1:2ff::1") == "2001:db8:1:200::/56"
    assert Admission(SocketSection()).source("10.1.2.3") == "10.1.2.3"  # /32: the address
    assert Admission(SocketSection()).source("2001:db8::7") == "2001:db8::/64"


def test_token_bucket_refills_at_its_rate():
    b = TokenBucket(Rate(count=2, interval=10.0), now=0.0)
    assert b.take(0.0) and b.take(0.0) and not b.take(0.0)
    assert not b.take(4.9) and b.take(5.0)  # one token per 5 s
    assert b.take(100.0) and b.take(100.0) and not b.take(100.0)  # never above the burst


def test_rates_per_source_and_total_with_a_clock():
    now = [0.0]
    sec = SocketSection(
        ConnectionRate=Rate(count=1, interval=60.0), ConnectionRateTotal=Rate(count=3, interval=1)
    )
    adm = Admission(sec, clock=lambda: now[0])
    assert [adm.check(a) for a in ("10.0.0.1", "10.0.0.1", "10.0.0.2")] == [None, "rate", None]
    assert adm.check("10.0.0.3") == "rate-total"  # 3 per second for the socket
    now[0] = 1.0
    assert adm.check("10.0.0.3") is None and adm.check(None) is None


def test_bucket_table_is_bounded():
    now = [0.0]
    adm = Admission(SocketSection(ConnectionRate=Rate(count=1, interval=1.0)), clock=lambda: now[0])
    for i in range(MAX_SOURCES + 10):
        adm.check(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
    assert len(adm.buckets) <= MAX_SOURCES


# ---------------------------------------------------------------- real activator


def test_per_source_prefix_ipv4(loop_kind):
    """X-Activator-PerSourcePrefix=24/64: 127.0.1.1 and 127.0.1.2 are one source."""
    port = free_port()
    extra = "MaxConnectionsPerSource=2\nX-Activator-PerSourcePrefix=24/64\n"
    with Activator(units(f"127.0.0.1:{port}", extra), loop=loop_kind) as a:
        held = [connect("127.0.1.1", port), connect("127.0.1.2", port)]
        a.wait_for("start")
        a.wait_for("start", start=a.events.index(a.wait_for("start")) + 1)
        with connect("127.0.1.3", port) as third:
            assert outcome(third) == "closed"
        r = a.wait_for("reject", unit="h.socket")
        assert "127.0.1.0/24" in r["reason"]
        with connect("127.0.2.1", port) as other:  # another /24: its own count
            assert served(other)
        for s in held:
            assert served(s)
            s.close()
        st = a.status("h.socket")
        assert st["refused"]["per_source"] == 1 and st["accept_path"].startswith("event loop")


@pytest.mark.slow
def test_one_ipv6_client_with_a_slash_64_counts_once(loop_kind):
    """2,000 addresses of one /64 are one source (the default 32/64): MaxConnectionsPerSource=1
    lets the first in and closes the other 1,999; another /64 is another source."""
    with NetNS() as ns:
        port = 7007
        extra = "MaxConnectionsPerSource=1\n"
        with Activator(units(f"[::]:{port}", extra), loop=loop_kind, wrapper=ns.wrapper) as a:
            sources = [f"{PREFIX6}{i:x}:{i:x}" for i in range(1, 2001)]
            clients = ns.clients(sources)
            try:
                first, rest = clients[0], clients[1:]
                first.settimeout(10)
                first.connect(("::1", port))
                a.wait_for("start")
                for c in rest:
                    c.settimeout(10)
                    c.connect(("::1", port))
                    assert c.recv(10) == b""  # closed at once
                (other,) = ns.clients(["2001:db8:0:1::5"])  # another /64 of the /48
                with other:
                    other.settimeout(10)
                    other.connect(("::1", port))
                    assert served(other)
                assert served(first)
            finally:
                for c in clients:
                    c.close()
            st = a.status("h.socket")
            assert st["refused"]["per_source"] == 1999 and st["NAccepted"] == 2001
            assert a.count("start") == 2


def test_rate_per_source_and_total(loop_kind):
    """ConnectionRate=2/1h: each of 30 sources gets 2, its third is reset (no spawn); the
    other sources are not touched by one source's excess. Then the socket's own bucket."""
    port = free_port()
    extra = "X-Activator-ConnectionRate=2/1h\n"
    with Activator(units(f"127.0.0.1:{port}", extra, HELLO), loop=loop_kind) as a:
        got: dict[str, list[str]] = {}
        for i in range(30):
            src = f"127.0.3.{i + 1}"
            got[src] = []
            for _ in range(3):
                got[src].append(attempt(src, port))
        assert all(v == ["served", "served", "reset"] for v in got.values()), got
        st = a.status("h.socket")
        assert st["refused"]["rate"] == 30 and st["NAccepted"] == 60
        assert st["accept_path"] == "event loop (X-Activator-ConnectionRate=)"
        assert a.count("reject", reason="rate") <= 10  # the log lines are rate-limited too
    port = free_port()
    with Activator(
        units(f"127.0.0.1:{port}", "X-Activator-ConnectionRateTotal=3/1h\n", HELLO), loop=loop_kind
    ) as a:
        seen = []
        for i in range(5):
            seen.append(attempt(f"127.0.4.{i + 1}", port))
        assert seen == ["served"] * 3 + ["reset"] * 2
        assert a.status("h.socket")["refused"]["rate_total"] == 2
        assert a.count("start") == 3

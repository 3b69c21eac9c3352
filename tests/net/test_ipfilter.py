"""issue 16: the address rules compiled to BPF, checked against their meaning (no kernel)."""

from __future__ import annotations

import ipaddress
import random
import socket

import pytest
from cbpf import run

from activator.exec.ipfilter import BPF_MAXINSNS, AddressRules, FilterError, merge, subtract

SYN = bytes(13) + bytes([0x02]) + bytes(6)
ACK = bytes(13) + bytes([0x10]) + bytes(6)
UDP = bytes(8)


def v4(src: str) -> bytes:
    return bytes([0x45]) + bytes(11) + socket.inet_aton(src) + bytes(4)


def v6(src: str) -> bytes:
    return bytes([0x60]) + bytes(7) + socket.inet_pton(socket.AF_INET6, src) + bytes(16)


def packet(addr: str) -> bytes:
    return v6(addr) if ":" in addr else v4(addr)


def meaning(allow: list[str], deny: list[str], addr: str) -> bool:
    """systemd's rule, straight from the manual: allow wins, then deny, else allowed."""
    a = ipaddress.ip_address(addr)

    def hit(nets: list[str]) -> bool:
        for n in nets:
            net = ipaddress.ip_network(n, strict=False)
            if net.version == 6 and net.prefixlen >= 96 and net[0].ipv4_mapped is not None:
                net = ipaddress.ip_network(f"{net[0].ipv4_mapped}/{net.prefixlen - 96}")
            if net.version == a.version and a in net:
                return True
        return False

    return not hit(allow) and hit(deny)


def test_interval_arithmetic():
    assert merge([(5, 9), (1, 3), (4, 4), (20, 30), (25, 26)]) == [(1, 9), (20, 30)]
    assert subtract([(0, 100)], [(10, 20), (30, 30), (90, 200)]) == [(0, 9), (21, 29), (31, 89)]
    assert subtract([(0, 5), (10, 15)], [(0, 15)]) == []


def test_allow_wins_then_deny_then_allowed():
    r = AddressRules.from_lists(["127.0.0.2", "::1"], ["127.0.0.0/8", "::/0"])
    assert r is not None
    assert not r.denied("127.0.0.2") and r.denied("127.0.0.3") and not r.denied("10.1.1.1")
    assert not r.denied("::1") and r.denied("2001:db8::1")
    assert r.denied("::ffff:127.0.0.3") and not r.denied("::ffff:127.0.0.2")  # v4 via a v6 socket
    assert AddressRules.from_lists([], []) is None


def test_v6_any_does_not_cover_ipv4_and_mapped_rules_do():
    r = AddressRules.from_lists([], ["::/0"])
    assert r is not None and not r.denied("1.2.3.4") and not r.denied("::ffff:1.2.3.4")
    r = AddressRules.from_lists([], ["::ffff:10.0.0.0/104"])
    assert r is not None and r.denied("10.9.9.9") and not r.denied("11.0.0.0")
    prog = r.program(stream=False)
    assert run(prog, v4("10.9.9.9"), UDP) == 0 and run(prog, v4("11.0.0.1"), UDP) != 0


def test_stream_filter_judges_syns_only():
    r = AddressRules.from_lists([], ["0.0.0.0/0", "::/0"])
    assert r is not None
    prog = r.program(stream=True)
    assert run(prog, v4("1.2.3.4"), SYN) == 0
    assert run(prog, v4("1.2.3.4"), ACK) != 0  # an accepted connection's packets pass
    assert run(r.program(stream=False), v4("1.2.3.4"), UDP) == 0


def _random_rules(rng: random.Random, n: int) -> tuple[list[str], list[str]]:
    def prefix() -> str:
        if rng.random() < 0.6:
            bits = rng.choice([8, 12, 16, 20, 24, 28, 30, 32])
            return str(ipaddress.IPv4Network((rng.getrandbits(32), bits), strict=False))
        bits = rng.choice([16, 32, 48, 56, 64, 80, 96, 112, 127, 128])
        return str(ipaddress.IPv6Network((rng.getrandbits(128), bits), strict=False))

    allow = [prefix() for _ in range(n)]
    deny = [prefix() for _ in range(n)] + rng.choice([[], ["0.0.0.0/0"], ["::/0"], ["any"]])
    deny = [d for w in deny for d in (["0.0.0.0/0", "::/0"] if w == "any" else [w])]
    return allow, deny


def _probes(rng: random.Random, rules: AddressRules, k: int) -> list[str]:
    """Random addresses, and the edges of every interval (where an off-by-one would show)."""
    out = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(k)]
    out += [str(ipaddress.IPv6Address(rng.getrandbits(128))) for _ in range(k)]
    for lo, hi in rules.v4:
        for x in (lo - 1, lo, hi, hi + 1):
            if 0 <= x < 1 << 32:
                out.append(str(ipaddress.IPv4Address(x)))
    for lo, hi in rules.v6:
        for x in (lo - 1, lo, hi, hi + 1):
            if 0 <= x < 1 << 128:
                out.append(str(ipaddress.IPv6Address(x)))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_program_agrees_with_the_rule(seed):
    rng = random.Random(seed)
    allow, deny = _random_rules(rng, rng.choice([1, 3, 10, 40]))
    rules = AddressRules.from_lists(allow, deny)
    assert rules is not None
    prog, dprog = rules.program(stream=True), rules.program(stream=False)
    for addr in _probes(rng, rules, 200):
        want = meaning(allow, deny, addr)
        assert rules.denied(addr) == want, addr
        assert (run(prog, packet(addr), SYN) == 0) == want, addr
        assert (run(dprog, packet(addr), UDP) == 0) == want, addr


def test_a_thousand_cidrs_fit_and_agree():
    """The bench's allow list: 1,000 CIDRs, then deny any (a binary search: ~1 instruction
    per boundary, far below the kernel's 4,096)."""
    rng = random.Random(1000)
    allow = [
        str(
            ipaddress.IPv4Network((rng.getrandbits(32), rng.choice([16, 24, 28, 32])), strict=False)
        )
        for _ in range(999)
    ] + ["127.0.0.1"]
    rules = AddressRules.from_lists(allow, ["0.0.0.0/0", "::/0"])
    assert rules is not None
    prog = rules.program(stream=True)
    assert len(prog) // 8 < BPF_MAXINSNS
    probes = _probes(rng, rules, 300)
    for addr in probes:
        assert (run(prog, packet(addr), SYN) == 0) == rules.denied(addr), addr
    for addr in probes[::20]:
        assert rules.denied(addr) == meaning(allow, ["0.0.0.0/0", "::/0"], addr), addr


def test_too_many_ranges_are_refused_with_a_hint():
    rng = random.Random(7)
    allow = [str(ipaddress.IPv6Network((rng.getrandbits(128), 128))) for _ in range(600)]
    rules = AddressRules.from_lists(allow, ["::/0"])
    assert rules is not None
    with pytest.raises(FilterError, match="merge adjacent prefixes"):
        rules.program(stream=True)


def test_lane_table_is_sorted_and_maps_ipv4():
    r = AddressRules.from_lists(["127.0.0.2"], ["127.0.0.0/8", "::/0"])
    assert r is not None
    t = r.table()
    pairs = [(int.from_bytes(t[i : i + 16]), int.from_bytes(t[i + 16 : i + 32]))
             for i in range(0, len(t), 32)]  # fmt: skip
    assert pairs == sorted(pairs)
    mapped = 0xFFFF << 32
    assert (mapped | 0x7F000000, mapped | 0x7F000001) in pairs
    # ::/0 is cut around the IPv4 part: no IPv4 peer falls in an IPv6 range
    assert (0, mapped - 1) in pairs and (mapped | 0xFFFFFFFF) + 1 == pairs[-1][0]

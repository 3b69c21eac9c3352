"""IPAddressAllow=/IPAddressDeny= as the kernel and the accept lane enforce them.

systemd's rule (systemd.resource-control(5)): an address in the allow list is allowed;
else one in the deny list is denied; else allowed. systemd enforces it with cgroup BPF,
which a container rarely has. activator turns the two lists into the set of denied
addresses — sorted, disjoint intervals, IPv4 and IPv6 apart as in systemd's two maps
(``::/0`` does not cover IPv4 traffic; a v4-mapped rule ``::ffff:a.b.c.d/n`` is the
IPv4 rule it names) — and checks that set in three places:

- the kernel: a classic BPF socket filter (``SO_ATTACH_FILTER``, no privilege needed)
  attached to the listener before ``listen()``, a binary search over the interval
  boundaries. On a stream socket only SYNs are looked at, so a denied client never
  completes a handshake and an accepted connection (which inherits the filter) pays
  three instructions per packet; on a datagram socket every datagram is checked.
- the accept lane (``_lane.c``): the same intervals as one sorted table of 128-bit
  ranges (IPv4 as ``::ffff:a.b.c.d``), a binary search per connection, no Python;
- the event loop's Accept=yes path and the proxy: ``AddressRules.denied()``.

The kernel's check covers what arrives after the filter is attached; the other two
catch connections queued before (a reload that changes the lists re-attaches it).
"""

from __future__ import annotations

import bisect
import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Interval = tuple[int, int]  # inclusive

V4_MAPPED = 0xFFFF << 32  # ::ffff:0.0.0.0
_V4_TOP, _V6_TOP = (1 << 32) - 1, (1 << 128) - 1

BPF_MAXINSNS = 4096  # the kernel's limit for a classic program


class FilterError(ValueError):
    """The rules do not fit in a classic BPF program (the message says how to fix it)."""


def parse_prefix(text: str) -> tuple[int, int, int]:
    """ "10.0.0.0/8" → (4, first, last); a v4-mapped IPv6 prefix is the IPv4 one it maps."""
    addr, _, bits_text = text.partition("/")
    v6 = ":" in addr
    raw = socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, addr)
    width = 128 if v6 else 32
    bits = int(bits_text) if bits_text else width
    value = int.from_bytes(raw, "big")
    if v6 and bits >= 96 and value >> 32 == 0xFFFF:
        value, width, bits, v6 = value & _V4_TOP, 32, bits - 96, False
    host = (1 << (width - bits)) - 1
    first = value & ~host
    return (6 if v6 else 4), first, first | host


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, disjoint, adjacent ones joined."""
    out: list[Interval] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def subtract(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """The addresses of ``a`` not in ``b`` (both merged)."""
    out: list[Interval] = []
    j = 0
    for lo, hi in a:
        while j < len(b) and b[j][1] < lo:
            j += 1
        k = j
        cur = lo
        while k < len(b) and b[k][0] <= hi:
            if b[k][0] > cur:
                out.append((cur, b[k][0] - 1))
            cur = max(cur, b[k][1] + 1)
            k += 1
        if cur <= hi:
            out.append((cur, hi))
    return out


@dataclass(frozen=True)
class AddressRules:
    """The denied addresses of one socket, per family, as sorted disjoint intervals."""

    v4: tuple[Interval, ...]
    v6: tuple[Interval, ...]

    @classmethod
    def from_lists(cls, allow: Iterable[str], deny: Iterable[str]) -> AddressRules | None:
        """None when both lists are empty (nothing to enforce)."""
        sets: dict[tuple[str, int], list[Interval]] = {}
        for verdict, prefixes in (("allow", allow), ("deny", deny)):
            for p in prefixes:
                fam, lo, hi = parse_prefix(p)
                sets.setdefault((verdict, fam), []).append((lo, hi))
        if not sets:
            return None

        def denied(fam: int) -> tuple[Interval, ...]:
            d = merge(sets.get(("deny", fam), ()))
            return tuple(subtract(d, merge(sets.get(("allow", fam), ()))))

        return cls(denied(4), denied(6))

    @property
    def empty(self) -> bool:
        return not self.v4 and not self.v6

    def denied(self, host: str) -> bool:
        """Whether a peer (as accept() names it: "1.2.3.4", "::1", "::ffff:1.2.3.4") is denied."""
        if ":" in host:
            value = int.from_bytes(socket.inet_pton(socket.AF_INET6, host.partition("%")[0]))
            if value >> 32 == 0xFFFF:
                return _inside(self.v4, value & _V4_TOP)
            return _inside(self.v6, value)
        return _inside(self.v4, int.from_bytes(socket.inet_aton(host)))

    def table(self) -> bytes:
        """The accept lane's table: sorted, disjoint (first, last) pairs of 16-byte big-endian
        addresses in one 128-bit space, IPv4 at ::ffff:a.b.c.d (IPv6 ranges over that part
        are cut out of it: ::/0 covers no IPv4 peer)."""
        pairs = [(V4_MAPPED | lo, V4_MAPPED | hi) for lo, hi in self.v4]
        pairs += subtract(list(self.v6), [(V4_MAPPED, V4_MAPPED | _V4_TOP)])
        return b"".join(lo.to_bytes(16, "big") + hi.to_bytes(16, "big") for lo, hi in sorted(pairs))

    def program(self, *, stream: bool) -> bytes:
        """The classic BPF socket filter (packed ``struct sock_filter``s). Raises FilterError."""
        for island in (200, 100, 40):
            try:
                code = _compile(self, stream, island)
            except _TooFar:
                continue
            if len(code) > BPF_MAXINSNS:
                raise FilterError(
                    f"{len(self.v4) + len(self.v6)} denied ranges need {len(code)} BPF "
                    f"instructions, more than the kernel's {BPF_MAXINSNS}: merge adjacent "
                    "prefixes of IPAddressAllow=/IPAddressDeny="
                )
            return b"".join(struct.pack("=HBBI", *i) for i in code)
        raise FilterError("IPAddressAllow=/IPAddressDeny=: no layout of the filter fits")


def _inside(intervals: tuple[Interval, ...], x: int) -> bool:
    i = bisect.bisect_right(intervals, (x, _V6_TOP)) - 1
    return i >= 0 and intervals[i][0] <= x <= intervals[i][1]


# ---------------------------------------------------------------- classic BPF
# linux/filter.h, linux/bpf_common.h
LD, LDX, ST, ALU, JMP, RET = 0x00, 0x01, 0x02, 0x04, 0x05, 0x06
W, B = 0x00, 0x10
ABS, MEM = 0x20, 0x60
RSH = 0x70
JA, JEQ, JGT, JGE, JSET = 0x00, 0x10, 0x20, 0x30, 0x40
K = 0x00
SKF_NET_OFF = -0x100000  # loads relative to the network header (the IP header)
ACCEPT, DROP = 0xFFFFFFFF, 0
TCP_FLAGS, SYN = 13, 0x02  # a stream filter sees the packet from the TCP header on


Program = list[tuple[int, int, int, int]]


class _TooFar(Exception):
    """A jump of the chosen layout does not fit in 8 bits: try denser islands."""


class _Label:
    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = -1


Target = _Label | int  # a label, or 0: the next instruction


class _Asm:
    """Instructions with symbolic forward jumps, resolved once the layout is done."""

    def __init__(self) -> None:
        self.code: list[tuple[int, Target, Target, int | _Label]] = []

    def op(self, code: int, k: int | _Label = 0, jt: Target = 0, jf: Target = 0) -> None:
        self.code.append((code, jt, jf, k))

    def place(self, label: _Label) -> None:
        label.at = len(self.code)

    def resolve(self) -> Program:
        return [
            (code, self._rel(pc, jt), self._rel(pc, jf), self._k(pc, k))
            for pc, (code, jt, jf, k) in enumerate(self.code)
        ]

    @staticmethod
    def _rel(pc: int, t: Target) -> int:
        if isinstance(t, int):
            return t
        assert t.at > pc, "forward jumps only"
        if t.at - pc - 1 > 255:
            raise _TooFar
        return t.at - pc - 1

    @staticmethod
    def _k(pc: int, k: int | _Label) -> int:
        if isinstance(k, _Label):  # ja: 32 bits of offset
            assert k.at > pc, "forward jumps only"
            return k.at - pc - 1
        return k & 0xFFFFFFFF


def _compile(rules: AddressRules, stream: bool, island_every: int) -> Program:
    a = _Asm()
    if stream:  # anything but a SYN belongs to a connection the filter let in
        a.op(LD | B | ABS, TCP_FLAGS)
        a.op(JMP | JSET | K, SYN, 1, 0)
        a.op(RET | K, ACCEPT)
    v6 = _Label()
    a.op(LD | B | ABS, SKF_NET_OFF)  # IP version in the high nibble
    a.op(ALU | RSH | K, 4)
    a.op(JMP | JEQ | K, 6, 0, 1)
    a.op(JMP | JA, v6)
    a.op(JMP | JEQ | K, 4, 1, 0)
    a.op(RET | K, ACCEPT)  # neither: not ours to judge
    a.op(LD | W | ABS, SKF_NET_OFF + 12)  # IPv4 source address
    _tree(a, rules.v4, 1 << 32, _ge_v4, island_every)
    a.place(v6)
    for i in range(4):  # IPv6 source address, word by word, into M[0..3]
        a.op(LD | W | ABS, SKF_NET_OFF + 8 + 4 * i)
        a.op(ST, i)
    _tree(a, rules.v6, 1 << 128, _ge_v6, island_every)
    return a.resolve()


def _ge_v4(a: _Asm, b: int, t: _Label, f: _Label) -> None:
    """Jump to t if the address (in A) is >= b, else to f."""
    a.op(JMP | JGE | K, b, t, f)


def _ge_v6(a: _Asm, b: int, t: _Label, f: _Label) -> None:
    """The same for 128 bits in M[0..3]: word by word, up to b's last non-zero word."""
    words = [(b >> (96 - 32 * i)) & 0xFFFFFFFF for i in range(4)]
    last = max(i for i, w in enumerate(words) if w)
    for i in range(last):
        a.op(LD | MEM, i)
        a.op(JMP | JGT | K, words[i], t, 0)
        a.op(JMP | JEQ | K, words[i], 0, f)
    a.op(LD | MEM, last)
    a.op(JMP | JGE | K, words[last], t, f)


class _Island:
    """A pair of returns leaves jump to; ``first``: where the first jump to it is."""

    __slots__ = ("allow", "deny", "first")

    def __init__(self) -> None:
        self.allow, self.deny, self.first = _Label(), _Label(), -1


def _tree(
    a: _Asm,
    denied: tuple[Interval, ...],
    top: int,
    ge: Callable[[_Asm, int, _Label, _Label], None],
    island_every: int,
) -> None:
    """A binary search over the points where the verdict changes; its leaves jump to the
    nearest `ret` pair ("island") ahead, placed where control never falls through, so a
    leaf costs no instruction and every conditional jump stays within 8 bits."""
    bounds: list[int] = []
    for lo, hi in denied:
        bounds.append(lo)
        if hi + 1 < top:
            bounds.append(hi + 1)
    first_denied = bool(denied) and denied[0][0] == 0
    if first_denied:
        bounds.pop(0)  # region 0 starts at 0: no boundary there
    island = _Island()

    def leaf(region: int) -> _Label:
        if island.first < 0:
            island.first = len(a.code)
        return island.deny if first_denied != (region % 2 == 1) else island.allow

    def emit_island() -> None:
        nonlocal island
        a.place(island.allow)
        a.op(RET | K, ACCEPT)
        a.place(island.deny)
        a.op(RET | K, DROP)
        island = _Island()

    def node(i: int, j: int) -> None:  # regions i..j, i < j
        mid = (i + j + 1) // 2  # x >= bounds[mid-1]: regions mid..j
        t = leaf(mid) if mid == j else _Label()
        f = leaf(i) if i == mid - 1 else _Label()
        if mid != j and mid - 1 - i > 12:  # the false side may outgrow an 8-bit jump
            hop = _Label()
            ge(a, bounds[mid - 1], hop, f)
            a.place(hop)
            a.op(JMP | JA, t)
        else:
            ge(a, bounds[mid - 1], t, f)
        if i != mid - 1:
            a.place(f)
            node(i, mid - 1)
        if 0 <= island.first < len(a.code) - island_every:  # control cannot fall in here
            emit_island()
        if mid != j:
            a.place(t)
            node(mid, j)

    if not bounds:
        a.op(RET | K, DROP if first_denied else ACCEPT)
        return
    node(0, len(bounds))
    emit_island()

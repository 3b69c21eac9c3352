"""A classic BPF interpreter for the opcodes exec/ipfilter.py emits: the filter's verdicts
checked against AddressRules.denied() without a kernel (the kernel tests are elsewhere)."""

from __future__ import annotations

import struct

SKF_NET_OFF = -0x100000


_decoded: dict[bytes, list[tuple[int, int, int, int]]] = {}


def run(program: bytes, net: bytes, transport: bytes) -> int:
    """The filter's return value for a packet: ``net`` its IP header (and more), ``transport``
    what the socket filter sees at offset 0 (the TCP/UDP header on)."""
    code = _decoded.get(program)
    if code is None:
        code = _decoded[program] = [
            struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)
        ]
    a = 0
    mem = [0] * 16
    pc = 0
    steps = 0
    while True:
        steps += 1
        assert steps <= len(code), "a classic program only jumps forward"
        op, jt, jf, k = code[pc]
        pc += 1
        cls = op & 0x07
        if cls == 0x00:  # LD
            mode, size = op & 0xE0, op & 0x18
            if mode == 0x60:
                a = mem[k]
                continue
            assert mode == 0x20, hex(op)
            off = k - (1 << 32) if k & 0x80000000 else k
            data, off = (net, off - SKF_NET_OFF) if off < 0 else (transport, off)
            n = {0x00: 4, 0x08: 2, 0x10: 1}[size]
            if off + n > len(data):
                return 0  # out of the packet: the kernel drops it
            a = int.from_bytes(data[off : off + n], "big")
        elif cls == 0x02:  # ST
            mem[k] = a
        elif cls == 0x04:  # ALU
            assert op & 0xF0 == 0x70, hex(op)  # RSH
            a = (a >> k) & 0xFFFFFFFF
        elif cls == 0x05:  # JMP
            kind = op & 0xF0
            if kind == 0x00:
                pc += k
                continue
            cond = {0x10: a == k, 0x20: a > k, 0x30: a >= k, 0x40: bool(a & k)}[kind]
            pc += jt if cond else jf
        elif cls == 0x06:  # RET
            return k
        else:
            raise AssertionError(f"opcode {op:#x} not expected")

#!/usr/bin/python3
"""Accept=no datagram example: echo every datagram back to its sender.

Takes its socket(s) from LISTEN_FDS and exits after ``--idle-exit`` seconds without
traffic; the next datagram makes the supervisor start it again (datagrams queued in
the socket meanwhile are not lost: the socket stays open in the supervisor).
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _activation import listen_fds, socket_from_fd  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--idle-exit", type=float, default=0, help="exit after this many idle seconds (0: never)"
    )
    args = ap.parse_args()
    socks = [socket_from_fd(fd) for fd, _ in listen_fds()]
    socks = [s for s in socks if s.type == socket.SOCK_DGRAM]
    if not socks:
        print("udp_echo: no datagram socket passed (LISTEN_FDS)", file=sys.stderr)
        return 1
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    last = time.monotonic()
    while True:
        timeout = max(0.0, last + args.idle_exit - time.monotonic()) if args.idle_exit > 0 else None
        events = sel.select(timeout)
        if not events:
            return 0
        for key, _ in events:
            s = key.fileobj
            try:
                data, peer = s.recvfrom(65535)
            except BlockingIOError:
                continue
            s.sendto(data, peer)
        last = time.monotonic()


if __name__ == "__main__":
    sys.exit(main())

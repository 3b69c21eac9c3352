#!/usr/bin/python3
"""Accept=yes example over the LISTEN_FDS protocol (no StandardInput=socket).

Each connection gets its own process; the connection is fd 3, named "connection".
It writes one greeting line saying who answered, and closes.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _activation import listen_fds, socket_from_fd  # noqa: E402


def main() -> int:
    fds = listen_fds()
    if len(fds) != 1:
        print(f"hello: expected one connection fd, got {len(fds)}", file=sys.stderr)
        return 1
    fd, name = fds[0]
    with socket_from_fd(fd) as conn:
        conn.sendall(
            f"hello from pid {os.getpid()}, uid {os.getuid()}, fd {fd} named {name!r}\n".encode()
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

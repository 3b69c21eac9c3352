#!/usr/bin/python3
"""A service that reports, as one JSON line, what activator handed it.

Runs under Debian's /usr/bin/python3 as any user, standard library only. Where
the report goes: with LISTEN_FDS, to the first connection (accepted on fd 3 when
fd 3 is a listener, else fd 3 itself); without, to stdout (inetd style).
argv[1] may be "serve" (Accept=no: keep answering until killed) or "once".
"""

import fcntl
import json
import os
import select
import socket
import stat
import sys


def describe_fd(fd):
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    d = {
        "mode": "socket"
        if stat.S_ISSOCK(st.st_mode)
        else "fifo"
        if stat.S_ISFIFO(st.st_mode)
        else "chr"
        if stat.S_ISCHR(st.st_mode)
        else "file",
        "nonblock": bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK),
        "cloexec": bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC),
    }
    if d["mode"] == "socket":
        s = socket.socket(fileno=fd)
        try:
            d["family"] = s.family.name
            d["type"] = s.type.name
            d["listening"] = bool(s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
            # which listener this is (its place is the contract); abstract names are bytes
            addr = s.getsockname()
            d["address"] = addr.decode(errors="replace") if isinstance(addr, bytes) else addr
        finally:
            s.detach()
    return d


def status_field(name):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split()[1]
    return None


def report():
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        d = describe_fd(fd)
        if d is not None:
            fds[fd] = d
    um = os.umask(0)
    os.umask(um)
    return {
        "pid": os.getpid(),
        "argv": sys.argv,
        "env": dict(os.environ),
        "uid": os.getresuid(),
        "gid": os.getresgid(),
        "groups": sorted(os.getgroups()),
        "cwd": os.getcwd(),
        "umask": um,
        "sigblk": status_field("SigBlk"),
        "sigign": status_field("SigIgn"),
        "fds": fds,
        "sid": os.getsid(0),
    }


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "once"
    n = int(os.environ.get("LISTEN_FDS", "0") or 0)
    rep = report()  # before we open anything ourselves
    line = (json.dumps(rep) + "\n").encode()
    if n and os.environ.get("LISTEN_PID") == str(os.getpid()):
        socks = [socket.socket(fileno=fd) for fd in range(3, 3 + n)]
        first = socks[0]
        if (
            first.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            or first.type == socket.SOCK_DGRAM
        ):
            # answer on whichever passed socket has traffic first
            while True:
                ready, _, _ = select.select(socks, [], [], 30)
                if not ready:
                    return
                s = ready[0]
                if s.type == socket.SOCK_DGRAM:
                    data, addr = s.recvfrom(65536)
                    s.sendto(line, addr)
                else:
                    try:
                        conn, _ = s.accept()
                    except BlockingIOError:
                        continue  # NonBlocking=yes: another process may have taken it
                    conn.setblocking(True)
                    conn.sendall(line)
                    conn.close()
                if mode != "serve":
                    return
        else:
            first.sendall(line)
            first.close()
    else:
        os.write(1, line)


if __name__ == "__main__":
    main()

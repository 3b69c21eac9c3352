#!/usr/bin/python3
"""A Type=notify service speaking sd_notify(3) by hand (stdlib only, any user).

argv[1] is the mode:
  serve     STATUS=waiting; take one connection on fd 3, read a line, READY=1 with
            STATUS=serving, answer with a JSON report of its environment, then keep
            answering connections (a line each) until it reads "exit N" (exits N).
  noready   exit 0 at once, before READY=1
  hang      never READY=1
  watchdog  READY=1, WATCHDOG=1 argv[2] times at a quarter of WATCHDOG_USEC, then silence
  store     with a stored fd named "conn" (LISTEN_FDNAMES): write "again <pid>" on it, exit 0;
            else accept one connection, write "first <pid>", FDSTORE=1 it, exit 1 (a crash)
  reload    READY=1; on SIGHUP: RELOADING=1, READY=1
  one       take one connection, read a line, answer "bye", exit 0
"""

import array
import json
import os
import signal
import socket
import sys
import time


def notify(*lines, fds=()):
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return  # as sd_notify(): nothing to tell
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        s.sendmsg(["\n".join(lines).encode()], anc, 0, path)


def report():
    return {"pid": os.getpid(), "uid": os.getuid(), "env": dict(os.environ)}


def main():
    mode = sys.argv[1]
    names = os.environ.get("LISTEN_FDNAMES", "").split(":")
    if mode == "noready":
        sys.exit(0)
    if mode == "hang":
        notify("STATUS=never ready")
        while True:
            signal.pause()
    if mode == "watchdog":
        notify("READY=1")
        period = int(os.environ["WATCHDOG_USEC"]) / 4e6
        for _ in range(int(sys.argv[2])):
            time.sleep(period)
            notify("WATCHDOG=1")
        while True:
            signal.pause()
    if mode == "reload":

        def hup(*_):
            notify("RELOADING=1")
            notify("READY=1", "STATUS=reloaded")

        signal.signal(signal.SIGHUP, hup)
        notify("READY=1")
        while True:
            signal.pause()
    if mode == "store":
        if "conn" in names:
            conn = socket.socket(fileno=3 + names.index("conn"))
            conn.sendall(f"again {os.getpid()}\n".encode())
            conn.close()
            sys.exit(0)
        listener = socket.socket(fileno=3)
        conn, _ = listener.accept()
        conn.sendall(f"first {os.getpid()}\n".encode())
        notify("FDSTORE=1", "FDNAME=conn", fds=[conn.fileno()])
        os._exit(1)
    if mode == "one":
        conn, _ = socket.socket(fileno=3).accept()
        conn.makefile().readline()
        conn.sendall(b"bye\n")
        sys.exit(0)
    # serve
    notify("STATUS=waiting")
    listener = socket.socket(fileno=3)
    conn, _ = listener.accept()
    conn.makefile().readline()
    notify("READY=1", "STATUS=serving")
    conn.sendall((json.dumps(report()) + "\n").encode())
    conn.close()
    while True:
        conn, _ = listener.accept()
        line = conn.makefile().readline().split()
        if line[:1] == ["exit"]:
            conn.close()
            sys.exit(int(line[1]))
        conn.sendall(b"ok\n")
        conn.close()


if __name__ == "__main__":
    main()

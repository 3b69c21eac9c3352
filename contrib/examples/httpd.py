#!/usr/bin/python3
"""A tiny HTTP server for Accept=no socket activation (standard library only).

It takes its listening sockets from LISTEN_FDS (all of them, whatever their kind),
answers GET with a small page about itself, and exits after ``--idle-exit`` seconds
without a request, so the supervisor starts it again on the next connection. Run by
hand (not activated) it binds ``--port`` on 127.0.0.1 itself.
"""

from __future__ import annotations

import argparse
import http.server
import os
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _activation import listen_fds, socket_from_fd  # noqa: E402

STARTED = time.time()


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "activator-example-httpd/1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = (
            f"hello from pid {os.getpid()} (uid {os.getuid()}, gid {os.getgid()})\n"
            f"up {time.time() - STARTED:.1f} s, socket {self.server.fd_name}\n"
            f"path {self.path}\n"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        sys.stderr.write(f"httpd: {self.address_string()} {fmt % args}\n")


class Server(http.server.HTTPServer):
    fd_name = "unknown"

    def __init__(self, sock: socket.socket, name: str) -> None:
        super().__init__(
            sock.getsockname()[:2] if sock.family != socket.AF_UNIX else ("", 0),
            Handler,
            bind_and_activate=False,
        )
        self.socket.close()
        self.socket = sock
        self.address_family = sock.family
        self.fd_name = name


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--idle-exit", type=float, default=0, help="exit after this many idle seconds (0: never)"
    )
    ap.add_argument("--port", type=int, default=8080, help="port to bind when not socket-activated")
    args = ap.parse_args()

    fds = listen_fds()
    servers = []
    if fds:
        for fd, name in fds:
            sock = socket_from_fd(fd)
            if sock.type != socket.SOCK_STREAM:
                print(f"httpd: fd {fd} ({name}) is not a stream socket, skipped", file=sys.stderr)
                continue
            servers.append(Server(sock, name))
    else:
        sock = socket.create_server(("127.0.0.1", args.port))
        servers.append(Server(sock, f"127.0.0.1:{args.port}"))
    if not servers:
        print("httpd: no stream socket to serve", file=sys.stderr)
        return 1

    sel = selectors.DefaultSelector()
    for srv in servers:
        sel.register(srv.socket, selectors.EVENT_READ, srv)
    last = time.monotonic()
    while True:
        timeout = None
        if args.idle_exit > 0:
            timeout = max(0.0, last + args.idle_exit - time.monotonic())
        events = sel.select(timeout)
        if not events:
            print(f"httpd: idle for {args.idle_exit:g} s, exiting", file=sys.stderr)
            return 0
        for key, _ in events:
            key.data._handle_request_noblock()
        last = time.monotonic()


if __name__ == "__main__":
    sys.exit(main())

"""``/metrics`` in Prometheus' text exposition format, served on the event loop.

The metrics server is part of activator, as the control socket is: it reads the books
the units keep (sockets' counters, services' states, the tally of starts and ends) and
wakes no service. It speaks just enough HTTP/1.1 for a scraper (GET, one answer, then
the connection closes) and imports nothing beyond asyncio: the idle daemon's memory is
a budget (README, Benchmarks).

``--metrics ADDR`` serves it on ``HOST:PORT``, ``[V6]:PORT`` or a unix socket path; a
socket unit with ``X-Activator-Metrics=yes`` serves it on its own listeners, bound as
every listener is (no service behind it).

Names follow Prometheus' conventions: ``activator_`` prefix, ``_total`` counters, base
units (seconds, bytes), one ``unit`` label; instances of an Accept=yes socket count
under their template. ``process_*`` are the names Prometheus' client libraries use for
a process's own resources.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from ..core.errors import ActivatorError
from ..core.log import EventLog
from ..manager.policy import system_state
from ..runtime.books import AcceptBooks
from ..runtime.socket import SocketRuntime
from ..runtime.tally import SPAWN_BUCKETS, Tally
from ..runtime.unit import RuntimeUnit

if TYPE_CHECKING:
    from ..runtime.capture import Capture

_SERVICE_STATES = ("inactive", "activating", "active", "reloading", "deactivating", "failed")
_SOCKET_STATES = ("inactive", "listening", "running", "paused", "failed")
_SYSTEM_STATES = ("starting", "running", "degraded", "stopping")
#: Counters of a socket's books: name, type, help, which sockets (Accept=, None: all), value.
_PER_SOCKET: tuple[tuple[str, str, str, bool | None, Callable[[AcceptBooks], int]], ...] = (
    ("activator_socket_accepted_total", "counter", "connections an Accept=yes socket accepted",
     True, lambda b: b.n_accepted),
    ("activator_socket_triggers_total", "counter",
     "traffic on an Accept=no socket that activated its service", False, lambda b: b.n_triggered),
    ("activator_socket_trigger_limit_pauses_total", "counter",
     "times the trigger limit paused the socket", None, lambda b: b.refused_trigger),
    ("activator_socket_connections", "gauge", "instances of an Accept=yes socket running now",
     True, lambda b: b.n_connections),
)  # fmt: skip
_REQUEST_MAX = 8192
_TIMEOUT = 10.0
_PAGE = os.sysconf("SC_PAGE_SIZE")


class MetricsView(Protocol):
    """What the metrics read of the manager (manager.Manager)."""

    log: EventLog
    sockets: dict[str, SocketRuntime]

    @property
    def captured(self) -> Capture | None:
        """The capture of services' output, if one was ever needed."""
        ...

    tally: Tally
    stopping: bool
    booted: bool
    started: float

    def all_units(self) -> list[RuntimeUnit]: ...


class MetricsServer:
    def __init__(self, manager: MetricsView, addr: str | None) -> None:
        self.manager = manager
        self.addr = addr or ""  # "": only on socket units' listeners (serve_fds)
        self.path = self.addr  # the manager's Server protocol names a server by its path
        self._servers: list[asyncio.base_events.Server] = []
        self._units: dict[str, list[asyncio.base_events.Server]] = {}
        self._starting: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind ADDR and serve. Raises ActivatorError naming the address and the cause."""
        if not self.addr:
            return
        try:
            if self.addr.startswith(("/", "./")):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.addr)
                srv = await asyncio.start_unix_server(self._serve, self.addr, limit=_REQUEST_MAX)
            else:
                srv = await asyncio.start_server(
                    self._serve, sock=bind_address(self.addr), limit=_REQUEST_MAX
                )
        except (OSError, ValueError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise ActivatorError(f"unable to serve metrics on {self.addr}: {why}") from None
        self._servers.append(srv)
        self.manager.log("listen", None, address=self.addr, metrics="/metrics")

    def serve_fds(self, name: str, fds: list[int]) -> None:
        """Serve on a socket unit's listeners (X-Activator-Metrics=yes), bound by the unit
        as root; our duplicates are closed by unserve(), the unit's stay its own."""
        for fd in fds:
            sock = socket.socket(fileno=os.dup(fd))
            sock.setblocking(False)
            task = asyncio.ensure_future(self._serve_on(name, sock))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)

    async def _serve_on(self, name: str, sock: socket.socket) -> None:
        if sock.family == socket.AF_UNIX:
            srv = await asyncio.start_unix_server(self._serve, sock=sock, limit=_REQUEST_MAX)
        else:
            srv = await asyncio.start_server(self._serve, sock=sock, limit=_REQUEST_MAX)
        self._units.setdefault(name, []).append(srv)

    def unserve(self, name: str) -> None:
        for srv in self._units.pop(name, []):
            srv.close()

    async def close(self) -> None:
        for name in list(self._units):
            self.unserve(name)
        for srv in self._servers:
            srv.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(srv.wait_closed(), 1)
        self._servers.clear()
        if self.addr.startswith(("/", "./")):
            with contextlib.suppress(OSError):
                os.unlink(self.addr)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _TIMEOUT)
            line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(line) < 2 or line[0] not in ("GET", "HEAD"):
                writer.write(_answer(405, "text/plain", b"only GET\n"))
            elif line[1].split("?", 1)[0] != "/metrics":
                writer.write(_answer(404, "text/plain", b"see /metrics\n"))
            else:
                body = render(self.manager).encode()
                writer.write(
                    _answer(
                        200, "text/plain; version=0.0.4; charset=utf-8", body, line[0] == "HEAD"
                    )
                )
            await asyncio.wait_for(writer.drain(), _TIMEOUT)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            pass  # a scraper that went away or sent too much: nothing to tell it
        except Exception as e:  # a bug: log it, keep serving
            self.manager.log("failed", None, reason=f"metrics request failed: {e!r}")
        finally:
            writer.close()


def bind_address(addr: str) -> socket.socket:
    """A listening socket on ``IPV4:PORT``, ``[IPV6]:PORT`` or ``:PORT`` (every address,
    IPv6 and IPv4). Addresses are literals: no resolver is loaded into an idle daemon for
    it. Raises ValueError (the address) or OSError (the bind)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected IPV4:PORT, [IPV6]:PORT, :PORT or a unix socket path")
    if host.startswith("[") and host.endswith("]"):
        host, family = host[1:-1], socket.AF_INET6
    elif not host:
        host, family = "::", socket.AF_INET6
    else:
        family = socket.AF_INET
    try:
        socket.inet_pton(family, host)
    except OSError:
        raise ValueError(f"{host!r} is not an IP address") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, int(port)))
        sock.listen(64)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _answer(status: int, ctype: str, body: bytes, head_only: bool = False) -> bytes:
    reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}[status]
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + (b"" if head_only else body)


# ---------------------------------------------------------------- the exposition


def render(m: MetricsView) -> str:
    """Every metric, as the text exposition format (version 0.0.4)."""
    return "".join(_lines(m))


def _family(name: str, kind: str, help: str, samples: Iterable[tuple[str, Any]]) -> Iterator[str]:
    yield f"# HELP {name} {help}\n# TYPE {name} {kind}\n"
    for labels, value in samples:
        yield f"{name}{labels} {_number(value)}\n"


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(v: Any) -> str:
    if isinstance(v, float):
        return repr(v) if v == v and v not in (float("inf"), float("-inf")) else str(v)
    return str(int(v))


def _lines(m: MetricsView) -> Iterator[str]:
    socks = sorted(m.sockets.values(), key=lambda s: s.name)
    units = m.all_units()
    services = sorted(
        (u for u in units if u.kind == "service" and getattr(u, "connection", None) is None),
        key=lambda u: u.name,
    )
    yield from _family(
        "activator_system_state",
        "gauge",
        "systemd's is-system-running: 1 for the state activator is in",
        (
            (_labels(state=st), int(st == now))
            for now in [system_state(not m.booted, m.stopping, units)]
            for st in _SYSTEM_STATES
        ),
    )
    accept = [s for s in socks if s.section.Accept]
    for name, kind, help, which, count in _PER_SOCKET:
        yield from _family(
            name,
            kind,
            help,
            (
                (_labels(unit=s.name), count(s.books))
                for s in socks
                if which is None or s.section.Accept == which
            ),
        )
    yield from _family(
        "activator_socket_refused_total",
        "counter",
        "connections refused, by reason",
        (
            (_labels(unit=s.name, reason=reason), n)
            for s in accept
            for reason, n in (
                ("max-connections", s.books.refused_limit),
                ("max-connections-per-source", s.books.refused_per_source),
            )
        ),
    )
    yield from _family(
        "activator_socket_state",
        "gauge",
        "1 for the socket's state",
        (
            (_labels(unit=s.name, state=st), int(str(s.state) == st))
            for s in socks
            for st in _SOCKET_STATES
        ),
    )
    yield from _family(
        "activator_service_state",
        "gauge",
        "1 for the service's ActiveState (instances of Accept=yes sockets are not listed)",
        (
            (_labels(unit=s.name, state=st), int(s.active_state == st))
            for s in services
            for st in _SERVICE_STATES
        ),
    )
    yield from _family(
        "activator_service_restarts_total",
        "counter",
        "automatic restarts (Restart=)",
        ((_labels(unit=s.name), getattr(s, "n_restarts", 0)) for s in services),
    )
    t = m.tally
    yield from _family(
        "activator_service_starts_total",
        "counter",
        "main processes started (an Accept=yes socket's instances under the template)",
        ((_labels(unit=u), n) for u, n in sorted(t.starts.items())),
    )
    yield from _family(
        "activator_service_ends_total",
        "counter",
        "runs that ended, by systemd's result (success, exit-code, signal, timeout …)",
        ((_labels(unit=u, result=r), n) for (u, r), n in sorted(t.ends.items())),
    )
    yield "# HELP activator_spawn_seconds time from spawning to the child's exec (event loop)\n"
    yield "# TYPE activator_spawn_seconds histogram\n"
    total = 0
    for bound, n in zip((*SPAWN_BUCKETS, float("inf")), t.spawn_counts, strict=True):
        total += n
        le = "+Inf" if bound == float("inf") else repr(bound)
        yield f'activator_spawn_seconds_bucket{{le="{le}"}} {total}\n'
    yield f"activator_spawn_seconds_sum {t.spawn_sum!r}\nactivator_spawn_seconds_count {total}\n"
    log = m.log
    yield from _family(
        "activator_log_lines_total", "counter", "lines activator logged", [("", log.lines)]
    )
    yield from _family(
        "activator_log_dropped_lines_total",
        "counter",
        "log lines dropped because the log was not read",
        [("", log.dropped_total)],
    )
    cap = m.captured
    yield from _family(
        "activator_service_output_lines_total",
        "counter",
        "lines services wrote to stdout/stderr (the journal)",
        [("", cap.lines if cap is not None else 0)],
    )
    yield from _family(
        "activator_service_output_bytes_total",
        "counter",
        "bytes services wrote to stdout/stderr (the journal)",
        [("", cap.bytes if cap is not None else 0)],
    )
    yield from _process(m.started)


def _process(started: float) -> Iterator[str]:
    """activator's own resources, with the names of Prometheus' process collector."""
    times = os.times()
    try:
        with open("/proc/self/statm") as f:
            vsz, rss = (int(x) for x in f.read().split()[:2])
    except OSError:
        vsz = rss = 0
    try:
        fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        fds = 0
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    for name, kind, help, value in (
        ("process_cpu_seconds_total", "counter", "user+system CPU", times.user + times.system),
        ("process_resident_memory_bytes", "gauge", "resident memory", rss * _PAGE),
        ("process_virtual_memory_bytes", "gauge", "virtual memory", vsz * _PAGE),
        ("process_open_fds", "gauge", "open file descriptors", fds),
        ("process_max_fds", "gauge", "RLIMIT_NOFILE", soft if soft >= 0 else 0),
        ("process_start_time_seconds", "gauge", "start time, Unix seconds", started),
    ):  # fmt: skip
        yield from _family(name, kind, help, [("", value)])

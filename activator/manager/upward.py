"""Readiness upward: tell the supervisor above activator how activator is doing.

activator is usually PID 1, but it also runs under another supervisor, which wants to
know when activator is ready, as it would of any service:

- **systemd** (``Type=notify``, contrib/systemd/activator.service) sets ``NOTIFY_SOCKET``
  in activator's environment. activator sends sd_notify(3) datagrams there:
  ``STATUS=`` while it starts, ``READY=1`` the moment the manager logs ``ready``,
  ``STOPPING=1`` when it begins to stop, and ``WATCHDOG=1`` every half of
  ``WATCHDOG_USEC`` when the unit sets ``WatchdogSec=`` (``WATCHDOG_PID``, when set,
  must be activator's pid, as sd_watchdog_enabled() checks).
- **s6** (contrib/s6/: ``notification-fd``) passes a pipe; ``--ready-fd N`` names it,
  and activator writes one newline there and closes it when ready, once.

The watchdog pings come from a timer on activator's own event loop, so a loop that
hangs stops them: that is what the supervisor's watchdog is there to catch. Nothing
here ever blocks the loop: the datagram socket is non-blocking, and a datagram the
supervisor's queue will not take is dropped with a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
from collections.abc import Callable, Mapping

Log = Callable[..., None]


class ReadyFdError(ValueError):
    """``--ready-fd N`` names no descriptor activator can write to: a usage error."""


def check_ready_fd(fd: int) -> int:
    """The fd of ``--ready-fd``, made close-on-exec so no service inherits it.

    Raises ReadyFdError naming the fd and the cause.
    """
    if fd < 0:
        raise ReadyFdError(f"--ready-fd {fd}: not a file descriptor number")
    if fd <= 2:
        raise ReadyFdError(f"--ready-fd {fd}: stdin, stdout and stderr are not for readiness")
    try:
        mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    except OSError as e:
        raise ReadyFdError(f"--ready-fd {fd}: not an open file descriptor ({e.strerror})") from None
    if mode not in (os.O_WRONLY, os.O_RDWR):
        raise ReadyFdError(f"--ready-fd {fd}: not open for writing")
    os.set_inheritable(fd, False)
    return fd


def notify_address(value: str) -> str | bytes | None:
    """sd_notify's address forms: an absolute path, or ``@name`` in the abstract namespace.
    None for anything else (systemd 253's ``vsock:`` is not handled)."""
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()
    return None


def watchdog_interval(environ: Mapping[str, str], pid: int) -> tuple[float | None, str | None]:
    """(seconds between pings, None) when the supervisor asks for them, as systemd 252's
    sd_watchdog_enabled() decides: ``WATCHDOG_USEC`` a number neither 0 nor infinity and
    ``WATCHDOG_PID``, when set, our pid. (None, why) when it does not; why is None when
    nothing was asked, and says what is wrong with what was."""
    raw = environ.get("WATCHDOG_USEC")
    if raw is None:
        return None, None
    if not raw.isascii() or not raw.isdigit() or int(raw) in (0, 2**64 - 1) or int(raw) >= 2**64:
        return None, f"WATCHDOG_USEC={raw!r} is not a time in microseconds"
    owner = environ.get("WATCHDOG_PID")
    if owner is not None:
        if not owner.isascii() or not owner.isdigit() or int(owner) <= 0:
            return None, f"WATCHDOG_PID={owner!r} is not a pid"
        if int(owner) != pid:
            return None, None  # meant for another process (a wrapper that exec'd us did not)
    return int(raw) / 1e6 / 2, None


class Upward:
    """The supervisor above activator, if any: its NOTIFY_SOCKET and/or a ready fd."""

    def __init__(
        self,
        log: Log,
        *,
        notify_socket: str | None = None,
        watchdog: float | None = None,
        ready_fd: int | None = None,
    ) -> None:
        self.log = log
        self.ready_fd = ready_fd
        self.watchdog = watchdog  # seconds between WATCHDOG=1, or None
        self.pings = 0
        self._address = notify_address(notify_socket) if notify_socket else None
        self._sock: socket.socket | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._failing = False  # a send failed: say so once, not on every ping
        if notify_socket and self._address is None:
            log(
                "warning",
                None,
                reason=f"NOTIFY_SOCKET={notify_socket!r} is neither a path nor @abstract; "
                "the supervisor will not hear from activator",
            )
        if self._address is not None:
            self._sock = socket.socket(
                socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
            )

    @classmethod
    def from_environ(
        cls, log: Log, environ: Mapping[str, str] = os.environ, ready_fd: int | None = None
    ) -> Upward:
        """What the supervisor put in activator's environment (NOTIFY_SOCKET, WATCHDOG_*),
        plus ``--ready-fd``. The variables stay set: a re-executed activator needs them."""
        notify_socket = environ.get("NOTIFY_SOCKET") or None
        watchdog, why = watchdog_interval(environ, os.getpid())
        if why is not None:
            log("warning", None, reason=f"no watchdog pings: {why}")
        return cls(
            log,
            notify_socket=notify_socket,
            watchdog=watchdog if notify_socket else None,
            ready_fd=ready_fd,
        )

    @property
    def active(self) -> bool:
        return self._sock is not None or self.ready_fd is not None

    # ------------------------------------------------------------ the manager's moments
    def starting(self, status: str) -> None:
        """Where start-up is (``STATUS=``), and the watchdog from now on."""
        self._send(f"STATUS={status}")
        if self.watchdog is not None and self._timer is None:
            with contextlib.suppress(RuntimeError):  # no loop yet: ready() starts it
                self._ping(asyncio.get_running_loop())

    def ready(self, status: str) -> None:
        """activator is ready: ``READY=1``, and the newline on the ready fd (once)."""
        self._send(f"READY=1\nSTATUS={status}")
        if self.watchdog is not None and self._timer is None:
            self._ping(asyncio.get_running_loop())
        fd, self.ready_fd = self.ready_fd, None
        if fd is not None:
            try:
                os.write(fd, b"\n")
            except OSError as e:  # the supervisor closed its end: it no longer listens
                self.log(
                    "warning", None, reason=f"unable to write to --ready-fd {fd}: {e.strerror}"
                )
            finally:
                os.close(fd)

    def stopping(self, status: str = "stopping every service") -> None:
        self._send(f"STOPPING=1\nSTATUS={status}")

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.ready_fd is not None:  # never ready: the supervisor sees the pipe close
            with contextlib.suppress(OSError):
                os.close(self.ready_fd)
            self.ready_fd = None

    # ------------------------------------------------------------ sending
    def _ping(self, loop: asyncio.AbstractEventLoop) -> None:
        self._send("WATCHDOG=1")
        self.pings += 1
        assert self.watchdog is not None
        self._timer = loop.call_later(self.watchdog, self._ping, loop)

    def _send(self, message: str) -> None:
        if self._sock is None or self._address is None:
            return
        try:
            self._sock.sendto(message.encode(), self._address)
        except OSError as e:
            if not self._failing:
                self._failing = True
                self.log(
                    "warning",
                    None,
                    reason=f"unable to send {message.split(chr(10), 1)[0]!r} to the "
                    f"supervisor at NOTIFY_SOCKET: {e.strerror}",
                )
            return
        if self._failing:
            self._failing = False
            self.log("warning", None, reason="the supervisor's NOTIFY_SOCKET takes messages again")

"""Listeners that stop listening: seen at once, whether or not activator reads them now.

An ``Accept=no`` service shares its listeners' open file descriptions with activator. If
it calls shutdown() on one, the listener stops listening for both (a TCP listener goes
to CLOSE, a unix one refuses connections), and every later client is refused. systemd
sees this only when it polls the listener again (socket_dispatch_io(): "Got POLLHUP on a
listening socket. The service probably invoked shutdown() on it, and should better not
do that.") and fails the socket; activator did not look at all, and re-triggered the
service on the hang-up until the start limit.

One epoll fd watches every bound listener for hang-ups only (EPOLLRDHUP; EPOLLHUP and
EPOLLERR always come), one-shot, for the listener's whole life — also while its service
runs and activator does not read it. The event loop watches that one fd.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
from collections.abc import Callable

#: callback(events): the listener hung up (EPOLLHUP, EPOLLRDHUP) or has an error (EPOLLERR)
Hungup = Callable[[int], None]

_EVENTS = select.EPOLLRDHUP | select.EPOLLONESHOT


class HangupWatch:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._epoll: select.epoll | None = None
        self._callbacks: dict[int, Hungup] = {}

    def watch(self, fd: int, callback: Hungup) -> None:
        """Call ``callback(events)`` once when ``fd`` hangs up. Call unwatch() before
        closing it: a duplicate a service holds keeps the registration alive."""
        if self._epoll is None:
            self._epoll = select.epoll()
            self._loop.add_reader(self._epoll.fileno(), self._ready)
        self._epoll.register(fd, _EVENTS)
        self._callbacks[fd] = callback

    def unwatch(self, fd: int) -> None:
        if self._callbacks.pop(fd, None) is not None and self._epoll is not None:
            with contextlib.suppress(OSError):
                self._epoll.unregister(fd)

    def close(self) -> None:
        if self._epoll is not None:
            self._loop.remove_reader(self._epoll.fileno())
            self._epoll.close()
            self._epoll = None
        self._callbacks.clear()

    def _ready(self) -> None:
        if self._epoll is None:
            return
        for fd, events in self._epoll.poll(0):
            callback = self._callbacks.pop(fd, None)
            with contextlib.suppress(OSError):
                self._epoll.unregister(fd)  # one-shot already; gone from our books too
            if callback is not None:
                callback(events)


def describe(events: int) -> str:
    """systemd's words for what a listener reported."""
    if events & (select.EPOLLHUP | select.EPOLLRDHUP):
        return (
            "Got POLLHUP on a listening socket. The service probably invoked shutdown() "
            "on it, and should better not do that."
        )
    return f"Got unexpected poll event (0x{events:x}) on socket."


def hung_up(fd: int) -> int:
    """The hang-up events a listener shows now (0: none); for a reader that was woken and
    must tell traffic from a hang-up, as systemd checks revents != EPOLLIN."""
    p = select.poll()
    p.register(fd, select.POLLIN | select.POLLRDHUP)
    for _fd, revents in p.poll(0):
        return revents & (select.POLLHUP | select.POLLRDHUP | select.POLLERR)
    return 0

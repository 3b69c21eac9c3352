"""What an sd_notify() datagram means to a service (systemd's service_notify_message()).

The notify server (notify.py) attributes a datagram to a service; this module decides
whether the sender may speak (``NotifyAccess=``), reads the fields and the fds that came
with it, and tells the state machine what happened through its events (``on_ready``,
``on_reloading``, ``on_stopping``, ``on_mainpid``, ``on_watchdog_trigger``,
``extend_timeout``). The machine decides what each event does in its current state.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Protocol

from ..units.names import fdname_ok
from .notify import FdStore

_WHO = {"none": "nobody", "main": "the main process", "exec": "the main and control processes"}


class Notified(Protocol):
    """The service side (service.Service)."""

    name: str
    ctx: Any
    main_pid: int | None
    control_pid: int | None
    status_text: str
    status_errno: int
    fd_store: FdStore
    watchdog: Any

    @property
    def notify_access(self) -> str: ...
    def warn_once(self, key: str, message: str) -> None: ...
    def on_mainpid(self, text: str, uid: int | None) -> None: ...
    def on_reloading(self) -> None: ...
    def on_ready(self) -> None: ...
    def on_stopping(self) -> None: ...
    def on_watchdog_trigger(self) -> None: ...
    def extend_timeout(self, usec: int) -> None: ...


def dispatch(svc: Notified, pid: int, uid: int | None, fields: dict[str, str], fds: list[int]):
    """One datagram from ``pid`` (a process of ``svc``); takes and closes ``fds``, but for
    those the fd store keeps."""
    try:
        if _allowed(svc, pid):
            _apply(svc, uid, fields, fds)
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        fds.clear()


def _allowed(svc: Notified, pid: int) -> bool:
    access = svc.notify_access
    if access == "all":
        return True
    if access == "main" and pid == svc.main_pid:
        return True
    if access == "exec" and pid in (svc.main_pid, svc.control_pid):
        return True
    svc.warn_once(
        f"notify-{pid}",
        f"notification from pid {pid} refused: NotifyAccess={access} lets {_WHO[access]} send",
    )
    return False


def _apply(svc: Notified, uid: int | None, fields: dict[str, str], fds: list[int]) -> None:
    get = fields.get
    if "MAINPID" in fields:
        svc.on_mainpid(fields["MAINPID"], uid)
    if get("RELOADING") == "1":
        svc.on_reloading()
    if get("READY") == "1":
        svc.on_ready()
    if get("STOPPING") == "1":
        svc.on_stopping()
    if "STATUS" in fields:
        svc.status_text = fields["STATUS"][:4096]
    if "ERRNO" in fields:
        with contextlib.suppress(ValueError):
            svc.status_errno = max(0, int(fields["ERRNO"]))
    if "EXTEND_TIMEOUT_USEC" in fields:
        with contextlib.suppress(ValueError):
            svc.extend_timeout(int(fields["EXTEND_TIMEOUT_USEC"]))
    wd = get("WATCHDOG")
    if wd == "1":
        svc.watchdog.reset()
    elif wd == "trigger":
        svc.on_watchdog_trigger()
    if "WATCHDOG_USEC" in fields:
        with contextlib.suppress(ValueError):
            svc.watchdog.set_usec(int(fields["WATCHDOG_USEC"]))
    if get("FDSTOREREMOVE") == "1":
        name = get("FDNAME", "")
        n = svc.fd_store.remove(name)
        if n:
            svc.ctx.log("fdstore", svc.name, removed=n, name=name, stored=len(svc.fd_store))
    if get("FDSTORE") == "1" and fds:
        _store(svc, fields, fds)


def _store(svc: Notified, fields: dict[str, str], fds: list[int]) -> None:
    """FDSTORE=1: keep the fds (FDNAME=, FDPOLL=0) within FileDescriptorStoreMax=."""
    store = svc.fd_store
    name = fields.get("FDNAME") or "stored"
    if not fdname_ok(name):
        svc.warn_once("fdname", f"FDNAME={name!r} is not a valid fd name; using 'stored'")
        name = "stored"
    if store.limit <= 0:
        svc.warn_once("fdstore", "FDSTORE=1 ignored: FileDescriptorStoreMax= is 0")
        return
    taken = list(fds)
    fds.clear()
    added, rest = store.add(taken, name, poll=fields.get("FDPOLL") != "0")
    fds.extend(rest)  # closed by dispatch()
    if rest:
        svc.warn_once(
            "fdstore-full",
            f"fd store full (FileDescriptorStoreMax={store.limit}) "
            "or fd already stored; extra fds closed",
        )
    if added:
        svc.ctx.log("fdstore", svc.name, added=added, name=name, stored=len(store))

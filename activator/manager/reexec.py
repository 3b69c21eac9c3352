"""Live re-exec: replace the running activator with a fresh exec of itself (an upgrade).

``activatorctl daemon-reexec`` or SIGUSR2 (SIGTERM stays "stop", as a container needs).
As systemd's daemon-reexec: the process stays (same PID, so every service stays its
child and PID 1 stays PID 1), the program is loaded anew, and everything running is
handed over — every listener fd, the fd stores, the notify sockets, the control socket
with its queue, the running services and their timers — so no connection is refused
and no service is restarted.

How:

1. Checked first (the answer says why not): not while stopping or already
   re-executing; the unit files must load for every unit that is not inactive (the new
   program reads them again; a running unit whose file is gone or broken could not be
   carried over).
2. Quiet: the sockets stop being read (their connections queue in the kernel; an accept
   lane's thread stops), the jobs still running are waited for (``QUIESCE``), the
   control socket stops accepting and the requests in flight get their answers
   (``ANSWER``; the caller of daemon-reexec among them), the notify sockets are read
   one last time and then left to queue.
3. Serialized: one JSON document (the manager's, then each unit's own ``serialize()``,
   systemd's *_serialize()) in a memfd, and every fd it names made inheritable.
   Timers are monotonic deadlines, which mean the same in the new process.
4. exec: ``python -m activator`` with the same arguments and ``--deserialize FD``.
   SIGTERM, SIGINT, SIGHUP and SIGUSR2 are blocked across it (a signal that comes
   meanwhile waits until the new process can act on it); SIGCHLD is blocked anyway, so
   children that exit meanwhile stay zombies for the new reaper.
5. The new process loads the unit files, builds its units and, instead of booting,
   gives each its record (``restore()``); the job engine takes their states as they
   are, so nothing starts or stops. Then it serves the control socket it was handed
   and logs ``ready``.

If exec() itself fails (the interpreter is gone), everything resumes in the old process
and the failure is logged.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from ..core.errors import ActivatorError, RefusedError
from ..core.log import EventLog
from ..exec.dynamic import DynamicUsers
from ..runtime.notify import NotifyServer
from ..runtime.service import Service
from ..runtime.socket import SocketRuntime
from ..runtime.target import Placeholder, Target
from ..runtime.unit import RuntimeUnit
from ..units import Problem, UnitSet
from ..units.model import SocketUnit
from .jobs import Engine

if TYPE_CHECKING:  # imported when a first service needs it (manager.capture)
    from ..runtime.capture import Capture

FLAG = "--deserialize"
VERSION = 1
QUIESCE = 10.0  # seconds for the running jobs to finish
ANSWER = 5.0  # seconds for the control requests in flight to be answered
#: Held back across the exec, delivered once the new process can act on them.
SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR2}


class Control(Protocol):
    """The control socket, as a re-exec hands it over (control.server.ControlServer):
    held (accepting nothing) since the re-exec was asked for."""

    def release(self) -> None: ...
    async def detach(self, timeout: float) -> int | None: ...
    def reattach(self, fd: int) -> None: ...


class Registry(Protocol):
    """What a re-exec uses of the manager (manager.Manager)."""

    log: EventLog
    stopping: bool
    units: UnitSet
    sockets: dict[str, SocketRuntime]
    services: dict[str, Service]
    targets: dict[str, Target]
    asked: set[str]
    started: float
    generation: int
    run_id: str
    argv: list[str]
    engine: Engine
    notify: NotifyServer | None
    operation_lock: asyncio.Lock
    dynamic_users: DynamicUsers

    @property
    def capture(self) -> Capture:
        """Services' stdout/stderr, made on first use."""
        ...

    @property
    def captured(self) -> Capture | None:
        """The capture if it was made."""
        ...

    def load_units(self) -> tuple[UnitSet, list[Problem]]: ...
    def unit(self, name: str) -> Any: ...
    def log_exception(self, e: BaseException) -> None: ...


# ---------------------------------------------------------------- the old process


def check(m: Registry) -> None:
    """Refuse a re-exec that cannot carry everything over. Raises RefusedError."""
    if m.stopping:
        raise RefusedError("activator is shutting down")
    units, problems = m.load_units()
    broken = {p.unit for p in problems if p.severity == "error"}
    running: list[RuntimeUnit] = [*m.sockets.values(), *m.services.values()]
    lost = [
        u.name
        for u in running
        if u.active_state != "inactive" and (u.name in broken or units.get(u.name) is None)
    ]
    if lost:
        raise RefusedError(
            "daemon-reexec refused: the unit files of "
            + ", ".join(sorted(lost))
            + " are gone or have errors, and they are not inactive (reload first)"
        )


async def run(m: Registry, control: Control | None) -> None:
    """Quiet everything, hand it over, exec. Returns only when the exec failed (logged;
    everything runs on as before)."""
    async with m.operation_lock:  # after a reload or an operator's start/stop in progress
        for sock in m.sockets.values():
            sock.unwatch()  # connections queue in the kernel from here on
        try:
            await asyncio.wait_for(m.engine.idle(), QUIESCE)
        except TimeoutError:
            busy = ", ".join(sorted(m.engine.jobs))
            m.log("failed", None, reason=f"daemon-reexec: jobs still running after "
                  f"{QUIESCE:g}s ({busy}); carrying on as before")  # fmt: skip
            _resume(m, None, control)
            return
        control_fd = await control.detach(ANSWER) if control is not None else None
        if m.notify is not None:
            m.notify.drain()
            m.notify.detach()
        keep: set[int] = set()
        error: Exception
        try:
            state = serialize(m, control_fd, keep)
            error = execute(m, state, keep)
        except Exception as e:  # a bug: nothing was handed over, carry on
            m.log_exception(e)
            error = e
        m.log("failed", None, reason=f"daemon-reexec: unable to re-execute: {error}")
        _resume(m, control_fd, control)


def _resume(m: Registry, control_fd: int | None, control: Control | None) -> None:
    loop = asyncio.get_running_loop()
    if m.notify is not None:
        m.notify.start(loop)
    if control is not None:
        if control_fd is not None:
            control.reattach(control_fd)
        else:
            control.release()
    for sock in m.sockets.values():
        sock.rewatch_later(0)


def serialize(m: Registry, control_fd: int | None, keep: set[int]) -> dict[str, Any]:
    def carry(fd: int) -> int:
        keep.add(fd)
        return fd

    if control_fd is not None:
        keep.add(control_fd)
    notify = m.notify.sockets() if m.notify is not None else {}
    keep.update(fd for _path, fd in notify.values())
    return {
        "version": VERSION,
        "generation": m.generation + 1,
        "run_id": m.run_id,
        "started": m.started,
        "asked": sorted(m.asked),
        "control": control_fd,
        "notify": {str(uid): [path, fd] for uid, (path, fd) in notify.items()},
        "capture": m.captured.serialize(carry) if m.captured is not None else None,
        "dynamic": m.dynamic_users.serialize(carry),
        "recent": {unit: list(lines) for unit, lines in m.log.recent.items()},
        "sockets": {name: s.serialize(carry) for name, s in m.sockets.items()},
        "services": {name: s.serialize(carry) for name, s in m.services.items()},
        "targets": {
            name: [str(t.state), t.since]
            for name, t in m.targets.items()
            if not isinstance(t, Placeholder)
        },
    }


def execute(m: Registry, state: dict[str, Any], fds: Iterable[int]) -> OSError:
    """exec() the same program with ``state``; returns only with why it failed."""
    memfd = os.memfd_create("activator-reexec", 0)  # no MFD_CLOEXEC: the new process reads it
    data = json.dumps(state, separators=(",", ":")).encode()
    view = memoryview(data)
    while view:
        view = view[os.write(memfd, view) :]
    os.lseek(memfd, 0, os.SEEK_SET)
    fds = list(fds)
    for fd in fds:
        os.set_inheritable(fd, True)
    argv = [sys.executable, "-m", "activator", *m.argv, FLAG, str(memfd)]
    m.log("reexec", None, pid=os.getpid(), generation=state["generation"], fds=len(fds))
    m.log.flush_now()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        os.execv(sys.executable, argv)
    except OSError as e:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        for fd in fds:
            with contextlib.suppress(OSError):
                os.set_inheritable(fd, False)
        os.close(memfd)
        return e
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------- the new process


def read_state(fd: int) -> dict[str, Any]:
    """The document a re-exec left in ``fd`` (closed here). Raises ActivatorError."""
    try:
        with os.fdopen(fd, "rb") as f:
            state = json.loads(f.read())
    except (OSError, ValueError, RecursionError) as e:
        raise ActivatorError(f"unable to read the state of the re-exec from fd {fd}: {e!r}") from e
    if not isinstance(state, dict) or state.get("version") != VERSION:
        raise ActivatorError(f"the state of the re-exec is not version {VERSION}")
    return state


#: Options the next program must not see again: the previous hand-over, and the
#: readiness fd (written and closed once, at the first ready; s6 reads it once).
_ONCE = (FLAG, "--ready-fd")


def strip_flag(argv: list[str]) -> list[str]:
    """The command line without a previous ``--deserialize FD`` or ``--ready-fd N``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _ONCE:
            skip = True
        elif not arg.startswith(tuple(f + "=" for f in _ONCE)):
            out.append(arg)
    return out


def adopt_notify(state: dict[str, Any], server: NotifyServer) -> None:
    """The notify sockets of the activator this process replaced, with what they queued."""
    for uid, (path, fd) in state["notify"].items():
        server.adopt(int(uid), path, fd)


def add_instances(units: UnitSet, state: dict[str, Any]) -> UnitSet:
    """Socket instances loaded on demand before (``start foo@bar.socket``) again."""
    for name in state["sockets"]:
        if name not in units.sockets:
            model = units.get(name)
            if isinstance(model, SocketUnit):
                units = units.with_instance(model)
    return units


def restore(m: Registry, state: dict[str, Any], close: Callable[[int], None] = os.close) -> None:
    """Give every unit its record; what nobody takes is closed. A unit that cannot be
    restored (a bug) is logged and left as built: the others go on."""
    m.started = state["started"]
    if state.get("capture") is not None:  # before any unit: their processes write on
        m.capture.restore(state["capture"])
    m.dynamic_users.adopt(state.get("dynamic", {}))  # the services take theirs again below
    m.log.recent.update(
        (unit, collections.deque(lines, maxlen=10)) for unit, lines in state["recent"].items()
    )
    unused: list[int] = []
    for name, d in state["sockets"].items():
        sock = m.sockets.get(name)
        if sock is None:
            unused += [fd for _a, fd, _l in d["listeners"]]
            continue
        try:
            unused += sock.restore(d)
        except Exception as e:
            m.log("failed", name, reason=f"daemon-reexec: unable to carry it over: {e!r}")
            m.log_exception(e)
    for name, d in state["services"].items():
        svc = m.services.get(name) or m.unit(name)
        if not isinstance(svc, Service):
            unused += [fd for fd, _n, _p in d["fd_store"]]
            unused += [d["owned_fd"]] if d["owned_fd"] is not None else []
            continue
        try:
            svc.restore(d)
        except Exception as e:
            m.log("failed", name, reason=f"daemon-reexec: unable to carry it over: {e!r}")
            m.log_exception(e)
    for name, (target_state, since) in state["targets"].items():
        target = m.targets.get(name)
        if target is not None:
            target.restore(target_state, since)
    for fd in unused:
        with contextlib.suppress(OSError):
            close(fd)
    m.dynamic_users.drop_unused()
    m.engine.prime([*m.sockets.values(), *m.services.values(), *m.targets.values()])


def unblock_signals() -> None:
    """The new process handles them now: what came during the exec is delivered."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)

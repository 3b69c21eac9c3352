"""What a dead activator left running: found and stopped by the next one (issue 15).

activator that is not PID 1 can die uncleanly (SIGKILL, the OOM killer, a crash). Its
services then run on unsupervised, and an ``Accept=no`` one still holds its listener:
the next activator could not bind that port. PID 1's death takes the container down
with it; for everyone else there is a state record beside the control socket
(``/run/activator/generation.json``): this activator's pid, the start time of that pid
(so a reused pid is not mistaken for it), the boot, and a run id.

Every process activator spawns has an ``INVOCATION_ID`` that begins with the run id
(plan.invocation_id(), the accept lane's twin in C). At start-up, a record whose
activator is gone means an unclean death: every process whose environment carries that
prefix is what the dead one left, with the sessions and process groups they lead or
belong to (every process activator spawns leads its own session). They get SIGTERM,
``GRACE`` seconds, then SIGKILL; then the new activator binds. A clean stop removes the
record; a re-exec keeps it (same pid, same run).

What escapes: a process that both left its service's session and started over with an
environment of its own; and where root may not read other users' environments (no
CAP_SYS_PTRACE, as in a container that is not PID 1 of its own), those users' processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..core import procfs

NAME = "generation.json"
GRACE = 5.0  # seconds between SIGTERM and SIGKILL for what a dead activator left
RUN_ID_HEX = 16  # hex digits of the run id: half of INVOCATION_ID, the rest stays random


@dataclass(frozen=True)
class Record:
    pid: int
    start: int  # the pid's start time, clock ticks after boot (/proc/PID/stat field 22)
    boot: str
    run: str

    def as_json(self) -> str:
        return json.dumps(
            {"pid": self.pid, "start": self.start, "boot": self.boot, "run": self.run}
        )


def record_path(control_path: str | None) -> str | None:
    """Beside the control socket; None without one (nowhere the next activator looks)."""
    if not control_path:
        return None
    return os.path.join(os.path.dirname(os.path.abspath(control_path)), NAME)


def new_run_id() -> str:
    return os.urandom(RUN_ID_HEX // 2).hex()


def boot_id() -> str:
    return procfs.read_text("/proc/sys/kernel/random/boot_id").strip()


def start_time(pid: int) -> int | None:
    """When a process started (ticks after boot); None when it is gone."""
    fields = procfs.stat_fields(pid, 19)
    return None if fields is None else fields[0]


def mine(run: str) -> Record:
    pid = os.getpid()
    return Record(pid, start_time(pid) or 0, boot_id(), run)


def read(path: str) -> Record | None:
    """The record at ``path``; None when there is none or it cannot be read."""
    try:
        with open(path, "rb") as f:
            d = json.loads(f.read(4096))
        run = str(d["run"])
        if len(run) != RUN_ID_HEX or not all(c in "0123456789abcdef" for c in run):
            return None
        return Record(int(d["pid"]), int(d["start"]), str(d["boot"]), run)
    except (OSError, ValueError, KeyError, TypeError, RecursionError):  # torn or not ours
        return None


def write(path: str, record: Record) -> None:
    """Atomically (a new file renamed over the old). Raises OSError."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    tmp = f"{path}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, record.as_json().encode() + b"\n")
    finally:
        os.close(fd)
    os.rename(tmp, path)


def remove(path: str, record: Record) -> None:
    """Remove the record if it is still ours (another activator may have taken the path)."""
    if read(path) == record:
        with contextlib.suppress(OSError):
            os.unlink(path)


def alive(record: Record) -> bool:
    """Is the activator of that record still running?"""
    return (
        record.boot == boot_id()
        and start_time(record.pid) == record.start
        and record.pid != os.getpid()
    )


# ---------------------------------------------------------------- what the dead one left


def _stat(pid: int) -> tuple[int, ...] | None:
    """(process group, session) of a process; None when gone."""
    return procfs.stat_fields(pid, 2, 3)


def _pids() -> list[int]:
    try:
        return [int(e.name) for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return []


def leftovers(run: str) -> tuple[set[int], int]:
    """The processes a dead activator of run ``run`` left: those with its INVOCATION_ID
    prefix, and everything in their sessions and process groups; and how many
    environments could not be read."""
    needle = f"INVOCATION_ID={run}".encode()
    me, never = os.getpid(), {1, os.getpid(), os.getppid()}
    own = _stat(me) or (-1, -1)
    marked: set[int] = set()
    unreadable = 0
    for pid in _pids():
        if pid in never:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read()
        except PermissionError:
            unreadable += 1
            continue
        except OSError:
            continue
        if needle in env and any(item.startswith(needle) for item in env.split(b"\0")):
            marked.add(pid)
    groups: set[int] = set()
    for pid in marked:
        st = _stat(pid)
        if st is not None:
            groups.update(x for x in st if x > 1 and x not in own)
    found = set(marked)
    if groups:
        for pid in _pids():
            st = _stat(pid)
            if pid not in never and st is not None and (st[0] in groups or st[1] in groups):
                found.add(pid)
    return found, unreadable


def stop(pids: set[int], log: Callable[..., None], grace: float = GRACE) -> set[int]:
    """SIGTERM, up to ``grace`` seconds, SIGKILL, up to ``grace`` more; what survived."""
    fds: dict[int, int] = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            fds[pid] = os.pidfd_open(pid)
    try:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for fd in fds.values():
                with contextlib.suppress(OSError):
                    signal.pidfd_send_signal(fd, sig)
            if sig == signal.SIGKILL and fds:
                log("kill", None, pids=" ".join(map(str, sorted(fds))), signal="SIGKILL",
                    reason=f"still running {grace:g}s after SIGTERM")  # fmt: skip
            _wait_gone(fds, grace)
            if not fds:
                break
    finally:
        for fd in fds.values():
            os.close(fd)
    return set(fds)


def _wait_gone(fds: dict[int, int], timeout: float) -> None:
    """Until every pidfd says its process exited (or the time is up); removes those."""
    deadline = time.monotonic() + timeout
    while fds:
        p = select.poll()
        for fd in fds.values():
            p.register(fd, select.POLLIN)
        left = deadline - time.monotonic()
        if left <= 0:
            return
        for fd, _ in p.poll(left * 1000):
            for pid in [pid for pid, f in fds.items() if f == fd]:
                os.close(fds.pop(pid))


def begin(control_path: str | None, log: Callable[..., None]) -> tuple[str, Record | None]:
    """At start-up: stop what an activator that died here left running, then put our own
    record in place. Returns this run's id and our record (None: there is no record)."""
    run = new_run_id()
    path = record_path(control_path)
    if path is None:
        return run, None
    previous = read(path)
    if previous is not None and alive(previous):
        # another activator serves this path: leave its record and processes alone (the
        # control socket tells the operator; see ControlServer)
        return run, None
    if previous is not None:
        found, unreadable = leftovers(previous.run)
        if found:
            log(
                "stop",
                None,
                pids=" ".join(map(str, sorted(found))),
                reason=f"left running by activator {previous.pid}, which died",
            )
            survivors = stop(found, log)
            if survivors:
                log(
                    "warning",
                    None,
                    pids=" ".join(map(str, sorted(survivors))),
                    reason="still running after SIGKILL (uninterruptible?)",
                )
        if unreadable:
            log(
                "warning",
                None,
                reason=f"unable to read the environment of {unreadable} processes "
                "(no CAP_SYS_PTRACE?): what the dead activator left among them runs on",
            )
    record = mine(run)
    try:
        write(path, record)
    except OSError as e:
        log("warning", None, reason=f"unable to write {path}: {e.strerror}")
        return run, None
    return run, record

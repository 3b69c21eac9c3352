"""A fake world for the service state machine: a clock moved by hand, a spawner that
hands out pids, a reaper the test makes processes exit through. No process is started.

    d = FakeDaemon()
    svc = d.service(Type="notify", TimeoutStartSec=5)
    svc.start()
    d.send(svc, svc.main_pid, READY="1")
    d.host.advance(10)
    d.exit(svc.main_pid, code=0)
"""

from __future__ import annotations

import heapq
import itertools
import os
import signal

from activator.exec import plan
from activator.exec.plan import Handover
from activator.exec.spec import Spawned, SpawnError
from activator.exec.users import Credentials
from activator.runtime.service import Service
from activator.runtime.tally import Tally
from activator.units.model import ExecCommand, ServiceSection, ServiceUnit, UnitSection

ME = os.getpid()


def cmd(line: str, *, ignore: bool = False) -> ExecCommand:
    argv = tuple(line.split())
    return ExecCommand(path=argv[0], argv=argv, ignore_failure=ignore)


def exited(code: int) -> int:
    return (code & 0xFF) << 8


def killed(sig: int, core: bool = False) -> int:
    return int(sig) | (0x80 if core else 0)


class FakeTimer:
    def __init__(self, when: float, callback) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeProc:
    def __init__(self, pid: int, spec, groups: set[int]) -> None:
        self.pid = pid
        self.spec = spec
        self.groups = groups
        self.alive = True

    @property
    def env(self) -> dict[str, str]:
        return dict(e.decode().split("=", 1) for e in self.spec.env)

    @property
    def argv(self) -> list[str]:
        return [a.decode() for a in self.spec.argv]


class FakeHost:
    """Service's Host, faked: time stands still until advance()."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._timers: list[tuple[float, int, FakeTimer]] = []
        self._seq = itertools.count()
        self._pids = itertools.count(5000)
        self.procs: dict[int, FakeProc] = {}
        self.members: dict[int, list[FakeProc]] = {}  # process group → its processes
        self.signals: list[tuple[int, int, bool]] = []  # (pid, sig, group)
        self.readers: dict[int, object] = {}
        self.orphan_listeners: set = set()
        self.fail_spawn: dict[str, tuple[str, int]] = {}  # program → (step, exit code)
        self.notes: list[str] = []  # what the spawn core let pass (Spawned.notes)

    # -- the Host interface
    def spawn(self, spec) -> Spawned:
        pid = next(self._pids)
        path = spec.path.decode()
        if path in self.fail_spawn:
            step, code = self.fail_spawn[path]
            self._add(FakeProc(pid, spec, {pid})).alive = False
            raise SpawnError(2, step=step, verb=step, exit_code=code, pid=pid, filename=path)
        self._add(FakeProc(pid, spec, {pid}))
        return Spawned(pid, (), tuple(self.notes))

    def clock(self) -> float:
        return self.now

    def call_at(self, when: float, callback) -> FakeTimer:
        t = FakeTimer(when, callback)
        heapq.heappush(self._timers, (when, next(self._seq), t))
        return t

    def add_reader(self, fd: int, callback) -> None:
        self.readers[fd] = callback

    def remove_reader(self, fd: int) -> None:
        self.readers.pop(fd, None)

    def signal(self, pid: int, sig: int, *, group: bool) -> bool:
        if sig:
            self.signals.append((pid, int(sig), group))
        if group:
            return any(p.alive for p in self.members.get(pid, ()))
        p = self.procs.get(pid)
        return p is not None and p.alive

    def parent_of(self, pid: int) -> int | None:
        p = self.procs.get(pid)
        return ME if p is not None and p.alive else None

    def groups_of(self, pid: int) -> set[int]:
        p = self.procs.get(pid)
        return set(p.groups) if p is not None and p.alive else set()

    def open_pidfd(self, pid: int) -> None:
        return None

    def orphan_exited(self) -> None:
        for cb in list(self.orphan_listeners):
            cb()

    # -- for the tests
    def advance(self, seconds: float) -> None:
        """Move the clock, firing every timer that comes due, in order."""
        end = self.now + seconds
        while self._timers and self._timers[0][0] <= end:
            when, _, t = heapq.heappop(self._timers)
            if t.cancelled:
                continue
            self.now = max(self.now, when)
            t.callback()
        self.now = end

    def pending(self) -> list[float]:
        """Deadlines of the timers still armed, relative to now."""
        return sorted(w - self.now for w, _, t in self._timers if not t.cancelled)

    def signalled(self, pid: int) -> list[int]:
        return [s for p, s, _ in self.signals if p == pid]

    def adopt(self, groups: set[int] | None = None) -> int:
        """A process activator did not spawn (a forked daemon), alive, ours to reap."""
        pid = next(self._pids)
        self._add(FakeProc(pid, None, groups if groups is not None else {pid}))
        return pid

    def _add(self, p: FakeProc) -> FakeProc:
        self.procs[p.pid] = p
        for g in p.groups:
            self.members.setdefault(g, []).append(p)
        return p


class FakeReaper:
    def __init__(self, host: FakeHost) -> None:
        self.host = host
        self.watched: dict[int, object] = {}

    def watch(self, pid: int, callback) -> None:
        self.watched[pid] = callback

    def forget(self, pid: int) -> None:
        self.watched.pop(pid, None)


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, str | None, dict]] = []

    def __call__(self, event: str, unit: str | None = None, /, **fields) -> None:
        self.events.append((event, unit, fields))

    def names(self) -> list[str]:
        return [e for e, _, _ in self.events]

    def find(self, event: str) -> list[dict]:
        return [f for e, _, f in self.events if e == event]


class FakeDynamic:
    def __init__(self, daemon: FakeDaemon, name: str) -> None:
        self.daemon = daemon
        self.name = name
        self.credentials = Credentials(
            61184, 61184, (61184,), name, "/", "/usr/sbin/nologin", dynamic=True
        )

    def release(self) -> None:
        self.daemon.dynamic.append(("release", self.name))


class FakeDaemon:
    """What a Service uses of the daemon, with FakeHost and FakeReaper."""

    def __init__(self) -> None:
        self.host = FakeHost()
        self.reaper = FakeReaper(self.host)
        self.log = Log()
        self.stopping = False
        self.notify = None
        self.notify_socket_path = "/run/activator/notify"
        self.capture = None
        self.tally = Tally()
        self.default_timeout_stop = 90.0
        self.bounds = (float("inf"), float("inf"))  # --stop-deadline: (SIGKILL, the end)
        self.run_id = "0123456789abcdef"
        self.services: dict[str, Service] = {}
        self.instances: dict[str, Service] = {}
        self.handover = Handover()
        self.done: list[str] = []
        self.dynamic: list[tuple[str, str]] = []

    def prepared(self, unit: ServiceUnit) -> plan.Prepared:
        return plan.prepare(unit.Service)

    def acquire_dynamic(self, unit) -> FakeDynamic:  # type: ignore[no-untyped-def]
        """DynamicUser=: a made-up uid; ``dynamic`` records every acquire and release."""
        self.dynamic.append(("acquire", unit.name))
        return FakeDynamic(self, unit.name)

    def collect_fds(self, svc: Service) -> Handover:
        return Handover(list(self.handover.fds), list(self.handover.names))

    def instance_done(self, svc: Service) -> None:
        self.done.append(svc.name)

    def stop_bound(self, post: bool) -> float:
        return self.bounds[1] if post else self.bounds[0]

    def known_pids(self) -> set[int]:
        return {p for s in self.services.values() for p in (s.main_pid, s.control_pid) if p}

    def sockets_of(self, service: str) -> list[str]:
        return []

    # -- building and driving services
    def service(self, name: str = "x.service", *, unit: dict | None = None, **fields) -> Service:
        fields.setdefault("ExecStart", (cmd("/bin/daemon"),))
        for key in (
            "ExecStart",
            "ExecStartPre",
            "ExecStartPost",
            "ExecStop",
            "ExecStopPost",
            "ExecReload",
            "ExecCondition",
        ):
            if isinstance(fields.get(key), str):
                fields[key] = (cmd(fields[key]),)
        u = ServiceUnit(
            name=name, path="", Unit=UnitSection(**(unit or {})), Service=ServiceSection(**fields)
        )
        svc = Service(self, u)
        self.services[name] = svc
        return svc

    def exit(self, pid: int, code: int = 0, *, sig: int | None = None, core: bool = False) -> None:
        """Process ``pid`` exits (with ``code``, or killed by ``sig``); the reaper reports it."""
        p = self.host.procs.get(pid)
        if p is not None:
            p.alive = False
        cb = self.reaper.watched.pop(pid, None)
        status = killed(sig, core) if sig is not None else exited(code)
        if cb is not None:
            cb(pid, status)
        else:
            self.host.orphan_exited()

    def die_of_signals(self, *pids: int) -> None:
        """Each pid exits of the last signal sent to it (or its group)."""
        for pid in pids:
            sigs = [s for p, s, _ in self.host.signals if p == pid and s]
            self.exit(pid, sig=sigs[-1] if sigs else signal.SIGTERM)

    def send(
        self,
        svc: Service,
        pid: int | None,
        fds: list[int] | None = None,
        uid: int = 65534,
        **fields: str,
    ) -> None:
        """A notification from ``pid`` (as the notify server dispatches it)."""
        svc.notify_message(pid, uid, dict(fields), list(fds or []))

    def spawned(self) -> list[FakeProc]:
        return [p for p in self.host.procs.values() if p.spec is not None]


def trace(svc: Service) -> list[str]:
    """Every sub-state the service enters from now on."""
    seen: list[str] = [str(svc.sub)]
    base = type(svc)

    class Traced(base):  # type: ignore[valid-type,misc]
        __slots__ = ()  # (Service has no instance dict to put a spy in: its class, then)

        def _enter(self, new, result=None):  # type: ignore[no-untyped-def]
            base._enter(self, new, result)
            if str(new) != seen[-1]:
                seen.append(str(new))

    svc.__class__ = Traced
    return seen

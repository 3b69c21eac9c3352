"""Jobs: starting and stopping units in dependency order (systemd's transaction.c, job.c).

A request (start X, stop X, restart X) becomes a transaction: a job for X and for what
its dependencies pull in — a start pulls in what X Requires=, Wants=, BindsTo=,
Upholds= (and checks Requisite=); a start stops what X conflicts with; a stop stops
what Requires=/BindsTo=/PartOf= X. Jobs for units already in the wanted state are
left out. Before anything runs, the transaction's ordering (After=/Before=) is
checked for circles; a circle is broken as systemd breaks it, by dropping a job that
was only wanted, with a warning naming the circle (or, when every job in it is
needed, the request fails).

Every job then runs as soon as no job it is ordered after is still pending, across
all transactions (systemd's job_is_runnable()): independent units start in
parallel; two units with an ordering between them start in that order and stop in
the reverse one; a stop always goes before a start it is ordered with. A start that
fails fails the pending starts of the units that need it (Requires=, BindsTo=,
Requisite=) with the job result ``dependency``.

After the jobs, units keep following each other (unit_notify()): a unit bound to
another (BindsTo=) stops when that one stops; OnFailure=/OnSuccess= units start when
a unit fails or ends well; Upholds= restarts what a running unit upholds;
StopWhenUnneeded= units stop once nothing active needs them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from enum import StrEnum
from typing import Protocol

from ..core.errors import ActivatorError, StartError
from ..core.log import EventLog
from ..runtime.unit import RuntimeUnit
from ..units.deps import NEEDS, PULLS, Graph, ordering_cycle

_INACTIVE = ("inactive", "failed")
_NEEDS_WORDS = {"Requires": "requires", "BindsTo": "is bound to", "Requisite": "requires"}
_UP = ("active", "reloading")


class JobType(StrEnum):
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    VERIFY = "verify-active"  # Requisite=: the unit must be up already


class JobResult(StrEnum):
    """systemd's job results (JobResult in job.h), those a container can have."""

    DONE = "done"
    FAILED = "failed"
    DEPENDENCY = "dependency"
    CANCELED = "canceled"
    SKIPPED = "skipped"


class Host(Protocol):
    """What the engine uses of the manager."""

    log: EventLog
    stopping: bool

    def unit(self, name: str) -> RuntimeUnit | None:
        """The runtime unit of a name (loaded on demand; None: there is none)."""
        ...

    def why_missing(self, name: str) -> str:
        """Why there is no unit of that name: masked, not found, failed to load."""
        ...


class Job:
    __slots__ = (
        "unit", "type", "needed", "why", "result", "running", "done", "error", "stopped",
        "turned",
    )  # fmt: skip

    def __init__(self, unit: str, type: JobType, needed: bool, why: str | None) -> None:
        self.unit = unit
        self.type = type
        self.needed = needed  # its failure matters (the request itself, or Requires=…)
        self.why = why  # the unit that pulled it in, for messages
        self.result: JobResult | None = None
        self.error: ActivatorError | None = None  # why the unit refused or failed to start
        self.running = False
        self.stopped = False  # a restart's stop half is done: from now on it is a start
        loop = asyncio.get_running_loop()
        self.done: asyncio.Future[JobResult] = loop.create_future()
        self.turned: asyncio.Future[None] = loop.create_future()  # set with stopped

    @property
    def starts(self) -> bool:
        return self.type in (JobType.START, JobType.RESTART, JobType.VERIFY)

    @property
    def stops_first(self) -> bool:
        """Ordered as a stop: a stop, or a restart until its stop half is done (systemd's
        job_compare(): "JOB_RESTART is JOB_STOP in disguise")."""
        return self.type == JobType.STOP or (self.type == JobType.RESTART and not self.stopped)

    def __repr__(self) -> str:
        return f"{self.unit}/{self.type}"


class Engine:
    def __init__(self, host: Host, graph: Graph) -> None:
        self.host = host
        self.graph = graph
        self.jobs: dict[str, Job] = {}  # at most one pending job per unit
        self._tasks: set[asyncio.Task[None]] = set()
        self._states: dict[str, str] = {}  # the active state each unit had when last seen

    # ------------------------------------------------------------ requests
    async def start(self, name: str) -> JobResult:
        """Start ``name`` and what it needs; its job's result."""
        return await self._request(name, JobType.START)

    async def stop(self, name: str) -> JobResult:
        return await self._request(name, JobType.STOP)

    async def restart(self, name: str) -> JobResult:
        return await self._request(name, JobType.RESTART)

    def start_soon(self, name: str, why: str | None = None) -> None:
        """A start nobody waits for (a socket's traffic, OnFailure=, Upholds=)."""
        self._submit(name, JobType.START, why)

    def stop_soon(self, name: str, why: str | None = None) -> None:
        self._submit(name, JobType.STOP, why)

    async def _request(self, name: str, type: JobType) -> JobResult:
        anchor = self._submit(name, type, None)
        return await asyncio.shield(anchor.done) if anchor is not None else JobResult.DONE

    def submit(self, name: str, type: JobType) -> Job | None:
        """A request whose job the caller awaits itself (``job.done``); None: nothing to do."""
        return self._submit(name, type, None)

    def _submit(self, name: str, type: JobType, why: str | None) -> Job | None:
        """Build the transaction for one request and start its jobs; the anchor's job
        (None when there is nothing to do)."""
        jobs = self._transaction(name, type, why)
        anchor = jobs.get(name)
        if anchor is None:
            return None
        if anchor.result is not None:  # refused while building (a circle of needed jobs)
            return anchor
        for job in jobs.values():
            old = self.jobs.get(job.unit)
            if old is not None and not old.done.done() and old.type == job.type:
                if job.unit == name:
                    anchor = old  # merged: the caller waits for the job already there
                continue
            if old is not None and not old.done.done():
                self._finish(old, JobResult.CANCELED)
            self.jobs[job.unit] = job
            task = asyncio.ensure_future(self._run(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return anchor

    # ------------------------------------------------------------ building a transaction
    def _transaction(self, anchor: str, type: JobType, why: str | None) -> dict[str, Job]:
        jobs: dict[str, Job] = {}
        if type in (JobType.START, JobType.RESTART):
            blocked: dict[str, str] = {}  # unit → why it cannot start
            while True:
                jobs = {}
                self._pull_starts(anchor, type, why, jobs, blocked)
                new = self._unstartable(anchor, jobs, blocked)
                if not new:
                    break
                blocked.update(new)
            if anchor in blocked:
                job = Job(anchor, type, True, why)
                job.error = StartError(f"unable to start {anchor}: it {blocked[anchor]}")
                job.result = JobResult.FAILED
                job.done.set_result(JobResult.FAILED)
                return {anchor: job}
            if type == JobType.RESTART:
                self._pull_restarts(anchor, jobs)
        else:
            self._pull_stops(anchor, why, jobs, needed=True)
        self._break_circles(anchor, jobs)
        return jobs

    def _state(self, name: str) -> str:
        unit = self.host.unit(name)
        return unit.active_state if unit is not None else "inactive"

    def _pull_starts(
        self,
        anchor: str,
        type: JobType,
        why: str | None,
        jobs: dict[str, Job],
        blocked: dict[str, str],
    ) -> None:
        g = self.graph
        todo: list[tuple[str, JobType, bool, str | None]] = [(anchor, type, True, why)]
        seen: set[str] = set()
        while todo:
            name, t, needed, by = todo.pop()
            job = jobs.get(name)
            if job is not None:
                job.needed = job.needed or needed
            if name in seen:
                continue
            if name != anchor and not needed and self.host.unit(name) is None:
                continue  # a Wants= of nothing: ignored, as systemd ignores it
            if name in blocked and name != anchor:
                continue  # cannot start (_unstartable): left out, its wanter said so
            seen.add(name)
            if t == JobType.VERIFY:
                jobs[name] = Job(name, t, needed, by)
                continue
            if name == anchor or self._state(name) not in _UP:
                jobs[name] = Job(name, t, needed, by)
            # (an up unit needs no job, but what it pulls in may: that is started too)
            for kind in PULLS:
                for dep in sorted(g.deps(name, kind)):
                    if kind == "Requisite":
                        todo.append((dep, JobType.VERIFY, needed, name))
                    else:
                        todo.append((dep, JobType.START, needed and kind in NEEDS, name))
        # What the units to start conflict with stops (transaction_add_job_and_dependencies
        # with UNIT_ATOM_PULL_IN_STOP).
        for name in [n for n, j in jobs.items() if j.type != JobType.VERIFY]:
            for other in sorted(g.any_of(name, ("Conflicts", "ConflictedBy"))):
                if other in jobs:
                    self._resolve_conflict(name, other, jobs)
                elif self._state(other) not in _INACTIVE:
                    self._pull_stops(other, name, jobs, needed=False)

    def _unstartable(
        self, anchor: str, jobs: dict[str, Job], blocked: dict[str, str]
    ) -> dict[str, str]:
        """The starts in ``jobs`` that systemd would not even enqueue: the unit Requires=,
        BindsTo= or Requisite= a unit that does not exist (not found, masked, failed to
        load: bus_unit_validate_load_state()), or one that cannot start for that reason.
        systemd drops such a job from the transaction, and with it the request if it is
        the one asked for; pulled in by Wants= it is left out (a warning here, where
        systemd only logs at debug level: "Cannot add dependency job"). Without this an
        unordered Requires= of nothing let the unit start anyway (rsyslog.service's
        Requires=syslog.socket in an image without the systemd package)."""
        new: dict[str, str] = {}
        for name, job in jobs.items():
            if not job.starts or job.type == JobType.VERIFY or name in blocked:
                continue
            if self.host.unit(name) is None:
                continue  # the missing unit itself: its requirer is the one blocked
            for kind in NEEDS:
                dep = next((d for d in sorted(self.graph.deps(name, kind))
                            if d in blocked or self.host.unit(d) is None), None)  # fmt: skip
                if dep is not None:
                    cause = (
                        f", which {blocked[dep]}"
                        if dep in blocked
                        else f": {self.host.why_missing(dep)}"
                    )
                    new[name] = f"{_NEEDS_WORDS[kind]} {dep}{cause}"
                    break
        for name, reason in new.items():
            if name != anchor:  # the anchor's request fails instead: its caller hears why
                self.host.log("warning", name, reason=f"not started: it {reason}")
        return new

    def _pull_restarts(self, anchor: str, jobs: dict[str, Job]) -> None:
        """A restart restarts what runs and needs the unit or is part of it (Requires=,
        BindsTo=, PartOf= on it: UNIT_ATOM_PROPAGATE_RESTART, as try-restart jobs)."""
        todo = [anchor]
        while todo:
            name = todo.pop()
            for dep in sorted(self.graph.any_of(name, ("RequiredBy", "BoundBy", "ConsistsOf"))):
                if dep not in jobs and self._state(dep) in _UP:
                    jobs[dep] = Job(dep, JobType.RESTART, False, name)
                    todo.append(dep)

    def _resolve_conflict(self, a: str, b: str, jobs: dict[str, Job]) -> None:
        """Two units that conflict are both to start: the one only wanted goes."""
        ja, jb = jobs[a], jobs[b]
        if ja.type == JobType.STOP or jb.type == JobType.STOP:
            return
        loser = jb if not jb.needed else ja if not ja.needed else None
        if loser is None:
            self.host.log("warning", a, reason=f"conflicts with {b}, which is needed too")
            return
        del jobs[loser.unit]

    def _pull_stops(self, name: str, why: str | None, jobs: dict[str, Job], *, needed: bool):
        """A stop of ``name``, and of what cannot run without it (Requires=, BindsTo=,
        PartOf= on it: UNIT_ATOM_PROPAGATE_STOP)."""
        todo = [(name, why)]
        while todo:
            n, by = todo.pop()
            if n in jobs and jobs[n].type == JobType.STOP:
                continue
            jobs[n] = Job(n, JobType.STOP, needed and n == name, by)
            for dep in sorted(self.graph.any_of(n, ("RequiredBy", "BoundBy", "ConsistsOf"))):
                if self._state(dep) not in _INACTIVE or dep in jobs:
                    todo.append((dep, n))

    def _break_circles(self, anchor: str, jobs: dict[str, Job]) -> None:
        """systemd's transaction_verify_order(): a circle of start jobs, each waiting for
        the next, would wait forever. Drop a job that was only wanted, and say so."""
        while True:
            circle = self._find_circle(jobs)
            if circle is None:
                return
            shown = " → ".join(f"{n}/start" for n in [*circle, circle[0]])
            victim = next(
                (n for n in circle if n != anchor and not jobs[n].needed),
                None,
            )
            if victim is None:
                self.host.log(
                    "warning", anchor, reason=f"ordering cycle {shown}: every job in it is needed"
                )
                jobs[anchor].result = JobResult.FAILED
                jobs[anchor].done.set_result(JobResult.FAILED)
                return
            self.host.log(
                "warning",
                victim,
                reason=f"ordering cycle {shown}; {victim}/start deleted to break it",
            )
            del jobs[victim]

    def _find_circle(self, jobs: dict[str, Job]) -> list[str] | None:
        return ordering_cycle(self.graph, (n for n, j in jobs.items() if j.starts))

    # ------------------------------------------------------------ running jobs
    def _blockers(self, job: Job) -> list[Job]:
        """The pending jobs ``job`` must wait for (job_is_runnable(), job_compare()): a
        start waits for every job of what it is after; anything waits for a stop of what
        it is before (stops go first, and in reverse order)."""
        g, out = self.graph, []
        after, before = g.deps(job.unit, "After"), g.deps(job.unit, "Before")
        for other in after | before:
            o = self.jobs.get(other)
            if o is None or o is job or o.done.done():
                continue
            if (other in after and not job.stops_first) or (other in before and o.stops_first):
                out.append(o)
        return out

    async def _runnable(self, job: Job) -> bool:
        """Wait until nothing blocks ``job``; False if it ended meanwhile (a dependency
        failed, or it was canceled)."""
        while not job.done.done():
            blockers = self._blockers(job)
            if not blockers:
                return True
            # a restart that turns into a start may unblock us as much as a job that ends
            waits = {b.done for b in blockers} | {b.turned for b in blockers if b.stops_first}
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        return False

    async def _run(self, job: Job) -> None:
        try:
            if not await self._runnable(job):
                return
            if job.type == JobType.RESTART:
                # The stop half runs ordered as a stop, the start half as a start: a
                # socket that is PartOf= its service restarts with it, after it stopped.
                unit = self.host.unit(job.unit)
                if unit is not None:
                    job.running = True
                    await unit.stop(restart=True)
                    job.running = False
                job.stopped = True
                job.turned.set_result(None)
                if not await self._runnable(job):
                    return
            job.running = True
            result = await self._execute(job)
        except Exception as e:  # a bug: the job fails, the engine goes on
            self.host.log("failed", job.unit, reason=f"job {job.type} failed: {e!r}")
            result = JobResult.FAILED
        self._finish(job, result)

    async def _execute(self, job: Job) -> JobResult:
        unit = self.host.unit(job.unit)
        if unit is None:
            if job.starts and job.needed:
                self.host.log(
                    "failed", job.unit, result="resources", reason=self.host.why_missing(job.unit)
                )
            return JobResult.FAILED if job.starts else JobResult.DONE
        if job.type == JobType.VERIFY:
            return JobResult.DONE if unit.active_state in _UP else JobResult.FAILED
        if job.type == JobType.STOP:
            await unit.stop()
            return JobResult.DONE
        try:
            # (a restart's stop half has run: see _run)
            if unit.active_state == "deactivating":
                await unit.settle("stop")  # on its way down: start it once it is down
            unit.start()
        except ActivatorError as e:
            job.error = e
            if not job.needed or job.why is not None:  # an operator's hears it in the answer
                self.host.log("failed", job.unit, reason=str(e))
            return JobResult.FAILED
        failed = await unit.settle("restart" if job.type == JobType.RESTART else "start")
        return JobResult.FAILED if failed else JobResult.DONE

    def _finish(self, job: Job, result: JobResult) -> None:
        if job.done.done():
            return
        job.result = result
        job.done.set_result(result)
        if self.jobs.get(job.unit) is job:
            del self.jobs[job.unit]
        if job.starts and result in (JobResult.FAILED, JobResult.DEPENDENCY):
            self._fail_dependents(job)

    def _fail_dependents(self, job: Job) -> None:
        """job_fail_dependencies(): what needs a unit that did not start does not start."""
        for other in sorted(self.graph.any_of(job.unit, ("RequiredBy", "BoundBy", "RequisiteOf"))):
            o = self.jobs.get(other)
            if o is None or not o.starts or o.running or o.done.done():
                continue
            self.host.log(
                "failed",
                other,
                result=JobResult.DEPENDENCY,
                reason=f"dependency failed: {job.unit}",
            )
            self._finish(o, JobResult.DEPENDENCY)

    # ------------------------------------------------------------ units following units
    def unit_changed(self, unit: RuntimeUnit) -> None:
        """A unit's state changed (its listener): what depends on that follows."""
        name, now = unit.name, unit.active_state
        was = self._states.get(name, "inactive")
        if now == was:
            return
        self._states[name] = now
        job = self.jobs.get(name)
        if job is not None and job.running:
            # The job ends with the state change itself (job_finish_and_invalidate() from
            # unit_notify()), not a loop iteration later: traffic that arrives meanwhile
            # must find no stale job to merge into.
            if job.type in (JobType.START, JobType.VERIFY) and now in (*_UP, *_INACTIVE):
                self._finish(job, JobResult.FAILED if now == "failed" else JobResult.DONE)
            elif job.type == JobType.STOP and now in _INACTIVE:
                self._finish(job, JobResult.DONE)
        if self.host.stopping:
            return
        g = self.graph
        if now in _INACTIVE and was not in _INACTIVE:
            for other in sorted(g.deps(name, "BoundBy")):  # unit_check_binds_to()
                if self._state(other) not in _INACTIVE and other not in self.jobs:
                    self.stop_soon(other, name)
            then = "OnFailure" if now == "failed" else "OnSuccess"
            for other in sorted(g.deps(name, then)):
                self.start_soon(other, name)
            if g.deps(name, "UpheldBy") and any(
                self._state(u) in _UP for u in g.deps(name, "UpheldBy")
            ):
                self.start_soon(name, "Upholds=")
            self._stop_unneeded(g.any_of(name, PULLS))
        elif now in _UP:
            for other in sorted(g.deps(name, "Upholds")):
                if self._state(other) in _INACTIVE and other not in self.jobs:
                    self.start_soon(other, name)

    def _stop_unneeded(self, candidates: Iterable[str]) -> None:
        """StopWhenUnneeded=yes units that nothing up needs any more (unit_check_unneeded)."""
        for name in sorted(candidates):
            unit = self.host.unit(name)
            if unit is None or not unit.unit.Unit.StopWhenUnneeded:
                continue
            if unit.active_state in _INACTIVE or name in self.jobs:
                continue
            users = self.graph.any_of(
                name, ("RequiredBy", "WantedBy", "BoundBy", "RequisiteOf", "UpheldBy")
            )
            if not any(self._state(u) not in _INACTIVE for u in users):
                self.stop_soon(name, "unneeded")

    # ------------------------------------------------------------ a re-exec (reexec.py)
    async def idle(self) -> None:
        """Until no job is pending or running."""
        while self.jobs:
            await asyncio.wait({j.done for j in self.jobs.values()})

    def prime(self, units: Iterable[RuntimeUnit]) -> None:
        """These units are as they are (carried over by a re-exec): no change to follow."""
        for unit in units:
            self._states[unit.name] = unit.active_state

    # ------------------------------------------------------------ the end
    async def stop_everything(self, names: Iterable[str]) -> None:
        """Shutdown: stop every unit named, in reverse order of their After=/Before=."""
        jobs: dict[str, Job] = {}
        for name in names:
            if self._state(name) not in _INACTIVE:
                jobs[name] = Job(name, JobType.STOP, True, "shutdown")
        for job in list(self.jobs.values()):  # _finish() takes them out of self.jobs
            if not job.done.done() and not job.running:
                self._finish(job, JobResult.CANCELED)
        waits = []
        for job in jobs.values():
            self.jobs[job.unit] = job
            waits.append(job.done)
            task = asyncio.ensure_future(self._run(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if waits:
            await asyncio.gather(*waits)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

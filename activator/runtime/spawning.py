"""Spawning one process of a unit: the one path every Exec*= line takes, a service's and a
socket's alike (systemd's exec_spawn()).

The caller decides what is particular to its process (the fds it is handed, LISTEN_*,
WATCHDOG_*, $MAINPID …: ``generated`` and ``passed``); from there the environment is
built, stdio opened, the ExecSpec planned and the spawn core run, all by the exec layer
(plan.py), and each way this can fail is logged once, naming the unit, and raised as
``SpawnFailed`` with the unit's result (``resources``, or ``exit-code`` with systemd's exit
status from the spawn core).
"""

from __future__ import annotations

import os
import time
from typing import Protocol

from ..core.errors import StartError
from ..core.log import EventLog
from ..core.states import Result
from ..exec import plan
from ..exec.spec import Spawned, SpawnError
from ..units.model import ExecCommand, ExecContext
from .reaper import Reaper
from .tally import Tally


class SpawnHost(Protocol):
    def spawn(self, spec: plan.ExecSpec) -> Spawned: ...


class SpawnContext(Protocol):
    """What spawning uses of the manager (ServiceContext has it all)."""

    log: EventLog
    tally: Tally  # spawn times (metrics)

    @property
    def host(self) -> SpawnHost: ...
    @property
    def reaper(self) -> Reaper: ...


class SpawnFailed(Exception):
    """A process could not be spawned (already logged). ``exit_code``: the spawn core's
    exit status when the child got as far as existing (systemd's 200–243), else None."""

    def __init__(self, result: Result, exit_code: int | None = None) -> None:
        super().__init__(str(result))
        self.result = result
        self.exit_code = exit_code


def spawn_command(
    ctx: SpawnContext,
    unit: str,
    section: ExecContext,
    prepared: plan.Prepared,
    cmd: ExecCommand,
    generated: dict[str, str],
    *,
    passed: plan.PassedFds | None = None,
    watchdog_pid: bool = False,
    nonblocking: bool = False,
    peer: str | None = None,
    journal: tuple[int, int] = (-1, -1),
) -> int:
    """Spawn ``cmd`` of ``unit`` with ``section``'s exec settings; its pid (it leads its own
    session). ``journal``: the capture's stdout/stderr for StandardOutput=journal (-1: not
    captured). Logs ``start`` (and at debug level what the spawn core let pass), or
    ``failed`` with the reason. Raises SpawnFailed."""
    try:
        env = plan.build_environment(section, prepared.creds, generated)
        stdio, opened = plan.open_stdio(
            section, passed.socket if passed else None, passed.named if passed else {}, journal
        )
    except StartError as e:
        ctx.log("failed", unit, result=Result.RESOURCES, reason=str(e))
        raise SpawnFailed(Result.RESOURCES) from None
    try:
        spec = plan.make_spec(
            section,
            prepared,
            cmd,
            env,
            fds=passed.fds if passed else (),
            stdio=stdio,
            listen_pid=passed.listen_pid if passed else False,
            watchdog_pid=watchdog_pid,
            nonblocking=nonblocking,
        )
        began = time.perf_counter()
        spawned = ctx.host.spawn(spec)
        ctx.tally.spawned(time.perf_counter() - began)
    except SpawnError as e:
        ctx.reaper.watch(e.pid, lambda _pid, _status: None)
        ctx.log("failed", unit, pid=e.pid, step=e.step, status=e.exit_code, reason=str(e))
        raise SpawnFailed(Result.EXIT_CODE, e.exit_code) from None
    except StartError as e:
        ctx.log("failed", unit, result=Result.RESOURCES, reason=str(e))
        raise SpawnFailed(Result.RESOURCES) from None
    except (OSError, ValueError) as e:
        ctx.log("failed", unit, result=Result.RESOURCES, reason=f"unable to spawn {cmd.path}: {e}")
        raise SpawnFailed(Result.RESOURCES) from None
    finally:
        for fd in opened:
            os.close(fd)
    pid = spawned.pid
    for note in spawned.notes:  # what systemd logs at debug level in a container too
        ctx.log("leniency", unit, pid=pid, reason=note)
    ctx.log("start", unit, pid=pid, command=cmd.path, peer=peer)
    return pid

"""What a Service needs of the world and of the manager, declared where it is used.

The manager implements ``ServiceContext`` (and ``socket.SocketContext``, which extends
it); tests/lifecycle/fakes.py fakes it. A Service never sees the manager itself, so
it cannot reach into the registry: everything it may ask is listed here.

``Connection`` is systemd's service_set_socket_fd(): what an Accept=yes socket hands
the instance it makes — its connection's peer and the socket, which hears from the
instance when it is done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..core.log import EventLog
from ..exec import plan
from ..exec.dynamic import DynamicCreds
from ..exec.spec import ExecSpec, Spawned
from ..units.model import ServiceUnit, SocketUnit
from .notify import NotifyServer
from .reaper import Reaper
from .tally import Tally

if TYPE_CHECKING:  # imported by the manager when a first service's output is captured
    from .capture import Capture


class Host(Protocol):
    """What the machine uses of the world (host.Host is the real one)."""

    orphan_listeners: set[Callable[[], None]]

    def spawn(self, spec: ExecSpec) -> Spawned: ...
    def clock(self) -> float: ...
    def call_at(self, when: float, callback: Callable[[], None]) -> Any: ...
    def add_reader(self, fd: int, callback: Callable[[], None]) -> None: ...
    def remove_reader(self, fd: int) -> None: ...
    def signal(self, pid: int, sig: int, *, group: bool) -> bool: ...
    def parent_of(self, pid: int) -> int | None: ...
    def groups_of(self, pid: int) -> set[int]: ...
    def open_pidfd(self, pid: int) -> int | None: ...


class ServiceRef(Protocol):
    """A Service, as the manager's side of the context sees it."""

    name: str
    connection: Connection | None

    @property
    def active_state(self) -> str: ...


class ServiceContext(Protocol):
    """What a Service uses of the manager."""

    log: EventLog
    stopping: bool
    notify: NotifyServer | None
    notify_socket_path: str | None
    #: this run of activator's (hex): every INVOCATION_ID begins with it, so what a dead
    #: activator left running can be found by the next (manager/generation.py)
    run_id: str

    @property
    def capture(self) -> Capture | None:
        """Services' stdout/stderr (None: they share activator's own)."""
        ...

    tally: Tally  # starts, ends and spawn times, for the metrics

    @property
    def default_timeout_stop(self) -> float:
        """TimeoutStopSec= of a unit that sets none (--default-timeout-stop-sec)."""
        ...

    def stop_bound(self, post: bool) -> float:
        """While activator stops: the latest (loop time) a stop step's timer may run to
        (--stop-deadline; ``post``: ExecStopPost= and after); math.inf without a bound."""
        ...

    @property
    def host(self) -> Host: ...
    @property
    def reaper(self) -> Reaper: ...
    def prepared(self, unit: ServiceUnit) -> plan.Prepared:
        """Users, limits and capabilities of a unit, resolved once. Raises StartError."""
        ...

    def acquire_dynamic(self, unit: ServiceUnit | SocketUnit) -> DynamicCreds | None:
        """DynamicUser=: the unit's dynamic user, held until released (None: rootless, the
        unit runs as activator's own user). Raises StartError."""
        ...

    def collect_fds(self, svc: ServiceRef) -> plan.Handover:
        """Accept=no: the listeners of the started sockets that trigger ``svc``."""
        ...

    def instance_done(self, svc: ServiceRef) -> None:
        """An Accept=yes instance is over: its socket may count it out."""
        ...

    def known_pids(self) -> set[int]:
        """The main and control pids of every service (a forking daemon's guess skips them)."""
        ...

    def sockets_of(self, service: str) -> Iterable[str]:
        """The names of the sockets that trigger ``service``."""
        ...


class InstanceOwner(Protocol):
    """The socket an Accept=yes instance belongs to."""

    name: str

    def instance_done(self, svc: ServiceRef) -> None: ...


class LaneSlot(Protocol):
    """The accept lane that spawned an instance: its slot frees when the instance is done."""

    def gone(self, pid: int) -> None: ...


@dataclass(slots=True)
class Connection:
    """What makes a Service an Accept=yes instance. ``lane``/``lane_pid``: an accept lane
    spawned it (lane.py) and counts it against MaxConnections= until it is done."""

    owner: InstanceOwner
    peer: str | None  # "1.2.3.4:5", "[::1]:5"; None for a unix peer
    # the peer's source for MaxConnectionsPerSource=: its address, or the prefix it counts
    # under (X-Activator-PerSourcePrefix=)
    remote: str | None
    lane: LaneSlot | None = None
    lane_pid: int | None = None

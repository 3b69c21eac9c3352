# Types of the C extension activator.exec._spawn (spawn_child.c, _spawn.c, _lane.c,
# _reap.c, _process.c). Keep in step with the method tables there.
from typing import Any

def spawn(
    *,
    path: bytes,
    argv: tuple[bytes, ...],
    env: tuple[bytes, ...],
    fds: tuple[int, ...],
    stdin: int,
    stdout: int,
    stderr: int,
    listen_pid: bool,
    nonblocking: bool,
    uid: int,
    gid: int,
    groups: tuple[int, ...] | None,
    umask: int,
    cwd: bytes | None,
    cwd_optional: bool,
    rlimits: tuple[int, ...],
    nice: int | None,
    oom_score_adj: int | None,
    no_new_privs: bool,
    capability_bounding: int | None,
    ambient_capabilities: int,
    ignore_sigpipe: bool,
    new_session: bool,
    in_place: bool = ...,
    quiet: bool = ...,
    watchdog_pid: bool = ...,
) -> tuple[int, str | None, str | None, int, int]: ...
def exit_codes() -> dict[str, int]: ...
def sigchld_fd() -> int: ...
def set_subreaper() -> bool: ...
def trim_memory() -> None: ...

class Lane:
    def __init__(
        self,
        spec: dict[str, Any],
        listen_fds: tuple[int, ...],
        wake_fd: int,
        max_connections: int,
        conn_env: tuple[tuple[int, int], ...],
        accepted: int = ...,
        local: tuple[tuple[str, int] | None, ...] | None = ...,
    ) -> None: ...
    def start(self) -> None: ...
    def close(self) -> None: ...
    def drain(self) -> list[tuple[Any, ...]]: ...
    def exited(self, pid: int) -> bool: ...
    @property
    def active(self) -> int: ...
    @property
    def spawning(self) -> bool: ...

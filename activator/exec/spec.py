"""The privileged spawn core: everything between fork and exec, in one auditable place.

`spawn(ExecSpec(...))` starts one process: vfork, then in the child setsid, nice, OOM
score, umask, stdio and passed fds (moved to 3, 4, … without FD_CLOEXEC, everything else
closed), rlimits, capability bounding set, setgroups → setgid → setuid, ambient
capabilities, no_new_privs, chdir, signal dispositions and mask, execve. The work after
vfork is C (`activator/exec/spawn_child.c`): a Python child of a large parent costs a page-table
copy per spawn, and glibc's setuid() would signal the parent's threads from a vfork child.

This module imports nothing else from activator. `python -m activator.execcore` is the same
core as a chain-loader that execs in place (see `main`).

In a container (Docker's default capability set has no CAP_SYS_NICE, CAP_SYS_RESOURCE …)
the child is as lenient as systemd 252's exec_child(): an OOMScoreAdjust= refused for want
of privilege is skipped, Limit*= and Nice= beyond what is allowed are set to the closest
value allowed (setrlimit_closest(), setpriority_closest()), the bounding set is left alone
without CAP_SETPCAP when it holds nothing to drop, and an empty SupplementaryGroups= is
skipped where a user namespace denies setgroups(). Where systemd fails, so does the child,
and SpawnError says what is missing and how to give it. `spawn_detailed` tells what was let
pass (`Spawned.notes`, lines for a debug log).

Exit codes of a child that failed before exec are systemd's (systemd.exec(5)):

    200 chdir        201 nice          202 fds            203 exec
    205 setrlimit    206 oom_score_adj 208 stdin          209 stdout
    216 setgroups, setgid              217 setuid, keepcaps
    218 capability_bounding, ambient_capabilities         220 setsid
    222 stderr       227 no_new_privs  (207 signals: cannot fail in practice)
"""

from __future__ import annotations

import errno
import os
import resource
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from activator.exec import _spawn

__all__ = [
    "CAPABILITY_NAMES",
    "EXIT_CODES",
    "ExecSpec",
    "SpawnError",
    "Spawned",
    "spawn",
    "spawn_args",
    "spawn_detailed",
]

#: step -> the exit status of a child that failed at that step (systemd's numbers).
EXIT_CODES = {
    "chdir": 200,
    "nice": 201,
    "fds": 202,
    "exec": 203,
    "setrlimit": 205,
    "oom_score_adj": 206,
    "signals": 207,
    "stdin": 208,
    "stdout": 209,
    "setgroups": 216,
    "setgid": 216,
    "keepcaps": 217,
    "setuid": 217,
    "capability_bounding": 218,
    "ambient_capabilities": 218,
    "setsid": 220,
    "stderr": 222,
    "no_new_privs": 227,
}

_ID_MAX = 2**32 - 2  # (uid_t)-1 means "unchanged" to the kernel
_RLIM_MAX = 2**64 - 1  # RLIM_INFINITY as the kernel spells it

#: Capability names by number (linux/capability.h), for messages.
CAPABILITY_NAMES = tuple(
    "CAP_" + name
    for name in """CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP
    LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER
    SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE
    SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP
    MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF
    CHECKPOINT_RESTORE""".split()
)
#: systemd's directive for each RLIMIT_* (the resource module lacks RLIMIT_LOCKS, 10, and
#: has RLIMIT_OFILE, another name for RLIMIT_NOFILE).
_LIMIT_NAMES = {10: "LimitLOCKS"} | {
    getattr(resource, n): "Limit" + n[7:]
    for n in dir(resource)
    if n.startswith("RLIMIT_") and n != "RLIMIT_OFILE"
}


@dataclass(frozen=True, slots=True)
class ExecSpec:
    """What the child becomes. Every field is applied exactly; nothing is inherited
    implicitly except what a field leaves as "keep" (uid/gid/groups -1/None, cwd None)."""

    path: bytes  # absolute program path (the caller already resolved PATH)
    argv: Sequence[bytes]
    env: Sequence[bytes]  # b"KEY=VALUE"; the parent's environment is never used
    fds: Sequence[int] = ()  # become 3, 4, … in this order; every other fd ≥ 3 is closed
    stdin: int = -1  # fd dup'ed onto 0; -1: /dev/null
    stdout: int = -1
    stderr: int = -1
    listen_pid: bool = False  # append b"LISTEN_PID=<the child's own pid>" to env
    watchdog_pid: bool = False  # append b"WATCHDOG_PID=<the child's own pid>" (WatchdogSec=)
    nonblocking: bool = False  # O_NONBLOCK on fds 3.. set if True, cleared if False
    uid: int = -1  # -1: keep
    gid: int = -1
    groups: Sequence[int] | None = None  # None: keep; else exactly these
    umask: int = 0o022
    cwd: bytes | None = None  # None: keep the parent's
    cwd_optional: bool = False  # WorkingDirectory=-…: on failure use "/"
    rlimits: Sequence[tuple[int, int, int]] = ()  # (RLIMIT_*, soft, hard)
    nice: int | None = None
    oom_score_adj: int | None = None
    no_new_privs: bool = False
    capability_bounding: Sequence[int] | None = None  # None: keep; else drop all others
    ambient_capabilities: Sequence[int] = ()  # survive the uid change into the program
    ignore_sigpipe: bool = True
    new_session: bool = True  # setsid(): the service leads its own process group
    # The child writes "unable to <step> …" to its fd 2 before exiting. The daemon logs
    # SpawnError itself and sets this: in inetd mode fd 2 is the peer, who must not read it.
    quiet: bool = False


class SpawnError(OSError):
    """The child failed at `step` before exec and has exited with `exit_code`.

    The caller must still reap `pid`. `errno`/`strerror` say why; `filename` is the
    program (or the working directory for step "chdir").
    """

    def __init__(
        self,
        err: int,
        *,
        step: str,
        verb: str,
        exit_code: int,
        pid: int,
        filename: str,
        hint: str = "",
    ) -> None:
        super().__init__(err, os.strerror(err), filename)
        self.step = step
        self.verb = verb
        self.exit_code = exit_code
        self.pid = pid
        self.hint = hint  # what is missing and how to give it, where activator knows

    def __str__(self) -> str:  # the line the child wrote to its stderr, as the caller's
        line = f"unable to {self.verb} {self.filename}: {self.strerror}"
        return f"{line}: {self.hint}" if self.hint else line


@dataclass(frozen=True, slots=True)
class Spawned:
    """A process `spawn_detailed` started, and what its child let pass on the way as systemd
    does in a container (nothing, where activator holds every privilege it needs)."""

    pid: int
    tolerated: tuple[str, ...] = ()  # the steps let pass, named as in EXIT_CODES
    notes: tuple[str, ...] = ()  # one line for each, for a debug log


def spawn(spec: ExecSpec) -> int:
    """Start `spec` as a new process and return its pid once execve() has succeeded.

    The caller owns the pid (it must be reaped) and keeps its own copies of the fds: none
    is closed here. O_NONBLOCK lives in the open file description, so the passed fds and a
    socket on stdio change blocking mode for the caller too; set it back before reusing one.

    Raises ValueError/TypeError for a malformed spec (nothing was started), OSError if
    vfork() failed (nothing was started), SpawnError if the child failed before exec (it
    has exited; reap `.pid`). Safe from any thread; the calling thread is suspended (GIL
    held) until the child has exec'd, typically a few hundred microseconds.
    """
    return _call(spec, in_place=False).pid


def spawn_detailed(spec: ExecSpec) -> Spawned:
    """`spawn`, returning with the pid what the child let pass: ``tolerated`` (steps) and
    ``notes`` (one line each, saying what was applied instead), both empty where activator
    holds every privilege the spec needs. Raises as `spawn`."""
    return _call(spec, in_place=False)


def _call(spec: ExecSpec, *, in_place: bool) -> Spawned:
    args = spawn_args(spec)
    pid, step, verb, err, code, tolerated, clamped, nice, what = _spawn.spawn(
        **args, in_place=in_place
    )
    if step is None or verb is None:
        if not tolerated:
            return Spawned(pid)
        return Spawned(pid, tolerated, _notes(spec, tolerated, clamped, nice))
    where = spec.cwd if step == "chdir" and spec.cwd is not None else spec.path
    raise SpawnError(
        err,
        step=step,
        verb=verb,
        exit_code=code,
        pid=pid,
        filename=os.fsdecode(where),
        hint=_hint(spec, step, err, what),
    )


def _notes(spec: ExecSpec, tolerated: tuple[str, ...], clamped: int, nice: int) -> tuple[str, ...]:
    """A line for each step the child let pass, naming systemd's function that does the same."""
    notes = []
    if "nice" in tolerated:
        notes.append(
            f"Nice={spec.nice}: running at {nice}, the closest allowed without CAP_SYS_NICE "
            "(RLIMIT_NICE), as systemd's setpriority_closest()"
        )
    if "oom_score_adj" in tolerated:
        notes.append(
            f"OOMScoreAdjust={spec.oom_score_adj}: not applied, no permission "
            "(CAP_SYS_RESOURCE); assuming containerized execution, as systemd"
        )
    for res, soft, hard in spec.rlimits:
        if clamped >> res & 1:
            # The child started from this process's limits and capped both at the hard one.
            # RLIM_INFINITY is -1 here: as the kernel's 2**64 - 1 it compares right.
            now = _kernel(resource.getrlimit(res)[1])
            got = [min(_kernel(soft), now), min(_kernel(hard), now)]
            notes.append(
                f"{_LIMIT_NAMES.get(res, res)}={_limit(soft)}:{_limit(hard)}: set to "
                f"{_limit(got[0])}:{_limit(got[1])}, the hard limit activator may not raise "
                "(CAP_SYS_RESOURCE), as systemd's setrlimit_closest()"
            )
    if "capability_bounding" in tolerated:
        notes.append(
            "CapabilityBoundingSet=: left as it is, without CAP_SETPCAP; it holds none of the "
            "capabilities to drop, as systemd's capability_bounding_set_drop()"
        )
    if "setgroups" in tolerated:
        notes.append(
            "SupplementaryGroups: not dropped, this user namespace denies setgroups() "
            "(/proc/self/setgroups), as systemd's maybe_setgroups()"
        )
    return tuple(notes)


def _kernel(v: int) -> int:
    return _RLIM_MAX if v == resource.RLIM_INFINITY else v


def _limit(v: int) -> str:
    return "infinity" if _kernel(v) == _RLIM_MAX else str(v)


def _hint(spec: ExecSpec, step: str, err: int, what: int) -> str:
    """For a step systemd fails in a container too: what is missing and how to give it."""
    if step == "setrlimit":
        return _LIMIT_NAMES.get(what, f"resource {what}") + "="
    if step == "nice":
        return f"Nice={spec.nice}"
    if step == "oom_score_adj":
        return f"OOMScoreAdjust={spec.oom_score_adj}"
    if err not in (errno.EPERM, errno.EACCES):
        return ""
    cap = CAPABILITY_NAMES[what] if 0 <= what < len(CAPABILITY_NAMES) else f"capability {what}"
    if step == "ambient_capabilities":
        return (
            f"{cap} is not among activator's capabilities; give it to the container "
            f"(docker run --cap-add={cap[4:]}) or drop it from AmbientCapabilities="
        )
    if step == "capability_bounding":
        return (
            f"dropping {cap} from the bounding set needs CAP_SETPCAP, which activator lacks; "
            f"give the container CAP_SETPCAP (Docker's default set has it) or keep {cap} "
            "in CapabilityBoundingSet="
        )
    if step == "setgroups" and _setgroups_denied():
        return "this user namespace denies setgroups() (/proc/self/setgroups)"
    needed = {"setgroups": "CAP_SETGID", "setgid": "CAP_SETGID", "setuid": "CAP_SETUID"}
    if step in needed:
        return (
            f"activator lacks {needed[step]}; give it to the container (Docker's default "
            "set has it), or run the service without User=/Group="
        )
    return ""


def _setgroups_denied() -> bool:
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() == "deny"
    except OSError:
        return False


def spawn_args(spec: ExecSpec) -> dict[str, object]:
    """Validate the spec into the plain tuples, ints and masks _spawn.spawn() (and an
    accept lane, _spawn.Lane) take. Raises ValueError/TypeError naming the bad field.

    This runs once per connection on the event loop's Accept=yes path: the checks are
    plain comparisons, and a message is only formatted for a spec that fails one.
    """

    def need(ok: bool, what: str | Callable[[], str]) -> None:
        if not ok:
            raise ValueError(f"ExecSpec: {what() if callable(what) else what}")

    def ints(xs: Sequence[int], lo: int, hi: int, what: str) -> tuple[int, ...]:
        out = tuple(xs)
        for x in out:
            if type(x) is not int or not lo <= x <= hi:
                need(False, f"{what} out of range: {out!r}")
        return out

    def plain(b: object, what: str) -> None:
        if type(b) is not bytes or b"\0" in b:
            need(False, f"{what} must be bytes without NUL: {b!r}")

    argv, env = tuple(spec.argv), tuple(spec.env)
    need(len(argv) > 0, "argv must not be empty")
    strings = (spec.path, *argv, *env)
    if not all(type(b) is bytes for b in strings) or b"\0" in b"".join(strings):
        plain(spec.path, "path")  # find the culprit for the message
        for a in argv:
            plain(a, "argv item")
        for e in env:
            plain(e, "env item")
    need(spec.path.startswith(b"/"), lambda: f"path must be absolute: {spec.path!r}")
    for e in env:
        if e.find(b"=") <= 0:
            need(False, f"env item must be KEY=VALUE: {e!r}")
        if spec.listen_pid and e.startswith(b"LISTEN_PID="):
            need(False, "LISTEN_PID given twice")
        if spec.watchdog_pid and e.startswith(b"WATCHDOG_PID="):
            need(False, "WATCHDOG_PID given twice")
    if spec.cwd is not None:
        plain(spec.cwd, "cwd")
        need(spec.cwd.startswith(b"/"), f"cwd must be absolute: {spec.cwd!r}")
    (stdin, stdout, stderr) = ints((spec.stdin, spec.stdout, spec.stderr), -1, 2**31 - 1, "stdio")
    (uid, gid) = ints((spec.uid, spec.gid), -1, _ID_MAX, "uid/gid")
    groups = None if spec.groups is None else ints(spec.groups, 0, _ID_MAX, "groups")
    flat: list[int] = []
    for lim in spec.rlimits:
        need(len(lim) == 3, f"rlimit must be (resource, soft, hard): {lim!r}")
        res, soft, hard = lim
        ints((res,), 0, 63, "rlimit resource")
        # RLIM_INFINITY is -1 in Python's resource module and 2**64-1 to the kernel.
        soft, hard = (-1 if v in (resource.RLIM_INFINITY, _RLIM_MAX) else v for v in (soft, hard))
        flat += ints((res, soft, hard), -1, 2**63 - 1, "rlimit")
    if spec.nice is not None:
        ints((spec.nice,), -20, 19, "nice")
    if spec.oom_score_adj is not None:
        ints((spec.oom_score_adj,), -1000, 1000, "oom_score_adj")
    ints((spec.umask,), 0, 0o777, "umask")
    bounding = None if spec.capability_bounding is None else _mask(spec.capability_bounding)
    return dict(
        path=spec.path,
        argv=argv,
        env=env,
        fds=ints(spec.fds, 0, 2**31 - 1, "fds"),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        listen_pid=spec.listen_pid,
        nonblocking=spec.nonblocking,
        uid=uid,
        gid=gid,
        groups=groups,
        umask=spec.umask,
        cwd=spec.cwd,
        cwd_optional=spec.cwd_optional,
        rlimits=tuple(flat),
        nice=spec.nice,
        oom_score_adj=spec.oom_score_adj,
        no_new_privs=spec.no_new_privs,
        capability_bounding=bounding,
        ambient_capabilities=_mask(spec.ambient_capabilities),
        ignore_sigpipe=spec.ignore_sigpipe,
        new_session=spec.new_session,
        quiet=spec.quiet,
        watchdog_pid=spec.watchdog_pid,
    )


def _mask(caps: Sequence[int]) -> int:
    mask = 0
    for cap in caps:
        if type(cap) is not int or not 0 <= cap <= 63:
            raise ValueError(f"ExecSpec: capability out of range: {cap!r}")
        mask |= 1 << cap
    return mask


def main(argv: Sequence[str] | None = None) -> None:
    """Chain-loader: `python -m activator.execcore [options] -- PROG [ARG…]`.

    Applies the options to this process and execs PROG in place, with this process's
    environment and stdio; fds other than 0-2 and --fds are closed. On failure it prints
    one line and exits with systemd's code for the step (table above). Only for a
    single-threaded process: the credentials change for the calling thread alone.
    """
    import argparse  # the chain-loader's, not the daemon's: kept out of its memory
    import shutil

    p = argparse.ArgumentParser(prog="activator-exec", description=main.__doc__)
    csv = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    p.add_argument("--uid", type=int, default=-1)
    p.add_argument("--gid", type=int, default=-1)
    p.add_argument("--groups", type=csv, default=None, help="comma-separated gids")
    p.add_argument("--fds", type=csv, default=[], help="fds to pass as 3, 4, …")
    p.add_argument("--cwd", default=None)
    p.add_argument("--listen-pid", action="store_true", help="set LISTEN_PID to the pid")
    p.add_argument("prog", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    prog = a.prog[1:] if a.prog[:1] == ["--"] else a.prog
    if not prog:
        p.error("no program given")
    path = shutil.which(prog[0]) or prog[0]
    env = [k + b"=" + v for k, v in os.environb.items() if k != b"LISTEN_PID" or not a.listen_pid]
    spec = ExecSpec(
        path=os.fsencode(os.path.abspath(path)),
        argv=[os.fsencode(x) for x in prog],
        env=env,
        fds=a.fds,
        stdin=0,
        stdout=1,
        stderr=2,
        listen_pid=a.listen_pid,
        uid=a.uid,
        gid=a.gid,
        groups=a.groups,
        umask=os.umask(0o022),
        cwd=None if a.cwd is None else os.fsencode(os.path.abspath(a.cwd)),
        new_session=False,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    _call(spec, in_place=True)  # execs, or writes its one line and exits with the code


if __name__ == "__main__":
    main()

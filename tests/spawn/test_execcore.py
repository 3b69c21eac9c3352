"""The privileged spawn core with real children: what the exec'd program receives.

Privilege tests (marked root) drop to nobody:nogroup; without root the same checks run with
the test's own credentials where they make sense.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import grp
import os
import resource
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest
from spawnprobe import IS_ROOT, reap, run_spec

from activator.exec.spec import EXIT_CODES, ExecSpec, SpawnError, spawn

NOBODY, NOGROUP = 65534, 65534
SIGPIPE_BIT = 1 << (signal.SIGPIPE - 1)
CAP_NET_BIND_SERVICE, CAP_SYS_NICE, CAP_SYS_RESOURCE = 10, 23, 24


def ino(fd: int) -> list[int]:
    st = os.fstat(fd)
    return [st.st_dev, st.st_ino]


def nonblocking(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK)


def cat_status(scratch, **fields) -> dict[str, str]:
    """/proc/self/status of /bin/cat exec'd by the core: the state exactly as exec left it
    (a Python probe would show its interpreter's own SIGPIPE/SIGXFSZ dispositions)."""
    out = scratch("status")
    fd = os.open(out, os.O_WRONLY)
    try:
        spec = ExecSpec(
            path=b"/bin/cat", argv=[b"cat", b"/proc/self/status"], env=[], stdout=fd, **fields
        )
        _, code = run_spec(spec)
    finally:
        os.close(fd)
    assert code == 0
    with open(out) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def expect_failure(spec: ExecSpec, step: str, err: int) -> SpawnError:
    """Spawn `spec`, expect SpawnError at `step` with errno `err`; reap the child and check
    its exit status is the step's code."""
    with pytest.raises(SpawnError) as info:
        pid = spawn(spec)
        reap(pid)  # not reached unless the test fails
    e = info.value
    assert (e.step, e.errno, e.exit_code) == (step, err, EXIT_CODES[step])
    assert reap(e.pid) == e.exit_code
    return e


@contextlib.contextmanager
def at_fds(placements: dict[int, int]) -> Iterator[None]:
    """Put copies of fds on fixed numbers (CLOEXEC), restoring whatever was there (pytest's)."""
    high = {t: fcntl.fcntl(src, fcntl.F_DUPFD_CLOEXEC, 100) for t, src in placements.items()}
    saved: dict[int, tuple[int, bool] | None] = {}
    for target in placements:
        try:
            saved[target] = (
                fcntl.fcntl(target, fcntl.F_DUPFD_CLOEXEC, 100),
                os.get_inheritable(target),
            )
        except OSError:
            saved[target] = None
    try:
        for target, copy in high.items():
            os.dup2(copy, target, inheritable=False)
        yield
    finally:
        for target, was in saved.items():
            if was is None:
                os.close(target)
            else:
                os.dup2(was[0], target, inheritable=was[1])
                os.close(was[0])
        for copy in high.values():
            os.close(copy)


# --- identity ------------------------------------------------------------------------------


@pytest.mark.root
def test_runs_as_nobody_with_exactly_the_given_groups(root, run_probe):
    users = grp.getgrnam("users").gr_gid
    seen = run_probe(uid=NOBODY, gid=NOGROUP, groups=[NOGROUP, users])
    assert seen["resuid"] == [NOBODY] * 3  # real, effective and saved: no way back
    assert seen["resgid"] == [NOGROUP] * 3
    assert seen["groups"] == sorted([NOGROUP, users])
    assert 0 not in seen["groups"]


@pytest.mark.root
def test_empty_groups_leave_no_supplementary_group(root, run_probe):
    seen = run_probe(uid=NOBODY, gid=NOGROUP, groups=[])
    assert seen["groups"] == []


@pytest.mark.root
def test_nobody_keeps_no_capabilities(root, scratch, nobody):
    status = cat_status(scratch, **nobody)
    for field in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(status[field], 16) == 0, field
    assert status["NoNewPrivs"] == "0"


@pytest.mark.root
def test_ambient_capability_survives_the_uid_drop(root, scratch, nobody):
    status = cat_status(
        scratch,
        **nobody,
        ambient_capabilities=[CAP_NET_BIND_SERVICE],
        capability_bounding=[CAP_NET_BIND_SERVICE],
        no_new_privs=True,
    )
    for field in ("CapInh", "CapPrm", "CapEff", "CapAmb", "CapBnd"):
        assert int(status[field], 16) == 1 << CAP_NET_BIND_SERVICE, field
    assert status["NoNewPrivs"] == "1"


@pytest.mark.root
def test_ambient_capability_outside_the_bounding_set_fails(root, nobody):
    spec = ExecSpec(
        path=b"/bin/true",
        argv=[b"true"],
        env=[],
        **nobody,
        ambient_capabilities=[CAP_NET_BIND_SERVICE],
        capability_bounding=[],
    )
    expect_failure(spec, "ambient_capabilities", errno.EPERM)


# --- fds -----------------------------------------------------------------------------------


def test_only_stdio_and_the_passed_fds_are_open(run_probe):
    listener = socket.create_server(("127.0.0.1", 0))
    a, b = socket.socketpair()
    r, w = os.pipe()  # CLOEXEC, as Python makes them
    leak = os.open("/dev/null", os.O_RDONLY)
    os.set_inheritable(leak, True)  # not CLOEXEC: only close_range keeps it out
    try:
        listener.setblocking(False)
        a.setblocking(False)
        seen = run_probe(fds=[listener.fileno(), a.fileno()], listen_pid=True)
        fds = seen["fds"]
        assert sorted(fds) == [0, 1, 2, 3, 4]
        assert fds[0]["kind"] == fds[1]["kind"] == "chr 1:3"  # /dev/null
        assert (fds[3]["kind"], fds[3]["ino"]) == ("listening", ino(listener.fileno()))
        assert (fds[4]["kind"], fds[4]["ino"]) == ("socket", ino(a.fileno()))
        for fd in (3, 4):
            assert not fds[fd]["nonblock"] and not fds[fd]["cloexec"]
        assert f"LISTEN_PID={seen['pid']}" in seen["environ"]
        assert seen["pid"] == seen["spawned_pid"]
        # O_NONBLOCK belongs to the open file description: the parent's copy changed too.
        assert not nonblocking(listener.fileno())
    finally:
        for s in (listener, a, b):
            s.close()
        for fd in (r, w, leak):
            os.close(fd)


def test_nonblocking_sets_o_nonblock_but_stdin_socket_stays_blocking(run_probe):
    listener = socket.create_server(("127.0.0.1", 0))
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        seen = run_probe(fds=[listener.fileno()], stdin=a.fileno(), nonblocking=True)
        assert seen["fds"][3]["nonblock"] and not seen["fds"][3]["cloexec"]
        assert seen["fds"][0]["kind"] == "socket" and not seen["fds"][0]["nonblock"]
    finally:
        for s in (listener, a, b):
            s.close()


def test_swapped_fds_3_and_4_and_fds_already_in_place(run_probe):
    a, peer_a = socket.socketpair()
    b, peer_b = socket.socketpair()
    try:
        with at_fds({3: a.fileno(), 4: b.fileno()}):
            swapped = run_probe(fds=[4, 3])
            in_place = run_probe(fds=[3, 4])  # dup2(3, 3) would keep FD_CLOEXEC: not used
        assert [swapped["fds"][fd]["ino"] for fd in (3, 4)] == [ino(b.fileno()), ino(a.fileno())]
        assert [in_place["fds"][fd]["ino"] for fd in (3, 4)] == [ino(a.fileno()), ino(b.fileno())]
        for seen in (swapped, in_place):
            assert sorted(seen["fds"]) == [0, 1, 2, 3, 4]
            assert not seen["fds"][3]["cloexec"] and not seen["fds"][4]["cloexec"]
    finally:
        for s in (a, peer_a, b, peer_b):
            s.close()


def test_the_same_fd_twice_and_as_stdin(run_probe):
    a, b = socket.socketpair()
    try:
        seen = run_probe(fds=[a.fileno(), a.fileno()], stdin=a.fileno())
        fds = seen["fds"]
        assert sorted(fds) == [0, 1, 2, 3, 4]
        assert fds[0]["ino"] == fds[3]["ino"] == fds[4]["ino"] == ino(a.fileno())
        assert fds[1]["kind"] == "chr 1:3"
    finally:
        a.close()
        b.close()


def test_inetd_mode_connection_on_stdio_made_blocking(run_probe):
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname(), timeout=10)
    conn, _ = listener.accept()
    try:
        conn.setblocking(False)
        c = conn.fileno()
        seen = run_probe(stdin=c, stdout=c, stderr=c)
        fds = seen["fds"]
        assert sorted(fds) == [0, 1, 2]
        for fd in (0, 1, 2):
            assert fds[fd]["kind"] == "socket" and fds[fd]["ino"] == ino(c)
            assert not fds[fd]["nonblock"] and not fds[fd]["cloexec"]
        assert not any(e.startswith("LISTEN_") for e in seen["environ"])
    finally:
        for s in (listener, client, conn):
            s.close()


# --- environment, session, process attributes ----------------------------------------------


def test_environment_is_exactly_the_given_one(run_probe, monkeypatch):
    monkeypatch.setenv("ACTIVATOR_TEST_CANARY", "leaked")
    env = [b"A=1", b"B=two words", b"EMPTY="]
    seen = run_probe(env=env, listen_pid=True)
    assert seen["environ"] == ["A=1", "B=two words", "EMPTY=", f"LISTEN_PID={seen['pid']}"]
    assert run_probe(env=env)["environ"] == ["A=1", "B=two words", "EMPTY="]


def test_session_umask_and_cwd(run_probe, probe_dir):
    seen = run_probe(umask=0o027, cwd=probe_dir.encode())
    assert seen["sid"] == seen["pgid"] == seen["pid"]
    assert seen["umask"] == 0o027
    assert seen["cwd"] == probe_dir
    kept = run_probe(new_session=False)
    assert kept["sid"] == os.getsid(0) and kept["umask"] == 0o022


def has_capability(cap: int) -> bool:
    with open("/proc/self/status") as f:
        eff = next(line for line in f if line.startswith("CapEff:"))
    return bool(int(eff.split()[1], 16) >> cap & 1)


def test_rlimits_nice_and_oom_score(run_probe):
    # Lowering the nice level needs CAP_SYS_NICE; lowering the OOM score CAP_SYS_RESOURCE,
    # which some sandboxes withhold even from root (see the failure test below).
    nice = -5 if has_capability(CAP_SYS_NICE) else 7
    oom = -500 if has_capability(CAP_SYS_RESOURCE) else 500
    limits = [(resource.RLIMIT_NOFILE, 64, 128), (resource.RLIMIT_CORE, 0, resource.RLIM_INFINITY)]
    seen = run_probe(rlimits=limits, nice=nice, oom_score_adj=oom)
    assert seen["rlimits"]["RLIMIT_NOFILE"] == [64, 128]
    assert seen["rlimits"]["RLIMIT_CORE"] == [0, resource.RLIM_INFINITY]
    assert (seen["nice"], seen["oom"]) == (nice, oom)


def test_signal_dispositions_and_mask_are_reset(scratch, nobody):
    # The parent catches SIGUSR1, ignores SIGUSR2 and SIGHUP (and, as Python does, SIGPIPE
    # and SIGXFSZ), and blocks SIGTERM and SIGUSR1. The child must see none of it.
    def handler(signum, frame):
        pass

    old = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP)}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR1})
    try:
        signal.signal(signal.SIGUSR1, handler)
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        status = cat_status(scratch, **nobody)
        assert int(status["SigIgn"], 16) == SIGPIPE_BIT
        assert int(status["SigBlk"], 16) == 0
        assert int(status["SigCgt"], 16) == 0
        assert int(cat_status(scratch, **nobody, ignore_sigpipe=False)["SigIgn"], 16) == 0
        # The parent got its own mask and handlers back.
        assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == mask
        assert signal.getsignal(signal.SIGUSR1) is handler
        assert signal.getsignal(signal.SIGUSR2) == signal.SIG_IGN
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        for s, h in old.items():
            signal.signal(s, h)


# --- failures before exec ------------------------------------------------------------------


def test_missing_program_fails_with_203_and_one_line_on_stderr(scratch, nobody):
    err = scratch("err")
    fd = os.open(err, os.O_WRONLY)
    try:
        spec = ExecSpec(
            path=b"/nonexistent/program", argv=[b"program"], env=[], stderr=fd, **nobody
        )
        e = expect_failure(spec, "exec", errno.ENOENT)
    finally:
        os.close(fd)
    line = "unable to exec /nonexistent/program: No such file or directory"
    assert str(e) == line and e.filename == "/nonexistent/program"
    with open(err) as f:
        assert f.read() == f"activator-exec: {line}\n"


def test_program_not_executable_fails_with_203(probe_dir, nobody):
    path = os.path.join(probe_dir, "probe.py").encode()  # mode 0644
    expect_failure(ExecSpec(path=path, argv=[path], env=[], **nobody), "exec", errno.EACCES)


@pytest.mark.root
def test_cwd_nobody_cannot_enter_fails_with_200(root, probe_dir, nobody):
    d = tempfile.mkdtemp(dir=probe_dir)  # 0700 root
    try:
        spec = ExecSpec(path=b"/bin/true", argv=[b"true"], env=[], cwd=d.encode(), **nobody)
        e = expect_failure(spec, "chdir", errno.EACCES)
        assert e.filename == d
    finally:
        os.rmdir(d)


def test_missing_cwd_fails_unless_optional(run_probe, probe_dir, nobody):
    missing = os.path.join(probe_dir, "missing").encode()
    assert run_probe(cwd=missing, cwd_optional=True)["cwd"] == "/"
    spec = ExecSpec(path=b"/bin/true", argv=[b"true"], env=[], cwd=missing, **nobody)
    expect_failure(spec, "chdir", errno.ENOENT)


def test_failing_setup_steps_exit_with_systemds_codes(nobody):
    true = {"path": b"/bin/true", "argv": [b"true"], "env": []}
    closed = os.open("/dev/null", os.O_RDONLY)
    os.close(closed)
    expect_failure(ExecSpec(**true, stdin=closed), "stdin", errno.EBADF)
    expect_failure(ExecSpec(**true, stdout=closed), "stdout", errno.EBADF)
    expect_failure(ExecSpec(**true, stderr=closed), "stderr", errno.EBADF)
    expect_failure(ExecSpec(**true, fds=[closed]), "fds", errno.EBADF)
    expect_failure(
        ExecSpec(**true, rlimits=[(resource.RLIMIT_NOFILE, 10, 5)]), "setrlimit", errno.EINVAL
    )
    too_many = [NOGROUP] * 65537  # NGROUPS_MAX + 1; without root the kernel says EPERM first
    expect_failure(
        ExecSpec(**true, groups=too_many), "setgroups", errno.EINVAL if IS_ROOT else errno.EPERM
    )
    # A refused OOMScoreAdjust= (EACCES without CAP_SYS_RESOURCE) is let pass, as systemd
    # does in a container: tests/containerish.
    if not IS_ROOT:
        expect_failure(ExecSpec(**true, uid=0), "setuid", errno.EPERM)


@pytest.mark.parametrize(
    "bad",
    [
        {"path": b"relative"},
        {"path": "/bin/true"},
        {"argv": []},
        {"argv": [b"a\0b"]},
        {"env": [b"NOEQUALS"]},
        {"env": [b"=x"]},
        {"env": [b"LISTEN_PID=1"], "listen_pid": True},
        {"uid": 2**32 - 1},
        {"gid": -2},
        {"groups": [-1]},
        {"fds": [-1]},
        {"stdin": -2},
        {"cwd": b"relative"},
        {"nice": 20},
        {"oom_score_adj": 1001},
        {"umask": 0o1000},
        {"ambient_capabilities": [64]},
        {"capability_bounding": [-1]},
        {"rlimits": [(0, 1)]},
    ],
)
def test_malformed_specs_are_refused_before_spawning(bad):
    fields = {"path": b"/bin/true", "argv": [b"true"], "env": [], **bad}
    with pytest.raises(ValueError, match="ExecSpec"):
        spawn(ExecSpec(**fields))


def test_parent_keeps_its_fds_mask_and_handlers_across_many_spawns(nobody):
    before = sorted(os.listdir("/proc/self/fd"))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    handler = signal.getsignal(signal.SIGINT)
    ok = ExecSpec(path=b"/bin/true", argv=[b"true"], env=[], listen_pid=True, **nobody)
    bad = ExecSpec(path=b"/nonexistent", argv=[b"x"], env=[], **nobody)
    for _ in range(50):
        assert reap(spawn(ok)) == 0
        with pytest.raises(SpawnError) as info:
            spawn(bad)
        assert reap(info.value.pid) == 203
    assert sorted(os.listdir("/proc/self/fd")) == before
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == mask
    assert signal.getsignal(signal.SIGINT) is handler


# --- speed (printed, not asserted) ---------------------------------------------------------


def spawn_rate(spec: ExecSpec, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        pid = spawn(spec)
        _, status = os.waitpid(pid, 0)  # /bin/true: exits at once
        assert status == 0
    return n / (time.perf_counter() - start)


def test_speed_of_spawning_bin_true(nobody, capsys):
    spec = ExecSpec(path=b"/bin/true", argv=[b"true"], env=[], **nobody)
    small = spawn_rate(spec, 500)
    ballast = bytearray(64 << 20)
    ballast[::4096] = b"\1" * len(range(0, len(ballast), 4096))  # touch every page
    big = spawn_rate(spec, 500)
    del ballast
    with capsys.disabled():
        print(
            f"\nspawn+wait of /bin/true{' as nobody' if nobody else ''}: "
            f"{small:,.0f}/s from this process, {big:,.0f}/s with 64 MiB more resident",
            file=sys.stderr,
        )


def test_watchdog_pid_is_the_childs_own_pid():
    """WatchdogSec=: WATCHDOG_PID, like LISTEN_PID, is the pid that execs."""
    import os

    from activator.exec.spec import ExecSpec, spawn

    r, w = os.pipe()
    try:
        pid = spawn(
            ExecSpec(
                path=b"/bin/sh",
                argv=[b"sh", b"-c", b'echo "$$ $LISTEN_PID $WATCHDOG_PID"'],
                env=[b"PATH=/bin"],
                stdout=w,
                listen_pid=True,
                watchdog_pid=True,
            )
        )
    finally:
        os.close(w)
    try:
        out = os.read(r, 100).split()
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    assert out == [str(pid).encode()] * 3
    assert os.waitstatus_to_exitcode(status) == 0

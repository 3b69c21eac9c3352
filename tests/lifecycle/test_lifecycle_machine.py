"""The service state machine, driven by a fake clock and a fake spawner: no processes.

Each test names what of systemd's behaviour (reference/systemd.md §3.2, §4, §6c) it
pins down; the transitions are asserted sub-state by sub-state.
"""

from __future__ import annotations

import os
import signal
import socket

import pytest
from fakes import ME, FakeDaemon, cmd, trace

from activator.core.ratelimit import RateLimit
from activator.core.states import (
    PUBLIC,
    SERVICE_TRANSITIONS,
    SUB_TRANSITIONS,
    Result,
    ServiceState,
    ServiceSubState,
    TransitionError,
    check,
)
from activator.exec.plan import Handover

U = ServiceSubState
S = ServiceState
BOOT = ["dead", "start-pre", "start", "start-post", "running"]
DOWN = ["stop-post", "dead"]  # nothing left to signal, no ExecStopPost=


# ---------------------------------------------------------------- the tables


def test_every_sub_transition_is_a_legal_public_one():
    for old, news in SUB_TRANSITIONS.items():
        for new in news:
            a, b = PUBLIC[old], PUBLIC[new]
            assert a == b or b in SERVICE_TRANSITIONS[a], (old, new, a, b)
    assert set(SUB_TRANSITIONS) == set(U) == set(PUBLIC)


def test_illegal_transitions_raise():
    with pytest.raises(TransitionError):
        check(SUB_TRANSITIONS, "x.service", U.DEAD, U.RUNNING)
    with pytest.raises(TransitionError):
        check(
            SUB_TRANSITIONS, "x.service", U.STOP_POST, U.STOP_SIGTERM
        )  # the stop only goes forward
    d = FakeDaemon()
    svc = d.service()
    with pytest.raises(TransitionError):
        svc._enter(U.RUNNING)
    assert svc.sub == U.DEAD


# ---------------------------------------------------------------- Type=simple / exec


def test_simple_up_and_clean_exit():
    d = FakeDaemon()
    svc = d.service()
    seen = trace(svc)
    svc.start()
    assert seen == BOOT and svc.state == S.ACTIVE
    pid = svc.main_pid
    (p,) = d.spawned()
    assert p.pid == pid and p.argv == ["/bin/daemon"]
    assert p.env["INVOCATION_ID"] == svc.invocation and "NOTIFY_SOCKET" not in p.env
    d.exit(pid, 0)
    assert seen == BOOT + DOWN
    assert svc.state == S.INACTIVE and svc.result == Result.SUCCESS
    assert svc.last_exit == ("exited", 0)
    assert d.host.signalled(pid) == [signal.SIGTERM]  # what is left of its group, as systemd
    assert d.host.pending() == []


@pytest.mark.parametrize("kind", ["simple", "exec"])
def test_failed_exec_is_a_failed_start(kind):
    """Type=exec (and simple: our spawn returns after execve) fail at once, exit-code 203."""
    d = FakeDaemon()
    d.host.fail_spawn["/bin/daemon"] = ("exec", 203)
    svc = d.service(Type=kind)
    seen = trace(svc)
    svc.start()
    assert seen == ["dead", "start-pre", "start", "stop-post", "failed"]
    assert svc.result == Result.EXIT_CODE and svc.last_exit == ("exited", 203)
    assert d.log.find("failed")[0]["step"] == "exec"


def test_exit_codes_and_signals_classified():
    d = FakeDaemon()
    cases = [
        (dict(code=1), S.FAILED, Result.EXIT_CODE),
        (dict(sig=signal.SIGTERM), S.INACTIVE, Result.SUCCESS),  # clean for a daemon
        (dict(sig=signal.SIGKILL), S.FAILED, Result.SIGNAL),
        (dict(sig=signal.SIGSEGV, core=True), S.FAILED, Result.CORE_DUMP),
        (dict(code=42), S.INACTIVE, Result.SUCCESS),  # SuccessExitStatus=42
        (dict(sig=signal.SIGUSR1), S.INACTIVE, Result.SUCCESS),  # SuccessExitStatus=SIGUSR1
    ]
    from activator.units.model import ExitStatusSet

    ok = ExitStatusSet(codes=frozenset({42}), signals=frozenset({int(signal.SIGUSR1)}))
    for how, state, result in cases:
        svc = d.service(SuccessExitStatus=ok)
        svc.start()
        d.exit(svc.main_pid, **how)
        assert (svc.state, svc.result) == (state, result), how


# ---------------------------------------------------------------- Restart=


_TABLE = {  # systemd.service(5), "Table 2. Exit causes and the effect of the Restart= settings"
    #               clean   code    signal  timeout watchdog
    "no":          (False, False, False, False, False),
    "always":      (True,  True,  True,  True,  True),
    "on-success":  (True,  False, False, False, False),
    "on-failure":  (False, True,  True,  True,  True),
    "on-abnormal": (False, False, True,  True,  True),
    "on-abort":    (False, False, True,  False, False),
    "on-watchdog": (False, False, False, False, True),
}  # fmt: skip


@pytest.mark.parametrize("policy", list(_TABLE))
@pytest.mark.parametrize("cause", range(5))
def test_restart_table(policy, cause):
    d = FakeDaemon()
    svc = d.service(Type="notify", Restart=policy, RestartSec=0.5, TimeoutStartSec=5, WatchdogSec=3)
    svc.start()
    pid = svc.main_pid
    if cause == 3:  # timeout: no READY=1 within TimeoutStartSec=
        d.host.advance(5)
        assert svc.sub == U.STOP_SIGTERM and d.host.signalled(pid) == [signal.SIGTERM]
        d.die_of_signals(pid)
    else:
        d.send(svc, pid, READY="1")
        assert svc.sub == U.RUNNING
        if cause == 4:  # no WATCHDOG=1 within WatchdogSec=
            d.host.advance(3)
            assert svc.sub == U.STOP_WATCHDOG and d.host.signalled(pid) == [signal.SIGABRT]
            d.exit(pid, sig=signal.SIGABRT, core=True)
        else:
            d.exit(pid, **[dict(code=0), dict(code=3), dict(sig=signal.SIGKILL)][cause])
    expected = _TABLE[policy][cause]
    assert (svc.sub == U.AUTO_RESTART) is expected
    assert (
        svc.result
        == [Result.SUCCESS, Result.EXIT_CODE, Result.SIGNAL, Result.TIMEOUT, Result.WATCHDOG][cause]
    )
    if expected:
        assert svc.state == S.ACTIVATING
        assert d.host.pending() == [0.5]  # RestartSec=
        d.host.advance(0.5)
        assert svc.sub == U.START and svc.n_restarts == 1 and svc.main_pid != pid
        assert svc.result == Result.SUCCESS


def test_restart_prevent_and_force_exit_status():
    from activator.units.model import ExitStatusSet

    d = FakeDaemon()
    svc = d.service(
        Restart="always", RestartPreventExitStatus=ExitStatusSet(codes=frozenset({255}))
    )
    svc.start()
    d.exit(svc.main_pid, 255)
    assert svc.sub == U.FAILED  # sshd's RestartPreventExitStatus=255
    svc = d.service(
        Restart="no", RestartForceExitStatus=ExitStatusSet(signals=frozenset({int(signal.SIGHUP)}))
    )
    svc.start()
    d.exit(svc.main_pid, sig=signal.SIGHUP)
    assert svc.sub == U.AUTO_RESTART


def test_start_limit_fails_until_an_operator_starts_again():
    """StartLimitBurst=3 in 10 s: the 4th start in a crash loop is refused, for good."""
    d = FakeDaemon()
    svc = d.service(
        Restart="always", RestartSec=1, unit=dict(StartLimitIntervalSec=10, StartLimitBurst=3)
    )
    svc.start()
    for n in range(3):
        d.exit(svc.main_pid, 1)
        assert svc.sub == U.AUTO_RESTART
        d.host.advance(1)
        if n < 2:
            assert svc.sub == U.RUNNING and svc.n_restarts == n + 1
    assert svc.sub == U.FAILED and svc.result == Result.START_LIMIT_HIT
    assert d.host.pending() == []
    d.host.advance(60)  # time alone does not bring it back: nothing is scheduled
    assert svc.sub == U.FAILED
    svc.start()  # an operator's start resets the limit
    assert svc.sub == U.RUNNING and svc.result == Result.SUCCESS
    for _ in range(2):
        d.exit(svc.main_pid, 1)
        d.host.advance(1)
    d.exit(svc.main_pid, 1)
    d.host.advance(1)  # the 4th start within 10 s: refused again
    assert svc.sub == U.FAILED and svc.result == Result.START_LIMIT_HIT


def test_no_restart_after_explicit_stop_or_while_stopping():
    d = FakeDaemon()
    svc = d.service(Restart="always", TimeoutStopSec=5)
    svc.start()
    pid = svc.main_pid
    svc.request_stop()
    assert svc.sub == U.STOP_SIGTERM
    d.exit(pid, sig=signal.SIGTERM)
    assert svc.sub == U.DEAD
    # stopped in the hold-off: the restart never comes
    svc.start()
    d.exit(svc.main_pid, 1)
    assert svc.sub == U.AUTO_RESTART
    svc.request_stop()
    assert svc.sub == U.DEAD and d.host.pending() == []


# ---------------------------------------------------------------- stop sequence and KillMode=


def test_stop_timeout_escalates_to_sigkill():
    """SIGTERM ignored: SIGKILL after TimeoutStopSec=, and the result is timeout (as systemd)."""
    d = FakeDaemon()
    svc = d.service(TimeoutStopSec=3, ExecStop="/bin/stopper", ExecStopPost="/bin/cleanup")
    svc.start()
    pid = svc.main_pid
    seen = trace(svc)
    svc.request_stop()
    assert seen[-1] == "stop"  # ExecStop= first
    stopper = d.spawned()[-1]
    assert stopper.argv == ["/bin/stopper"] and stopper.env["MAINPID"] == str(pid)
    assert stopper.env["SERVICE_RESULT"] == "success"
    d.exit(stopper.pid, 0)
    assert seen[-1] == "stop-sigterm" and (pid, signal.SIGTERM, True) in d.host.signals
    d.host.advance(3)
    assert seen[-1] == "stop-sigkill" and (pid, signal.SIGKILL, True) in d.host.signals
    assert d.log.find("kill")[0]["signal"] == "SIGKILL"
    d.exit(pid, sig=signal.SIGKILL)
    assert seen[-1] == "stop-post"
    cleanup = d.spawned()[-1]
    assert cleanup.env["SERVICE_RESULT"] == "timeout" and cleanup.env["EXIT_CODE"] == "killed"
    assert cleanup.env["EXIT_STATUS"] == "KILL"
    d.exit(cleanup.pid, 0)
    assert svc.sub == U.FAILED and svc.result == Result.TIMEOUT


@pytest.mark.parametrize(
    "mode,group", [("control-group", True), ("process", False), ("mixed", False)]
)
def test_kill_mode(mode, group):
    d = FakeDaemon()
    svc = d.service(KillMode=mode, KillSignal=signal.SIGINT)
    svc.start()
    pid = svc.main_pid
    svc.request_stop()
    assert d.host.signals == [(pid, signal.SIGINT, group)]  # once: by its group, or itself


def test_kill_mode_none_leaves_it_running():
    d = FakeDaemon()
    svc = d.service(KillMode="none")
    svc.start()
    svc.request_stop()
    assert svc.sub == U.DEAD and d.host.signals == []


def test_leftovers_of_the_process_group_are_waited_for():
    """final-sigterm: the main process is gone, its group is not; dead when the group is empty."""
    d = FakeDaemon()
    svc = d.service(TimeoutStopSec=4)
    svc.start()
    pid = svc.main_pid
    child = d.host.adopt(groups={pid})  # forked by the service, same process group
    d.exit(pid, 0)
    assert svc.sub == U.FINAL_SIGTERM and d.host.signals[-1] == (pid, signal.SIGTERM, True)
    d.exit(child, sig=signal.SIGTERM)  # an orphan: the reaper says so, the service looks again
    assert svc.sub == U.DEAD and svc.result == Result.SUCCESS
    # one that ignores SIGTERM: SIGKILL after TimeoutStopSec=
    svc.start()
    pid = svc.main_pid
    child = d.host.adopt(groups={pid})
    d.exit(pid, 0)
    d.host.advance(4)
    assert svc.sub == U.FINAL_SIGKILL and d.host.signals[-1] == (pid, signal.SIGKILL, True)
    d.exit(child, sig=signal.SIGKILL)
    assert svc.sub == U.FAILED and svc.result == Result.TIMEOUT


def test_runtime_max_sec():
    d = FakeDaemon()
    svc = d.service(RuntimeMaxSec=30)
    svc.start()
    d.host.advance(29.9)
    assert svc.sub == U.RUNNING
    d.host.advance(0.1)
    assert svc.sub == U.STOP_SIGTERM
    d.die_of_signals(svc.main_pid)
    assert svc.sub == U.FAILED and svc.result == Result.TIMEOUT


# ---------------------------------------------------------------- control processes


def test_exec_start_pre_failure_runs_stop_post():
    d = FakeDaemon()
    svc = d.service(ExecStartPre=(cmd("/bin/ok"), cmd("/bin/bad")), ExecStopPost="/bin/post")
    seen = trace(svc)
    svc.start()
    ok = d.spawned()[-1]
    assert seen[-1] == "start-pre" and ok.argv == ["/bin/ok"] and svc.control_pid == ok.pid
    assert "LISTEN_FDS" not in ok.env
    d.exit(ok.pid, 0)
    bad = d.spawned()[-1]
    d.exit(bad.pid, 2)
    post = d.spawned()[-1]
    assert post.argv == ["/bin/post"] and post.env["SERVICE_RESULT"] == "exit-code"
    d.exit(post.pid, 0)
    assert seen == ["dead", "start-pre", "stop-post", "failed"]
    assert svc.main_pid is None and svc.result == Result.EXIT_CODE


def test_ignored_failures_and_start_post():
    d = FakeDaemon()
    svc = d.service(ExecStartPre=(cmd("/bin/bad", ignore=True),), ExecStartPost="/bin/post")
    svc.start()
    d.exit(d.spawned()[-1].pid, 1)  # "-": ignored
    main = svc.main_pid
    assert svc.sub == U.START_POST and svc.state == S.ACTIVATING
    post = d.spawned()[-1]
    assert post.env["MAINPID"] == str(main)
    d.exit(post.pid, 0)
    assert svc.sub == U.RUNNING


def test_exec_condition_skips_quietly():
    d = FakeDaemon()
    svc = d.service(ExecCondition="/bin/check")
    svc.start()
    assert svc.sub == U.CONDITION
    d.exit(svc.control_pid, 1)
    assert svc.sub == U.DEAD and svc.result == Result.EXEC_CONDITION
    assert len(d.spawned()) == 1  # the main process never ran
    svc.start()
    d.exit(svc.control_pid, 255)  # 255: a failure, not a skip
    assert svc.sub == U.FAILED and svc.result == Result.EXIT_CODE


def test_start_pre_timeout():
    d = FakeDaemon()
    svc = d.service(ExecStartPre="/bin/slow", TimeoutStartSec=2)
    svc.start()
    pre = svc.control_pid
    d.host.advance(2)
    assert svc.sub == U.STOP_SIGTERM and d.host.signalled(pre) == [signal.SIGTERM]
    d.die_of_signals(pre)
    assert svc.sub == U.FAILED and svc.result == Result.TIMEOUT


def test_reload_with_exec_reload():
    d = FakeDaemon()
    svc = d.service(ExecReload="/bin/kill -HUP $MAINPID")
    svc.start()
    main = svc.main_pid
    assert svc.request_reload()
    assert svc.state == S.RELOADING
    rl = d.spawned()[-1]
    assert rl.argv == ["/bin/kill", "-HUP", str(main)]
    d.exit(rl.pid, 0)
    assert svc.sub == U.RUNNING and svc.reload_result == Result.SUCCESS
    svc.request_reload()
    d.exit(d.spawned()[-1].pid, 1)
    assert svc.sub == U.RUNNING and svc.reload_result == Result.EXIT_CODE  # still up


# ---------------------------------------------------------------- Type=oneshot


def test_oneshot_runs_each_line_then_is_done():
    d = FakeDaemon()
    svc = d.service(
        Type="oneshot", ExecStart=(cmd("/bin/a"), cmd("/bin/b", ignore=True), cmd("/bin/c"))
    )
    seen = trace(svc)
    svc.start()
    for expected, code in (("/bin/a", 0), ("/bin/b", 1), ("/bin/c", 0)):
        p = d.spawned()[-1]
        assert p.argv == [expected] and svc.main_pid == p.pid and svc.state == S.ACTIVATING
        d.exit(p.pid, code)
    assert seen == ["dead", "start-pre", "start", "start-post", "stop-post", "dead"]
    assert S.ACTIVE not in [PUBLIC[U(s)] for s in seen]  # never active without RemainAfterExit=
    assert svc.result == Result.SUCCESS


def test_oneshot_remain_after_exit_and_failure():
    d = FakeDaemon()
    svc = d.service(Type="oneshot", RemainAfterExit=True)
    svc.start()
    d.exit(svc.main_pid, 0)
    assert svc.sub == U.EXITED and svc.state == S.ACTIVE
    assert d.log.find("ready")
    svc.request_stop()
    assert svc.sub == U.DEAD
    svc = d.service(Type="oneshot", ExecStart=(cmd("/bin/a"), cmd("/bin/b")))
    svc.start()
    d.exit(svc.main_pid, 4)
    assert svc.sub == U.FAILED and svc.result == Result.EXIT_CODE
    assert [p.argv[0] for p in d.spawned()][-1] == "/bin/a"  # /bin/b never ran


def test_oneshot_start_timeout():
    d = FakeDaemon()
    svc = d.service(Type="oneshot", TimeoutStartSec=1)
    svc.start()
    d.host.advance(1)
    d.die_of_signals(svc.main_pid)
    assert svc.sub == U.FAILED and svc.result == Result.TIMEOUT


# ---------------------------------------------------------------- Type=forking


def test_forking_with_pid_file(tmp_path):
    d = FakeDaemon()
    pidfile = tmp_path / "d.pid"
    svc = d.service(Type="forking", PIDFile=str(pidfile))
    seen = trace(svc)
    svc.start()
    parent = svc.control_pid
    assert svc.sub == U.START and svc.main_pid is None
    daemon = d.host.adopt()
    pidfile.write_text(f"{daemon}\n")
    d.exit(parent, 0)
    assert seen[-1] == "running" and svc.main_pid == daemon
    assert d.log.find("ready")[0]["pid"] == daemon
    d.exit(daemon, 1)
    assert svc.sub == U.FAILED and svc.result == Result.EXIT_CODE


def test_forking_pid_file_problems(tmp_path):
    d = FakeDaemon()
    svc = d.service(Type="forking", PIDFile=str(tmp_path / "missing.pid"))
    svc.start()
    d.exit(svc.control_pid, 0)
    assert svc.sub == U.FAILED and svc.result == Result.PROTOCOL
    # a PID file not owned by root that names a process not of the service is refused
    pidfile = tmp_path / "d.pid"
    stranger = d.host.adopt()
    pidfile.write_text(str(stranger))
    os.chown(pidfile, 65534, 65534)
    svc = d.service(Type="forking", PIDFile=str(pidfile))
    svc.start()
    d.host.parent_of = lambda pid: 1  # the stranger is not an orphan of ours
    d.exit(svc.control_pid, 0)
    assert svc.sub == U.FAILED and svc.result == Result.PROTOCOL
    assert "refused" in d.log.find("failed")[-2]["reason"]


def test_forking_parent_fails():
    d = FakeDaemon()
    svc = d.service(Type="forking")
    svc.start()
    d.exit(svc.control_pid, 1)
    assert svc.sub == U.FAILED and svc.result == Result.EXIT_CODE


# ---------------------------------------------------------------- Type=notify


def test_notify_ready_status_and_access():
    """§6c 27: active only after READY=1 from the main pid; STATUS= kept; others refused."""
    d = FakeDaemon()
    svc = d.service(Type="notify", ExecStartPost="/bin/post")
    svc.start()
    main = svc.main_pid
    (p,) = d.spawned()
    assert p.env["NOTIFY_SOCKET"] == "/run/activator/notify"
    assert svc.sub == U.START and svc.state == S.ACTIVATING
    d.send(svc, main + 1, READY="1")  # not the main process: NotifyAccess=main by default
    assert svc.sub == U.START
    assert "NotifyAccess=main" in d.log.find("warning")[0]["reason"]
    d.send(svc, main, READY="1", STATUS="serving 3 clients", ERRNO="0")
    assert svc.sub == U.START_POST  # ExecStartPost= runs after READY=1
    d.exit(svc.control_pid, 0)
    assert svc.sub == U.RUNNING and svc.status_text == "serving 3 clients"


@pytest.mark.parametrize(
    "access,who,ok",
    [
        ("none", "main", False),
        ("main", "main", True),
        ("main", "control", False),
        ("exec", "control", True),
        ("exec", "child", False),
        ("all", "child", True),
    ],
)
def test_notify_access(access, who, ok):
    d = FakeDaemon()
    svc = d.service(Type="notify", NotifyAccess=access, ExecStartPost="/bin/post")
    svc.start()
    main = svc.main_pid
    svc._enter_start_post()  # a control process to send from
    pid = {"main": main, "control": svc.control_pid, "child": d.host.adopt(groups={main})}[who]
    d.send(svc, pid, STATUS="hello")
    assert (svc.status_text == "hello") is ok


def test_notify_exit_before_ready():
    d = FakeDaemon()
    svc = d.service(Type="notify")
    svc.start()
    d.exit(svc.main_pid, 0)
    assert svc.sub == U.FAILED and svc.result == Result.PROTOCOL
    svc.start()
    d.exit(svc.main_pid, 3)
    assert svc.sub == U.FAILED and svc.result == Result.EXIT_CODE


def test_notify_extend_timeout():
    d = FakeDaemon()
    svc = d.service(Type="notify", TimeoutStartSec=5)
    svc.start()
    d.host.advance(4)
    d.send(svc, svc.main_pid, EXTEND_TIMEOUT_USEC="3000000")  # until now + 3 s, not 5 + 3
    d.host.advance(2.9)
    assert svc.sub == U.START
    d.send(svc, svc.main_pid, EXTEND_TIMEOUT_USEC="100")  # shorter: no effect
    d.host.advance(0.05)
    assert svc.sub == U.START
    d.host.advance(0.1)
    assert svc.sub == U.STOP_SIGTERM and svc.result == Result.TIMEOUT


def test_notify_mainpid_reloading_stopping():
    d = FakeDaemon()
    svc = d.service(Type="notify", Restart="always")
    svc.start()
    old = svc.main_pid
    new = d.host.adopt(groups={old})  # its child, in its process group
    d.send(svc, old, MAINPID=str(new), READY="1")
    assert svc.main_pid == new and svc.sub == U.RUNNING
    assert d.reaper.watched.get(new) is not None and old not in d.reaper.watched
    d.exit(old, 0)  # the old main process is gone: an orphan's exit now
    assert svc.sub == U.RUNNING
    d.send(svc, new, MAINPID="1")  # never PID 1
    assert svc.main_pid == new
    d.send(svc, new, RELOADING="1")
    assert svc.state == S.RELOADING
    d.send(svc, new, READY="1")
    assert svc.state == S.ACTIVE
    d.send(svc, new, STOPPING="1")
    assert svc.sub == U.STOP_SIGTERM and d.host.signals == []  # it stops by itself
    d.exit(new, 0)
    assert svc.sub == U.AUTO_RESTART  # not an operator's stop: Restart= applies


def test_mainpid_from_a_stranger_is_refused():
    d = FakeDaemon()
    svc = d.service(Type="notify")
    svc.start()
    d.host.parent_of = lambda pid: 1
    other = d.host.adopt()
    d.send(svc, svc.main_pid, MAINPID=str(other))
    assert svc.main_pid != other
    d.send(svc, svc.main_pid, uid=0, MAINPID=str(other))  # root may
    assert svc.main_pid == other


def test_notify_reload_type():
    d = FakeDaemon()
    svc = d.service(Type="notify-reload")
    svc.start()
    d.send(svc, svc.main_pid, READY="1")
    assert svc.request_reload()
    assert d.host.signals[-1] == (svc.main_pid, signal.SIGHUP, False) and svc.state == S.RELOADING
    d.send(svc, svc.main_pid, RELOADING="1")
    d.send(svc, svc.main_pid, READY="1")
    assert svc.sub == U.RUNNING


# ---------------------------------------------------------------- the watchdog


def test_watchdog():
    d = FakeDaemon()
    svc = d.service(
        Type="notify", WatchdogSec=2, Restart="on-watchdog", WatchdogSignal=signal.SIGQUIT
    )
    svc.start()
    main = svc.main_pid
    assert d.spawned()[0].env["WATCHDOG_USEC"] == "2000000"
    assert d.spawned()[0].spec.watchdog_pid  # the core writes the child's own pid
    d.host.advance(5)  # no watchdog before READY=1 (start-post on)
    d.send(svc, main, READY="1")
    for _ in range(3):
        d.host.advance(1.5)
        d.send(svc, main, WATCHDOG="1")
    assert svc.sub == U.RUNNING
    d.host.advance(2)
    assert svc.sub == U.STOP_WATCHDOG and d.host.signals[-1] == (main, signal.SIGQUIT, True)
    assert d.log.find("watchdog")[0]["signal"] == "SIGQUIT"
    d.exit(main, sig=signal.SIGQUIT, core=True)
    assert svc.sub == U.AUTO_RESTART and svc.result == Result.WATCHDOG


def test_watchdog_override_and_trigger():
    d = FakeDaemon()
    svc = d.service(Type="notify")  # no WatchdogSec=: the service turns it on itself
    svc.start()
    main = svc.main_pid
    d.send(svc, main, READY="1", WATCHDOG_USEC="500000")
    d.host.advance(0.4)
    assert svc.sub == U.RUNNING
    d.host.advance(0.2)
    assert svc.sub == U.STOP_WATCHDOG
    d.exit(main, sig=signal.SIGABRT)
    svc.start()
    d.send(svc, svc.main_pid, READY="1")
    d.send(svc, svc.main_pid, WATCHDOG="trigger")
    assert svc.sub == U.STOP_WATCHDOG and svc.result == Result.WATCHDOG


# ---------------------------------------------------------------- the fd store


def test_start_limit_hit_is_logged_and_lets_go_of_the_fd_store():
    """Over the limit: one failed line with the result and the reason, and what a service
    keeps only across restarts (the fd store) is let go, as after any final stop."""
    d = FakeDaemon()
    svc = d.service(
        Type="notify",
        FileDescriptorStoreMax=1,
        Restart="always",
        RestartSec=1,
        unit=dict(StartLimitIntervalSec=10, StartLimitBurst=1),
    )
    a, b = socket.socketpair()
    try:
        svc.start()
        d.send(svc, svc.main_pid, READY="1")
        d.send(svc, svc.main_pid, fds=[os.dup(a.fileno())], FDSTORE="1")
        assert len(svc.fd_store) == 1
        d.exit(svc.main_pid, 1)
        assert svc.sub == U.AUTO_RESTART and len(svc.fd_store) == 1  # kept for the restart
        d.host.advance(1)  # the 2nd start within 10 s, burst 1: refused
        assert svc.sub == U.FAILED and svc.result == Result.START_LIMIT_HIT
        assert len(svc.fd_store) == 0
        failed = [(u, f) for e, u, f in d.log.events if e == "failed"]
        assert failed[-1] == (
            "x.service",
            {"result": Result.START_LIMIT_HIT, "reason": "start request repeated too quickly"},
        )
    finally:
        a.close()
        b.close()


# ---------------------------------------------------------------- RateLimit (systemd's ratelimit_below)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "interval, burst, enabled",
    [(10, 3, True), (0.5, 1, True), (1, 1, True), (0, 3, False), (10, 0, False), (0, 0, False)],
)
def test_rate_limit_enabled_only_with_an_interval_and_a_burst(interval, burst, enabled):
    rl = RateLimit(interval, burst, clock=Clock(100.0))
    assert rl.enabled is enabled
    if not enabled:  # a disabled limit never refuses
        assert all(rl.below() for _ in range(50))


def test_rate_limit_window_starts_at_the_first_event_and_ends_exactly_after_interval():
    clock = Clock(100.0)
    rl = RateLimit(10, 2, clock=clock)
    assert rl.below() and rl.below() and not rl.below()  # 3rd in the window: refused
    clock.now = 103.0
    assert rl.remaining() == 7.0
    clock.now = 109.999
    assert not rl.below()
    clock.now = 110.0  # exactly one interval after the window began: a new one
    assert rl.below() and rl.below() and not rl.below()
    clock.now = 125.0
    assert rl.remaining() == 0.0  # never negative


def test_rate_limit_first_event_opens_the_window_even_near_time_zero():
    """A clock that starts near 0 (a fresh boot, a fake clock): the first event opens the
    window at its own time, not at 0."""
    clock = Clock(0.5)
    rl = RateLimit(10, 1, clock=clock)
    assert rl.below()
    clock.now = 10.2  # 9.7 s after the first event: still its window
    assert not rl.below()
    assert rl.remaining() == pytest.approx(0.3)


def test_rate_limit_reset_forgets_the_window():
    clock = Clock(2.0)
    rl = RateLimit(10, 1, clock=clock)
    assert rl.below() and not rl.below()
    rl.reset()
    clock.now = 3.0
    assert rl.below()  # counted from nothing
    assert rl.remaining() == 10.0  # the window begins at this event
    assert not rl.below()


def test_fd_store_survives_a_restart_and_comes_back_last():
    d = FakeDaemon()
    listener = socket.socket()
    d.handover = Handover(fds=[listener.fileno()], names=["web.socket"])
    svc = d.service(Type="notify", FileDescriptorStoreMax=2, Restart="on-failure", RestartSec=0)
    a, b = socket.socketpair()
    c, e = socket.socketpair()
    try:
        svc.start()
        main = svc.main_pid
        d.send(svc, main, READY="1")
        d.send(svc, main, fds=[os.dup(a.fileno())], FDSTORE="1", FDNAME="conn")
        d.send(svc, main, fds=[os.dup(a.fileno())], FDSTORE="1", FDNAME="again")  # same socket
        d.send(svc, main, fds=[os.dup(c.fileno()), os.dup(e.fileno())], FDSTORE="1", FDPOLL="0")
        assert [n for _, n in svc.fd_store.fds()] == ["conn", "stored"]  # max 2
        assert len(d.host.readers) == 1  # one epoll fd watches the stored ones for hang-ups
        d.exit(main, 1)
        d.host.advance(0)
        p = d.spawned()[-1]
        assert p.pid == svc.main_pid != main
        assert p.env["LISTEN_FDS"] == "3" and p.env["LISTEN_FDNAMES"] == "web.socket:conn:stored"
        assert p.spec.fds[0] == listener.fileno() and len(p.spec.fds) == 3
        d.send(svc, svc.main_pid, FDSTOREREMOVE="1", FDNAME="conn")
        assert [n for _, n in svc.fd_store.fds()] == ["stored"]
        svc.request_stop()  # an operator's stop: the store is emptied
        d.die_of_signals(svc.main_pid)
        assert len(svc.fd_store) == 0 and d.host.readers == {}
    finally:
        for s in (listener, a, b, c, e):
            s.close()


def test_fd_store_disabled_closes_what_is_sent():
    d = FakeDaemon()
    svc = d.service(Type="notify", NotifyAccess="main")
    svc.start()
    r, w = os.pipe()
    os.close(w)
    d.send(svc, svc.main_pid, fds=[r], FDSTORE="1")
    with pytest.raises(OSError):
        os.fstat(r)  # closed by activator
    assert len(svc.fd_store) == 0


def test_fd_store_drops_hung_up_fds():
    d = FakeDaemon()
    svc = d.service(Type="notify", FileDescriptorStoreMax=4)
    svc.start()
    a, b = socket.socketpair()
    d.send(svc, svc.main_pid, fds=[os.dup(a.fileno())], FDSTORE="1", FDNAME="peer")
    a.close()
    b.close()  # both ends gone: POLLHUP
    (on_hangup,) = d.host.readers.values()
    on_hangup()
    assert len(svc.fd_store) == 0 and d.log.find("fdstore")[-1]["reason"] == "hung up"
    svc.fd_store.close()


# ---------------------------------------------------------------- Accept=yes instances


def test_instance_never_restarts_and_reports_done():
    d = FakeDaemon()
    a, b = socket.socketpair()
    try:
        svc = d.service("e@0-1-2.service", Restart="always", StandardInput="socket")
        svc.start_instance(Handover(connection=a.fileno(), extra_env={"REMOTE_ADDR": "10.0.0.1"}))
        p = d.spawned()[-1]
        assert p.spec.stdin == a.fileno() and "LISTEN_FDS" not in p.env
        assert p.env["REMOTE_ADDR"] == "10.0.0.1"
        d.exit(p.pid, 1)
        assert svc.sub == U.FAILED and d.done == ["e@0-1-2.service"]
    finally:
        a.close()
        b.close()


def test_daemon_stopping_refuses_starts_and_restarts():
    d = FakeDaemon()
    svc = d.service(Restart="always")
    svc.start()
    d.stopping = True
    d.exit(svc.main_pid, 1)
    assert svc.sub == U.FAILED
    svc.start()
    assert svc.sub == U.FAILED


def test_groups_include_the_session_of_an_adopted_main(tmp_path):
    d = FakeDaemon()
    pidfile = tmp_path / "p"
    svc = d.service(Type="forking", PIDFile=str(pidfile))
    svc.start()
    daemon = d.host.adopt(groups={777, 778})
    pidfile.write_text(str(daemon))
    d.exit(svc.control_pid, 0)
    assert d.host.parent_of(daemon) == ME  # an orphan of the start process, ours now
    svc.request_stop()  # by its process groups, not one by one
    assert {(777, signal.SIGTERM, True), (778, signal.SIGTERM, True)} <= set(d.host.signals)
    assert d.host.signalled(daemon) == []
    d.exit(daemon, sig=signal.SIGTERM)
    assert svc.sub == U.DEAD


def test_exec_prefixes():
    """§6c 28: "-" makes a failing oneshot line a success; "@" sets argv[0]."""
    d = FakeDaemon()
    at = cmd("/bin/x")
    at = at.model_copy(update={"argv": ("name", "a")})
    svc = d.service(Type="oneshot", ExecStart=(cmd("/bin/false", ignore=True), at))
    svc.start()
    d.exit(svc.main_pid, 1)
    p = d.spawned()[-1]
    assert p.spec.path == b"/bin/x" and p.argv == ["name", "a"]
    d.exit(p.pid, 0)
    assert svc.sub == U.DEAD and svc.result == Result.SUCCESS


# ---------------------------------------------------------------- Condition*=, Assert*=


def test_conditions(tmp_path):
    from activator.exec.conditions import failed_condition

    here = str(tmp_path)
    missing = str(tmp_path / "missing")
    assert failed_condition(()) is None
    assert (
        failed_condition((("ConditionPathExists", here), ("ConditionPathIsDirectory", here)))
        is None
    )
    assert failed_condition((("ConditionPathExists", missing),)) == ("ConditionPathExists", missing)
    assert failed_condition((("ConditionPathExists", "!" + missing),)) is None
    # "|": at least one of the triggering ones
    trig = (("ConditionPathExists", "|" + missing), ("ConditionPathIsDirectory", "|" + here))
    assert failed_condition(trig) is None
    assert failed_condition(trig[:1]) == trig[0]
    assert failed_condition((("ConditionUser", "root"), ("ConditionUser", "0"))) is None
    assert failed_condition((("ConditionEnvironment", "PATH"),)) is None
    assert failed_condition((("AssertFileNotEmpty", here),)) == ("AssertFileNotEmpty", here)
    assert failed_condition((("ConditionCapability", "CAP_KILL"),)) is None
    assert failed_condition((("ConditionArchitecture", "s390"),)) is None  # not judged here


def test_failed_condition_skips_and_counts_against_the_start_limit(tmp_path):
    """A condition that fails leaves the service inactive; the start limit is counted first,
    so a socket re-triggering it ends in start-limit-hit (sd#3167), as in systemd."""
    d = FakeDaemon()
    gone = str(tmp_path / "nope")
    svc = d.service(unit=dict(Conditions=(("ConditionPathExists", gone),), StartLimitBurst=2))
    changes = []
    svc.observe(lambda s: changes.append(s.sub))
    svc.start()
    assert svc.sub == U.DEAD and d.spawned() == [] and changes == [U.DEAD]
    assert "was not met" in d.log.find("skipped")[0]["reason"]
    svc.start()
    svc.start()
    assert svc.sub == U.FAILED and svc.result == Result.START_LIMIT_HIT


# ---------------------------------------------------------------- issue 13: stop grace


def test_default_timeout_stop_applies_only_where_the_unit_sets_none():
    """--default-timeout-stop-sec (systemd's DefaultTimeoutStopSec=): units without
    TimeoutStopSec= get it; a unit's own value stays."""
    d = FakeDaemon()
    d.default_timeout_stop = 3.0
    plain = d.service("a.service")
    own = d.service("b.service", TimeoutStopSec=7)
    for svc in (plain, own):
        svc.start()
        svc.request_stop()
    assert d.host.pending() == [3.0, 7.0]
    d.host.advance(3)
    assert plain.sub == U.STOP_SIGKILL and own.sub == U.STOP_SIGTERM
    assert "TimeoutStopSec=3s" in d.log.find("kill")[0]["reason"]


def test_stop_deadline_cuts_every_stop_step_short_and_stop_post_still_runs():
    """--stop-deadline: while activator stops, SIGTERM's wait ends at the SIGKILL point,
    and what comes after SIGKILL (ExecStopPost=) at the deadline itself."""
    d = FakeDaemon()
    svc = d.service(ExecStopPost="/bin/cleanup")  # TimeoutStopSec= 90 s by default
    svc.start()
    pid = svc.main_pid
    d.stopping = True
    d.bounds = (d.host.now + 2.0, d.host.now + 5.0)
    svc.request_stop()
    assert svc.sub == U.STOP_SIGTERM and d.host.pending() == [2.0]
    d.host.advance(2)
    assert svc.sub == U.STOP_SIGKILL and (pid, signal.SIGKILL, True) in d.host.signals
    kill = d.log.find("kill")[0]
    assert kill["reason"] == "still running at the stop deadline"
    assert d.host.pending() == [3.0]  # waiting for the SIGKILL'd process: to the deadline
    d.exit(pid, sig=signal.SIGKILL)
    assert svc.sub == U.STOP_POST and d.spawned()[-1].argv == ["/bin/cleanup"]
    assert d.host.pending() == [3.0]  # ExecStopPost= has what is left, not 90 s
    d.exit(d.spawned()[-1].pid, 0)
    assert svc.sub == U.FAILED and svc.result == Result.TIMEOUT


def test_no_stop_deadline_while_running():
    """The bound applies while activator stops, not to an operator's stop before."""
    d = FakeDaemon()
    d.bounds = (d.host.now + 2.0, d.host.now + 5.0)
    svc = d.service(TimeoutStopSec=10)
    svc.start()
    svc.request_stop()
    assert d.host.pending() == [10.0]


def test_spawn_leniency_is_logged_at_debug_level():
    """Issue 12/13: what the spawn core let pass in a container (Spawned.notes) is a
    ``leniency`` line (level debug) naming the unit and the process."""
    d = FakeDaemon()
    d.host.notes = ["OOMScoreAdjust=-500: not applied, no permission (CAP_SYS_RESOURCE)"]
    svc = d.service(OOMScoreAdjust=-500)
    svc.start()
    (note,) = d.log.find("leniency")
    assert note == {"pid": svc.main_pid, "reason": d.host.notes[0]}


# ---------------------------------------------------------------- DynamicUser= (issue 12)


def test_dynamic_user_is_held_across_restarts_and_released_when_stopped():
    d = FakeDaemon()
    svc = d.service("web.service", DynamicUser=True, Restart="always", RestartSec=0.5)
    svc.start()
    spec = d.host.procs[svc.main_pid].spec
    assert (spec.uid, spec.gid, list(spec.groups)) == (61184, 61184, [61184])
    env = dict(e.decode().split("=", 1) for e in spec.env)
    # systemd 252: the name, but no home or shell (no passwd entry); no new privileges
    assert env["USER"] == env["LOGNAME"] == "web.service" and "HOME" not in env
    assert spec.no_new_privs
    d.exit(svc.main_pid, 1)
    assert svc.sub == U.AUTO_RESTART
    d.host.advance(0.5)
    assert svc.sub == U.RUNNING and d.dynamic == [("acquire", "web.service")]
    pid = svc.main_pid
    svc.request_stop()
    d.exit(pid, sig=signal.SIGTERM)
    assert svc.sub == U.DEAD
    assert d.dynamic == [("acquire", "web.service"), ("release", "web.service")]
    once = d.service("once.service", DynamicUser=True)  # no Restart=: released at its end
    once.start()
    d.exit(once.main_pid, 3)
    assert once.sub == U.FAILED
    assert d.dynamic[2:] == [("acquire", "once.service"), ("release", "once.service")]


# ---------------------------------------------------------------- directives with no test of
# their own before issue 12's coverage test (tests/test_directive_coverage.py)


def test_final_kill_signal_send_sighup_and_send_sigkill():
    """FinalKillSignal= replaces SIGKILL; SendSIGHUP= follows KillSignal= with SIGHUP;
    SendSIGKILL=no gives up after TimeoutStopSec= instead of killing."""
    d = FakeDaemon()
    svc = d.service(TimeoutStopSec=2, FinalKillSignal=int(signal.SIGQUIT), SendSIGHUP=True)
    svc.start()
    pid = svc.main_pid
    svc.request_stop()
    assert d.host.signalled(pid) == [signal.SIGTERM, signal.SIGHUP]
    d.host.advance(2)
    assert d.host.signalled(pid)[-1] == signal.SIGQUIT  # not SIGKILL
    d.exit(pid, sig=signal.SIGQUIT)
    assert svc.sub == U.FAILED and svc.result == Result.TIMEOUT
    keep = d.service("keep.service", TimeoutStopSec=2, SendSIGKILL=False)
    keep.start()
    kpid = keep.main_pid
    keep.request_stop()
    d.host.advance(2)
    assert signal.SIGKILL not in d.host.signalled(kpid)  # SIGTERM (stop, final), never SIGKILL
    assert "SendSIGKILL=no" in d.log.find("timeout")[-1]["reason"]


def test_restart_kill_signal_is_for_an_operators_restart():
    d = FakeDaemon()
    svc = d.service(RestartKillSignal=int(signal.SIGUSR2), KillSignal=int(signal.SIGINT))
    svc.start()
    pid = svc.main_pid
    svc._restarting = True  # what restart() sets around its stop
    svc.request_stop()
    assert d.host.signalled(pid) == [signal.SIGUSR2]
    d.exit(pid, sig=signal.SIGUSR2)
    svc._restarting = False
    svc.start()
    pid = svc.main_pid
    svc.request_stop()
    assert d.host.signalled(pid) == [signal.SIGINT]  # a plain stop: KillSignal=


def test_guess_main_pid_no_leaves_a_forking_service_without_one():
    d = FakeDaemon()
    svc = d.service(Type="forking", GuessMainPID=False)
    svc.start()
    d.host.adopt({svc.control_pid})  # the daemon it forked, in its group: not the main pid
    d.exit(svc.control_pid, 0)
    assert svc.main_pid is None and svc.sub == U.RUNNING


def test_permissions_start_only_runs_control_commands_as_root():
    d = FakeDaemon()
    svc = d.service(User="nobody", ExecStartPre="/bin/prepare", PermissionsStartOnly=True)
    svc.start()
    (pre,) = d.spawned()
    assert pre.spec.uid == -1  # ExecStartPre= keeps root's credentials
    d.exit(pre.pid, 0)
    assert d.spawned()[-1].spec.uid == 65534  # the main process drops them


def test_bus_name_type_dbus_runs_as_simple_with_a_warning():
    d = FakeDaemon()
    svc = d.service(Type="dbus", BusName="org.example.Demo", IgnoreSIGPIPE=False)
    svc.start()
    assert svc.sub == U.RUNNING and "BusName= is ignored" in d.log.find("warning")[0]["reason"]
    assert d.spawned()[0].spec.ignore_sigpipe is False  # IgnoreSIGPIPE=no

"""The spawn core under Docker's default capabilities: where systemd 252's exec_child() lets a
step pass or clamps it, so does activator's child; where systemd fails, it fails, saying
what is missing. Each case spawns a shell that prints its own /proc files (spawn_under.py).
"""

from __future__ import annotations

import errno
import resource

import pytest
from dockerish import (
    DOCKER_DEFAULT_CAPS,
    DOCKER_DEFAULT_MASK,
    NOFILE_HARD,
    can_raise_rlimit_nice,
    run,
    userns_wrapper,
    wrapper,
)
from harness import impossible_here

pytestmark = pytest.mark.root

NOFILE = resource.RLIMIT_NOFILE
INF = resource.RLIM_INFINITY
NOBODY = {"uid": 65534, "gid": 65534, "groups": []}
CAP_NET_BIND_SERVICE, CAP_NET_ADMIN = 10, 12


def test_the_wrapper_gives_dockers_default_capabilities(docker_default):
    status = run([*docker_default, "/bin/sh", "-c", "cat /proc/self/status; ulimit -Hn"])
    fields = dict(line.split(":\t", 1) for line in status.stdout.splitlines() if ":\t" in line)
    for field in ("CapBnd", "CapPrm", "CapEff"):
        assert int(fields[field], 16) == DOCKER_DEFAULT_MASK, field
    assert int(fields["CapInh"], 16) == 0 and int(fields["CapAmb"], 16) == 0
    assert fields["NoNewPrivs"] == "0"
    assert status.stdout.splitlines()[-1] == str(NOFILE_HARD)
    probe = "cat /proc/self/status; echo 1 > /proc/sys/kernel/ns_last_pid"
    legacy = run([*wrapper(legacy_inheritable=True), "/bin/sh", "-c", probe])
    assert f"CapInh:\t{DOCKER_DEFAULT_MASK:016x}" in legacy.stdout
    assert "Read-only file system" in legacy.stderr  # /proc/sys


# --- let pass, as systemd does ---------------------------------------------------------------


def test_oom_score_adj_refused_is_let_pass(docker_default, spawn_under):
    # dbus.service's OOMScoreAdjust=-900: lowering it needs CAP_SYS_RESOURCE.
    got = spawn_under(docker_default, oom_score_adj=-900)
    assert got["status"] == 0 and got["tolerated"] == ["oom_score_adj"]
    assert got["proc"]["oom"] == 0  # inherited, unchanged
    assert "OOMScoreAdjust=-900: not applied" in got["notes"][0]
    # Raising it needs no privilege and is applied exactly.
    got = spawn_under(docker_default, oom_score_adj=500)
    assert (got["tolerated"], got["proc"]["oom"]) == ([], 500)


@pytest.mark.parametrize(
    ("want", "applied"),
    [
        ((65535, 65535), [NOFILE_HARD, NOFILE_HARD]),  # dovecot.service's LimitNOFILE=65535
        ((512, 65535), [512, NOFILE_HARD]),
        ((INF, INF), [NOFILE_HARD, NOFILE_HARD]),
        ((NOFILE_HARD, NOFILE_HARD), [NOFILE_HARD, NOFILE_HARD]),
        ((100, 200), [100, 200]),
    ],
)
def test_rlimit_above_the_hard_limit_is_set_to_the_closest(
    docker_default, spawn_under, want, applied
):
    got = spawn_under(docker_default, **NOBODY, rlimits=[(NOFILE, *want)])
    assert got["status"] == 0 and got["proc"]["nofile"] == applied
    raised = want[1] == INF or want[1] > NOFILE_HARD
    assert got["tolerated"] == (["setrlimit"] if raised else [])
    if raised:
        assert f"set to {applied[0]}:{applied[1]}" in got["notes"][0]
        assert "setrlimit_closest()" in got["notes"][0]


def test_nice_below_what_rlimit_nice_allows_keeps_the_current_level(docker_default, spawn_under):
    # RLIMIT_NICE 0 (Docker's default) allows nothing below 19, so the current level stays.
    assert resource.getrlimit(resource.RLIMIT_NICE)[0] <= 1
    got = spawn_under(docker_default, **NOBODY, nice=-10)
    assert got["status"] == 0 and got["tolerated"] == ["nice"]
    assert got["proc"]["nice"] == 0
    assert "running at 0" in got["notes"][0] and "setpriority_closest()" in got["notes"][0]
    got = spawn_under(docker_default, **NOBODY, nice=5)  # raising needs nothing: exact
    assert (got["tolerated"], got["proc"]["nice"]) == ([], 5)


def test_nice_below_what_rlimit_nice_allows_gets_that_limit(spawn_under):
    if not can_raise_rlimit_nice():
        # RLIMIT_NICE's hard limit is 0 here and only CAP_SYS_RESOURCE (in the initial user
        # namespace) may raise it; 20 - RLIMIT_NICE is reachable no other way.
        impossible_here("raising RLIMIT_NICE (hard limit 0) needs CAP_SYS_RESOURCE")
    # RLIMIT_NICE 25 allows down to 20 - 25 = -5.
    got = spawn_under(wrapper(nice_limit=25), **NOBODY, nice=-10)
    assert got["status"] == 0 and got["tolerated"] == ["nice"]
    assert got["proc"]["nice"] == -5


def test_bounding_set_without_setpcap_is_left_alone_if_nothing_held_must_go(spawn_under):
    no_setpcap = tuple(c for c in DOCKER_DEFAULT_CAPS if c != "setpcap")
    keep = [i for i in range(41) if DOCKER_DEFAULT_MASK >> i & 1]  # all held, and SETPCAP
    got = spawn_under(wrapper(caps=no_setpcap), capability_bounding=keep)
    assert got["status"] == 0 and got["tolerated"] == ["capability_bounding"]
    assert got["proc"]["caps"]["CapBnd"] == DOCKER_DEFAULT_MASK & ~(1 << 8)
    assert "capability_bounding_set_drop()" in got["notes"][0]


def test_bounding_set_is_dropped_exactly_with_setpcap(docker_default, spawn_under):
    got = spawn_under(docker_default, capability_bounding=[CAP_NET_BIND_SERVICE])
    assert (got["status"], got["tolerated"]) == (0, [])
    assert got["proc"]["caps"]["CapBnd"] == 1 << CAP_NET_BIND_SERVICE


def test_ambient_capability_in_dockers_set_survives_the_uid_drop(docker_default, spawn_under):
    got = spawn_under(docker_default, **NOBODY, ambient_capabilities=[CAP_NET_BIND_SERVICE])
    assert (got["status"], got["tolerated"]) == (0, [])
    assert got["proc"]["caps"]["CapAmb"] == 1 << CAP_NET_BIND_SERVICE


def test_dropping_all_groups_where_a_user_namespace_denies_setgroups(spawn_under):
    got = spawn_under(userns_wrapper(), groups=[])
    assert got["status"] == 0 and got["tolerated"] == ["setgroups"]
    assert "maybe_setgroups()" in got["notes"][0]


# --- fails, as systemd does, saying what is missing ------------------------------------------


def test_ambient_capability_docker_withholds_fails_naming_it(docker_default, spawn_under):
    got = spawn_under(docker_default, **NOBODY, ambient_capabilities=[CAP_NET_ADMIN])
    assert (got["step"], got["errno"], got["status"]) == ("ambient_capabilities", errno.EPERM, 218)
    assert "CAP_NET_ADMIN is not among activator's capabilities" in got["message"]
    assert "--cap-add=NET_ADMIN" in got["message"]


def test_bounding_set_drop_without_setpcap_fails_naming_the_capability(spawn_under):
    no_setpcap = tuple(c for c in DOCKER_DEFAULT_CAPS if c != "setpcap")
    got = spawn_under(wrapper(caps=no_setpcap), capability_bounding=[CAP_NET_BIND_SERVICE])
    assert (got["step"], got["errno"], got["status"]) == ("capability_bounding", errno.EPERM, 218)
    assert "dropping CAP_CHOWN from the bounding set needs CAP_SETPCAP" in got["message"]


def test_oom_score_adj_on_a_read_only_proc_fails(spawn_under):
    # EROFS is no lack of privilege: systemd fails too (EXIT_OOM_ADJUST).
    got = spawn_under(wrapper(ro_proc=True), oom_score_adj=-900)
    assert (got["step"], got["errno"], got["status"]) == ("oom_score_adj", errno.EROFS, 206)
    assert got["message"].endswith("Read-only file system: OOMScoreAdjust=-900")


def test_setting_groups_where_a_user_namespace_denies_setgroups_fails(spawn_under):
    got = spawn_under(userns_wrapper(), groups=[0])
    assert (got["step"], got["errno"], got["status"]) == ("setgroups", errno.EPERM, 216)
    assert "this user namespace denies setgroups()" in got["message"]


def test_setuid_without_cap_setuid_fails_naming_it(spawn_under):
    no_setuid = tuple(c for c in DOCKER_DEFAULT_CAPS if c != "setuid")
    got = spawn_under(wrapper(caps=no_setuid), **NOBODY)
    assert (got["step"], got["errno"], got["status"]) == ("setuid", errno.EPERM, 217)
    assert "activator lacks CAP_SETUID" in got["message"]

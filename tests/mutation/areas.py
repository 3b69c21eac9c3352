"""What `make mutate` mutates, and which tests answer for each area.

An area is the code that decides one thing users rely on, with the tests that cover it
(only those run for its mutants: the whole suite per mutant would take hours). A target
names functions by qualified name; ``until`` cuts a function at the first line containing
that text (``Service._begin`` is mutated only up to where the start limit is decided).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    file: str
    functions: tuple[str, ...]
    until: dict[str, str] | None = None


@dataclass(frozen=True)
class Area:
    name: str
    what: str
    targets: tuple[Target, ...]
    tests: tuple[str, ...]


AREAS = (
    Area(
        "plan",
        "credentials, fds and environment of a start (exec/plan.py, Manager.collect_fds)",
        (
            Target(
                "activator/exec/plan.py",
                (
                    "cap_numbers",
                    "find_program",
                    "expand_argv",
                    "_is_name",
                    "_replace_braced",
                    "build_environment",
                    "prepare",
                    "make_spec",
                    "pass_fds",
                ),
            ),
            Target("activator/manager/manager.py", ("Manager.collect_fds",)),
        ),
        (
            "tests/test_plan.py",
            # one event loop is enough here: what is checked is the plan, not the loop
            "tests/integration/test_exec_prefixes.py::test_every_prefix_runs_with_its_credentials[asyncio]",
            "tests/integration/test_activation.py::test_fd_order_across_several_sockets[asyncio]",
            "tests/integration/test_activation.py::test_stopped_and_accept_yes_sockets_pass_no_fds[asyncio]",
            "tests/integration/test_activation.py::test_fdname_and_two_sockets_one_service[asyncio]",
        ),
    ),
    Area(
        "spec",
        "the checks between a plan and the C spawn core (exec/spec.py spawn_args)",
        (Target("activator/exec/spec.py", ("spawn_args", "_mask")),),
        ("tests/spawn/test_spec_args.py", "tests/spawn/test_execcore.py"),
    ),
    Area(
        "restart",
        "the state machine's restart and start-limit logic (runtime/service.py, core/ratelimit.py)",
        (
            Target(
                "activator/runtime/service.py",
                ("Service._shall_restart", "Service._begin"),
                until={"Service._begin": "failed = failed_condition("},
            ),
            Target(
                "activator/core/ratelimit.py",
                ("RateLimit.enabled", "RateLimit.below", "RateLimit.remaining", "RateLimit.reset"),
            ),
        ),
        ("tests/lifecycle/test_lifecycle_machine.py",),
    ),
    Area(
        "peer",
        "who may use the control socket (control/server.py _allowed, _peer_groups)",
        (Target("activator/control/server.py", ("ControlServer._allowed", "_peer_groups")),),
        ("tests/control/test_access.py",),
    ),
)

#: The privilege tests every C mutant of the spawn core's child runs against.
C_TESTS = (
    "tests/spawn",
    "tests/integration/test_exec_prefixes.py",
    "tests/integration/test_activation.py::test_accept_no_two_listeners_lazy_start",
    "tests/integration/test_activation.py::test_nonblocking",
)

# The one C part of activator, the extension activator.exec._spawn: the spawn core's child
# side (vfork + privilege drop + exec, spawn_child.c, no Python), its CPython glue
# (_spawn.c), the Accept=yes lane that drives it from a thread (_lane.c), the reaper's
# SIGCHLD fd (_reap.c), process-wide settings (_process.c) and the address filter (_filter.c:
# IPAddressAllow=/IPAddressDeny= as a BPF socket filter and the lane's check), built by setuptools
# alongside the pure-Python package.
from setuptools import Extension, setup

SOURCES = ["_spawn.c", "spawn_child.c", "_lane.c", "_reap.c", "_process.c", "_filter.c"]

setup(
    ext_modules=[
        Extension(
            "activator.exec._spawn",
            [f"activator/exec/{name}" for name in SOURCES],
            depends=[
                "activator/exec/_spawn.h",
                "activator/exec/spawn_child.h",
                "activator/exec/_filter.h",
            ],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wshadow"],
        ),
        # The proxy's relay (X-Activator-ProxyTo=): not privileged, so beside the runtime, and
        # a module of its own, loaded only by a daemon that proxies.
        Extension(
            "activator.runtime._relay",
            ["activator/runtime/_relay.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wshadow"],
        ),
    ]
)

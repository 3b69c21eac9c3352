# The one C part of activator, the extension activator.exec._spawn: the spawn core's child
# side (vfork + privilege drop + exec, spawn_child.c, no Python), its CPython glue
# (_spawn.c), the Accept=yes lane that drives it from a thread (_lane.c), the reaper's
# SIGCHLD fd (_reap.c) and process-wide settings (_process.c), built by setuptools
# alongside the pure-Python package.
from setuptools import Extension, setup

SOURCES = ["_spawn.c", "spawn_child.c", "_lane.c", "_reap.c", "_process.c"]

setup(
    # Made by tools/generate.py from README.md and activator/cli (tests/test_generated.py
    # keeps them current); into the prefix: /usr/local/share/man …, or a venv's share/.
    data_files=[
        ("share/man/man1", ["man/man1/activatorctl.1"]),
        ("share/man/man5", ["man/man5/activator.unit.5"]),
        ("share/man/man8", ["man/man8/activator.8"]),
        ("share/bash-completion/completions", ["contrib/bash-completion/activatorctl"]),
    ],
    ext_modules=[
        Extension(
            "activator.exec._spawn",
            [f"activator/exec/{name}" for name in SOURCES],
            depends=["activator/exec/_spawn.h", "activator/exec/spawn_child.h"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wshadow"],
        )
    ]
)

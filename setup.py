# The one C part of activator, the extension activator.exec._spawn: the spawn core's child
# side (vfork + privilege drop + exec, spawn_child.c, no Python), its CPython glue
# (_spawn.c), the Accept=yes lane that drives it from a thread (_lane.c), the reaper's
# SIGCHLD fd (_reap.c), process-wide settings (_process.c) and the address filter (_filter.c:
# IPAddressAllow=/IPAddressDeny= as a BPF socket filter and the lane's check), built by
# setuptools alongside the pure-Python package; and the proxy's relay (runtime/_relay.c).
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile

from setuptools import Extension, setup

SOURCES = ["_spawn.c", "spawn_child.c", "_lane.c", "_reap.c", "_process.c", "_filter.c"]
# The commands that compile (PEP 517's build_wheel and build_editable run the first two).
COMPILING = {"bdist_wheel", "editable_wheel", "build", "build_ext", "develop", "install"}
FIX = (
    "install a C compiler and the Python headers (Debian/Ubuntu: apt-get install gcc "
    "python3-dev; Fedora: dnf install gcc python3-devel; Alpine: apk add gcc musl-dev "
    "python3-dev), or install a prebuilt wheel"
)


def toolchain_problem():
    """What keeps the C extension from being built here, in one line, or None.

    Asked before setuptools runs, so that a missing compiler is one clear line rather than
    setuptools' `No such file or directory: 'gcc'` at the end of its whole build log.
    The compiler is the one setuptools would use: $CC, else Python's own CC.
    """
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    if not cc or shutil.which(cc[0]) is None:
        return f"no C compiler ({cc[0] if cc else '$CC'} not found)"
    include = sysconfig.get_paths()["include"]
    if not os.path.exists(os.path.join(include, "Python.h")):
        return f"no Python headers (no Python.h in {include})"
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "probe.c")
        with open(src, "w") as f:
            f.write("#include <Python.h>\nint main(void) { return 0; }\n")
        try:
            r = subprocess.run(
                [*cc, "-I", include, "-c", src, "-o", os.path.join(d, "probe.o")],
                capture_output=True,
                text=True,
                timeout=120,
            )
        except OSError as e:
            return f"the C compiler {cc[0]} cannot run ({e.strerror})"
        if r.returncode != 0:
            why = next((ln for ln in r.stderr.splitlines() if ln.strip()), f"exit {r.returncode}")
            return f"the C compiler {cc[0]} fails on a test program ({why.strip()})"
    return None


if COMPILING & set(sys.argv[1:]):
    problem = toolchain_problem()
    if problem is not None:
        sys.exit(f"activator: unable to build its C extension: {problem}; {FIX}")

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
    ],
)

# The one C part of activator, the extension activator._spawn: the spawn core's child side
# (vfork + privilege drop + exec, spawn_child.c, no Python), its CPython glue (_spawn.c),
# the Accept=yes lane that drives it from a thread (_lane.c), the reaper's SIGCHLD fd
# (_reap.c) and process-wide settings (_process.c), built by setuptools alongside the
# pure-Python package.
from setuptools import Extension, setup

setup(ext_modules=[Extension("activator._spawn", ["activator/_spawn.c", "activator/spawn_child.c",
                                                   "activator/_lane.c", "activator/_reap.c",
                                                   "activator/_process.c"],
                             depends=["activator/_spawn.h", "activator/spawn_child.h"],
                             extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wshadow"])])

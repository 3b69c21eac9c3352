# The one C part of activator: the spawn core (vfork + privilege drop + exec, _spawn.c) and
# the Accept=yes lane that drives it from a thread (_lane.c), built by setuptools alongside
# the pure-Python package.
from setuptools import Extension, setup

setup(ext_modules=[Extension("activator._spawn", ["activator/_spawn.c", "activator/_lane.c",
                                                   "activator/_reap.c"],
                             depends=["activator/_spawn.h"],
                             extra_compile_args=["-O2", "-Wall", "-Wextra"])])

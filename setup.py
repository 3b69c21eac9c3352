# The one C part of activator: the spawn core (vfork + privilege drop + exec),
# built by setuptools alongside the pure-Python package. See activator/_spawn.c.
from setuptools import Extension, setup

setup(ext_modules=[Extension("activator._spawn", ["activator/_spawn.c"],
                             extra_compile_args=["-O2", "-Wall", "-Wextra"])])

"""The search path systemd gives a service (``PATH=`` of its environment, and where a bare
command name of an ``Exec*=`` line is looked up).

A module of its own so that the offline checks (preflight.py, for ``activatorctl verify``)
share it with the planner without loading the spawn core (spec.py and its C extension).
"""

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

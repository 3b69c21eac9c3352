"""Layer 4, manager: the registry of units and what changes it.

Loads the units, builds their runtime objects, binds every listener before anything
runs, serves until asked to stop and stops everything in order; re-reads the unit files
(``reload``). Implements the contexts the runtime declares.

May import ``runtime``, ``exec``, ``core`` and ``units``; never ``control`` or ``cli``
(a server such as the control socket is handed in by the command line).
"""

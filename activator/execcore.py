"""``python -m activator.execcore`` and ``activator-exec``: the spawn core as a chain-loader.

The core itself is ``activator.exec.spec``; this name stays for the command line.
"""

from activator.exec.spec import EXIT_CODES, ExecSpec, SpawnError, main, spawn, spawn_args

__all__ = ["EXIT_CODES", "ExecSpec", "SpawnError", "main", "spawn", "spawn_args"]

if __name__ == "__main__":
    main()

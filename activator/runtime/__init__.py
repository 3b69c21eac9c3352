"""Layer 3, runtime: the objects that live on the event loop.

The one reaper, the notify socket, and the units at run time behind one interface
(``unit.RuntimeUnit``, systemd's UnitVTable): a service's state machine, a socket,
the accept lane and its records. Reaches the world through ``host.Host`` and the manager
through the Protocols declared in ``host`` (``ServiceContext``, ``SocketContext``).

May import ``exec``, ``core`` and ``units``; never ``manager``, ``control`` or ``cli``,
not even for type annotations.
"""

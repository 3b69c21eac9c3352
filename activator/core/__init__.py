"""Layer 1, core: the leaves every other layer stands on.

Errors, named states and their transitions, the rate limit, the event log, exit-status
decoding, /proc readers, the event-loop selector. May import ``activator.units`` (for
model types) and the standard library; never ``exec``, ``runtime``, ``manager``,
``control`` or ``cli``. No event-loop objects are created here and nothing here holds
global state about units.
"""

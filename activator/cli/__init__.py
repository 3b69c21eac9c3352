"""Layer 6, cli: the command lines — argv in, exit code out.

``daemon`` is ``activator`` (builds the manager and the control server, runs the loop),
``ctl`` is ``activatorctl`` (imports ``control.protocol`` and the standard library only,
so a status call stays fast), ``offline`` holds the verbs that need no daemon (verify,
import). The top of the stack: may import anything; nothing imports it.
"""

"""Layer 5, control: the control socket and what its verbs mean.

``protocol`` is the wire format (the only module ``activatorctl`` loads of this package;
it imports nothing but json), ``server`` the socket with its peer checks and framing,
``verbs`` the operations (they call the runtime unit interface and never switch on a
unit's type), ``views`` what ``status`` and ``show`` print.

May import every layer below; talks to the manager through ``ManagerView``, a Protocol
declared here. Never imports ``cli``.
"""

"""activator: socket activation with systemd's LISTEN_FDS protocol, for containers."""

__version__ = "0.1.0"

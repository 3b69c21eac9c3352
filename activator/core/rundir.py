"""Where activator keeps its run-time files: the control and notify sockets, dynamic uids.

As root, ``/run/activator``. Rootless (activator is not root, issue 12), where the user
manager's files go: ``$XDG_RUNTIME_DIR/activator``, else ``/tmp/activator-UID`` — a
directory in a world-writable one, so it is made 0700 and, when it exists already, used
only if it is a directory of ours that nobody else may write (not a symlink someone
planted there).
"""

from __future__ import annotations

import os
import stat

from .errors import ActivatorError

ROOT_RUN_DIR = "/run/activator"


def run_dir() -> str:
    """The run-time directory for this user (not created; see ``ensure_private``)."""
    uid = os.geteuid()
    if uid == 0:
        return ROOT_RUN_DIR
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        return os.path.join(xdg, "activator")
    return f"/tmp/activator-{uid}"


def ensure_private(path: str) -> None:
    """Create ``path`` 0700, or accept it if it exists as our own directory that only we
    may write. Raises ActivatorError saying what is wrong with it."""
    try:
        os.mkdir(path, 0o700)
        return
    except FileExistsError:
        pass
    except OSError as e:
        raise ActivatorError(f"unable to create {path}: {e.strerror}") from None
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise ActivatorError(
            f"unable to use {path}: not a directory of uid {os.geteuid()} that only it may "
            "write (someone else made it?); remove it, or give --control elsewhere"
        )

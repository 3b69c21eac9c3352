"""Issue 11: template sockets and their instances, as Debian's uwsgi-app@.socket uses them —
started by `activatorctl start NAME@INST.socket`, by a symlink in sockets.target.wants/, or by
[Install] DefaultInstance= — with %i resolved per instance in the socket and its service."""

from __future__ import annotations

import socket

import pytest
from harness import SYSTEM_PYTHON, Activator, public_dir

pytestmark = pytest.mark.root

# The service answers one connection on its listener (fd 3) with its instance and fd name.
SERVE = (
    "import os, socket; s = socket.socket(fileno=3); c, _ = s.accept(); "
    "c.sendall((os.environ['INST'] + ' ' + os.environ['LISTEN_FDNAMES']).encode()); c.close()"
)


def units(run) -> dict[str, str]:
    return {
        "app@.socket": f"[Socket]\nListenStream={run}/%i.sock\n"
        "[Install]\nWantedBy=sockets.target\nDefaultInstance=dflt\n",
        "app@.service": f"[Service]\nEnvironment=INST=%i\nExecStart={SYSTEM_PYTHON} -c {SERVE!r}\n",
        "sockets.target.wants/app@linked.socket": "",  # what `systemctl enable` makes: a name
    }


def ask(path: str) -> str:
    with socket.socket(socket.AF_UNIX) as c:
        c.settimeout(10)
        c.connect(path)
        return c.recv(100).decode()


def test_instances_from_a_link_default_instance_and_start(loop_kind):
    run = public_dir()
    with Activator(units(run), loop=loop_kind) as a:
        # at boot: the instance named in sockets.target.wants/ and the DefaultInstance=
        for inst in ("linked", "dflt"):
            a.wait_for("listen", unit=f"app@{inst}.socket")
            assert ask(f"{run}/{inst}.sock") == f"{inst} app@{inst}.socket"
            a.wait_for("start", unit=f"app@{inst}.service")
        # on demand: an instance nothing named before
        r = a.ctl("start", "app@fresh.socket")
        assert r.returncode == 0, r.stderr
        assert a.status("app@fresh.socket")["sub"] == "listening"
        assert ask(f"{run}/fresh.sock") == "fresh app@fresh.socket"
        assert a.status("app@fresh.service")["active"] in ("active", "inactive")
        assert a.ctl("start", "app@.socket").returncode != 0  # a template is not started


def test_an_instance_that_cannot_be_made_is_named(loop_kind):
    run = public_dir()
    with Activator(units(run), loop=loop_kind) as a:
        r = a.ctl("start", "nothing@x.socket")
        assert r.returncode == 4 and "nothing@x.socket" in r.stderr

"""reload.py's bookkeeping, without a daemon: what a live unit keeps and what it takes anew."""

from __future__ import annotations

import types

from activator.manager import reload
from activator.runtime.host import Host
from activator.runtime.service import Service
from activator.runtime.socket import SocketRuntime
from activator.units import load_units
from activator.units.model import SocketSection


def _units(tmp_path):
    (tmp_path / "w.socket").write_text("[Socket]\nListenStream=127.0.0.1:9\nMaxConnections=3\n")
    (tmp_path / "w.service").write_text("[Service]\nExecStart=/bin/true\n")
    units, problems = load_units([str(tmp_path)])
    assert not problems
    return units


def test_every_attribute_is_config_or_state(tmp_path):
    """A new attribute of SocketRuntime must be classified in reload.py: either the
    unit defines it (replaced on a reload) or it is run-time state (kept)."""
    units = _units(tmp_path)
    fake = types.SimpleNamespace(units=units, host=Host(), log=None)
    sock = SocketRuntime(fake, units.sockets["w.socket"])
    assert set(vars(sock)) == set(reload.SOCKET_CONFIG) | set(reload.SOCKET_STATE)
    assert not set(reload.SOCKET_CONFIG) & set(reload.SOCKET_STATE)
    # service.py keeps its own list (CONFIG_ATTRS); all it names must exist
    svc = Service(fake, units.services["w.service"])
    assert set(reload.SERVICE_CONFIG) <= set(Service.__slots__)
    assert all(hasattr(svc, a) for a in Service.__slots__)  # each one set by __init__


def test_runtime_socket_keys_exist():
    assert reload._RUNTIME_SOCKET_KEYS <= set(SocketSection.model_fields)
    assert (
        "Listen" not in reload._RUNTIME_SOCKET_KEYS and "Accept" not in reload._RUNTIME_SOCKET_KEYS
    )


def test_reconfigure_keeps_state_and_equal_limits(tmp_path):
    units = _units(tmp_path)
    fake = types.SimpleNamespace(units=units, log=None)
    live = SocketRuntime(fake, units.sockets["w.socket"])
    live.books.n_accepted = 7
    limit = live.trigger_limit
    (tmp_path / "w.socket").write_text("[Socket]\nListenStream=127.0.0.1:9\nMaxConnections=5\n")
    new, _ = load_units([str(tmp_path)])
    fake.units = new
    reload._reconfigure(live, SocketRuntime(fake, new.sockets["w.socket"]), reload.SOCKET_CONFIG)
    assert live.section.MaxConnections == 5 and live.books.n_accepted == 7
    assert live.trigger_limit is limit  # same settings: the count carries on
    assert reload._bind_part(units.sockets["w.socket"]) == reload._bind_part(
        new.sockets["w.socket"]
    )


def test_cosmetic_changes(tmp_path):
    (tmp_path / "a.service").write_text("[Unit]\nDescription=one\n[Service]\nExecStart=/bin/true\n")
    (tmp_path / "b.service").write_text("[Unit]\nDescription=two\n[Service]\nExecStart=/bin/true\n")
    (tmp_path / "c.service").write_text(
        "[Unit]\nDescription=one\n[Service]\nExecStart=/bin/false\n"
    )
    units, _ = load_units([str(tmp_path)])
    a, b, c = (units.services[n] for n in ("a.service", "b.service", "c.service"))
    b = b.model_copy(update={"name": a.name, "path": a.path})
    c = c.model_copy(update={"name": a.name, "path": a.path})
    assert reload._cosmetic(a, b)
    assert not reload._cosmetic(a, c)

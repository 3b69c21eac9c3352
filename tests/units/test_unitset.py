"""UnitSet: pairing (service_of, sockets_of), aliases, get(), instantiate()."""

from __future__ import annotations

import pytest

from activator.units import UnitError, load_units
from activator.units import unitset as loader_module  # UnitSet (was in loader.py)

from .conftest import load_ok

PAIRS = {
    "web.socket": "[Socket]\nListenStream=80\n",
    "web-tls.socket": "[Socket]\nListenStream=443\nService=web.service\n",
    "web.service": "[Service]\nExecStart=/bin/web\nSockets=admin.socket\n",
    "admin.socket": "[Socket]\nListenStream=/run/admin.sock\nService=admin-ui.service\n",
    "admin-ui.service": "[Service]\nExecStart=/bin/admin\n",
    "echo.socket": "[Socket]\nListenStream=7\nAccept=yes\n",
    "echo@.service": "[Service]\nExecStart=/bin/cat\nStandardInput=socket\nUser=nobody\n",
    "greet.socket": "[Socket]\nListenStream=/run/greet.sock\nAccept=yes\n",
    "greet@.service": "[Unit]\nDescription=greeting %i\n[Service]\nExecStart=/bin/echo hello %I\n",
    "journal@.socket": "[Socket]\nListenStream=/run/journal.%i/stdout\nService=journal@%i.service\n",  # noqa: E501
    "journal@.service": "[Service]\nExecStart=/bin/journal --namespace=%i\n",
    "inst.socket": "[Socket]\nListenStream=8000\nService=journal@main.service\n",
}


@pytest.fixture
def units(units_dir):  # type: ignore[no-untyped-def]
    return load_ok(units_dir(PAIRS))[0]


def test_service_of(units) -> None:  # type: ignore[no-untyped-def]
    assert units.service_of("web.socket") == "web.service"
    assert units.service_of("web-tls.socket") == "web.service"
    assert units.service_of("echo.socket") == "echo@.service"
    assert units.service_of("inst.socket") == "journal@main.service"
    with pytest.raises(KeyError):
        units.service_of("nope.socket")


def test_sockets_of(units) -> None:  # type: ignore[no-untyped-def]
    # triggering sockets in name order, then the service's own Sockets=
    assert units.sockets_of("web.service") == ("web-tls.socket", "web.socket", "admin.socket")
    assert units.sockets_of("admin-ui.service") == ("admin.socket",)
    assert units.sockets_of("echo@.service") == ("echo.socket",)
    assert units.sockets_of("echo@0-127.0.0.1:7-127.0.0.1:9.service") == ("echo.socket",)
    assert units.sockets_of("journal@main.service") == ("inst.socket",)
    assert units.sockets_of("nothing.service") == ()


def test_socket_templates_are_kept_apart(units) -> None:  # type: ignore[no-untyped-def]
    assert "journal@.socket" not in units.sockets
    assert "journal@.socket" in units.socket_templates
    inst = units.get("journal@audit.socket")
    assert inst.Socket.Listen[0].path == "/run/journal.audit/stdout"
    assert inst.Socket.Service == "journal@audit.service"


def test_get_resolves_instances(units) -> None:  # type: ignore[no-untyped-def]
    g = units.get("greet@x-y.service")
    assert g.name == "greet@x-y.service"
    assert g.Unit.Description == "greeting x-y"
    assert g.Service.ExecStart[0].argv == ("/bin/echo", "hello", "x/y")
    assert units.get("greet@.service").Unit.Description == "greeting test_instance"
    assert units.get("missing@x.service") is None
    assert units.get("greet@bad instance.service") is None


def test_instantiate_hot_path_copies_without_rebuilding(units, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def boom(*a, **k):  # type: ignore[no-untyped-def]
        raise AssertionError("instance rebuilt from text")

    monkeypatch.setattr(loader_module, "build_unit", boom)
    t = units.services["echo@.service"]
    i = units.instantiate("echo@.service", "0-127.0.0.1:7-127.0.0.1:5555")
    assert i.name == "echo@0-127.0.0.1:7-127.0.0.1:5555.service"
    assert i.Service is t.Service  # shared, frozen
    assert i.model_dump(exclude={"name"}) == t.model_dump(exclude={"name"})
    v6 = units.instantiate("echo@.service", "3-::1:80-::1:40000")
    assert v6.name == "echo@3-::1:80-::1:40000.service"
    # its speed (~10 µs an instance) is measured by `make bench` (bench/bench_units.py)


def test_instantiate_rebuilds_when_instance_is_used(units) -> None:  # type: ignore[no-untyped-def]
    a = units.instantiate("greet@.service", "0-12-1000")
    assert a.Service.ExecStart[0].argv[-1] == "0/12/1000"


def test_instantiate_errors(units) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KeyError):
        units.instantiate("nope@.service", "x")
    with pytest.raises(UnitError, match="invalid instance name"):
        units.instantiate("echo@.service", "a b")


def test_instance_whose_values_are_invalid(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = units_dir(
        {
            "port@.socket": "[Socket]\nListenStream=%i\n",
            "port@.service": "[Service]\nExecStart=/bin/true\n",
        }
    )
    units, problems = load_units([d])
    # the template itself is read with %i=test_instance, which is no port: refused
    assert [p.message for p in problems] == [
        '"test_instance": expected PORT, IPv4:PORT, [IPv6]:PORT, /path or @abstract (paths must be absolute)'  # noqa: E501
        ' (the value as written is "%i"; write %% for a literal %)'
    ]


def test_unitset_is_immutable(units) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError):
        units.sockets["x"] = None
    with pytest.raises(AttributeError):
        units.sockets = {}
    assert len(units) == len(PAIRS)

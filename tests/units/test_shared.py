"""What units share to keep a daemon of 10,000 units small (issue 17): pydantic's set of
the fields given, one per distinct set; a section that sets nothing, one instance. Shared
or not, every unit reads as its own."""

from __future__ import annotations

from .conftest import load_ok

PAIRS = {
    "a.socket": "[Socket]\nListenStream=127.0.0.1:8001\nBacklog=16\n",
    "a.service": "[Service]\nExecStart=/bin/true\nUser=nobody\n",
    "b.socket": "[Socket]\nListenStream=127.0.0.1:8002\nBacklog=32\n",
    "b.service": "[Service]\nExecStart=/bin/false\nUser=nobody\n",
    "c.socket": "[Socket]\nListenStream=127.0.0.1:8003\n[Install]\nWantedBy=sockets.target\n",
    "c.service": "[Service]\nExecStart=/bin/true\n",
}


def test_units_given_the_same_fields_share_one_set_of_them(units_dir) -> None:  # type: ignore[no-untyped-def]
    units = load_ok(units_dir(PAIRS))[0]
    a, b, c = (units.sockets[f"{n}.socket"].Socket for n in "abc")
    assert a.model_fields_set == {"Listen", "Backlog"} == b.model_fields_set
    assert a.__pydantic_fields_set__ is b.__pydantic_fields_set__
    assert c.model_fields_set == {"Listen"}
    sa, sb = units.services["a.service"].Service, units.services["b.service"].Service
    assert sa.__pydantic_fields_set__ is sb.__pydantic_fields_set__
    assert sa.ExecStart != sb.ExecStart  # the values stay each unit's own


def test_a_copy_with_a_change_leaves_the_shared_set_alone(units_dir) -> None:  # type: ignore[no-untyped-def]
    units = load_ok(units_dir(PAIRS))[0]
    a, b = units.sockets["a.socket"].Socket, units.sockets["b.socket"].Socket
    changed = a.model_copy(update={"Accept": True})
    assert "Accept" in changed.model_fields_set
    assert a.model_fields_set == {"Listen", "Backlog"} == b.model_fields_set
    assert "TimeoutStopSec" not in units.services["a.service"].Service.model_fields_set


def test_a_section_that_sets_nothing_is_one_instance(units_dir) -> None:  # type: ignore[no-untyped-def]
    units = load_ok(units_dir(PAIRS))[0]
    a, b = units.sockets["a.socket"], units.sockets["b.socket"]
    assert a.Install is b.Install is units.services["a.service"].Install
    assert a.Install.WantedBy == ()
    c = units.sockets["c.socket"]
    assert c.Install is not a.Install and c.Install.WantedBy == ("sockets.target",)


def test_an_instance_copied_from_its_template_shares_the_set_too(units_dir) -> None:  # type: ignore[no-untyped-def]
    units = load_ok(
        units_dir(
            {
                "e.socket": "[Socket]\nListenStream=7\nAccept=yes\n",
                "e@.service": "[Service]\nExecStart=/bin/cat\n",
            }
        )
    )[0]
    one, two = units.instantiate("e@.service", "1"), units.instantiate("e@.service", "2")
    assert (one.name, two.name) == ("e@1.service", "e@2.service")
    assert one.model_fields_set == two.model_fields_set and "name" in one.model_fields_set
    assert one.__pydantic_fields_set__ is two.__pydantic_fields_set__
    assert units.services["e@.service"].name == "e@.service"

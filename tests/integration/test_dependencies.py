"""Issue 11: the dependency engine with real processes — what systemd does with Requires=,
Wants=, After=, BindsTo=, PartOf=, Conflicts=, Requisite=, Upholds=, OnFailure=, OnSuccess=,
StopWhenUnneeded=, a boot target's wants and an ordering cycle.

The services are one-line shell commands run as root (nothing here reads the network).
Order is read from activator's own log: a `start` line is written when the process has
exec'd, a `ready`/`exit` line when it is up or done; nothing waits by sleeping (a service
may take its time, a test never does)."""

from __future__ import annotations

import socket

import pytest
from harness import Activator, free_port

pytestmark = pytest.mark.root


def svc(cmd: str, *, unit: str = "", typ: str = "simple", extra: str = "") -> str:
    return f"[Unit]\n{unit}\n[Service]\nType={typ}\nExecStart=/bin/sh -c {cmd!r}\n{extra}\n"


LONG = svc("exec sleep 300")
OK_ONCE = svc("exit 0", typ="oneshot", extra="RemainAfterExit=yes")
FAILS = svc("exit 3", typ="oneshot")


def index(a: Activator, event: str, unit: str) -> int:
    for i, e in enumerate(a.events):
        if e.get("event") == event and e.get("unit") == unit:
            return i
    raise AssertionError(f"no {event} of {unit}; log:\n{a.log_text()}")


def active(a: Activator, unit: str) -> str:
    return a.status(unit)["active"]


def test_requires_and_after_fail_the_dependent(loop_kind):
    units = {
        "db.service": FAILS,
        "app.service": svc("exec sleep 300", unit="Requires=db.service\nAfter=db.service"),
        "opt.service": svc("exec sleep 300", unit="Wants=db.service\nAfter=db.service"),
    }
    with Activator(units, loop=loop_kind) as a:
        r = a.ctl("start", "app.service")
        assert r.returncode == 1 and "dependency job for app.service failed" in r.stderr
        assert a.wait_for("failed", unit="app.service")["result"] == "dependency"
        assert a.count("start", unit="app.service") == 0
        assert active(a, "app.service") == "inactive"
        # Wants= does not care
        assert a.ctl("start", "opt.service").returncode == 0
        assert active(a, "opt.service") == "active"


def test_after_orders_starts_and_stops_in_reverse(loop_kind):
    units = {
        "first.service": svc("sleep 0.2; exit 0", typ="oneshot", extra="RemainAfterExit=yes"),
        "second.service": svc("exec sleep 300", unit="Requires=first.service\nAfter=first.service"),
        "third.service": svc("exec sleep 300", unit="Wants=second.service\nAfter=second.service"),
    }
    with Activator(units, loop=loop_kind) as a:
        assert a.ctl("start", "third.service").returncode == 0
        a.wait_for("start", unit="third.service")
        # first ran to its end before second began; second was up before third began
        assert index(a, "exit", "first.service") < index(a, "start", "second.service")
        assert index(a, "start", "second.service") < index(a, "start", "third.service")
        a.stop()
        stops = [e["unit"] for e in a.events if e.get("event") == "stop"]
        assert stops.index("third.service") < stops.index("second.service")


def test_binds_to_stops_with_the_unit_it_is_bound_to(loop_kind):
    units = {
        "base.service": LONG,
        "bound.service": svc("exec sleep 300", unit="BindsTo=base.service\nAfter=base.service"),
    }
    with Activator(units, loop=loop_kind) as a:
        assert a.ctl("start", "bound.service").returncode == 0
        assert active(a, "base.service") == "active"
        pid = a.status("base.service")["main_pid"]
        a.ctl("kill", "--signal", "KILL", "base.service")
        a.wait_for("exit", unit="base.service", pid=pid)
        a.wait_for("exit", unit="bound.service")  # stopped because base went away
        assert active(a, "bound.service") == "inactive"


def test_part_of_follows_restart_and_stop(loop_kind):
    units = {
        "main.service": LONG,
        "part.service": svc("exec sleep 300", unit="PartOf=main.service\nAfter=main.service"),
    }
    with Activator(units, loop=loop_kind) as a:
        assert a.ctl("start", "main.service", "part.service").returncode == 0
        assert a.count("start", unit="part.service") == 1
        assert a.ctl("restart", "main.service").returncode == 0
        a.wait_for("start", unit="part.service", start=index(a, "stop", "main.service"))
        assert a.count("start", unit="part.service") == 2
        assert a.ctl("stop", "main.service").returncode == 0
        assert active(a, "part.service") == "inactive"


def test_restart_propagates_to_a_part_ordered_before_it(loop_kind):
    """cups.socket is PartOf=cups.service and, as its socket, ordered Before= it. A restart
    of the service restarts the socket too, in order: the service stops, the socket stops,
    listens again, then the service starts (systemd orders a restart job as a stop until
    its stop half is done). Found booting Debian's cups-daemon (tests/containers)."""
    port = free_port()
    units = {
        "cupsish.socket": f"[Unit]\nPartOf=cupsish.service\n[Socket]\nListenStream=127.0.0.1:{port}\n",
        "cupsish.service": svc("exec sleep 300", unit="Requires=cupsish.socket"),
    }
    with Activator(units, loop=loop_kind) as a:
        assert a.ctl("start", "cupsish.service").returncode == 0
        first = len(a.events)
        r = a.ctl("restart", "cupsish.service")
        assert r.returncode == 0, r.stderr
        a.wait_for("start", unit="cupsish.service", start=first)
        order = [
            (e["event"], e["unit"])
            for e in a.events[first:]
            if e.get("event") in ("stop", "listen", "start")
            and e.get("unit", "").startswith("cupsish")
        ]
        assert order == [
            ("stop", "cupsish.service"),
            ("stop", "cupsish.socket"),
            ("listen", "cupsish.socket"),
            ("start", "cupsish.service"),
        ], order
        assert active(a, "cupsish.socket") == active(a, "cupsish.service") == "active"
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # the listener is back (the service holds it, unread)


def test_requires_of_a_unit_that_does_not_exist_is_not_started(loop_kind):
    """Debian's rsyslog.service Requires=syslog.socket, which only the systemd package
    ships. systemd does not even enqueue a start whose Requires= (BindsTo=, Requisite=)
    names a unit that does not exist ("Unit syslog.socket not found."), whatever the
    ordering: at boot the unit is left out, asked for by name the request fails, and so
    does a start of what requires it. Found booting Debian packages (tests/containers):
    without After= the unit started anyway."""
    boot = "[Install]\nWantedBy=multi-user.target\n"
    units = {
        "logger.service": svc("exec sleep 300", unit="Requires=nosuch.socket") + boot,
        "other.service": LONG + boot,
        "chain.service": svc("exec sleep 300", unit="Requires=logger.service"),
    }
    with Activator(units, loop=loop_kind) as a:
        a.wait_for("start", unit="other.service")
        w = a.wait_for("warning", unit="logger.service")
        assert "requires nosuch.socket: unit nosuch.socket not found" in w["reason"], w
        r = a.ctl("start", "logger.service")
        assert r.returncode == 1 and "unit nosuch.socket not found" in r.stderr, r.stderr
        r = a.ctl("start", "chain.service")
        assert r.returncode == 1, r.stderr
        assert "requires logger.service, which requires nosuch.socket" in r.stderr, r.stderr
        assert a.count("start", unit="logger.service") == 0
        assert a.count("start", unit="chain.service") == 0
        assert active(a, "other.service") == "active"


def test_conflicts_stop_the_other(loop_kind):
    units = {"a.service": svc("exec sleep 300", unit="Conflicts=b.service"), "b.service": LONG}
    with Activator(units, loop=loop_kind) as a:
        assert a.ctl("start", "b.service").returncode == 0
        assert a.ctl("start", "a.service").returncode == 0
        assert active(a, "a.service") == "active"
        a.wait_for("exit", unit="b.service")
        assert active(a, "b.service") == "inactive"


def test_requisite_needs_the_unit_up_already(loop_kind):
    units = {"need.service": LONG, "asks.service": svc("exec sleep 300", unit="Requisite=need.service\nAfter=need.service")}  # fmt: skip
    with Activator(units, loop=loop_kind) as a:
        r = a.ctl("start", "asks.service")
        assert r.returncode == 1 and active(a, "need.service") == "inactive"
        assert a.ctl("start", "need.service").returncode == 0
        assert a.ctl("start", "asks.service").returncode == 0


def test_on_failure_and_on_success(loop_kind):
    units = {
        "bad.service": svc("exit 3", typ="oneshot", unit="OnFailure=rescue.service"),
        "good.service": svc("exit 0", typ="oneshot", unit="OnSuccess=next.service"),
        "rescue.service": OK_ONCE,
        "next.service": OK_ONCE,
    }
    with Activator(units, loop=loop_kind) as a:
        assert a.ctl("start", "bad.service").returncode == 1
        a.wait_for("start", unit="rescue.service")
        assert a.ctl("start", "good.service").returncode == 0
        a.wait_for("start", unit="next.service")
        assert a.count("start", unit="rescue.service") == 1


def test_upholds_restarts_what_it_upholds(loop_kind):
    units = {"holder.service": svc("exec sleep 300", unit="Upholds=held.service"), "held.service": LONG}  # fmt: skip
    with Activator(units, loop=loop_kind) as a:
        assert a.ctl("start", "holder.service").returncode == 0
        first = a.wait_for("start", unit="held.service")
        a.ctl("kill", "--signal", "KILL", "held.service")
        a.wait_for("exit", unit="held.service", pid=first["pid"])
        second = a.wait_for("start", unit="held.service", start=index(a, "exit", "held.service"))
        assert second["pid"] != first["pid"]


def test_stop_when_unneeded(loop_kind):
    units = {
        "user.service": svc("exec sleep 300", unit="Wants=helper.service"),
        "helper.service": svc("exec sleep 300", unit="StopWhenUnneeded=yes"),
    }
    with Activator(units, loop=loop_kind) as a:
        assert a.ctl("start", "user.service").returncode == 0
        a.wait_for("start", unit="helper.service")
        assert a.ctl("stop", "user.service").returncode == 0
        a.wait_for("exit", unit="helper.service")


def test_an_ordering_cycle_is_broken_with_a_warning(loop_kind):
    units = {
        "x.service": svc("exec sleep 300", unit="Wants=y.service\nAfter=y.service"),
        "y.service": svc("exec sleep 300", unit="After=x.service"),
    }
    with Activator(units, loop=loop_kind) as a:
        assert a.ctl("start", "x.service").returncode == 0
        w = a.wait_for("warning", unit="y.service")
        assert "ordering cycle" in w["reason"] and "x.service/start" in w["reason"]
        assert "y.service/start deleted" in w["reason"]
        assert active(a, "x.service") == "active"


def test_install_of_a_boot_target_starts_at_boot_and_stops_in_reverse(loop_kind):
    """Without --systemd, [Install] WantedBy=multi-user.target counts as enabled."""
    units = {
        "early.service": svc("exec sleep 300", extra="[Install]\nWantedBy=multi-user.target"),
        "late.service": svc(
            "exec sleep 300",
            unit="After=early.service",
            extra="[Install]\nWantedBy=multi-user.target",
        ),
        "lazy.service": LONG,  # no [Install]: only what asks for it starts it
    }
    with Activator(units, loop=loop_kind) as a:
        assert index(a, "start", "early.service") < index(a, "start", "late.service")
        assert a.count("start", unit="lazy.service") == 0
        assert a.stop() == 0
        stops = [e["unit"] for e in a.events if e.get("event") == "stop"]
        assert stops.index("late.service") < stops.index("early.service")
        assert stops.index("multi-user.target") < stops.index("late.service")


def test_a_socket_whose_service_is_missing_fails_and_resets(loop_kind):
    port = free_port()
    units = {
        "orphan.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nService=gone.service\n",
        "gone.service": svc("exec sleep 300"),
    }
    with Activator(units, loop=loop_kind) as a:
        # masked now: the socket still loads (as systemd's does) and keeps listening …
        (a.unit_dir / "gone.service").unlink()
        (a.unit_dir / "gone.service").symlink_to("/dev/null")
        assert a.ctl("reload").returncode == 0, a.log_text()
        # … until traffic asks for the service
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                c.settimeout(10)
                data = c.recv(1)
        except (ConnectionResetError, ConnectionRefusedError):
            data = b""  # reset (or, once the listener is gone, refused): an answer
        assert data == b""  # not a hang (a timeout would raise here)
        f = a.wait_for("failed", unit="orphan.socket")
        assert f["result"] == "resources" and "gone.service" in f["reason"]

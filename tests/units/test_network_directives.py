"""issue 16: IPAddressAllow=/IPAddressDeny= on sockets and the X-Activator- admission, proxy
and idle-stop extensions: syntax, TOML, export, and the combinations refused at load."""

from __future__ import annotations

import pytest

from activator.units import load_units
from activator.units.export import export_unit
from activator.units.loader import load_source
from activator.units.model import InetListen, Rate, UnixListen

from .conftest import load_ok

SVC = "[Service]\nExecStart=/bin/true\n"


def sock(units_dir, body: str, svc: str = SVC):  # type: ignore[no-untyped-def]
    return units_dir({"w.socket": "[Socket]\n" + body, "w.service": svc})


def problems_of(d) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(p) for p in load_units([d])[1]]


def test_ip_rules_keywords_prefixes_and_reset(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = sock(
        units_dir,
        "ListenStream=127.0.0.1:9\n"
        "IPAddressAllow=10.1.2.3/8 localhost\n"
        "IPAddressAllow=192.0.2.7 2001:db8::/32 ::ffff:1.2.3.4\n"
        "IPAddressDeny=link-local\nIPAddressDeny=\nIPAddressDeny=any multicast\n",
    )
    s = load_ok(d)[0].sockets["w.socket"].Socket
    assert s.IPAddressAllow == (
        "10.0.0.0/8", "127.0.0.0/8", "::1/128", "192.0.2.7/32", "2001:db8::/32",
        "::ffff:102:304/128",
    )  # fmt: skip
    assert s.IPAddressDeny == ("0.0.0.0/0", "::/0", "224.0.0.0/4", "ff00::/8")


@pytest.mark.parametrize(
    "value, says",
    [
        ("10.0.0.0/33", "not an IPv4 or IPv6 address"),
        ("10.0.0.0/255.0.0.0", "the length in bits"),
        ("example.com", "not an IPv4 or IPv6 address"),
        ("fe80::1%lo", "not an IPv4 or IPv6 address"),
        ("anything", "not an IPv4 or IPv6 address"),
    ],
)
def test_ip_rules_refuse_what_systemd_refuses(units_dir, value, says) -> None:  # type: ignore[no-untyped-def]
    d = sock(units_dir, f"ListenStream=127.0.0.1:9\nIPAddressDeny={value}\n")
    (p,) = problems_of(d)
    assert "IPAddressDeny=" in p and says in p


def test_ip_rules_refused_on_a_unix_listener(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = sock(units_dir, "ListenStream=127.0.0.1:9\nListenStream=/run/w.sock\nIPAddressDeny=any\n")
    (p,) = problems_of(d)
    assert '"/run/w.sock" is not an IP socket' in p and "IPAddressDeny=" in p


def test_ip_rules_on_a_service_warn_what_they_cover(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = sock(units_dir, "ListenStream=127.0.0.1:9\n", SVC + "IPAddressAllow=localhost\n")
    (p,) = load_ok(d)[1]
    assert p.severity == "warning" and p.message.startswith(
        "ignored, not carried out by activator: IPAddressAllow= (on a service"
    )
    assert "socket unit's IPAddressAllow=/IPAddressDeny=" in p.message


def test_extensions_parse(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = sock(
        units_dir,
        "ListenStream=127.0.0.1:9\nX-Activator-PerSourcePrefix=24/56\n"
        "X-Activator-ConnectionRate=10/1min\nX-Activator-ConnectionRateTotal=100/500ms\n"
        "X-Activator-ProxyTo=[::1]:8080\nX-Activator-ProxyProtocol=v1\n",
        SVC + "X-Activator-IdleStopSec=2min 30s\n",
    )
    units, _ = load_ok(d)
    s = units.sockets["w.socket"].Socket
    assert s.PerSourcePrefix == (24, 56)
    assert s.ConnectionRate == Rate(count=10, interval=60.0)
    assert s.ConnectionRateTotal == Rate(count=100, interval=0.5)
    assert isinstance(s.ProxyTo, InetListen) and (s.ProxyTo.host, s.ProxyTo.port) == ("::1", 8080)
    assert s.ProxyProtocol == "v1"
    assert units.services["w.service"].Service.IdleStopSec == 150.0
    d2 = sock(units_dir, "ListenStream=127.0.0.1:9\nX-Activator-ProxyTo=/run/app.sock\n")
    assert isinstance(load_ok(d2)[0].sockets["w.socket"].Socket.ProxyTo, UnixListen)


@pytest.mark.parametrize(
    "line, says",
    [
        ("X-Activator-PerSourcePrefix=24", "IPV4BITS/IPV6BITS"),
        ("X-Activator-PerSourcePrefix=33/64", "X-Activator-PerSourcePrefix="),
        ("X-Activator-ConnectionRate=10", "N/INTERVAL"),
        ("X-Activator-ConnectionRate=0/1s", "X-Activator-ConnectionRate="),
        ("X-Activator-ConnectionRate=5/0", "above 0"),
        ("X-Activator-ConnectionRate=5/infinity", "finite"),
        ("X-Activator-ProxyTo=8080", "a port alone"),
        ("X-Activator-ProxyProtocol=v3", "expected one of off, v1, v2"),
    ],
)
def test_extensions_refuse_bad_values(units_dir, line, says) -> None:  # type: ignore[no-untyped-def]
    d = sock(units_dir, f"ListenStream=127.0.0.1:9\nAccept=yes\n{line}\n", "")
    ps = [p for p in problems_of(d) if "w.socket" in p]
    assert ps and says in ps[0], ps


@pytest.mark.parametrize(
    "body, says",
    [
        ("X-Activator-ConnectionRate=5/1s\n", "needs Accept=yes or X-Activator-ProxyTo="),
        ("X-Activator-ConnectionRateTotal=5/1s\n", "needs Accept=yes or X-Activator-ProxyTo="),
        ("Accept=yes\nX-Activator-ProxyTo=127.0.0.1:80\n", "relays for one Accept=no service"),
        ("X-Activator-ProxyProtocol=v2\n", "needs X-Activator-ProxyTo="),
        ("ListenDatagram=127.0.0.1:9\nX-Activator-ProxyTo=127.0.0.1:80\n", "stream connections"),
    ],
)
def test_combinations_refused_at_load(units_dir, body, says) -> None:  # type: ignore[no-untyped-def]
    svc = "[Service]\nExecStart=/bin/true\n"
    files = {"w.socket": "[Socket]\nListenStream=127.0.0.1:9\n" + body, "w.service": svc}
    if "Accept=yes" in body:
        files = {"w.socket": files["w.socket"], "w@.service": svc}
    d = units_dir(files)
    ps = problems_of(d)
    assert any(says in p for p in ps), ps


def test_rates_with_a_proxy_or_accept_yes_load(units_dir) -> None:  # type: ignore[no-untyped-def]
    d = sock(units_dir, "ListenStream=127.0.0.1:9\nX-Activator-ProxyTo=127.0.0.1:80\n"
             "X-Activator-ConnectionRate=5/1s\nMaxConnectionsPerSource=3\n")  # fmt: skip
    load_ok(d)


def test_toml_and_export_round_trip(units_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    d = sock(
        units_dir,
        "ListenStream=127.0.0.1:9\nIPAddressAllow=localhost 10.0.0.0/8\nIPAddressDeny=any\n"
        "X-Activator-PerSourcePrefix=24/48\nX-Activator-ConnectionRate=3/1500ms\n"
        "X-Activator-ConnectionRateTotal=7/1234us\n"
        "X-Activator-ProxyTo=127.0.0.1:8080\nX-Activator-ProxyProtocol=v2\n",
        SVC + "X-Activator-IdleStopSec=30s\n",
    )
    units, _ = load_ok(d)
    out = tmp_path / "toml"
    out.mkdir()
    for name in ("w.socket", "w.service"):
        unit, problems, entries = load_source(str(d / name))
        assert unit is not None, [str(p) for p in problems]
        (out / f"{name}.toml").write_text(export_unit(name, entries))
    text = (out / "w.socket.toml").read_text()
    assert 'X-Activator-ConnectionRate = "3/1500ms"' in text
    back, _ = load_ok(out)
    assert back.sockets["w.socket"].Socket == units.sockets["w.socket"].Socket
    assert back.services["w.service"].Service == units.services["w.service"].Service

"""Value kinds of the network directives: ``IPAddressAllow=``/``IPAddressDeny=`` (systemd's
config_parse_in_addr_prefixes()) and activator's ``X-Activator-`` admission and proxy
extensions. Each accepts what an INI line or TOML gives and raises ``BadValue``.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import BadValue, q
from ..listen import parse_socket_address
from ..model import InetListen, Rate, SocketType, UnixListen
from ..values import parse_timespan, parse_uint, split_words
from .validators import RESET, Ctx, _text

# systemd.resource-control(5), "Special address/network names"
KEYWORDS: dict[str, tuple[str, ...]] = {
    "any": ("0.0.0.0/0", "::/0"),
    "localhost": ("127.0.0.0/8", "::1/128"),
    "link-local": ("169.254.0.0/16", "fe80::/64"),
    "multicast": ("224.0.0.0/4", "ff00::/8"),
}


def ip_prefix(word: str) -> str:
    """One ``ADDRESS[/PREFIXLENGTH]`` as a normalised CIDR ("10.1.2.3/8" → "10.0.0.0/8");
    without a length the whole address. Raises BadValue."""
    import ipaddress  # only units that use address rules pay for the module

    addr, slash, bits = word.partition("/")
    if slash and not (bits.isdigit() and len(bits) <= 3):
        raise BadValue(f"{q(word)}: expected ADDRESS[/PREFIXLENGTH], the length in bits")
    try:
        net = ipaddress.ip_network(f"{addr}/{bits}" if slash else addr, strict=False)
    except ValueError as e:
        raise BadValue(
            f"{q(word)}: not an IPv4 or IPv6 address with a prefix length ({e})"
        ) from None
    if "%" in addr:
        raise BadValue(f"{q(word)}: an address rule takes no interface (%…)")
    return str(net)


def v_ip_prefixes(value: Any, ctx: Ctx) -> Any:
    """IPAddressAllow=/IPAddressDeny=: space-separated prefixes and keywords; lines add up,
    an empty assignment resets the list."""
    text = ctx.expand(_text(value, "IP address prefixes"))
    words = split_words(text)
    if not words:
        return RESET
    out: list[str] = []
    for w in words:
        out.extend(KEYWORDS[w] if w in KEYWORDS else (ip_prefix(w),))
    return out


def _pair(value: Any, ctx: Ctx, form: str, example: str) -> tuple[str, str, str] | None:
    """``A/B`` → (A, B, the whole), None for an empty assignment (a reset)."""
    s = ctx.expand(_text(value, form))
    if not s:
        return None
    a, slash, b = s.partition("/")
    if not slash:
        raise BadValue(f"{q(s)}: expected {form}, e.g. {example}")
    return a.strip(), b.strip(), s


def v_prefix_bits(value: Any, ctx: Ctx) -> Any:
    """X-Activator-PerSourcePrefix=IPV4BITS/IPV6BITS (e.g. 32/64, 24/56)."""
    pair = _pair(value, ctx, "IPV4BITS/IPV6BITS", "32/64")
    if pair is None:
        return RESET
    return (parse_uint(pair[0], 1, 32), parse_uint(pair[1], 1, 128))


def v_rate(value: Any, ctx: Ctx) -> Any:
    """X-Activator-ConnectionRate=N/INTERVAL: N connections per INTERVAL (a time span)."""
    pair = _pair(value, ctx, "N/INTERVAL", '"10/1s" or "100/1min"')
    if pair is None:
        return RESET
    n, span, s = pair
    count = parse_uint(n, 1)
    interval = parse_timespan(span)
    if not 0 < interval < math.inf:
        raise BadValue(f"{q(s)}: the interval must be a finite time span above 0")
    return Rate(count=count, interval=interval)


def format_rate(rate: Rate) -> str:
    """The form v_rate() reads back to the same value."""
    us = round(rate.interval * 1e6)
    for unit, size in (("s", 1_000_000), ("ms", 1000)):
        if us % size == 0:
            return f"{rate.count}/{us // size}{unit}"
    return f"{rate.count}/{us}us"


def v_proxy_to(value: Any, ctx: Ctx) -> Any:
    """X-Activator-ProxyTo=: where the service listens, IPv4:PORT, [IPv6]:PORT, /path or
    @abstract. Addresses only: the supervisor resolves no names."""
    s = ctx.expand(_text(value, "an address"))
    if not s:
        return RESET
    target: InetListen | UnixListen = parse_socket_address(s, SocketType.STREAM)
    if isinstance(target, InetListen) and target.host is None:
        raise BadValue(f"{q(s)}: a port alone says where to listen, not where to connect "
                       "(write 127.0.0.1:PORT or [::1]:PORT)")  # fmt: skip
    return target


def socket_problems(sock: Any) -> list[tuple[str, str]]:
    """Load-time refusals for the network directives of a [Socket] section: (directive field,
    message) — combinations that could only silently protect or proxy nothing."""
    out: list[tuple[str, str]] = []
    rules = "IPAddressAllow" if sock.IPAddressAllow else "IPAddressDeny"
    if sock.IPAddressAllow or sock.IPAddressDeny:
        for lst in sock.Listen:
            if not isinstance(lst, InetListen):
                why = (
                    f"{q(lst.text)} is not an IP socket: IPAddressAllow= and IPAddressDeny= "
                    "filter IP traffic only (systemd ignores them there; activator refuses "
                    "a rule that would protect nothing)"
                )
                out.append((rules, why))
    fd_passing = not sock.Accept and sock.ProxyTo is None
    for field, name, set_ in (
        ("ConnectionRate", "X-Activator-ConnectionRate=", sock.ConnectionRate is not None),
        ("ConnectionRateTotal", "X-Activator-ConnectionRateTotal=",
         sock.ConnectionRateTotal is not None),
    ):  # fmt: skip
        if set_ and fd_passing:
            out.append((field, f"{name} needs Accept=yes or X-Activator-ProxyTo=: with "
                        "Accept=no the service accepts its connections itself"))  # fmt: skip
    if sock.ProxyTo is not None:
        if sock.Accept:
            out.append(("ProxyTo", "X-Activator-ProxyTo= relays for one Accept=no service; "
                        "with Accept=yes each connection has its own instance"))  # fmt: skip
        for lst in sock.Listen:
            if not isinstance(lst, (InetListen, UnixListen)) or lst.type != SocketType.STREAM:
                out.append(("ProxyTo", f"{q(lst.text)}: X-Activator-ProxyTo= relays stream "
                            "connections only (ListenStream=)"))  # fmt: skip
    elif sock.ProxyProtocol != "off":
        out.append(("ProxyProtocol", "X-Activator-ProxyProtocol= needs X-Activator-ProxyTo="))
    return out

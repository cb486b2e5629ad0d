"""The client's address and scheme behind the reverse proxies the operator trusts.

Behind a load balancer every connection comes from the balancer, so the client's address
(for IP bans, flood limits, the per-address connection limit, reports) and whether it spoke
HTTPS (for the `Secure` cookie flag) must come from the `X-Forwarded-For` and
`X-Forwarded-Proto` headers the balancer adds. Anyone can send those headers too, so they
are believed only from the addresses in `REALTIME_FORWARDED_ALLOW_IPS` (none by default).

`X-Forwarded-For` is read from the right: each proxy appends the address it saw, so the
rightmost entries are the trusted proxies' own and the first address that is not a trusted
proxy is the client. An entry that is not an address (`unknown`, `not-an-ip`) ends the walk:
the client is then the last address that could be read, never a missing one that would slip
past bans and flood limits.
"""

from __future__ import annotations

import ipaddress
from collections.abc import MutableMapping
from typing import Any

from .auth import ip_or_none

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The proxies whose forwarding headers are believed: addresses, networks, or `*`."""

    def __init__(self, spec: str) -> None:
        """`spec`: comma-separated addresses or networks (CIDR), or `*` for any peer.
        ValueError on an entry that is neither."""
        entries = [e.strip() for e in spec.split(",") if e.strip()]
        self.anyone = "*" in entries
        self.networks: list[Network] = [ipaddress.ip_network(e, strict=False)
                                        for e in entries if e != "*"]

    def __bool__(self) -> bool:
        return self.anyone or bool(self.networks)

    def __contains__(self, host: str | None) -> bool:
        if self.anyone:
            return True
        address = ip_or_none(host)
        if address is None:
            return False
        found = ipaddress.ip_address(address)
        return any(found in network for network in self.networks)

    def rewrite(self, scope: MutableMapping[str, Any]) -> None:
        """Set the scope's client and scheme from the forwarding headers, when the peer that
        sent them is trusted; leave it alone otherwise."""
        client = scope.get("client")
        peer = client[0] if client else None
        if not self or peer not in self:
            return
        hops: list[str] = []
        proto: str | None = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                hops += value.decode("latin-1").split(",")
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1").split(",")[-1].strip().lower()
        if hops:
            scope["client"] = (self.client_of(peer, hops), 0)
        if proto in ("http", "https"):
            secure = proto == "https"
            if scope["type"] == "websocket":
                scope["scheme"] = "wss" if secure else "ws"
            else:
                scope["scheme"] = "https" if secure else "http"

    def client_of(self, peer: str | None, hops: list[str]) -> str | None:
        """The client's address: the rightmost hop that is not a trusted proxy, or the
        last readable one when a malformed entry comes first."""
        found = ip_or_none(peer) or peer
        for hop in reversed(hops):
            address = _address(hop.strip())
            if address is None:
                break
            found = address
            if address not in self:
                break
        return found


def _address(hop: str) -> str | None:
    """An address from a forwarded entry: `203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1`
    or `[2001:db8::1]:4711`; None when it is none of these."""
    if hop.startswith("["):
        hop = hop[1:].partition("]")[0]
    elif hop.count(":") == 1:
        hop = hop.partition(":")[0]
    return ip_or_none(hop)

"""The client's address and scheme behind trusted proxies, over HTTP and WebSockets."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import websockets

from realtime.config import Settings
from realtime.proxy import TrustedProxies

from conftest import MOD_PASSWORD, MOD_USER, Live, Running, comment_body, login
from test_api import assert_problem

URL = "/api/posts/hello-world/comments"


async def _stored_ip(server: Running, forwarded: dict[str, str], name: str) -> str | None:
    mod = await login(server)
    await mod.put("/api/posts/hello-world", json={"title": "Hello"})
    async with httpx.AsyncClient(base_url=server.url, headers=forwarded) as client:
        created = await client.post(URL, json=comment_body(f"from {name}", name=name))
    assert created.status_code == 201, created.text
    comment = (await mod.get("/api/moderation/queue", params={"status": "all"})).json()
    await mod.aclose()
    found: str | None = next(c["ip"] for c in comment["comments"]
                             if c["id"] == created.json()["comment"]["id"])
    return found


async def test_forwarded_headers_are_ignored_by_default(server: Running) -> None:
    """Without REALTIME_FORWARDED_ALLOW_IPS, X-Forwarded-For from loopback changes nothing."""
    assert await _stored_ip(server, {"X-Forwarded-For": "203.0.113.7"}, "A") == "127.0.0.1"


@pytest.mark.parametrize(("allow", "header", "expected"), [
    ("127.0.0.1", "203.0.113.7", "203.0.113.7"),
    ("127.0.0.1", "198.51.100.1, 203.0.113.7", "203.0.113.7"),
    ("127.0.0.0/8, 203.0.113.0/24", "198.51.100.1, 203.0.113.7", "198.51.100.1"),
    ("*", "203.0.113.7:4711", "203.0.113.7"),
    ("127.0.0.1", "[2001:db8::5]:4711", "2001:db8::5"),
    ("127.0.0.1", "::ffff:203.0.113.7", "203.0.113.7"),
    ("127.0.0.1", "not-an-ip", "127.0.0.1"),
    ("127.0.0.1", "203.0.113.7, unknown", "127.0.0.1"),
    ("127.0.0.1", "unknown, 203.0.113.7", "203.0.113.7"),
    ("10.0.0.1", "203.0.113.7", "127.0.0.1"),
])
async def test_client_address_from_trusted_proxies(make_server: Any, allow: str, header: str,
                                                   expected: str) -> None:
    """The client is the rightmost forwarded address that is not a trusted proxy; a
    malformed entry stops the walk at the last readable address, never at none."""
    server = await make_server(forwarded_allow_ips=allow)
    assert await _stored_ip(server, {"X-Forwarded-For": header}, "A") == expected


async def test_bans_and_flood_limits_see_forwarded_addresses(make_server: Any) -> None:
    """Behind a trusted proxy each reader has their own address: an IPv6 ban covers the
    address's /64, and one reader's flood limit does not hit the others."""
    server: Running = await make_server(forwarded_allow_ips="127.0.0.1")
    mod = await login(server)
    await mod.put("/api/posts/hello-world", json={"title": "Hello"})
    await mod.put("/api/moderation/settings", json={"flood": {"min_interval_s": 600}})
    await mod.post("/api/moderation/bans", json={"kind": "ip", "value": "2001:db8:0:1::99"})

    async def post(address: str, name: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=server.url,
                                     headers={"X-Forwarded-For": address}) as client:
            return await client.post(URL, json={"body": f"hi from {name}",
                                                "author": {"name": name}})

    assert_problem(await post("2001:db8:0:1:abcd::5", "V6"), 403, "banned")
    assert (await post("2001:db8:0:2::5", "Other64")).status_code == 201
    assert (await post("203.0.113.7", "R1")).status_code == 201
    assert (await post("203.0.113.8", "R2")).status_code == 201
    assert_problem(await post("203.0.113.7", "R1 again"), 429, "rate_limited")
    await mod.aclose()


async def test_secure_cookie_and_own_origin_behind_tls_proxy(make_server: Any) -> None:
    """X-Forwarded-Proto https from a trusted proxy, or an https REALTIME_PUBLIC_URL, makes
    the session cookie Secure; the public URL is the server's own origin for CSRF checks."""
    login_body = {"username": MOD_USER, "password": MOD_PASSWORD}
    plain: Running = await make_server()
    behind: Running = await make_server(forwarded_allow_ips="127.0.0.1")
    public: Running = await make_server(public_url="https://comments.example/")
    for running in (plain, behind, public):
        await (await login(running)).aclose()
    cookies = {}
    for name, running, headers in (
            ("plain", plain, {"X-Forwarded-Proto": "https"}),
            ("behind", behind, {"X-Forwarded-Proto": "https"}),
            ("behind-http", behind, {"X-Forwarded-Proto": "http"}),
            ("public", public, {})):
        async with httpx.AsyncClient(base_url=running.url, headers=headers) as client:
            answer = await client.post("/api/auth/login", json=login_body)
            assert answer.status_code == 200, answer.text
            cookies[name] = answer.headers["set-cookie"].lower()
    assert "secure" not in cookies["plain"] and "secure" not in cookies["behind-http"]
    assert "; secure" in cookies["behind"] and "; secure" in cookies["public"]
    mod = await login(public)
    assert_problem(await mod.put("/api/posts/p", json={"title": "P"}), 403, "forbidden")
    mod.headers["Origin"] = "https://comments.example"
    assert (await mod.put("/api/posts/p", json={"title": "P"})).status_code == 201
    await mod.aclose()


async def test_websockets_see_forwarded_addresses_and_scheme(make_server: Any) -> None:
    """The per-address connection limit counts forwarded addresses from a trusted proxy; an
    untrusted peer's header is ignored; the origin check uses the forwarded scheme."""
    trusted: Running = await make_server(forwarded_allow_ips="127.0.0.1",
                                         max_connections_per_ip=1)
    untrusted: Running = await make_server(max_connections_per_ip=1)

    async def connect(running: Running, address: str, **headers: str) -> Live:
        return await Live.connect(running.ws_url, additional_headers={
            "X-Forwarded-For": address, **headers})

    one = await connect(trusted, "203.0.113.7")
    two = await connect(trusted, "203.0.113.8")
    assert (await two.subscribe("post:none"))["type"] == "error"
    again = await connect(trusted, "203.0.113.7")
    assert await again.closed_code() == 4029
    first = await connect(untrusted, "203.0.113.7")
    second = await connect(untrusted, "203.0.113.8")
    assert await second.closed_code() == 4029
    host = trusted.url.removeprefix("http://")
    with pytest.raises(websockets.InvalidStatus):
        await connect(trusted, "203.0.113.9", Origin=f"http://{host}",
                      **{"X-Forwarded-Proto": "https"})
    secure = await connect(trusted, "203.0.113.9", Origin=f"https://{host}",
                           **{"X-Forwarded-Proto": "https"})
    for live in (one, two, first, secure):
        await live.close()


def test_trusted_proxy_settings_are_checked() -> None:
    """A REALTIME_FORWARDED_ALLOW_IPS entry that is no address or network is refused at
    start-up; `*` trusts every peer."""
    with pytest.raises(ValueError, match="REALTIME_FORWARDED_ALLOW_IPS"):
        Settings(forwarded_allow_ips="127.0.0.1, proxy.internal")
    assert "198.51.100.1" in TrustedProxies("*")
    assert "10.1.2.3" in TrustedProxies("10.0.0.0/8") and "11.0.0.1" not in TrustedProxies("")

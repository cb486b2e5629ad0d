"""A moderator's socket ends with the session: logout, expiry, removal, on every node."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import websockets

from realtime import auth, node

from conftest import Live, Running, login


async def moderator_socket(server: Running, mod: httpx.AsyncClient) -> Live:
    """A WebSocket with the moderator's session cookie, subscribed to `moderation`."""
    token = mod.cookies.get(auth.SESSION_COOKIE)
    live = await Live.connect(server.ws_url, additional_headers={
        "Cookie": f"{auth.SESSION_COOKIE}={token}"})
    assert (await live.subscribe("moderation"))["type"] == "subscribed"
    return live


async def test_logout_closes_the_socket_on_every_node(make_server: Any) -> None:
    """Logging out closes the moderator's sockets on both nodes with 1008; others stay."""
    first, second = await make_server(), await make_server()
    mod = await login(first)
    here, there = await moderator_socket(first, mod), await moderator_socket(second, mod)
    reader = await Live.connect(second.ws_url)
    assert (await mod.post("/api/auth/logout")).status_code == 204
    assert await here.closed_code() == 1008
    assert await there.closed_code() == 1008
    await reader.send({"op": "ping", "id": "still here"})
    assert await reader.next() == {"type": "pong", "id": "still here"}
    await reader.close()
    await mod.aclose()


async def test_removing_the_account_or_every_session_closes_the_socket(
        server: Running, mod: httpx.AsyncClient) -> None:
    """Deleting the moderator's sessions ("log out everywhere") or the account closes it."""
    live = await moderator_socket(server, mod)
    await server.store.pool.execute("DELETE FROM sessions")
    assert await live.closed_code() == 1008
    again = await login(server)
    live = await moderator_socket(server, again)
    await server.store.pool.execute("DELETE FROM moderators")
    assert await live.closed_code() == 1008
    await again.aclose()


async def test_an_expired_session_closes_the_socket(make_server: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A session that expires is noticed by the periodic check, and its socket closed."""
    monkeypatch.setattr(node, "SESSION_CHECK_S", 0.2)
    server = await make_server()
    mod = await login(server)
    live = await moderator_socket(server, mod)
    await server.store.pool.execute("UPDATE sessions SET expires_at = now()")
    assert await live.closed_code() == 1008
    await mod.aclose()


async def test_an_ended_session_cannot_subscribe_again(server: Running,
                                                       mod: httpx.AsyncClient) -> None:
    """Once the session is gone, subscribing to `moderation` is refused or the socket closed."""
    token = mod.cookies.get(auth.SESSION_COOKIE)
    live = await Live.connect(server.ws_url, additional_headers={
        "Cookie": f"{auth.SESSION_COOKIE}={token}"})
    await server.store.pool.execute("DELETE FROM sessions")
    await live.send({"op": "subscribe", "channel": "moderation"})
    try:
        answer = await live.next()
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == 1008
    else:
        assert answer["type"] == "error" and answer["code"] == "forbidden"

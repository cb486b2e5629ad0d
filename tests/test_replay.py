"""The replay component: far-behind readers, slow readers, repairs, resets and moderation keys.

Real server, real PostgreSQL, real WebSocket clients. Long histories are written straight into
`events` (as an import or a busy day would leave them) so that thousands of events cost
milliseconds, not thousands of POSTs.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from realtime import events
from realtime.models import EventPage
from realtime.state import state_of
from realtime.store import Store

from conftest import Live, Running, comment_body, login, wait_for, with_database

CHANNEL = "post:hello-world"


async def add_events(store: Store, count: int, slug: str = "hello-world", size: int = 200) -> int:
    """Append `count` events (of about `size` bytes) to the post's history without notifying;
    the post's new seq."""
    async with store.pool.acquire() as conn, conn.transaction():
        post = await conn.fetchrow("SELECT id, seq FROM posts WHERE slug = $1 FOR UPDATE", slug)
        await conn.execute(
            "INSERT INTO events (post_id, seq, type, data) SELECT $1, s, 'comment.updated',"
            " json_build_object('id', s, 'body', repeat('x', $4))::text"
            " FROM generate_series($2::bigint + 1, $2 + $3) AS s", post["id"], post["seq"], count,
            size)
        seq: int = await conn.fetchval("UPDATE posts SET seq = seq + $2 WHERE id = $1"
                                       " RETURNING seq", post["id"], count)
    return seq


async def write_reset(store: Store, reason: str, slug: str = "hello-world") -> int:
    """Write a `post.reset` event the way the importer does, in the post's transaction."""
    async with store.pool.acquire() as conn, conn.transaction():
        post = await store._lock_post(conn, slug)
        return await store._emit_reset(conn, post, reason)


async def stream(live: Live, count: int) -> list[dict[str, Any]]:
    """The next `count` messages other than presence."""
    found = []
    while len(found) < count:
        message = await live.next(timeout=20)
        if message["type"] != "presence":
            found.append(message)
    return found


@pytest.mark.parametrize("behind", [300, 900])
async def test_a_reader_far_behind_replays_everything(server: Running, post: dict[str, Any],
                                                      client: httpx.AsyncClient,
                                                      behind: int) -> None:
    """More missed events than the queue holds (256): `subscribed` first, then all, then live."""
    head = await add_events(server.store, behind)
    live = await Live.connect(server.ws_url)
    await live.send({"op": "subscribe", "channel": CHANNEL, "since": 0})
    first, *replayed = await stream(live, behind + 1)
    assert first == {"type": "subscribed", "channel": CHANNEL, "seq": head, "replayed": behind,
                     "watching": 1}
    assert [m["seq"] for m in replayed] == list(range(1, behind + 1))
    posted = (await client.post("/api/posts/hello-world/comments",
                                json=comment_body("and now live"))).json()
    assert (await live.events(1))[0]["seq"] == posted["seq"] == behind + 1
    await live.close()


async def test_a_reader_past_the_replay_limit_gets_one_reset(server: Running,
                                                             post: dict[str, Any]) -> None:
    """5,000 behind (limit 1,000): one `reset`, the socket stays, a fresh subscribe works."""
    head = await add_events(server.store, 5000)
    live = await Live.connect(server.ws_url)
    assert await live.subscribe(CHANNEL, since=0) == {
        "type": "reset", "channel": CHANNEL, "reason": "too_far_behind"}
    assert (await live.subscribe(CHANNEL, since=head))["replayed"] == 0
    await live.close()


async def test_a_slow_reader_replays_at_its_own_pace(make_server: Any) -> None:
    """A reader that stops reading during a long replay is never cut off; once it reads
    again it gets every replayed and live event in order, on the same connection."""
    server = await make_server()
    mod = await login(server)
    await mod.put("/api/posts/hello-world", json={"title": "Hello"})
    # 900 events of 8 KB: more than the kernel's socket buffers can hide.
    head = await add_events(server.store, 900, size=8000)
    host, port = server.url.removeprefix("http://").split(":")
    small = socket.socket()
    small.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    small.connect((host, int(port)))
    small.setblocking(False)
    reader = await Live.connect(server.ws_url, sock=small, max_queue=1, ping_interval=None)
    await reader.send({"op": "subscribe", "channel": CHANNEL, "since": 0})
    hub = state_of(server.app).hub

    def stalled() -> bool:
        return any(conn.socket is not None and conn.socket.paused for conn in hub.connections) \
            and CHANNEL in hub.replays

    await wait_for(stalled, what="the replay to wait for the reader")
    for i in range(20):
        answer = await mod.post("/api/posts/hello-world/comments",
                                json=comment_body(f"meanwhile {i}", name=f"M{i}"))
        assert answer.status_code == 201
    first, *rest = await stream(reader, 1 + head + 20)
    assert first["type"] == "subscribed" and first["replayed"] == head
    assert [m["seq"] for m in rest] == list(range(1, head + 21))
    await reader.send({"op": "ping", "id": "still open"})
    assert await reader.next_of("pong") == {"type": "pong", "id": "still open"}
    await reader.close()
    await mod.aclose()


async def test_one_read_serves_every_subscriber_of_a_channel(server: Running,
                                                             post: dict[str, Any]) -> None:
    """Many subscribers replaying the same history share the pages read from the database."""
    hub = state_of(server.app).hub
    await add_events(server.store, 450)
    reads: list[int | None] = []
    fetch = hub.fetch_page

    async def counted(slug: str, since: int | None, limit: int) -> EventPage | None:
        reads.append(since)
        return await fetch(slug, since, limit)

    hub.fetch_page = counted
    readers = [await Live.connect(server.ws_url) for _ in range(20)]
    for live in readers:
        await live.send({"op": "subscribe", "channel": CHANNEL, "since": 50})
    for live in readers:
        messages = await stream(live, 401)
        assert [m.get("seq") for m in messages[1:]] == list(range(51, 451))
        await live.close()
    # One read per subscribe, and the replay's few pages shared by everyone.
    assert len(reads) <= 20 + 2 * 20


async def test_a_post_reset_ends_subscriptions_live_and_replayed(server: Running,
                                                                 post: dict[str, Any],
                                                                 client: httpx.AsyncClient) -> None:
    """A `post.reset` row (as the importer writes one) resets a live subscriber at once and a
    resuming one after the events before it; subscribing with the new seq is quiet."""
    await client.post("/api/posts/hello-world/comments", json=comment_body("before"))
    live = await Live.connect(server.ws_url)
    assert (await live.subscribe(CHANNEL, since=1))["replayed"] == 0
    seq = await write_reset(server.store, "imported")
    assert seq == 2
    assert await live.next_of("reset") == {"type": "reset", "channel": CHANNEL,
                                           "reason": "imported"}
    resuming = await Live.connect(server.ws_url)
    await resuming.send({"op": "subscribe", "channel": CHANNEL, "since": 0})
    assert [m["type"] for m in await stream(resuming, 3)] == ["subscribed", "event", "reset"]
    again = await resuming.subscribe(CHANNEL, since=seq)
    assert again["type"] == "subscribed" and again["seq"] == seq
    await client.post("/api/posts/hello-world/comments", json=comment_body("after"))
    assert (await resuming.events(1))[0]["seq"] == seq + 1
    await live.close()
    await resuming.close()


async def listener_down(server: Running, clean_db: str) -> tuple[Any, str]:
    """Kill the listener and keep it from coming back until `listener_up`."""
    bus = state_of(server.app).bus
    name = await server.store.pool.fetchval("SELECT current_database()")
    admin = await asyncpg.connect(with_database(clean_db, "postgres"))
    await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    await admin.execute("SELECT pg_terminate_backend($1)", bus.backend_pid)
    await wait_for(lambda: not bus.up.is_set(), what="the listener to be down")
    return admin, name


async def listener_up(server: Running, admin: Any, name: str) -> None:
    await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    await admin.close()
    bus = state_of(server.app).bus
    await wait_for(lambda: bus.up.is_set(), timeout=20, what="the listener to come back")


async def test_a_reset_during_a_repair(server: Running, post: dict[str, Any],
                                       mod: httpx.AsyncClient, clean_db: str) -> None:
    """Events and a reset written while the listener is down: after it reconnects the repair
    sends the events before the reset, then the reset, and ends the subscription."""
    live = await Live.connect(server.ws_url)
    await live.subscribe(CHANNEL, since=0)
    admin, name = await listener_down(server, clean_db)
    try:
        for i in range(3):
            answer = await mod.post("/api/posts/hello-world/comments",
                                    json=comment_body(f"while down {i}", name=f"D{i}"))
            assert answer.status_code == 201
        await write_reset(server.store, "imported")
        await mod.post("/api/posts/hello-world/comments", json=comment_body("after the reset"))
    finally:
        await listener_up(server, admin, name)
    messages = await stream(live, 4)
    assert [m.get("seq") for m in messages[:3]] == [1, 2, 3]
    assert messages[3] == {"type": "reset", "channel": CHANNEL, "reason": "imported"}
    assert CHANNEL not in state_of(server.app).hub.channels
    await live.close()


async def test_moderation_changes_travel_by_key(server: Running, post: dict[str, Any],
                                                client: httpx.AsyncClient,
                                                mod: httpx.AsyncClient, clean_db: str) -> None:
    """No NOTIFY carries the moderator view; a moderator still gets every change, in order,
    with e-mail, IP and user agent, small or large."""
    heard: list[str] = []
    spy = await asyncpg.connect(clean_db)
    await spy.add_listener(events.NOTIFY_CHANNEL, lambda *args: heard.append(args[3]))
    moderator = await Live.connect(server.ws_url, additional_headers={
        "Cookie": f"realtime_session={mod.cookies.get('realtime_session')}"})
    assert (await moderator.subscribe("moderation"))["type"] == "subscribed"
    bodies = ["small", "large " + "z" * 9000, "small again"]
    for i, body in enumerate(bodies):
        answer = await client.post("/api/posts/hello-world/comments",
                                   json=comment_body(body, name=f"K{i}"),
                                   headers={"User-Agent": "agent-k"})
        assert answer.status_code == 201
    changes = await moderator.events(3)
    assert [c["data"]["body"] for c in changes] == bodies
    assert all(c["data"]["author"]["email"] == f"k{i}@example.org" and
               c["data"]["user_agent"] == "agent-k" for i, c in enumerate(changes))
    await wait_for(lambda: len(heard) >= 3, what="the spy to hear the notifications")
    assert not any("example.org" in note or "agent-k" in note for note in heard)
    assert [orjson.loads(note)["mod"][1] for note in heard] == [1, 1, 1]
    await spy.close()
    await moderator.close()


async def test_moderators_are_told_to_reread_after_a_listener_reconnect(
        server: Running, post: dict[str, Any], mod: httpx.AsyncClient,
        client: httpx.AsyncClient, clean_db: str) -> None:
    """After the listener reconnects a moderator gets `reset` listener_reconnected, and stays
    subscribed: later changes still arrive."""
    moderator = await Live.connect(server.ws_url, additional_headers={
        "Cookie": f"realtime_session={mod.cookies.get('realtime_session')}"})
    await moderator.subscribe("moderation")
    admin, name = await listener_down(server, clean_db)
    await listener_up(server, admin, name)
    assert await moderator.next_of("reset") == {"type": "reset", "channel": "moderation",
                                                "reason": "listener_reconnected"}
    await client.post("/api/posts/hello-world/comments", json=comment_body("still watched"))
    assert (await moderator.events(1))[0]["data"]["body"] == "still watched"
    await moderator.close()


async def test_a_subscribe_racing_writes_hands_over_without_seam(server: Running,
                                                                 post: dict[str, Any],
                                                                 client: httpx.AsyncClient
                                                                 ) -> None:
    """Subscribing 300 behind while comments keep coming: every seq once, in order."""
    await add_events(server.store, 300)

    async def write(count: int) -> None:
        for i in range(count):
            answer = await client.post("/api/posts/hello-world/comments",
                                       json=comment_body(f"racing {i}", name=f"R{i}"))
            assert answer.status_code == 201

    writer = asyncio.create_task(write(40))
    readers = []
    for since in (0, 100, 250):
        live = await Live.connect(server.ws_url)
        await live.send({"op": "subscribe", "channel": CHANNEL, "since": since})
        readers.append((since, live))
    await writer
    for since, live in readers:
        messages = await stream(live, 1 + 340 - since)
        assert messages[0]["type"] == "subscribed"
        assert [m["seq"] for m in messages[1:]] == list(range(since + 1, 341))
        await live.close()

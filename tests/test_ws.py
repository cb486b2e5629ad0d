"""The live stream over real WebSockets: events, replay, slow consumers and connection policy."""

from __future__ import annotations

import asyncio
import itertools
import socket
from datetime import timedelta
from typing import Any

import httpx
import pytest
import websockets

from realtime.state import state_of

from conftest import Live, Running, comment_body, login, wait_for

CHANNEL = "post:hello-world"
serial = itertools.count()


async def post_comments(client: httpx.AsyncClient, count: int, *, slug: str = "hello-world",
                        concurrency: int = 10, size: int = 0) -> list[dict[str, Any]]:
    """Post `count` comments, `concurrency` at a time; the 201 answers."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> dict[str, Any]:
        async with gate:
            i = next(serial)
            body = f"comment {i} " + "x" * size
            answer = await client.post(f"/api/posts/{slug}/comments",
                                       json=comment_body(body, name=f"P{i}"))
            assert answer.status_code == 201, answer.text
            return answer.json()  # type: ignore[no-any-return]

    return list(await asyncio.gather(*[one(i) for i in range(count)]))


async def test_posted_comment_reaches_subscriber(server: Running, client: httpx.AsyncClient,
                                                 post: dict[str, Any]) -> None:
    """A comment posted over HTTP arrives as comment.created with the stored comment."""
    live = await Live.connect(server.ws_url)
    subscribed = await live.subscribe(CHANNEL, since=0)
    assert subscribed == {"type": "subscribed", "channel": CHANNEL, "seq": 0, "replayed": 0,
                          "watching": 1}
    created = (await client.post("/api/posts/hello-world/comments",
                                 json=comment_body("live *now*"))).json()
    event = (await live.events(1))[0]
    assert event["event"] == "comment.created" and event["seq"] == created["seq"] == 1
    assert event["data"] == created["comment"]
    assert "email" not in str(event)
    await live.close()


async def test_changes_reach_post_and_moderation_channels(server: Running,
                                                          client: httpx.AsyncClient,
                                                          mod: httpx.AsyncClient,
                                                          post: dict[str, Any]) -> None:
    """Edits, deletes, approvals and rejections reach both channels; pending stays private."""
    public = await Live.connect(server.ws_url)
    await public.subscribe(CHANNEL, since=0)
    token = mod.cookies.get("realtime_session")
    moderator = await Live.connect(server.ws_url, additional_headers={
        "Cookie": f"realtime_session={token}", "Origin": server.url})
    assert (await moderator.subscribe("moderation"))["type"] == "subscribed"

    created = (await client.post("/api/posts/hello-world/comments",
                                 json=comment_body("first"))).json()
    cid = created["comment"]["id"]
    edit = {"Authorization": f"Edit {created['edit_token']}"}
    await client.patch(f"/api/comments/{cid}", json={"body": "edited"}, headers=edit)
    await mod.put("/api/posts/hello-world", json={"moderation": "pre"})
    pending = (await client.post("/api/posts/hello-world/comments",
                                 json=comment_body("waiting", name="Pat"))).json()
    held = (await client.post("/api/posts/hello-world/comments",
                              json=comment_body("rejected soon", name="Rex"))).json()
    await mod.post(f"/api/moderation/comments/{pending['comment']['id']}/approve")
    await mod.post(f"/api/moderation/comments/{held['comment']['id']}/reject")
    await client.delete(f"/api/comments/{cid}", headers=edit)
    await mod.post(f"/api/moderation/comments/{pending['comment']['id']}/reject")

    events = await public.events(6)
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert [e["event"] for e in events] == ["comment.created", "comment.updated",
                                            "post.updated", "comment.created",
                                            "comment.deleted", "comment.deleted"]
    assert events[1]["data"]["html"] == "<p>edited</p>"
    assert events[2]["data"]["moderation"] == "pre"
    assert events[3]["data"]["id"] == pending["comment"]["id"]
    assert events[4]["data"] == {"id": cid, "version": 3, "tombstone": None}
    assert "Rex" not in str(events)

    changes = await moderator.events(7)
    assert [(e["event"], e["data"]["status"]) for e in changes] == [
        ("comment.created", "approved"), ("comment.updated", "approved"),
        ("comment.created", "pending"), ("comment.created", "pending"),
        ("comment.updated", "approved"), ("comment.updated", "rejected"),
        ("comment.deleted", "deleted")]
    assert all("seq" not in e for e in changes)
    assert changes[2]["data"]["author"]["email"] == "pat@example.org"
    assert (await moderator.events(1))[0]["data"]["status"] == "rejected"
    await public.close()
    await moderator.close()


async def test_many_clients_see_every_seq_once_in_order(server: Running,
                                                        client: httpx.AsyncClient,
                                                        post: dict[str, Any]) -> None:
    """20 clients and 200 concurrent posts: every client sees seq 1..200 once, in order."""
    clients = [await Live.connect(server.ws_url) for _ in range(20)]
    for live in clients:
        await live.subscribe(CHANNEL, since=0)
    created = await post_comments(client, 200, concurrency=20)
    assert sorted(c["seq"] for c in created) == list(range(1, 201))
    for live in clients:
        events = await live.events(200)
        assert [e["seq"] for e in events] == list(range(1, 201))
        await live.close()


async def test_resume_with_since_gets_exactly_the_missed(server: Running,
                                                         client: httpx.AsyncClient,
                                                         post: dict[str, Any]) -> None:
    """Disconnect, 50 posts, reconnect with since: exactly the 50 missed arrive, then live."""
    live = await Live.connect(server.ws_url)
    await live.subscribe(CHANNEL, since=0)
    await post_comments(client, 5)
    last = (await live.events(5))[-1]["seq"]
    await live.close()
    await post_comments(client, 50)
    again = await Live.connect(server.ws_url)
    subscribed = await again.subscribe(CHANNEL, since=last)
    assert subscribed["replayed"] == 50 and subscribed["seq"] == 55
    replay = await again.events(50)
    assert [e["seq"] for e in replay] == list(range(6, 56))
    await post_comments(client, 1)
    assert (await again.events(1))[0]["seq"] == 56
    await again.close()


async def test_subscribe_during_writes_has_no_gap_or_repeat(server: Running,
                                                            client: httpx.AsyncClient,
                                                            post: dict[str, Any]) -> None:
    """Subscribing while comments pour in hands over from replay to live without a seam."""
    await post_comments(client, 20)
    writer = asyncio.create_task(post_comments(client, 100, concurrency=4))
    subscribers = []
    for since in (0, 5, 10, 15, 20):
        live = await Live.connect(server.ws_url)
        await live.subscribe(CHANNEL, since=since)
        subscribers.append((since, live))
    await writer
    for since, live in subscribers:
        events = await live.events(120 - since)
        assert [e["seq"] for e in events] == list(range(since + 1, 121))
        await live.close()


async def test_thread_read_then_subscribe_misses_nothing(server: Running,
                                                         client: httpx.AsyncClient,
                                                         post: dict[str, Any]) -> None:
    """The seq of a thread read is a safe `since`: later comments all arrive, none twice."""
    await post_comments(client, 3)
    thread = (await client.get("/api/posts/hello-world/comments")).json()
    await post_comments(client, 2)
    live = await Live.connect(server.ws_url)
    subscribed = await live.subscribe(CHANNEL, since=thread["seq"])
    assert subscribed["replayed"] == 2
    assert [e["seq"] for e in await live.events(2)] == [4, 5]
    await live.close()


async def test_subscribe_without_since_is_from_now_on(server: Running, client: httpx.AsyncClient,
                                                      post: dict[str, Any]) -> None:
    """Without since nothing old is replayed; new events arrive."""
    await post_comments(client, 3)
    live = await Live.connect(server.ws_url)
    subscribed = await live.subscribe(CHANNEL)
    assert subscribed["seq"] == 3 and subscribed["replayed"] == 0
    await post_comments(client, 1)
    assert (await live.events(1))[0]["seq"] == 4
    await live.close()


async def test_reset_when_too_far_behind_or_expired(make_server: Any) -> None:
    """Past the replay limit the answer is reset too_far_behind; pruned history, expired."""
    server = await make_server(replay_limit=10)
    mod = await login(server)
    await mod.put("/api/posts/hello-world", json={"title": "Hello"})
    await post_comments(mod, 12)
    live = await Live.connect(server.ws_url)
    assert await live.subscribe(CHANNEL, since=0) == {
        "type": "reset", "channel": CHANNEL, "reason": "too_far_behind"}
    assert (await live.subscribe(CHANNEL, since=5))["replayed"] == 7
    await live.events(7)
    await server.store.prune_events(timedelta(0), timedelta(0))
    other = await Live.connect(server.ws_url)
    assert await other.subscribe(CHANNEL, since=8) == {
        "type": "reset", "channel": CHANNEL, "reason": "history_expired"}
    assert (await other.subscribe(CHANNEL, since=12))["replayed"] == 0
    await live.close()
    await other.close()
    await mod.aclose()


async def test_large_events_travel_by_key(server: Running, client: httpx.AsyncClient,
                                          post: dict[str, Any]) -> None:
    """Events past the NOTIFY size limit arrive whole and in order among small ones."""
    live = await Live.connect(server.ws_url)
    await live.subscribe(CHANNEL, since=0)
    sizes = [0, 9000, 0, 9500, 0]
    for i, size in enumerate(sizes):
        answer = await client.post("/api/posts/hello-world/comments",
                                   json=comment_body(f"{i} " + "y" * size, name=f"S{i}"))
        assert answer.status_code == 201
    events = await live.events(5)
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert len(events[3]["data"]["body"]) == 9502
    await live.close()


async def test_slow_consumer_is_cut_off_alone(make_server: Any) -> None:
    """A client that stops reading is closed with 4008; another keeps receiving everything."""
    server = await make_server(queue_size=32)
    mod = await login(server)
    await mod.put("/api/posts/hello-world", json={"title": "Hello"})
    # max_queue=1: the client library stops reading its socket once a frame waits unread.
    slow = await Live.connect(server.ws_url, max_queue=1, ping_interval=None)
    await slow.subscribe(CHANNEL, since=0)
    fast = await Live.connect(server.ws_url)
    await fast.subscribe(CHANNEL, since=0)
    count = 300
    writer = asyncio.create_task(post_comments(mod, count, concurrency=8, size=9000))
    received = await fast.events(count, timeout=60)
    await writer
    assert [e["seq"] for e in received] == list(range(1, count + 1))
    assert await slow.closed_code(timeout=30) == 4008
    await fast.close()
    await mod.aclose()


async def test_a_reader_that_falls_behind_catches_up(make_server: Any) -> None:
    """While a socket's buffer is full its messages wait in the hub; once the client reads
    again it gets every event in order, and the connection stays open."""
    server = await make_server(queue_size=5000)
    mod = await login(server)
    await mod.put("/api/posts/hello-world", json={"title": "Hello"})
    host, port = server.url.removeprefix("http://").split(":")
    small = socket.socket()
    small.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    small.connect((host, int(port)))
    small.setblocking(False)
    reader = await Live.connect(server.ws_url, sock=small, max_queue=1, ping_interval=None)
    await reader.subscribe(CHANNEL, since=0)
    hub = state_of(server.app).hub
    posted = 0

    def paused() -> bool:
        return any(conn.socket is not None and conn.socket.paused and conn.queue
                   for conn in hub.connections)

    while not paused():
        assert posted < 3000, "the server's socket never filled up"
        await post_comments(mod, 25, concurrency=5, size=2000)
        posted += 25
    received = await reader.events(posted, timeout=60)
    assert [e["seq"] for e in received] == list(range(1, posted + 1))
    await reader.send({"op": "ping", "id": "after"})
    assert await reader.next_of("pong") == {"type": "pong", "id": "after"}
    await reader.close()
    await mod.aclose()


async def test_origin_is_checked(make_server: Any) -> None:
    """A foreign Origin is refused with HTTP 403; the same or a configured origin is let in."""
    server = await make_server(allowed_origins="https://blog.example")
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(server.ws_url, origin="https://evil.example")
    assert refused.value.response.status_code == 403
    for origin in (server.url, "https://blog.example"):
        live = await Live.connect(server.ws_url, origin=origin)
        await live.send({"op": "ping", "id": 1})
        assert await live.next() == {"type": "pong", "id": 1}
        await live.close()


async def test_moderation_channel_needs_a_session(server: Running) -> None:
    """Without a moderator session the moderation subscribe is refused; the socket stays."""
    live = await Live.connect(server.ws_url)
    answer = await live.subscribe("moderation")
    assert answer["type"] == "error" and answer["code"] == "forbidden"
    assert answer["channel"] == "moderation"
    await live.send({"op": "ping", "id": "still-here"})
    assert await live.next() == {"type": "pong", "id": "still-here"}
    await live.close()


async def test_bad_frames_get_errors_and_the_socket_stays(server: Running,
                                                          post: dict[str, Any]) -> None:
    """Garbage, unknown ops, bad channels and bad since get `error`; the connection stays."""
    live = await Live.connect(server.ws_url)
    cases = [("not json", "invalid_json"), ("[1]", "invalid_message"),
             ('{"op": "dance"}', "unknown_op"),
             ('{"op": "subscribe", "channel": "chat:x"}', "unknown_channel"),
             ('{"op": "subscribe", "channel": "post:hello-world", "since": -1}',
              "invalid_message"),
             ('{"op": "subscribe", "channel": "post:no-such-post"}', "not_found"),
             ('{"op": "unsubscribe", "channel": "post:hello-world"}', "not_subscribed")]
    for frame, code in cases:
        await live.ws.send(frame)
        answer = await live.next()
        assert answer["type"] == "error" and answer["code"] == code, (frame, answer)
    await live.ws.send(b"\x00binary")
    assert (await live.next())["code"] == "invalid_message"
    await live.send({"op": "ping", "id": 7})
    assert await live.next() == {"type": "pong", "id": 7}
    await live.close()


async def test_oversized_frame_closes_1009(server: Running) -> None:
    """An inbound frame over 4 KiB closes the connection with 1009."""
    live = await Live.connect(server.ws_url)
    await live.ws.send('{"op": "ping", "id": "' + "x" * 5000 + '"}')
    assert await live.closed_code() == 1009


async def test_subscription_cap_closes_4029(make_server: Any) -> None:
    """Past the subscription cap the connection is closed with 4029."""
    server = await make_server(max_subscriptions=2)
    mod = await login(server)
    for slug in ("a", "b", "c"):
        await mod.put(f"/api/posts/{slug}", json={"title": slug})
    live = await Live.connect(server.ws_url)
    await live.subscribe("post:a")
    await live.subscribe("post:b")
    await live.send({"op": "subscribe", "channel": "post:c"})
    assert await live.closed_code() == 4029
    await mod.aclose()


async def test_connection_cap_per_ip_closes_4029(make_server: Any) -> None:
    """Past the per-IP connection cap a new connection is closed with 4029."""
    server = await make_server(max_connections_per_ip=2)
    first = await Live.connect(server.ws_url)
    second = await Live.connect(server.ws_url)
    third = await Live.connect(server.ws_url)
    assert await third.closed_code() == 4029
    await first.close()
    await second.close()


async def test_presence_counts_watchers(server: Running, post: dict[str, Any]) -> None:
    """`watching` counts subscribed connections and is pushed when it changes."""
    first = await Live.connect(server.ws_url)
    assert (await first.subscribe(CHANNEL))["watching"] == 1
    second = await Live.connect(server.ws_url)
    assert (await second.subscribe(CHANNEL))["watching"] == 2

    async def saw(count: int) -> bool:
        message = await first.next()
        return message["type"] == "presence" and message["watching"] == count

    await wait_for(lambda: saw(2), what="presence 2")
    await second.close()
    await wait_for(lambda: saw(1), what="presence 1")
    await first.close()


async def test_unsubscribe_stops_events(server: Running, client: httpx.AsyncClient,
                                        mod: httpx.AsyncClient, post: dict[str, Any]) -> None:
    """After unsubscribe no more events of that channel arrive, while another channel's do.

    The other channel's comment is committed after the first one, and notifications reach
    every node in commit order, so an event of the dropped channel would arrive before it.
    """
    await mod.put("/api/posts/other", json={"title": "Other"})
    live = await Live.connect(server.ws_url)
    await live.subscribe(CHANNEL, since=0)
    await live.subscribe("post:other", since=0)
    await live.send({"op": "unsubscribe", "channel": CHANNEL})
    await live.send({"op": "ping", "id": "unsubscribed"})
    assert await live.next_of("pong") == {"type": "pong", "id": "unsubscribed"}
    await post_comments(client, 1)
    await post_comments(client, 1, slug="other")
    event = (await live.events(1))[0]
    assert event["channel"] == "post:other"
    await live.close()


async def test_without_realtimes_protocol_the_handshake_is_refused(
        make_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Run by a uvicorn with its stock WebSocket protocol, /ws refuses and says what to run."""
    server = await make_server(uvicorn_options={"ws": "websockets-sansio"})
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(server.ws_url)
    assert refused.value.response.status_code == 403
    assert "realtime serve" in caplog.text

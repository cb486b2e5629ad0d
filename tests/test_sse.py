"""The Server-Sent Events stream: same messages, replay and guarantees as the WebSocket."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from realtime import sse

from conftest import Live, Running, comment_body, login
from test_cluster import make_post
from test_replay import add_events, write_reset

PATH = "/api/posts/hello-world/events"


class Stream:
    """A Server-Sent Events client: reads `id:`/`data:` events and `:` comment lines."""

    def __init__(self, client: httpx.AsyncClient, response: httpx.Response) -> None:
        self.client = client
        self.response = response
        self.lines: AsyncIterator[str] = response.aiter_lines()
        self.comments: list[str] = []

    @classmethod
    async def open(cls, base: str, path: str = PATH, **headers: str) -> Stream:
        client = httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(10, read=None))
        response = await client.send(client.build_request("GET", path, headers=headers),
                                     stream=True)
        return cls(client, response)

    async def _line(self, timeout: float) -> str:
        return await asyncio.wait_for(anext(self.lines), timeout)

    async def next(self, timeout: float = 10.0) -> tuple[str | None, dict[str, Any]]:
        """The next event: its id (None without one) and its data as JSON."""
        ident: str | None = None
        data: list[str] = []
        while True:
            line = await self._line(timeout)
            if line == "":
                if data:
                    return ident, json.loads("\n".join(data))
            elif line.startswith(":"):
                self.comments.append(line)
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "id":
                    ident = value
                elif name == "data":
                    data.append(value)
                else:
                    raise AssertionError(f"unexpected field {line!r}")

    async def messages(self, count: int) -> list[tuple[str | None, dict[str, Any]]]:
        """The next `count` events other than presence."""
        found = []
        while len(found) < count:
            ident, message = await self.next()
            if message["type"] != "presence":
                found.append((ident, message))
        return found

    async def comment(self, timeout: float = 10.0) -> str:
        """Read until a comment line comes."""
        seen = len(self.comments)
        while len(self.comments) == seen:
            line = await self._line(timeout)
            if line.startswith(":"):
                self.comments.append(line)
        return self.comments[-1]

    async def ended(self, timeout: float = 10.0) -> bool:
        """Read to the end of the stream; True once the server ended it."""
        try:
            while True:
                await self._line(timeout)
        except StopAsyncIteration:
            await self.close()
            return True

    async def close(self) -> None:
        await self.response.aclose()
        await self.client.aclose()


async def test_stream_replays_then_goes_live(server: Running, client: httpx.AsyncClient,
                                             post: dict[str, Any]) -> None:
    """`subscribed`, the missed events with `id:` = seq, then live ones; no buffering headers."""
    for text in ("one", "two"):
        await client.post("/api/posts/hello-world/comments", json=comment_body(text))
    stream = await Stream.open(server.url, PATH + "?since=0")
    assert stream.response.status_code == 200
    assert stream.response.headers["content-type"] == "text/event-stream"
    assert stream.response.headers["cache-control"] == "no-cache"
    assert stream.response.headers["x-accel-buffering"] == "no"
    subscribed, *replayed = await stream.messages(3)
    assert subscribed == (None, {"type": "subscribed", "channel": "post:hello-world", "seq": 2,
                                 "replayed": 2, "watching": 1})
    assert [(i, m["seq"], m["data"]["body"]) for i, m in replayed] == [
        ("1", 1, "one"), ("2", 2, "two")]
    posted = (await client.post("/api/posts/hello-world/comments",
                                json=comment_body("three"))).json()
    ident, event = (await stream.messages(1))[0]
    assert ident == "3" and event["data"] == posted["comment"]
    await stream.close()


async def test_last_event_id_wins_over_since(server: Running, client: httpx.AsyncClient,
                                             post: dict[str, Any]) -> None:
    """A browser's reconnect (Last-Event-ID) resumes after that id, whatever `since` says."""
    for text in ("one", "two", "three"):
        await client.post("/api/posts/hello-world/comments", json=comment_body(text))
    stream = await Stream.open(server.url, PATH + "?since=0", **{"Last-Event-ID": "2"})
    subscribed, event = await stream.messages(2)
    assert subscribed[1]["replayed"] == 1 and event[0] == "3"
    await stream.close()


async def test_a_far_behind_stream_replays_past_the_queue(server: Running,
                                                          post: dict[str, Any]) -> None:
    """900 missed events (more than the queue) all arrive, in order; 5,000 give one reset."""
    await add_events(server.store, 900)
    stream = await Stream.open(server.url, PATH + "?since=0")
    messages = await stream.messages(901)
    assert [i for i, _ in messages[1:]] == [str(n) for n in range(1, 901)]
    await stream.close()
    await add_events(server.store, 4100)
    stream = await Stream.open(server.url, PATH + "?since=0")
    assert (await stream.messages(1))[0][1] == {"type": "reset", "channel": "post:hello-world",
                                                "reason": "too_far_behind"}
    assert await stream.ended()


async def test_a_ping_comment_keeps_the_stream_open(server: Running, post: dict[str, Any],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A `: ping` comment line goes out on the heartbeat, which EventSource ignores."""
    monkeypatch.setattr(sse, "HEARTBEAT_S", 0.2)
    stream = await Stream.open(server.url, PATH)
    assert (await stream.next())[1]["type"] == "subscribed"
    assert await stream.comment() == ": ping"
    assert await stream.comment() == ": ping"
    await stream.close()


async def test_a_reset_ends_the_stream(server: Running, post: dict[str, Any]) -> None:
    """After a `post.reset` the stream sends `reset` and ends."""
    stream = await Stream.open(server.url, PATH)
    assert (await stream.next())[1]["type"] == "subscribed"
    await write_reset(server.store, "imported")
    assert (await stream.messages(1))[0] == (None, {"type": "reset", "channel":
                                                    "post:hello-world", "reason": "imported"})
    assert await stream.ended()


async def test_bad_requests_get_problems(server: Running, post: dict[str, Any],
                                         client: httpx.AsyncClient) -> None:
    """An unknown post is 404, a bad `since` or Last-Event-ID 422, before any stream starts."""
    cases = [("/api/posts/nope/events", {}, 404), (PATH + "?since=-1", {}, 422),
             (PATH + "?since=x", {}, 422), (PATH, {"Last-Event-ID": "abc"}, 422)]
    for path, headers, status in cases:
        answer = await client.get(path, headers=headers)
        assert answer.status_code == status, (path, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"


async def test_cors_lets_allowed_origins_read_the_stream(make_server: Any) -> None:
    """An allowed origin gets Access-Control-Allow-Origin (and may send Last-Event-ID);
    another gets a 403 problem and no stream."""
    server = await make_server(allowed_origins="https://blog.example")
    mod = await login(server)
    await mod.put("/api/posts/hello-world", json={"title": "Hello"})
    allowed = await Stream.open(server.url, PATH, Origin="https://blog.example")
    assert allowed.response.headers["access-control-allow-origin"] == "https://blog.example"
    await allowed.close()
    foreign = await Stream.open(server.url, PATH, Origin="https://evil.example")
    assert foreign.response.status_code == 403
    assert foreign.response.headers["content-type"] == "application/problem+json"
    await foreign.close()
    preflight = await mod.options(PATH, headers={
        "Origin": "https://blog.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "last-event-id"})
    assert preflight.status_code == 200
    assert "last-event-id" in preflight.headers["access-control-allow-headers"].lower()
    await mod.aclose()


async def test_stream_watchers_count_in_presence(server: Running, post: dict[str, Any]) -> None:
    """An SSE reader counts in `watching`, and gets presence messages too."""
    live = await Live.connect(server.ws_url)
    await live.subscribe("post:hello-world")
    stream = await Stream.open(server.url, PATH)
    assert (await stream.next())[1]["watching"] == 2
    while (message := await live.next())["type"] != "presence" or message["watching"] != 2:
        pass
    await live.close()
    while (message := (await stream.next())[1])["type"] != "presence" \
            or message["watching"] != 1:
        pass
    await stream.close()


async def test_stream_resumes_after_a_restart_on_another_node(nodes: Any,
                                                              server: Running) -> None:
    """A stream on one process, posts through another; the first restarts: the reader
    resumes from its last id on a new process and sees every seq once, in order."""
    first, writer = await nodes(), await nodes()
    await make_post(server)
    posted = 0

    async def post(count: int) -> None:
        nonlocal posted
        async with httpx.AsyncClient(base_url=writer.url, timeout=20) as http:
            for _ in range(count):
                posted += 1
                answer = await http.post("/api/posts/hello-world/comments",
                                         json=comment_body(f"number {posted}"))
                assert answer.status_code == 201, answer.text

    stream = await Stream.open(first.url, PATH + "?since=0")
    assert (await stream.next())[1]["type"] == "subscribed"
    await post(3)
    seen = [int(i or 0) for i, _ in await stream.messages(3)]
    first.process.send_signal(signal.SIGTERM)
    assert await stream.ended(timeout=15)
    await asyncio.to_thread(first.process.wait, 15)
    await post(2)
    restarted = await nodes()
    again = await Stream.open(restarted.url, PATH, **{"Last-Event-ID": str(seen[-1])})
    assert (await again.next())[1]["replayed"] == 2
    await post(1)
    seen += [int(i or 0) for i, _ in await again.messages(3)]
    assert seen == [1, 2, 3, 4, 5, 6]
    await again.close()



async def test_the_stream_is_described(server: Running, client: httpx.AsyncClient,
                                       post: dict[str, Any]) -> None:
    """OpenAPI describes the stream (event-stream body, `since`, Last-Event-ID); HEAD answers
    the stream's headers without opening one."""
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/api/posts/{slug}/events"]["get"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert {p["name"] for p in operation["parameters"]} == {"slug", "since", "Last-Event-ID"}
    head = await client.head(PATH)
    assert head.status_code == 200 and head.headers["content-type"] == "text/event-stream"

"""Server-Sent Events: a post's live stream over plain HTTP, for networks that block WebSockets.

`GET /api/posts/{slug}/events?since=N` is one subscription to `post:{slug}`, served by the same
hub and the same replay as a WebSocket subscription, with the same guarantees. Every message
the socket would send on that channel (`subscribed`, `event`, `presence`, `reset`, `error`) is
one SSE event whose `data:` is the same JSON; there is no `event:` line, so
`EventSource.onmessage` gets them all, and only `event` messages carry `id: <seq>`, so a
browser's reconnect resumes with `Last-Event-ID` (which wins over `since`). A comment line
`: ping` goes out every `HEARTBEAT_S` seconds so that proxies keep the stream open. The stream
ends after a `reset` (the client reloads and opens a new one with the new seq), when the
server goes away, and when the client cannot keep up (then it resumes from its last id).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from . import protocol
from .api import client_ip, query_int, slug_of
from .connection import Connection
from .errors import RateLimited, ValidationFailed
from .models import MAX_ID
from .protocol import Close
from .state import AppState, state_of

HEARTBEAT_S = 20.0
HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"),
           (b"x-accel-buffering", b"no")]


def sse_event(message: bytes) -> bytes:
    """One stream message as one SSE event: `id:` for events, then the JSON as `data:`.

    orjson never writes a raw line break, so the JSON always fits on one `data:` line.
    """
    seq = protocol.event_seq(message)
    head = b"" if seq is None else b"id: %d\n" % seq
    return head + b"data: " + message + b"\n\n"


class EventStream(Connection):
    """A connection whose transport is a response of Server-Sent Events."""

    __slots__ = ()

    def write_now(self, frame: bytes) -> bool:
        # The hub's ready-made frames are WebSocket frames: everything goes through `frame`.
        return False

    def frame(self, messages: tuple[bytes, ...], frames: dict[tuple[bytes, ...], bytes]) -> bytes:
        return b"".join(sse_event(message) for message in messages)

    def ended(self, channel: str) -> None:
        self.close_soon(Close.NORMAL, "reset")


class ResponseSocket:
    """The transport of an event stream: what the hub flushes waits for the writer task, one
    chunk in flight at a time (`paused` while it is), so a client that does not read makes
    messages wait in the connection's bounded queue like a full WebSocket does."""

    def __init__(self) -> None:
        self.on_resume: Callable[[], None] | None = None
        self.pending: list[bytes] = []
        self.sending = False
        self.closed = False
        self.wake = asyncio.Event()

    @property
    def paused(self) -> bool:
        return self.sending

    def write_frame(self, frame: bytes) -> bool:
        if self.closed:
            return False
        self.pending.append(frame)
        self.wake.set()
        return True

    def close_now(self, code: int, reason: str) -> None:
        self.closed = True
        self.wake.set()

    async def write(self, send: Send) -> None:
        """Send what is flushed and a ping every HEARTBEAT_S, until closed; then end."""
        loop = asyncio.get_running_loop()
        ping_at = loop.time() + HEARTBEAT_S
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), max(0.0, ping_at - loop.time()))
            self.wake.clear()
            chunk = b"".join(self.pending)
            self.pending.clear()
            if loop.time() >= ping_at:
                chunk += b": ping\n\n"
                ping_at = loop.time() + HEARTBEAT_S
            if chunk:
                self.sending = True
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                self.sending = False
                if self.on_resume is not None:
                    self.on_resume()
            if self.closed and not self.pending:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return


class EventStreamResponse(Response):
    """The streaming answer: one hub connection for as long as the client stays."""

    def __init__(self, state: AppState, ip: str | None, channel: str, since: int | None) -> None:
        super().__init__()
        self.state = state
        self.ip = ip
        self.channel = channel
        self.since = since

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hub = self.state.hub
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        socket = ResponseSocket()
        conn = hub.connect(self.ip, kind=EventStream)
        conn.attach(socket)
        writer = asyncio.create_task(socket.write(send))
        gone = asyncio.create_task(_disconnected(receive))
        try:
            await hub.open(conn, self.channel, self.since)
            if self.channel not in conn.subscriptions:
                conn.close_soon(Close.NORMAL, "not subscribed")
            await asyncio.wait([writer, gone], return_when=asyncio.FIRST_COMPLETED)
        finally:
            hub.disconnect(conn)
            for task in (writer, gone):
                task.cancel()
            await asyncio.gather(writer, gone, return_exceptions=True)


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _since(request: Request) -> int | None:
    """`Last-Event-ID` (a browser resuming) wins over the `since` query parameter."""
    last = request.headers.get("last-event-id")
    if last is None or last.strip() == "":
        return query_int(request, "since", None, 0, MAX_ID)
    last = last.strip()
    if not last.isdigit() or int(last) > MAX_ID:
        raise ValidationFailed.field("Last-Event-ID", "must be the seq of an event")
    return int(last)


async def events(request: Request) -> Response:
    """GET /api/posts/{slug}/events: the post's stream as Server-Sent Events."""
    state = state_of(request.app)
    slug = slug_of(request)
    since = _since(request)
    ip = client_ip(request)
    if not state.hub.admits(ip):
        raise RateLimited("too many live connections from this address", retry_after=10)
    await state.service.get_post(slug)
    if request.method == "HEAD":
        return Response(headers={k.decode(): v.decode() for k, v in HEADERS})
    return EventStreamResponse(state, ip, protocol.post_channel(slug), since)


ROUTES = [Route("/api/posts/{slug}/events", events, methods=["GET"])]

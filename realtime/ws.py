"""The WebSocket endpoint: handshake checks, ops, replay-then-live, close codes."""

from __future__ import annotations

import logging

from starlette.websockets import WebSocket, WebSocketDisconnect

from . import auth, protocol, uvicorn_ws
from .errors import NotFound
from .hub import Connection, Hub
from .state import AppState, state_of

log = logging.getLogger(__name__)


def _origin_ok(websocket: WebSocket, state: AppState) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:
        # Only browsers can be tricked into cross-site sockets, and browsers always send it.
        return True
    scheme = "https" if websocket.url.scheme == "wss" else "http"
    own = auth.origin_of(state.settings.public_url) or f"{scheme}://{websocket.url.netloc}"
    return auth.origin_allowed(origin, own, state.settings.extra_origins)


async def endpoint(websocket: WebSocket) -> None:
    """One client connection: many channel subscriptions over one socket."""
    state = state_of(websocket.app)
    hub = state.hub
    socket = websocket.scope.get("extensions", {}).get(uvicorn_ws.EXTENSION, {}).get("socket")
    if socket is None:
        log.error("WebSockets need realtime's uvicorn protocol: run the app with"
                  " `realtime serve`, or give uvicorn.Config ws=realtime.uvicorn_ws.FrameSocket")
        await websocket.close(code=1011)
        return
    if not _origin_ok(websocket, state):
        await websocket.close(code=1008)
        return
    token = websocket.cookies.get(auth.SESSION_COOKIE)
    moderator = await state.service.session_moderator(token) if token else None
    ip = websocket.client.host if websocket.client else None
    await websocket.accept()
    if hub.per_ip[ip] >= state.settings.max_connections_per_ip:
        await websocket.close(code=4029, reason="too many connections")
        return
    conn = hub.connect(ip, moderator.username if moderator else None)
    conn.attach(socket)
    try:
        # The hub writes to the socket directly; this task only reads. A close from the hub
        # and a lost socket both end the read with a disconnect.
        await _read(websocket, conn, state)
    finally:
        hub.disconnect(conn)


async def _read(websocket: WebSocket, conn: Connection, state: AppState) -> None:
    while True:
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return
        if message["type"] == "websocket.disconnect":
            return
        frame = message.get("text")
        if frame is None:
            conn.push(protocol.error("invalid_message", "send text frames"))
            continue
        op = protocol.parse(frame)
        if isinstance(op, protocol.ProtocolError):
            conn.push(protocol.error(op.code, op.message, op.channel))
        elif isinstance(op, protocol.Ping):
            conn.push(protocol.pong(op.id))
        elif isinstance(op, protocol.Unsubscribe):
            if not state.hub.unsubscribe(conn, op.channel):
                conn.push(protocol.error("not_subscribed", "no such subscription", op.channel))
        else:
            await subscribe(state, conn, op)


async def subscribe(state: AppState, conn: Connection, op: protocol.Subscribe) -> None:
    """Register, replay what the client missed from the database, then go live."""
    hub: Hub = state.hub
    channel = op.channel
    if channel not in conn.subscriptions and \
            len(conn.subscriptions) >= state.settings.max_subscriptions:
        conn.close_soon(4029, "too many subscriptions")
        return
    slug = protocol.channel_slug(channel)
    if slug is None:
        if conn.moderator is None:
            conn.push(protocol.error("forbidden", "the moderation channel needs a moderator"
                                     " session", channel))
            return
        sub = hub.subscribe(conn, channel)
        sub.go_live(0)
        conn.push(protocol.subscribed(channel, None, 0, hub.watching(channel)))
        return
    sub = hub.subscribe(conn, channel)
    try:
        post = await state.service.get_post(slug)
    except NotFound:
        hub.unsubscribe(conn, channel)
        conn.push(protocol.error("not_found", f"no post {slug!r}", channel))
        return
    since = post.seq if op.since is None else op.since
    events = [] if since >= post.seq else await state.service.events_after(
        slug, since, state.settings.replay_limit + 1)
    if since > post.seq or events is None or len(events) > state.settings.replay_limit:
        hub.unsubscribe(conn, channel)
        reason = "too_far_behind" if events else "history_expired"
        conn.push(protocol.reset(channel, reason))
        return
    last = events[-1].seq if events else since
    conn.push(protocol.subscribed(channel, max(post.seq, last), len(events),
                                  hub.watching(channel)))
    for event in events:
        conn.push(protocol.event(channel, event.seq, event.type, event.data))
    if conn.subscriptions.get(channel) is sub and not sub.go_live(last):
        hub.repair(channel)


PATH = "/ws"

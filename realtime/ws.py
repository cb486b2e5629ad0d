"""The WebSocket endpoint: handshake checks, ops, subscriptions, close codes.

The hub writes to the socket directly; the endpoint's task only reads the client's frames.
Subscribing to a post goes through `Hub.open` (the replay component), the same as the
Server-Sent Events stream.
"""

from __future__ import annotations

import logging

from starlette.websockets import WebSocket, WebSocketDisconnect

from . import api, auth, protocol, uvicorn_ws
from .connection import LIVE, Connection
from .protocol import Close
from .state import AppState, state_of

log = logging.getLogger(__name__)

PATH = "/ws"


async def endpoint(websocket: WebSocket) -> None:
    """One client connection: many channel subscriptions over one socket."""
    state = state_of(websocket.app)
    hub = state.hub
    socket = uvicorn_ws.socket_of(websocket.scope)
    if socket is None:
        log.error("WebSockets need realtime's uvicorn protocol: run the app with"
                  " `realtime serve`, or give uvicorn.Config ws=realtime.uvicorn_ws.FrameSocket")
        await websocket.close(code=Close.INTERNAL)
        return
    origin = websocket.headers.get("origin")
    # Only browsers can be tricked into cross-site sockets, and browsers always send it.
    if origin is not None and not auth.origin_allowed(origin, api.own_origin(websocket),
                                                      state.settings.extra_origins):
        await websocket.close(code=Close.POLICY)
        return
    token = websocket.cookies.get(auth.SESSION_COOKIE)
    moderator = await state.service.session_moderator(token) if token else None
    ip = websocket.client.host if websocket.client else None
    await websocket.accept()
    if not hub.admits(ip):
        await websocket.close(code=Close.TOO_MANY, reason="too many connections")
        return
    conn = hub.connect(ip, moderator.username if moderator else None,
                       token if moderator else None)
    conn.attach(socket)
    try:
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
    """A post channel: replay what the client missed, then live; `moderation`: live, for a
    connection whose moderator session is still alive."""
    hub = state.hub
    channel = op.channel
    if channel not in conn.subscriptions and \
            len(conn.subscriptions) >= state.settings.max_subscriptions:
        conn.close_soon(Close.TOO_MANY, "too many subscriptions")
        return
    if channel != protocol.MODERATION:
        await hub.open(conn, channel, op.since)
        return
    if conn.session is None or not await state.service.live_sessions({conn.session}):
        conn.push(protocol.error("forbidden", "the moderation channel needs a moderator"
                                 " session", channel))
        return
    hub.subscribe(conn, channel, LIVE)
    conn.push(protocol.subscribed(channel, None, 0, hub.watching(channel)))

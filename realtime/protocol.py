"""The WebSocket wire format, pure: parse client frames, build server frames; no sockets.

Every builder returns a message as UTF-8 JSON bytes. Event messages are built once per event
on a node and shared by every subscriber; `batch` joins several waiting messages into one JSON
array, and `text_frame` wraps it as one WebSocket frame, the same bytes for every socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import orjson

from .models import MAX_ID, SLUG

MODERATION = "moderation"
POST_PREFIX = "post:"
MAX_PING_ID = 128
# The most bytes of messages batched into one frame.
FRAME_BYTES = 256 * 1024


class Close(IntEnum):
    """The close codes the server sends (the table in docs/protocol.md)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY = 1008
    TOO_BIG = 1009
    INTERNAL = 1011
    SLOW_CONSUMER = 4008
    TOO_MANY = 4029


@dataclass(frozen=True)
class Subscribe:
    """Subscribe to a channel, replaying events after `since` when given."""

    channel: str
    since: int | None


@dataclass(frozen=True)
class Unsubscribe:
    """Stop receiving a channel."""

    channel: str


@dataclass(frozen=True)
class Ping:
    """An application-level ping; answered with a pong carrying the same id."""

    id: int | str | None


@dataclass(frozen=True)
class ProtocolError:
    """A frame the server cannot act on; answered with an `error` message."""

    code: str
    message: str
    channel: str | None = None


ClientOp = Subscribe | Unsubscribe | Ping


def post_channel(slug: str) -> str:
    """The channel name of a post's public events."""
    return POST_PREFIX + slug


def channel_slug(channel: str) -> str | None:
    """The slug of a `post:` channel, or None for `moderation`."""
    return channel[len(POST_PREFIX):] if channel.startswith(POST_PREFIX) else None


def _channel(value: Any) -> str | ProtocolError:
    if not isinstance(value, str):
        return ProtocolError("invalid_message", "channel must be a string")
    if value == MODERATION:
        return value
    if value.startswith(POST_PREFIX) and SLUG.match(value[len(POST_PREFIX):]):
        return value
    return ProtocolError("unknown_channel", "channels are post:{slug} and moderation",
                         value[:200])


def parse(frame: str | bytes) -> ClientOp | ProtocolError:
    """One client frame to an operation, or the error to answer it with; never raises."""
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return ProtocolError("invalid_json", "frames must be JSON objects")
    if not isinstance(message, dict):
        return ProtocolError("invalid_message", "frames must be JSON objects")
    op = message.get("op")
    if op == "ping":
        ping_id = message.get("id")
        if ping_id is not None and (isinstance(ping_id, bool)
                                    or not isinstance(ping_id, int | str)
                                    or (isinstance(ping_id, str) and len(ping_id) > MAX_PING_ID)
                                    or (isinstance(ping_id, int) and abs(ping_id) > MAX_ID)):
            return ProtocolError("invalid_message", "ping id must be an integer or a short string")
        return Ping(ping_id)
    if op not in ("subscribe", "unsubscribe"):
        return ProtocolError("unknown_op", "op must be subscribe, unsubscribe or ping")
    channel = _channel(message.get("channel"))
    if isinstance(channel, ProtocolError):
        return channel
    if op == "unsubscribe":
        return Unsubscribe(channel)
    since = message.get("since")
    if since is not None and (isinstance(since, bool) or not isinstance(since, int)
                              or not 0 <= since <= MAX_ID):
        return ProtocolError("invalid_message", "since must be a non-negative integer", channel)
    return Subscribe(channel, since)


def _encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)


def subscribed(channel: str, seq: int | None, replayed: int, watching: int) -> bytes:
    """Confirms a subscription."""
    message: dict[str, Any] = {"type": "subscribed", "channel": channel}
    if seq is not None:
        message["seq"] = seq
    message.update(replayed=replayed, watching=watching)
    return _encode(message)


def event(channel: str, seq: int | None, name: str, data: bytes) -> bytes:
    """An event; `data` is already-encoded JSON, `seq` absent on `moderation`."""
    head = {"type": "event", "channel": channel}
    if seq is not None:
        head["seq"] = seq  # type: ignore[assignment]
    head["event"] = name
    return _encode({**head, "data": orjson.Fragment(data)})


def event_seq(message: bytes) -> int | None:
    """The seq of an `event` message built by `event`, else None, without parsing the JSON.

    `event` writes `type`, `channel` (which holds no quote) and then `seq`, if any, first.
    """
    head = b'{"type":"event","channel":"'
    if not message.startswith(head):
        return None
    start = message.find(b'","seq":', len(head))
    if start < 0 or message.find(b'"', len(head)) != start:
        return None
    start += 8
    end = start
    while end < len(message) and 48 <= message[end] <= 57:
        end += 1
    return int(message[start:end]) if end > start else None


def reset(channel: str, reason: str) -> bytes:
    """Tells the client to reload the thread over HTTP."""
    return _encode({"type": "reset", "channel": channel, "reason": reason})


def presence(channel: str, watching: int) -> bytes:
    """How many connections watch a channel on all nodes."""
    return _encode({"type": "presence", "channel": channel, "watching": watching})


def pong(ping_id: int | str | None) -> bytes:
    """The answer to a ping."""
    return _encode({"type": "pong", "id": ping_id})


def error(code: str, message: str, channel: str | None = None) -> bytes:
    """A problem with one client frame; the connection stays open."""
    body: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if channel is not None:
        body["channel"] = channel
    return _encode(body)


def batch(messages: list[bytes]) -> bytes:
    """Several messages for one subscriber as a single JSON array, in order."""
    return messages[0] if len(messages) == 1 else b"[" + b",".join(messages) + b"]"


def frames(messages: tuple[bytes, ...], limit: int = FRAME_BYTES) -> bytes:
    """`messages` as text frames of batches of at most about `limit` bytes each, back to back
    (clients limit message sizes: 1 MiB by default in `websockets`)."""
    if len(messages) == 1:
        return text_frame(messages[0])
    out: list[bytes] = []
    chunk: list[bytes] = []
    size = 0
    for message in messages:
        if chunk and size + len(message) > limit:
            out.append(text_frame(batch(chunk)))
            chunk, size = [], 0
        chunk.append(message)
        size += len(message) + 1
    out.append(text_frame(batch(chunk)))
    return b"".join(out)


def text_frame(payload: bytes) -> bytes:
    """`payload` as one final, unmasked text frame (RFC 6455 5.2), as servers send them."""
    n = len(payload)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 65536:
        head = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return head + payload

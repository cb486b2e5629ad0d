"""The event contract, pure: which events a comment change makes, and what a NOTIFY carries.

A change of a comment makes at most one public event on its post's channel (`comment.created`,
`comment.updated`, `comment.deleted`, or none when readers see no difference) and one event on
the `moderation` channel. The store writes the public event into `events` and sends both in a
NOTIFY; the hub turns the NOTIFY back into messages.
"""

from __future__ import annotations

from typing import Any

import orjson

from .models import VISIBLE, Comment

NOTIFY_CHANNEL = "realtime"
NOTIFY_LIMIT = 7900  # PostgreSQL refuses payloads of 8000 bytes or more


def public_event(before: Comment | None, after: Comment) -> tuple[str, dict[str, Any]] | None:
    """The public event a change makes, or None when public readers see no difference."""
    was = before is not None and before.is_public
    if not after.is_public:
        return ("comment.deleted", {"id": after.id, "version": after.version,
                                    "tombstone": None}) if was else None
    if not was:
        return "comment.created", after.public()
    if after.status != VISIBLE and before is not None and before.status == VISIBLE:
        return "comment.deleted", {"id": after.id, "version": after.version,
                                   "tombstone": after.public()}
    return "comment.updated", after.public()


def moderation_event(before: Comment | None, after: Comment) -> str:
    """The event name a change carries on the `moderation` channel."""
    if before is None:
        return "comment.created"
    if after.status == "deleted" and before.status != "deleted":
        return "comment.deleted"
    return "comment.updated"


def notify_payload(post: str, seq: int | None, event: str | None, data: bytes | None,
                   mod_event: str | None, comment: Comment | None) -> str:
    """The NOTIFY text: the event inline when it fits, else keys to read it back."""
    parts: dict[str, Any] = {"post": post, "seq": seq, "event": event}
    if data is not None:
        parts["data"] = orjson.Fragment(data)
    if mod_event is not None and comment is not None:
        parts["mod"] = {"event": mod_event, "data": comment.private()}
    text = orjson.dumps(parts).decode()
    if len(text.encode()) <= NOTIFY_LIMIT:
        return text
    keyed: dict[str, Any] = {"post": post, "seq": seq, "event": event, "key": True}
    if mod_event is not None and comment is not None:
        keyed["mod"] = {"event": mod_event, "comment_id": comment.id}
    return orjson.dumps(keyed).decode()

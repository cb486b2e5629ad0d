"""The event contract, pure: which events a change makes, and what a NOTIFY carries.

A change of a comment makes at most one public event on its post's channel (`comment.created`,
`comment.updated`, `comment.deleted`, or none when readers see no difference) and always one
change on the `moderation` channel. A thread replaced wholesale (an import) makes one
`post.reset` event, which ends its readers' subscriptions: they reload.

The store writes the public event into `events` (it takes the post's next seq) and the
moderation change into `moderation_events`, keyed by the comment's id and version, in the
same transaction as the change; at commit one NOTIFY per change tells every node (`Note`).
The NOTIFY carries the public event inline when it fits (PostgreSQL refuses payloads of 8000
bytes or more), else only its seq, and the moderation change only as its key: the moderator
view (e-mail, IP address, user agent) never travels to nodes that have no moderator
subscribed; those that have one read it back by key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .models import VISIBLE, Comment

NOTIFY_CHANNEL = "realtime"
NOTIFY_LIMIT = 7900
POST_RESET = "post.reset"

# A moderation_events row: comment id, version, event name, the moderator view as JSON text.
ModerationRow = tuple[int, int, str, str]


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


def moderation_row(before: Comment | None, after: Comment) -> ModerationRow:
    """The moderation change of a comment, keyed by the comment's id and new version."""
    return (after.id, after.version, moderation_event(before, after),
            orjson.dumps(after.private()).decode())


def reset_data(reason: str) -> bytes:
    """The data of a `post.reset` event."""
    return orjson.dumps({"reason": reason})


def reset_reason(event: str | None, data: bytes) -> str | None:
    """The reason of a `post.reset` event (it ends subscriptions), else None."""
    if event != POST_RESET:
        return None
    found = orjson.loads(data).get("reason")
    return found if isinstance(found, str) else "reset"


@dataclass(frozen=True, slots=True)
class Note:
    """One NOTIFY: the post, its public event if any (`seq` and `event`; `data` None: read it
    from `events`), and the key of the moderation change if any."""

    post: str
    seq: int | None
    event: str
    data: Any
    mod: tuple[int, int] | None


def notify_payload(post: str, seq: int | None, event: str | None, data: bytes | None,
                   mod: tuple[int, int] | None) -> str:
    """The NOTIFY text: the public event inline when it fits, else its seq alone."""
    parts: dict[str, Any] = {"post": post, "seq": seq, "event": event}
    if mod is not None:
        parts["mod"] = list(mod)
    if data is not None:
        inline = orjson.dumps({**parts, "data": orjson.Fragment(data)})
        if len(inline) <= NOTIFY_LIMIT:
            return inline.decode()
        parts["key"] = True
    return orjson.dumps(parts).decode()


def parse_note(payload: str) -> Note | None:
    """A NOTIFY text back to a `Note`, or None when it is not one."""
    try:
        raw = orjson.loads(payload)
        post = raw["post"]
        seq = raw.get("seq")
        mod = raw.get("mod")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None
    event = raw.get("event") or ""
    if not isinstance(post, str) or not isinstance(event, str) \
            or not (seq is None or isinstance(seq, int) and event):
        return None
    key = (mod[0], mod[1]) if isinstance(mod, list) and len(mod) == 2 else None
    data = raw.get("data") if seq is not None else None
    return Note(post, seq, event, data, key)

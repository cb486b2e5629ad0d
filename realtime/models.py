"""Plain frozen records passed between the layers; no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson

# A post's slug, everywhere one is taken (paths, channels, the CLI); the database checks the same.
SLUG = re.compile(r"^[a-z0-9._-]{1,200}$")
# The largest PostgreSQL bigint: no id or seq can be larger.
MAX_ID = 2**63 - 1
VISIBLE = "approved"
# The largest values a moderation policy may hold: a flood count, and any number of seconds.
MAX_FLOOD_COUNT = 100_000
MAX_SECONDS = 86_400 * 365
REMOVED = frozenset({"deleted", "rejected", "spam"})
# Every status a comment can have; the database checks the same list.
STATUSES = ("pending", "approved", "spam", "rejected", "deleted")
# What moderators can list comments by: a status, approved comments with open reports, or all.
FILTERS = (*STATUSES, "reported", "all")
# What the audit log records: the moderation actions, edits, and changes of settings, bans
# and posts.
AUDIT_ACTIONS = ("approve", "reject", "spam", "delete", "restore", "edit", "settings", "ban",
                 "unban", "post")


def iso(ts: datetime | None) -> str | None:
    """RFC 3339 UTC with a Z, as the wire contract writes times."""
    if ts is None:
        return None
    return ts.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Post:
    """A thread."""

    id: int
    slug: str
    title: str
    url: str | None
    moderation: str
    open: bool
    comment_count: int
    seq: int
    created_at: datetime

    def public(self) -> dict[str, Any]:
        """The post as the wire contract shows it."""
        return {"slug": self.slug, "title": self.title, "url": self.url,
                "moderation": self.moderation, "open": self.open,
                "comment_count": self.comment_count, "seq": self.seq,
                "created_at": iso(self.created_at)}


class Comment(NamedTuple):
    """A comment with its private fields; `public()` and `private()` choose what leaves.

    A named tuple, not a dataclass: a thread page builds hundreds of them, and a frozen
    dataclass's `__init__` cost 5.6 µs each against 0.5 µs for `Comment._make(row)`.
    """

    id: int
    post_id: int
    post: str
    parent_id: int | None
    depth: int
    kind: str
    status: str
    author_name: str
    author_email: str | None
    author_url: str | None
    avatar: str
    ip: str | None
    user_agent: str | None
    body: str
    html: str
    version: int
    client_id: str | None
    created_at: datetime
    edited_at: datetime | None
    public_replies: int
    report_count: int = 0
    reasons: str = "[]"

    @property
    def is_public(self) -> bool:
        """Approved, or removed but kept as a tombstone for its visible replies."""
        return self.status == VISIBLE or (self.status in REMOVED and self.public_replies > 0)

    def public(self) -> dict[str, Any]:
        """What any reader may see: never e-mail, IP or user agent; tombstones blanked."""
        if self.status != VISIBLE:
            return {"id": self.id, "post": self.post, "parent_id": self.parent_id,
                    "kind": self.kind, "author": {"name": "", "url": None, "avatar": ""},
                    "body": "", "html": "", "status": "deleted",
                    "created_at": iso(self.created_at), "edited_at": iso(self.edited_at),
                    "version": self.version, "client_id": None}
        return self.shown()

    def shown(self) -> dict[str, Any]:
        """The comment's own public fields, whatever its status (its author sees this)."""
        return {"id": self.id, "post": self.post, "parent_id": self.parent_id, "kind": self.kind,
                "author": {"name": self.author_name, "url": self.author_url,
                           "avatar": self.avatar},
                "body": self.body, "html": self.html, "status": self.status,
                "created_at": iso(self.created_at), "edited_at": iso(self.edited_at),
                "version": self.version, "client_id": self.client_id}

    def for_author(self) -> dict[str, Any]:
        """What the comment's author is told, on posting, on a retry and after an edit.

        A blocked word must not be confirmed (the author sees `pending`), and a shadow ban
        must not show at all (the author sees `approved`).
        """
        data = self.shown()
        if self.status == "spam":
            shadow = any(r.get("rule") == "shadow_ban" for r in orjson.loads(self.reasons))
            data["status"] = "approved" if shadow else "pending"
        return data

    def private(self) -> dict[str, Any]:
        """Everything, for moderators."""
        data = self.shown()
        data["author"] = {**data["author"], "email": self.author_email}
        data["ip"] = self.ip
        data["user_agent"] = self.user_agent
        data["depth"] = self.depth
        data["reports"] = self.report_count
        data["reasons"] = orjson.loads(self.reasons)
        return data


@dataclass(frozen=True)
class Moderator:
    """A moderator account."""

    id: int
    username: str


@dataclass(frozen=True)
class Audit:
    """An audit log entry to write in the same transaction as the change it records."""

    moderator: str
    action: str
    reason: str | None = None
    detail: dict[str, Any] | None = None


@dataclass(frozen=True)
class Event:
    """One public change of a post, at its place in the post's stream."""

    post: str
    seq: int
    type: str
    data: bytes


@dataclass(frozen=True)
class EventPage:
    """A post's events after `after`, at most a page of them, and its seq (`head`) as read in
    the same snapshot: every event up to `head` exists."""

    after: int
    head: int
    events: list[Event]


@dataclass(frozen=True)
class Verdict:
    """What the moderation policy decided for a new comment, and why.

    `reasons` name each rule that held or blocked it (`{"rule": "hold_word", "word": "casino"}`,
    `{"rule": "links", "count": 5, "limit": 2}`, ...); only moderators ever see them.
    `edit_window_s` is the edit window the policy that judged it gives its author.
    """

    status: str
    reasons: tuple[dict[str, Any], ...] = ()
    shadow: bool = False
    edit_window_s: int = 0


@dataclass(frozen=True)
class MatchKeys:
    """A new comment in the forms the rules match it in (see moderation.canonical): the hash
    of its canonical body for duplicates, and the folded name and e-mail for bans."""

    body: bytes
    name: str
    email: str | None


@dataclass(frozen=True)
class Draft:
    """A new comment as the poster sent it, before any rule is applied."""

    body: str
    author_name: str
    author_email: str | None
    author_url: str | None
    parent_id: int | None
    client_id: str | None
    ip: str | None
    user_agent: str | None
    kind: str = "comment"


@dataclass(frozen=True, slots=True)
class ImportedComment:
    """A comment read from another system's export, ready to store.

    `source_id` and `parent_source_id` are the exporting site's own ids; the store maps them
    to ours. `html` is already rendered and sanitized.
    """

    source_id: str
    parent_source_id: str | None
    kind: str
    status: str
    author_name: str
    author_email: str | None
    author_url: str | None
    ip: str | None
    body: str
    html: str
    created_at: datetime


@dataclass(frozen=True)
class ImportedThread:
    """What importing one thread changed: counts by status of the comments added."""

    post: Post
    post_created: bool
    added: dict[str, int]
    already: int
    orphans: int
    reset_seq: int | None

"""What every part of the store shares: the pool, column lists, row mappers, the post lock and
the one statement that writes events and sends their NOTIFYs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from ..errors import NotFound
from ..events import (
    NOTIFY_CHANNEL,
    POST_RESET,
    ModerationRow,
    moderation_row,
    notify_payload,
    reset_data,
)
from ..models import Audit, Comment, Post, Verdict, iso

POST_COLUMNS = "id, slug, title, url, moderation, open, comment_count, seq, created_at"
COMMENT_COLUMNS = (
    "c.id, c.post_id, p.slug AS post, c.parent_id, c.depth, c.kind, c.status, c.author_name,"
    " c.author_email, c.author_url, c.avatar, host(c.ip) AS ip, c.user_agent, c.body, c.html,"
    " c.version, c.client_id::text AS client_id, c.created_at, c.edited_at, c.public_replies,"
    " c.report_count, c.reasons::text AS reasons")
# Every read of whole comments: COMMENT_COLUMNS need the post's slug.
COMMENT_SELECT = f"SELECT {COMMENT_COLUMNS} FROM comments c JOIN posts p ON p.id = c.post_id"
BAN_COLUMNS = "id, kind, value, shadow, reason, expires_at, created_at, created_by"


def active_ban(ip: str, email: str, name: str) -> str:
    """SQL true for an active ban matching an author, given the placeholders of their address,
    folded e-mail and folded name: an IP ban covers a network."""
    return (f"(expires_at IS NULL OR expires_at > now())"
            f" AND ((kind = 'ip' AND {ip}::inet IS NOT NULL AND network >>= {ip}::inet)"
            f" OR (kind = 'email' AND match_value = {email})"
            f" OR (kind = 'name' AND match_value = {name}))")


PUBLIC_FILTER = ("(c.status = 'approved' OR (c.status IN ('deleted', 'rejected', 'spam')"
                 " AND c.public_replies > 0))")


def post_of(row: Any) -> Post:
    """A row of POST_COLUMNS."""
    return Post(**dict(row))


def comment_of(row: Any) -> Comment:
    """A row of COMMENT_COLUMNS, whose order is Comment's field order."""
    return Comment._make(row)


def ban_of(row: Any) -> dict[str, Any]:
    """A row of BAN_COLUMNS as the API shows it."""
    return {**dict(row), "expires_at": iso(row["expires_at"]), "created_at": iso(row["created_at"])}


def token_hash(token: str) -> bytes:
    """Tokens are stored hashed: a database leak must not hand out sessions or edit rights."""
    return hashlib.sha256(token.encode()).digest()


def page(rows: list[Any], limit: int, cursor: str) -> tuple[list[Any], Any]:
    """The first `limit` rows (read `limit + 1`) and the cursor of the next page, or None."""
    return rows[:limit], (rows[limit - 1][cursor] if len(rows) > limit else None)


class Admission(NamedTuple):
    """What a new comment is judged by: the comment already stored under its client_id (a
    retry), whether it repeats a recent one, and the facts about its author (see ADMISSION)."""

    retry: Comment | None
    duplicate: bool
    facts: dict[str, Any]


@dataclass(frozen=True)
class Written:
    """The result of a write: the comment as stored, the seq of its public event if any, and
    for a new comment the verdict it was stored under."""

    comment: Comment
    seq: int | None
    changed: bool = True
    verdict: Verdict | None = None


class StoreBase:
    """The pool, and the statements the parts of the store share."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def _lock_post(self, conn: Any, slug: str) -> Post:
        row = await conn.fetchrow(f"SELECT {POST_COLUMNS} FROM posts WHERE slug = $1 FOR UPDATE",
                                  slug)
        if row is None:
            raise NotFound(f"no post {slug!r}")
        return post_of(row)

    async def _fetch_comment(self, conn: Any, comment_id: int) -> Comment:
        row = await conn.fetchrow(f"{COMMENT_SELECT} WHERE c.id = $1", comment_id)
        if row is None:
            raise NotFound(f"no comment {comment_id}")
        return comment_of(row)

    async def _emit(self, conn: Any, post_id: int, seq: int, count_delta: int,
                    events: list[tuple[int, str, str]], notes: list[str],
                    changes: list[ModerationRow] | None = None) -> None:
        """The post's new seq and count, the events rows (seq, type, data), the moderation
        changes and the NOTIFYs, in order: one round trip while the post is locked; all of it
        becomes visible at commit. A moderation change already stored under the same comment
        version (a change that did not move the version) is replaced."""
        changes = changes or []
        await conn.execute(
            "WITH e AS (INSERT INTO events (post_id, seq, type, data)"
            "  SELECT $1, s, t, d FROM unnest($4::bigint[], $5::text[], $6::text[]) AS u(s, t, d)),"
            " m AS (INSERT INTO moderation_events (comment_id, version, type, data)"
            "  SELECT * FROM unnest($9::bigint[], $10::int[], $11::text[], $12::text[])"
            "  ON CONFLICT (comment_id, version) DO UPDATE"
            "  SET type = EXCLUDED.type, data = EXCLUDED.data, created_at = now()),"
            " p AS (UPDATE posts SET seq = $2, comment_count = comment_count + $3 WHERE id = $1)"
            " SELECT pg_notify($7, n) FROM unnest($8::text[]) AS n",
            post_id, seq, count_delta, [e[0] for e in events], [e[1] for e in events],
            [e[2] for e in events], NOTIFY_CHANNEL, notes, [c[0] for c in changes],
            [c[1] for c in changes], [c[2] for c in changes], [c[3] for c in changes])

    async def _emit_private(self, conn: Any, before: Comment, after: Comment) -> None:
        """A change only moderators see (no public event, the post's seq stays): its
        moderation row and its NOTIFY, visible at commit."""
        await conn.execute(
            "WITH m AS (INSERT INTO moderation_events (comment_id, version, type, data)"
            "  VALUES ($1, $2, $3, $4) ON CONFLICT (comment_id, version) DO UPDATE"
            "  SET type = EXCLUDED.type, data = EXCLUDED.data, created_at = now())"
            " SELECT pg_notify($5, $6)", *moderation_row(before, after), NOTIFY_CHANNEL,
            notify_payload(after.post, None, None, None, (after.id, after.version)))

    async def _emit_reset(self, conn: Any, post: Post, reason: str, count_delta: int = 0) -> int:
        """Tell the post's readers to reload (a `post.reset` event), inside a transaction that
        holds the post's lock (`_lock_post`), moving its comment count by `count_delta`;
        returns the event's seq."""
        seq = post.seq + 1
        data = reset_data(reason)
        await self._emit(conn, post.id, seq, count_delta, [(seq, POST_RESET, data.decode())],
                         [notify_payload(post.slug, seq, POST_RESET, data, None)])
        return seq

    async def _audit(self, conn: Any, audit: Audit | None, comment: Comment | None = None,
                     post_id: int | None = None) -> None:
        """Write the audit row on the connection of the change it records, so both commit or
        neither does."""
        if audit is None:
            return
        await conn.execute(
            "INSERT INTO audit_log (moderator, action, comment_id, post_id, reason, detail)"
            " VALUES ($1, $2, $3, $4, $5, $6::jsonb)", audit.moderator, audit.action,
            comment.id if comment else None, comment.post_id if comment else post_id,
            audit.reason, None if audit.detail is None else orjson.dumps(audit.detail).decode())

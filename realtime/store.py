"""Every SQL statement for posts, comments, events, moderators and sessions.

Each public change happens in one transaction that locks the post's row, so the post's `seq`
grows in commit order; the same transaction appends the `events` row and sends the NOTIFY,
which therefore exists exactly when the change committed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import orjson

from .errors import Conflict, DuplicateComment, NotFound, ThreadClosed, ValidationFailed
from .models import VISIBLE, Comment, Draft, Event, Moderator, Post, iso

NOTIFY_CHANNEL = "realtime"
NOTIFY_LIMIT = 7900  # PostgreSQL refuses payloads of 8000 bytes or more

POST_COLUMNS = "id, slug, title, url, moderation, open, comment_count, seq, created_at"
COMMENT_COLUMNS = (
    "c.id, c.post_id, p.slug AS post, c.parent_id, c.depth, c.kind, c.status, c.author_name,"
    " c.author_email, c.author_url, c.avatar, host(c.ip) AS ip, c.user_agent, c.body, c.html,"
    " c.version, c.client_id::text AS client_id, c.created_at, c.edited_at, c.public_replies,"
    " c.report_count")
BAN_COLUMNS = "id, kind, value, shadow, reason, expires_at, created_at, created_by"
PUBLIC_FILTER = ("(c.status = 'approved' OR (c.status IN ('deleted', 'rejected', 'spam')"
                 " AND c.public_replies > 0))")


# The moderation policy and what is known of a new comment's author: $1 e-mail, $2 IP, $3 name,
# $4 and $5 the flood limits of a fresh database (max per 10 minutes, min interval), $6 whether
# trust matters (a pre-moderated thread). Trusted: an earlier approved comment under the
# e-mail. Shadow: over the active bans that match, NULL for none, false when one is a real ban,
# true when all are shadow bans. The author's comments of the last 10 minutes are read by
# address and by e-mail through their indexes, at most as many as the flood limit needs, and
# none when the limits are off, so a busy address costs no more than a quiet one.
# Everything a new comment is judged by, read in one round trip once its post is locked: the
# comment already stored under this client_id (a retry, which wins over every rule), whether
# it repeats a recent comment of the same author, the moderation policy, and what the author's
# history says (trust, bans, flood counts bounded by the flood limit). Parameters: $1 post id,
# $2 duplicate window, $3 body, $4 e-mail, $5 name, $6 client_id, $7 ip, $8/$9 the flood
# defaults (per 10 minutes, seconds apart), $10 whether the post is pre-moderated.
ADMISSION = f"""
WITH policy AS (SELECT value FROM settings WHERE name = 'moderation'),
     lim AS (SELECT coalesce((SELECT (value #>> '{{flood,max_per_10_min}}')::int FROM policy), $8)
                    AS n,
                    coalesce((SELECT (value #>> '{{flood,min_interval_s}}')::int FROM policy), $9)
                    AS gap),
     take AS (SELECT CASE WHEN n > 0 THEN n WHEN gap > 0 THEN 1 ELSE 0 END AS rows FROM lim),
     by_ip AS (SELECT created_at FROM comments
                WHERE $7::inet IS NOT NULL AND ip = $7::inet
                  AND created_at > now() - interval '10 minutes'
                ORDER BY created_at DESC LIMIT (SELECT rows FROM take)),
     by_email AS (SELECT created_at FROM comments
                   WHERE $4::text IS NOT NULL AND author_email = $4
                     AND created_at > now() - interval '10 minutes'
                   ORDER BY created_at DESC LIMIT (SELECT rows FROM take))
SELECT EXISTS (SELECT 1 FROM comments
                WHERE post_id = $1 AND md5(body) = md5($3) AND body = $3
                  AND created_at > now() - $2::interval
                  AND (CASE WHEN $4::text IS NOT NULL THEN author_email = $4
                       ELSE author_email IS NULL AND author_name = $5 END)) AS duplicate,
       (SELECT value FROM policy) AS policy,
       ($10 AND $4::text IS NOT NULL AND EXISTS (
           SELECT 1 FROM comments WHERE author_email = $4 AND status = 'approved')) AS trusted,
       (SELECT bool_and(shadow) FROM bans
         WHERE (expires_at IS NULL OR expires_at > now())
           AND ((kind = 'ip' AND $7::inet IS NOT NULL AND value = host($7::inet))
             OR (kind = 'email' AND value = $4)
             OR (kind = 'name' AND lower(value) = lower($5)))) AS shadow,
       extract(epoch FROM now() - greatest((SELECT max(created_at) FROM by_ip),
                                           (SELECT max(created_at) FROM by_email)))::float8
           AS last_age,
       (SELECT count(*) FROM by_ip) AS recent_ip,
       (SELECT count(*) FROM by_email) AS recent_email,
       extract(epoch FROM now() - (SELECT min(created_at) FROM by_ip))::float8 AS oldest_ip,
       extract(epoch FROM now() - (SELECT min(created_at) FROM by_email))::float8 AS oldest_email,
       retry.*
  FROM (SELECT 1) AS one
  LEFT JOIN LATERAL (SELECT {COMMENT_COLUMNS} FROM comments c JOIN posts p ON p.id = c.post_id
                      WHERE c.post_id = $1 AND c.client_id = $6::uuid) AS retry ON true
"""
AUTHOR_FACTS = ("policy", "trusted", "shadow", "last_age", "recent_ip", "recent_email",
                "oldest_ip", "oldest_email")

def _post(row: Any) -> Post:
    return Post(**dict(row))


def _comment(row: Any) -> Comment:
    """A row of COMMENT_COLUMNS, whose order is Comment's field order."""
    return Comment._make(row)


def _ban(row: Any) -> dict[str, Any]:
    return {**dict(row), "expires_at": iso(row["expires_at"]), "created_at": iso(row["created_at"])}


def token_hash(token: str) -> bytes:
    """Tokens are stored hashed: a database leak must not hand out sessions or edit rights."""
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class Written:
    """The result of a write: the comment as stored and the seq of its public event, if any."""

    comment: Comment
    seq: int | None
    changed: bool = True


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


class Store:
    """Posts, comments, events, moderators and sessions in PostgreSQL."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    # posts ------------------------------------------------------------------------------

    async def list_posts(self, limit: int, after: int | None) -> tuple[list[Post], int | None]:
        """Posts newest first; the cursor is the id of the last post of the page."""
        rows = await self.pool.fetch(
            f"SELECT {POST_COLUMNS} FROM posts WHERE ($1::bigint IS NULL OR id < $1)"
            " ORDER BY id DESC LIMIT $2", after, limit + 1)
        posts = [_post(r) for r in rows[:limit]]
        return posts, (posts[-1].id if len(rows) > limit else None)

    async def get_post(self, slug: str) -> Post:
        """One post, or NotFound."""
        row = await self.pool.fetchrow(f"SELECT {POST_COLUMNS} FROM posts WHERE slug = $1", slug)
        if row is None:
            raise NotFound(f"no post {slug!r}")
        return _post(row)

    async def put_post(self, slug: str, fields: dict[str, Any], *,
                       default_moderation: str) -> tuple[Post, bool]:
        """Create the post, or update the fields given; a visible change bumps its seq."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT {POST_COLUMNS} FROM posts WHERE slug = $1 FOR UPDATE", slug)
            if row is None:
                if not fields.get("title"):
                    raise ValidationFailed.field("title", "is required to create a post")
                row = await conn.fetchrow(
                    "INSERT INTO posts (slug, title, url, moderation, open)"
                    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (slug) DO NOTHING"
                    f" RETURNING {POST_COLUMNS}",
                    slug, fields["title"], fields.get("url"),
                    fields.get("moderation", default_moderation),
                    fields.get("open", True))
                if row is None:
                    raise Conflict(f"post {slug!r} was created at the same time")
                return _post(row), True
            post = _post(row)
            updated = replace(post, **fields)
            if updated == post:
                return post, False
            updated = replace(updated, seq=post.seq + 1)
            await conn.execute(
                "UPDATE posts SET title = $2, url = $3, moderation = $4, open = $5,"
                " updated_at = now() WHERE id = $1",
                post.id, updated.title, updated.url, updated.moderation, updated.open)
            data = orjson.dumps(updated.public())
            await self._emit(conn, post.id, updated.seq, 0,
                             [(updated.seq, "post.updated", data.decode())],
                             [notify_payload(slug, updated.seq, "post.updated", data, None,
                                             None)])
            return updated, False

    # reading ----------------------------------------------------------------------------

    async def read_thread(self, slug: str, after: int | None,
                          limit: int) -> tuple[Post, list[Comment], int | None]:
        """Visible comments in id order and the post (with its seq) from one snapshot."""
        async with self.pool.acquire() as conn, conn.transaction(
                isolation="repeatable_read", readonly=True):
            row = await conn.fetchrow(f"SELECT {POST_COLUMNS} FROM posts WHERE slug = $1", slug)
            if row is None:
                raise NotFound(f"no post {slug!r}")
            post = _post(row)
            rows = await conn.fetch(
                f"SELECT {COMMENT_COLUMNS} FROM comments c JOIN posts p ON p.id = c.post_id"
                # The row comparison and ORDER BY match the (post_id, id) index exactly; with
                # `c.id > $2` the planner may walk the primary key from the lowest id instead
                # and filter by post, 100x slower on a large table (see BENCHMARKS.md).
                f" WHERE c.post_id = $1 AND (c.post_id, c.id) > ($1, $2) AND {PUBLIC_FILTER}"
                " ORDER BY c.post_id, c.id LIMIT $3", post.id, after or 0, limit + 1)
        comments = [_comment(r) for r in rows[:limit]]
        return post, comments, (comments[-1].id if len(rows) > limit else None)

    async def get_comment(self, comment_id: int) -> Comment:
        """One comment of any status, or NotFound."""
        row = await self.pool.fetchrow(
            f"SELECT {COMMENT_COLUMNS} FROM comments c JOIN posts p ON p.id = c.post_id"
            " WHERE c.id = $1", comment_id)
        if row is None:
            raise NotFound(f"no comment {comment_id}")
        return _comment(row)

    async def queue(self, status: str | None, after: int | None,
                    limit: int) -> tuple[list[Comment], int | None]:
        """Comments of one status (or all) over every post, oldest first."""
        rows = await self.pool.fetch(
            f"SELECT {COMMENT_COLUMNS} FROM comments c JOIN posts p ON p.id = c.post_id"
            " WHERE ($1::text IS NULL OR c.status = $1) AND c.id > $2 ORDER BY c.id LIMIT $3",
            status, after or 0, limit + 1)
        comments = [_comment(r) for r in rows[:limit]]
        return comments, (comments[-1].id if len(rows) > limit else None)

    async def events_after(self, slug: str, since: int, limit: int) -> list[Event] | None:
        """Events after `since`, or None when some of them were pruned (or the post is gone)."""
        rows = await self.pool.fetch(
            "SELECT p.seq AS post_seq, e.seq, e.type, e.data FROM posts p"
            " LEFT JOIN LATERAL (SELECT seq, type, data FROM events"
            "  WHERE post_id = p.id AND seq > $2 ORDER BY seq LIMIT $3) e ON true"
            " WHERE p.slug = $1", slug, since, limit)
        if not rows:
            return None
        if rows[0]["seq"] is None:
            return [] if rows[0]["post_seq"] <= since else None
        if rows[0]["seq"] != since + 1:
            return None
        return [Event(slug, r["seq"], r["type"], r["data"].encode()) for r in rows]

    async def prune_events(self, older_than: timedelta) -> int:
        """Drop events past the retention window; return how many went."""
        result: str = await self.pool.execute(
            "DELETE FROM events WHERE created_at < now() - $1::interval", older_than)
        return int(result.split()[-1])

    # writing ----------------------------------------------------------------------------

    async def insert_comment(self, slug: str, draft: Draft, *,
                             judge: Callable[[Post, dict[str, Any]], str],
                             flood_defaults: tuple[int, int], html: str, avatar: str,
                             edit_token: str, max_depth: int,
                             duplicate_window: timedelta) -> Written:
        """Store a new comment and publish it; `judge` gives its status (or refuses it).

        Everything that depends on the post is decided here, under its lock, in one
        transaction: the retry of a client_id (which wins over every rule), the open thread,
        then `judge` with the locked post and what the database knows about the author (see
        `ADMISSION`), the parent, and the duplicate.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            post = await self._lock_post(conn, slug)
            found = dict(await conn.fetchrow(
                ADMISSION, post.id, duplicate_window, draft.body, draft.author_email,
                draft.author_name, draft.client_id, draft.ip, *flood_defaults,
                post.moderation == "pre"))
            duplicate = found.pop("duplicate")
            facts = {name: found.pop(name) for name in AUTHOR_FACTS}
            if found["id"] is not None:
                return Written(Comment(**found), None, changed=False)
            if not post.open:
                raise ThreadClosed(f"comments on {slug!r} are closed")
            status = judge(post, facts)
            parent_id, depth = await self._place_reply(conn, post, draft.parent_id, max_depth)
            if duplicate:
                raise DuplicateComment("the same comment was posted here a moment ago")
            row = await conn.fetchrow(
                "WITH c AS (INSERT INTO comments (post_id, parent_id, depth, kind, status,"
                " author_name, author_email, author_url, avatar, ip, user_agent, body, html,"
                " client_id, edit_token_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
                " $10::inet, $11, $12, $13, $14::uuid, $15) RETURNING *)"
                f" SELECT {COMMENT_COLUMNS} FROM c JOIN posts p ON p.id = c.post_id",
                post.id, parent_id, depth, draft.kind, status, draft.author_name,
                draft.author_email, draft.author_url, avatar, draft.ip, draft.user_agent,
                draft.body, html, draft.client_id, token_hash(edit_token))
            comment = _comment(row)
            return Written(comment, await self._publish(conn, post, None, comment))

    async def edit_token_matches(self, comment_id: int, token: str) -> bool:
        """Whether `token` is the edit token of the comment."""
        found = await self.pool.fetchval(
            "SELECT edit_token_hash = $2 FROM comments WHERE id = $1", comment_id,
            token_hash(token))
        return bool(found)

    async def change_comment(self, comment_id: int,
                             change: Callable[[Comment], dict[str, Any] | None], *,
                             expected_version: int | None = None) -> Written:
        """Apply `change` to the locked comment: it returns the columns to set, or None."""
        async with self.pool.acquire() as conn, conn.transaction():
            slug = await conn.fetchval(
                "SELECT p.slug FROM comments c JOIN posts p ON p.id = c.post_id WHERE c.id = $1",
                comment_id)
            if slug is None:
                raise NotFound(f"no comment {comment_id}")
            post = await self._lock_post(conn, slug)
            before = await self._fetch_comment(conn, comment_id)
            if expected_version is not None and expected_version != before.version:
                raise Conflict(f"comment {comment_id} is at version {before.version}",
                               extra={"comment": before.private()})
            columns = change(before)
            if not columns:
                return Written(before, None, changed=False)
            names = list(columns)
            assignments = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(names))
            await conn.execute(
                f"UPDATE comments SET {assignments}, version = version + 1 WHERE id = $1",
                comment_id, *[columns[n] for n in names])
            after = await self._fetch_comment(conn, comment_id)
            return Written(after, await self._publish(conn, post, before, after))

    # moderators and sessions ------------------------------------------------------------

    async def create_moderator(self, username: str, password_hash: str) -> Moderator:
        """Add a moderator, or set a new password for an existing one."""
        row = await self.pool.fetchrow(
            "INSERT INTO moderators (username, password_hash) VALUES ($1, $2)"
            " ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash"
            " RETURNING id, username", username, password_hash)
        return Moderator(row["id"], row["username"])

    async def moderator_password(self, username: str) -> tuple[Moderator, str] | None:
        """The account and its password hash, for login."""
        row = await self.pool.fetchrow(
            "SELECT id, username, password_hash FROM moderators WHERE username = $1", username)
        return None if row is None else (Moderator(row["id"], row["username"]),
                                         row["password_hash"])

    async def set_password_hash(self, moderator: Moderator, password_hash: str) -> None:
        """Store a rehashed password (argon2 parameters moved on)."""
        await self.pool.execute("UPDATE moderators SET password_hash = $2 WHERE id = $1",
                                moderator.id, password_hash)

    async def create_session(self, moderator: Moderator, token: str, expires_at: datetime) -> None:
        """Remember a login."""
        await self.pool.execute(
            "INSERT INTO sessions (token_hash, moderator_id, expires_at) VALUES ($1, $2, $3)",
            token_hash(token), moderator.id, expires_at)

    async def session_moderator(self, token: str) -> Moderator | None:
        """The moderator a live session token belongs to."""
        row = await self.pool.fetchrow(
            "SELECT m.id, m.username FROM sessions s JOIN moderators m ON m.id = s.moderator_id"
            " WHERE s.token_hash = $1 AND s.expires_at > now()", token_hash(token))
        return None if row is None else Moderator(row["id"], row["username"])

    async def delete_session(self, token: str) -> None:
        """Forget a login."""
        await self.pool.execute("DELETE FROM sessions WHERE token_hash = $1", token_hash(token))

    async def audit(self, moderator: Moderator, action: str, comment: Comment | None,
                    reason: str | None) -> None:
        """Record what a moderator did."""
        await self.pool.execute(
            "INSERT INTO audit_log (moderator, action, comment_id, post_id, reason)"
            " VALUES ($1, $2, $3, $4, $5)", moderator.username, action,
            comment.id if comment else None, comment.post_id if comment else None, reason)

    async def report(self, comment_id: int, reporter: bytes, reason: str) -> bool:
        """Record a reader's report; False when this reader had already reported it."""
        async with self.pool.acquire() as conn, conn.transaction():
            added = await conn.fetchval(
                "INSERT INTO reports (comment_id, reporter, reason) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING RETURNING true", comment_id, reporter, reason)
            if added:
                await conn.execute(
                    "UPDATE comments SET report_count = report_count + 1 WHERE id = $1",
                    comment_id)
        return bool(added)

    async def audit_log(self, after: int | None,
                        limit: int) -> tuple[list[dict[str, Any]], int | None]:
        """Moderator actions, newest first; the cursor is the id of the last entry."""
        rows = await self.pool.fetch(
            "SELECT a.id, a.moderator, a.action, a.comment_id, p.slug AS post, a.reason,"
            " a.created_at FROM audit_log a LEFT JOIN posts p ON p.id = a.post_id"
            " WHERE ($1::bigint IS NULL OR a.id < $1) ORDER BY a.id DESC LIMIT $2",
            after, limit + 1)
        entries = [{**dict(r), "created_at": iso(r["created_at"])} for r in rows[:limit]]
        return entries, (entries[-1]["id"] if len(rows) > limit else None)

    async def policy(self) -> Any:
        """The stored moderation policy object, or None on a fresh database."""
        return await self.pool.fetchval("SELECT value FROM settings WHERE name = 'moderation'")

    async def put_policy(self, value: dict[str, Any]) -> None:
        """Store the whole moderation policy object."""
        await self.pool.execute(
            "INSERT INTO settings (name, value) VALUES ('moderation', $1::jsonb)"
            " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
            orjson.dumps(value).decode())

    async def list_bans(self) -> list[dict[str, Any]]:
        """Every ban, newest first."""
        rows = await self.pool.fetch(f"SELECT {BAN_COLUMNS} FROM bans ORDER BY id DESC")
        return [_ban(r) for r in rows]

    async def add_ban(self, kind: str, value: str, *, shadow: bool, reason: str | None,
                      expires_at: datetime | None, created_by: str) -> dict[str, Any]:
        """Record a ban."""
        row = await self.pool.fetchrow(
            "INSERT INTO bans (kind, value, shadow, reason, expires_at, created_by)"
            f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {BAN_COLUMNS}",
            kind, value, shadow, reason, expires_at, created_by)
        return _ban(row)

    async def delete_ban(self, ban_id: int) -> None:
        """Lift a ban, or NotFound."""
        result: str = await self.pool.execute("DELETE FROM bans WHERE id = $1", ban_id)
        if result.endswith(" 0"):
            raise NotFound(f"no ban {ban_id}")

    async def ping(self) -> None:
        """Raise when the database cannot answer."""
        await self.pool.fetchval("SELECT 1")

    # internals --------------------------------------------------------------------------

    async def _lock_post(self, conn: Any, slug: str) -> Post:
        row = await conn.fetchrow(f"SELECT {POST_COLUMNS} FROM posts WHERE slug = $1 FOR UPDATE",
                                  slug)
        if row is None:
            raise NotFound(f"no post {slug!r}")
        return _post(row)

    async def _fetch_comment(self, conn: Any, comment_id: int) -> Comment:
        row = await conn.fetchrow(
            f"SELECT {COMMENT_COLUMNS} FROM comments c JOIN posts p ON p.id = c.post_id"
            " WHERE c.id = $1", comment_id)
        if row is None:
            raise NotFound(f"no comment {comment_id}")
        return _comment(row)

    async def _place_reply(self, conn: Any, post: Post, parent_id: int | None,
                           max_depth: int) -> tuple[int | None, int]:
        """The parent a reply hangs under and its depth, capped at `max_depth` levels."""
        if parent_id is None:
            return None, 0
        row = await conn.fetchrow(
            "SELECT id, parent_id, depth, status FROM comments WHERE id = $1 AND post_id = $2",
            parent_id, post.id)
        if row is None or row["status"] != VISIBLE:
            raise ValidationFailed.field("parent_id", "must be a visible comment of this post")
        while row["depth"] >= max_depth - 1 and row["parent_id"] is not None:
            row = await conn.fetchrow("SELECT id, parent_id, depth FROM comments WHERE id = $1",
                                      row["parent_id"])
        return row["id"], row["depth"] + 1

    async def _publish(self, conn: Any, post: Post, before: Comment | None,
                       after: Comment) -> int | None:
        """Events, counters and notifications for one comment change and its ripples upward.

        A removed comment stays as a tombstone while it has public replies, so a reply that
        appears or disappears can make its removed parent appear or disappear too.
        """
        seq = post.seq
        own_seq: int | None = None
        count_delta = 0
        events: list[tuple[int, str, str]] = []
        notes: list[str] = []
        chain: list[tuple[Comment | None, Comment]] = [(before, after)]
        while chain:
            old, new = chain.pop()
            was_public = old is not None and old.is_public
            if (old is not None and old.status == VISIBLE) != (new.status == VISIBLE):
                count_delta += 1 if new.status == VISIBLE else -1
            event = public_event(old, new)
            event_seq: int | None = None
            data: bytes | None = None
            if event is not None:
                seq += 1
                event_seq = seq
                data = orjson.dumps(event[1])
                events.append((seq, event[0], data.decode()))
                if new is after:
                    own_seq = seq
            notes.append(notify_payload(post.slug, event_seq, event[0] if event else None,
                                        data, moderation_event(old, new), new))
            if was_public != new.is_public and new.parent_id is not None:
                parent = await self._fetch_comment(conn, new.parent_id)
                replies = parent.public_replies + (1 if new.is_public else -1)
                flips = parent.status != VISIBLE and (parent.public_replies > 0) != (replies > 0)
                await conn.execute(
                    "UPDATE comments SET public_replies = $2, version = version + $3"
                    " WHERE id = $1", parent.id, replies, int(flips))
                if flips:
                    chain.append((parent, await self._fetch_comment(conn, parent.id)))
        await self._emit(conn, post.id, seq, count_delta, events, notes)
        return own_seq

    async def _emit(self, conn: Any, post_id: int, seq: int, count_delta: int,
                    events: list[tuple[int, str, str]], notes: list[str]) -> None:
        """The post's new seq and count, the events rows (seq, type, data) and the NOTIFYs, in
        order: one round trip while the post is locked; all of it becomes visible at commit."""
        await conn.execute(
            "WITH e AS (INSERT INTO events (post_id, seq, type, data)"
            "  SELECT $1, s, t, d FROM unnest($4::bigint[], $5::text[], $6::text[]) AS u(s, t, d)),"
            " p AS (UPDATE posts SET seq = $2, comment_count = comment_count + $3 WHERE id = $1)"
            " SELECT pg_notify($7, n) FROM unnest($8::text[]) AS n",
            post_id, seq, count_delta, [e[0] for e in events], [e[1] for e in events],
            [e[2] for e in events], NOTIFY_CHANNEL, notes)


"""Comments and their events: reading threads, posting, changing, and the event log.

Each public change happens in one transaction that locks the post's row, so the post's `seq`
grows in commit order; the same transaction appends the `events` row and sends the NOTIFY,
which therefore exists exactly when the change committed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson

from ..errors import Conflict, DuplicateComment, NotFound, ThreadClosed, ValidationFailed
from ..events import ModerationRow, moderation_row, notify_payload, public_event
from ..models import (
    MAX_FLOOD_COUNT,
    MAX_SECONDS,
    VISIBLE,
    Audit,
    Comment,
    Draft,
    Event,
    EventPage,
    MatchKeys,
    Post,
    Verdict,
)
from .base import (
    COMMENT_COLUMNS,
    COMMENT_SELECT,
    POST_COLUMNS,
    PUBLIC_FILTER,
    Admission,
    StoreBase,
    Written,
    active_ban,
    comment_of,
    page,
    post_of,
    token_hash,
)


def _whole_number(path: str, most: int) -> str:
    """A whole number 0..most at `path` of the stored policy, else NULL: a stored value that
    cannot be read falls back to the default instead of failing every comment."""
    value = f"(SELECT value #> '{{{path}}}' FROM policy)"
    return (f"(SELECT n FROM (SELECT CASE WHEN jsonb_typeof({value}) = 'number'"
            f" AND {value}::text ~ '^[0-9]{{1,9}}([.]0*)?$'"
            f" THEN {value}::text::numeric::int END AS n) AS x WHERE n <= {most})")


# Everything a new comment is judged by, read in one round trip: the comment already stored
# under this client_id (a retry, which wins over every rule), whether it repeats a recent
# comment of the same author (by the hash of its canonical body), the moderation policy, and
# what the author's history says. Trusted: an earlier approved comment under the e-mail.
# Shadow: over the active bans that match (an IP ban covers a network; names and e-mails are
# compared folded), NULL for none, false when one is a real ban, true when all are shadow
# bans. The author's comments of the last 10 minutes are read by address and by e-mail
# through their indexes, at most as many as the flood limit needs, and none when the limits
# are off, so a busy address costs no more than a quiet one. Parameters: $1 post id,
# $2 duplicate window, $3 body key, $4 e-mail, $5 name, $6 client_id, $7 ip, $8/$9 the flood
# defaults (per 10 minutes, seconds apart), $10 whether the post is pre-moderated, $11 the
# folded e-mail, $12 the folded name.
ADMISSION = f"""
WITH policy AS (SELECT value FROM settings WHERE name = 'moderation'),
     lim AS (SELECT coalesce({_whole_number("flood,max_per_10_min", MAX_FLOOD_COUNT)}, $8) AS n,
                    coalesce({_whole_number("flood,min_interval_s", MAX_SECONDS)}, $9) AS gap),
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
                WHERE post_id = $1 AND body_key = $3 AND created_at > now() - $2::interval
                  AND (CASE WHEN $4::text IS NOT NULL THEN author_email = $4
                       ELSE author_email IS NULL AND author_name = $5 END)) AS duplicate,
       (SELECT value FROM policy) AS policy,
       ($10 AND $4::text IS NOT NULL AND EXISTS (
           SELECT 1 FROM comments WHERE author_email = $4 AND status = 'approved')) AS trusted,
       (SELECT bool_and(shadow) FROM bans WHERE {active_ban("$7", "$11", "$12")}) AS shadow,
       extract(epoch FROM now() - greatest((SELECT max(created_at) FROM by_ip),
                                           (SELECT max(created_at) FROM by_email)))::float8
           AS last_age,
       (SELECT count(*) FROM by_ip) AS recent_ip,
       (SELECT count(*) FROM by_email) AS recent_email,
       extract(epoch FROM now() - (SELECT min(created_at) FROM by_ip))::float8 AS oldest_ip,
       extract(epoch FROM now() - (SELECT min(created_at) FROM by_email))::float8 AS oldest_email,
       retry.*
  FROM (SELECT 1) AS one
  LEFT JOIN LATERAL ({COMMENT_SELECT}
                      WHERE c.post_id = $1 AND c.client_id = $6::uuid) AS retry ON true
"""
# Housekeeping may touch many rows at once; it runs in the background, not in a request.
MAINTENANCE_TIMEOUT_S = 300.0
AUTHOR_FACTS = ("policy", "trusted", "shadow", "last_age", "recent_ip", "recent_email",
                "oldest_ip", "oldest_email")


class CommentStore(StoreBase):
    """Comments, their public events and the `events` log."""

    async def read_thread(self, slug: str, after: int | None,
                          limit: int) -> tuple[Post, list[Comment], int | None]:
        """Visible comments in id order and the post (with its seq) from one snapshot."""
        async with self.pool.acquire() as conn, conn.transaction(
                isolation="repeatable_read", readonly=True):
            row = await conn.fetchrow(f"SELECT {POST_COLUMNS} FROM posts WHERE slug = $1", slug)
            if row is None:
                raise NotFound(f"no post {slug!r}")
            post = post_of(row)
            rows = await conn.fetch(
                # The row comparison and ORDER BY match the (post_id, id) index exactly; with
                # `c.id > $2` the planner may walk the primary key from the lowest id instead
                # and filter by post, 100x slower on a large table (see BENCHMARKS.md).
                f"{COMMENT_SELECT} WHERE c.post_id = $1 AND (c.post_id, c.id) > ($1, $2)"
                f" AND {PUBLIC_FILTER} ORDER BY c.post_id, c.id LIMIT $3",
                post.id, after or 0, limit + 1)
        found, cursor = page(rows, limit, "id")
        return post, [comment_of(r) for r in found], cursor

    async def get_comment(self, comment_id: int) -> Comment:
        """One comment of any status, or NotFound."""
        row = await self.pool.fetchrow(f"{COMMENT_SELECT} WHERE c.id = $1", comment_id)
        if row is None:
            raise NotFound(f"no comment {comment_id}")
        return comment_of(row)

    async def event_page(self, slug: str, since: int | None, limit: int) -> EventPage | None:
        """Up to `limit` events after `since` (None: after the post's seq, so none) and the
        post's seq from one snapshot; None when some of those events were pruned."""
        rows = await self.pool.fetch(
            "SELECT p.seq AS head, e.seq, e.type, e.data FROM posts p"
            " LEFT JOIN LATERAL (SELECT seq, type, data FROM events"
            "  WHERE post_id = p.id AND seq > coalesce($2, p.seq) ORDER BY seq LIMIT $3) e"
            " ON true WHERE p.slug = $1", slug, since, limit)
        if not rows:
            raise NotFound(f"no post {slug!r}")
        head = rows[0]["head"]
        after = head if since is None else since
        if rows[0]["seq"] is None:
            return EventPage(after, head, []) if head <= after else None
        if rows[0]["seq"] != after + 1:
            return None
        return EventPage(after, head, [Event(slug, r["seq"], r["type"], r["data"].encode())
                                       for r in rows])

    async def moderation_changes(self, keys: list[tuple[int, int]]) -> list[tuple[str, bytes]]:
        """The moderation changes of these (comment id, version) keys, in the order given;
        those already pruned are left out."""
        rows = await self.pool.fetch(
            "SELECT m.type, m.data FROM unnest($1::bigint[], $2::int[]) WITH ORDINALITY"
            " AS k(comment_id, version, i) JOIN moderation_events m"
            " ON m.comment_id = k.comment_id AND m.version = k.version ORDER BY k.i",
            [k[0] for k in keys], [k[1] for k in keys])
        return [(r["type"], r["data"].encode()) for r in rows]

    async def prune_events(self, older_than: timedelta, moderation_older_than: timedelta) -> int:
        """Drop events past the retention window, and moderation changes every node has had
        time to read; return how many events went."""
        await self.pool.execute("DELETE FROM moderation_events WHERE created_at"
                                " < now() - $1::interval", moderation_older_than)
        result: str = await self.pool.execute(
            "DELETE FROM events WHERE created_at < now() - $1::interval", older_than,
            timeout=MAINTENANCE_TIMEOUT_S)
        return int(result.split()[-1])

    async def admission(self, slug: str, draft: Draft, keys: MatchKeys, *,
                        flood_defaults: tuple[int, int],
                        duplicate_window: timedelta) -> tuple[Post, Admission]:
        """The post and what `insert_comment` would judge a new comment by, read without
        locking anything: a cheap first look before the costly work for a long body."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {POST_COLUMNS} FROM posts WHERE slug = $1", slug)
            if row is None:
                raise NotFound(f"no post {slug!r}")
            post = post_of(row)
            return post, await self._admission(conn, post, draft, keys, flood_defaults,
                                               duplicate_window)

    async def insert_comment(self, slug: str, draft: Draft, keys: MatchKeys, *,
                             judge: Callable[[Post, dict[str, Any]], Verdict],
                             flood_defaults: tuple[int, int], html: str, avatar: str,
                             edit_token: str, max_depth: int,
                             duplicate_window: timedelta) -> Written:
        """Store a new comment and publish it; `judge` gives its verdict (or refuses it).

        Everything that depends on the post is decided here, under its lock, in one
        transaction: the retry of a client_id (which wins over every rule), the open thread,
        then `judge` with the locked post and what the database knows about the author (see
        `ADMISSION`), the parent, and the duplicate.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            post = await self._lock_post(conn, slug)
            found = await self._admission(conn, post, draft, keys, flood_defaults,
                                          duplicate_window)
            if found.retry is not None:
                return Written(found.retry, None, changed=False)
            if not post.open:
                raise ThreadClosed(f"comments on {slug!r} are closed")
            verdict = judge(post, found.facts)
            parent_id, depth = await self._place_reply(conn, post, draft.parent_id, max_depth)
            if found.duplicate:
                raise DuplicateComment("the same comment was posted here a moment ago")
            row = await conn.fetchrow(
                "WITH c AS (INSERT INTO comments (post_id, parent_id, depth, kind, status,"
                " author_name, author_email, author_url, avatar, ip, user_agent, body, html,"
                " client_id, edit_token_hash, reasons, body_key) VALUES ($1, $2, $3, $4, $5,"
                " $6, $7, $8, $9, $10::inet, $11, $12, $13, $14::uuid, $15, $16::jsonb, $17)"
                f" RETURNING *) SELECT {COMMENT_COLUMNS} FROM c JOIN posts p ON p.id = c.post_id",
                post.id, parent_id, depth, draft.kind, verdict.status, draft.author_name,
                draft.author_email, draft.author_url, avatar, draft.ip, draft.user_agent,
                draft.body, html, draft.client_id, token_hash(edit_token),
                orjson.dumps(verdict.reasons).decode(), keys.body)
            comment = comment_of(row)
            return Written(comment, await self._publish(conn, post, None, comment),
                           verdict=verdict)

    async def _admission(self, conn: Any, post: Post, draft: Draft, keys: MatchKeys,
                         flood_defaults: tuple[int, int],
                         duplicate_window: timedelta) -> Admission:
        found = dict(await conn.fetchrow(
            ADMISSION, post.id, duplicate_window, keys.body, draft.author_email,
            draft.author_name, draft.client_id, draft.ip, *flood_defaults,
            post.moderation == "pre", keys.email, keys.name))
        duplicate = found.pop("duplicate")
        facts = {name: found.pop(name) for name in AUTHOR_FACTS}
        retry = Comment(**found) if found["id"] is not None else None
        return Admission(retry, duplicate, facts)

    async def edit_token_matches(self, comment_id: int, token: str) -> bool:
        """Whether `token` is the edit token of the comment."""
        found = await self.pool.fetchval(
            "SELECT edit_token_hash = $2 FROM comments WHERE id = $1", comment_id,
            token_hash(token))
        return bool(found)

    async def change_comment(self, comment_id: int,
                             change: Callable[[Comment], dict[str, Any] | None], *,
                             expected_version: int | None = None,
                             audit: Audit | None = None) -> Written:
        """Apply `change` to the locked comment: it returns the columns to set, or None.

        `audit` is written in the same transaction when something changed. Setting
        `report_count` to 0 dismisses the comment's open reports.
        """
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
            if columns.get("report_count") == 0 and before.report_count:
                await conn.execute("UPDATE reports SET dismissed_at = now()"
                                   " WHERE comment_id = $1 AND dismissed_at IS NULL", comment_id)
            after = await self._fetch_comment(conn, comment_id)
            await self._audit(conn, audit, after)
            return Written(after, await self._publish(conn, post, before, after))

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
        changes: list[ModerationRow] = []
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
            changes.append(moderation_row(old, new))
            notes.append(notify_payload(post.slug, event_seq, event[0] if event else None,
                                        data, (new.id, new.version)))
            if was_public != new.is_public and new.parent_id is not None:
                parent = await self._fetch_comment(conn, new.parent_id)
                replies = parent.public_replies + (1 if new.is_public else -1)
                flips = parent.status != VISIBLE and (parent.public_replies > 0) != (replies > 0)
                await conn.execute(
                    "UPDATE comments SET public_replies = $2, version = version + $3"
                    " WHERE id = $1", parent.id, replies, int(flips))
                if flips:
                    chain.append((parent, await self._fetch_comment(conn, parent.id)))
        await self._emit(conn, post.id, seq, count_delta, events, notes, changes)
        return own_seq

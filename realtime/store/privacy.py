"""What the database keeps about people: the avatar key, addresses past their retention,
and everything stored under one author's e-mail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ..models import Comment
from .base import BAN_COLUMNS, COMMENT_SELECT, StoreBase, ban_of, comment_of

AVATAR_KEY_LOCK = 0x7274617661746172  # "rtavatar"
BATCH = 5000
# Rewriting every stored avatar, or forgetting a month of addresses, touches many rows.
LONG_TIMEOUT_S = 300.0
# The public copies of an erased comment kept in `events` for resuming readers: blanked
# the way a tombstone is.
ERASED_EVENT = '{"body": "", "html": "", "author": {"name": "", "url": null, "avatar": ""},' \
               ' "client_id": null}'


class PrivacyStore(StoreBase):
    """The avatar key in `settings`; addresses in comments and reports; one author's rows."""

    async def avatar_key(self, candidate: str,
                         avatar: Callable[[str, str | None, str], str]) -> str:
        """The site's avatar key (hex). The first node to ask stores `candidate` and, in the
        same transaction, recomputes every stored avatar (in comments and in the public
        events readers may replay) with `avatar(key, email, name)`; every later caller,
        on any node, gets the stored key."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", AVATAR_KEY_LOCK,
                               timeout=LONG_TIMEOUT_S)
            found: str | None = await conn.fetchval(
                "SELECT value #>> '{}' FROM settings WHERE name = 'avatar_key'")
            if found is not None:
                return found
            await conn.execute("INSERT INTO settings (name, value)"
                               " VALUES ('avatar_key', to_jsonb($1::text))", candidate)
            last = 0
            while rows := await conn.fetch(
                    "SELECT id, author_email, author_name FROM comments WHERE id > $1"
                    " ORDER BY id LIMIT $2", last, BATCH, timeout=LONG_TIMEOUT_S):
                await conn.execute(
                    "UPDATE comments c SET avatar = u.avatar"
                    " FROM unnest($1::bigint[], $2::text[]) AS u(id, avatar) WHERE c.id = u.id",
                    [r["id"] for r in rows],
                    [avatar(candidate, r["author_email"], r["author_name"]) for r in rows],
                    timeout=LONG_TIMEOUT_S)
                last = rows[-1]["id"]
            await conn.execute(
                "UPDATE events e SET data = jsonb_set(e.data::jsonb, '{author,avatar}',"
                " to_jsonb(c.avatar))::text FROM comments c"
                " WHERE e.type IN ('comment.created', 'comment.updated')"
                " AND c.id = (e.data::jsonb ->> 'id')::bigint"
                " AND e.data::jsonb #>> '{author,avatar}' <> ''", timeout=LONG_TIMEOUT_S)
            return candidate

    async def forget_addresses(self, older_than: timedelta) -> int:
        """Drop the IP address and user agent of comments and of moderators' sessions, and
        the reader identity of reports, older than `older_than` (and sessions that expired,
        which serve nothing but that record); return how many comments lost theirs."""
        forgotten = 0
        while True:
            result: str = await self.pool.execute(
                "UPDATE comments SET ip = NULL, user_agent = NULL WHERE id IN ("
                " SELECT id FROM comments WHERE (ip IS NOT NULL OR user_agent IS NOT NULL)"
                " AND created_at < now() - $1::interval LIMIT $2)", older_than, BATCH,
                timeout=LONG_TIMEOUT_S)
            done = int(result.split()[-1])
            forgotten += done
            if done < BATCH:
                break
        await self.pool.execute("DELETE FROM sessions WHERE expires_at < now()")
        await self.pool.execute(
            "UPDATE sessions SET ip = NULL, user_agent = NULL WHERE created_at"
            " < now() - $1::interval AND (ip IS NOT NULL OR user_agent IS NOT NULL)",
            older_than)
        # A reader is a hash of their address (32 bytes); a forgotten one becomes 16 random
        # bytes, which still keeps the report apart from the others on the comment.
        await self.pool.execute(
            "UPDATE reports SET reporter = uuid_send(gen_random_uuid())"
            " WHERE length(reporter) = 32 AND created_at < now() - $1::interval", older_than,
            timeout=LONG_TIMEOUT_S)
        return forgotten

    async def author_comments(self, email: str) -> list[Comment]:
        """Every comment stored under an e-mail, oldest first, any status."""
        rows = await self.pool.fetch(f"{COMMENT_SELECT} WHERE c.author_email = $1"
                                     " ORDER BY c.id", email, timeout=LONG_TIMEOUT_S)
        return [comment_of(r) for r in rows]

    async def author_bans(self, email: str, name_keys: list[str]) -> list[dict[str, Any]]:
        """The bans naming an e-mail (folded) or one of the author's folded names."""
        rows = await self.pool.fetch(
            f"SELECT {BAN_COLUMNS} FROM bans WHERE (kind = 'email' AND match_value = $1)"
            " OR (kind = 'name' AND match_value = ANY($2::text[])) ORDER BY id", email,
            name_keys)
        return [ban_of(r) for r in rows]

    async def blank_events(self, comments: list[Comment]) -> None:
        """Blank the author and text in the public events of these comments."""
        await self.pool.execute(
            "UPDATE events SET data = (data::jsonb || $3::jsonb)::text"
            " WHERE post_id = ANY($1::bigint[]) AND type IN ('comment.created', 'comment.updated')"
            " AND (data::jsonb ->> 'id')::bigint = ANY($2::bigint[])",
            sorted({c.post_id for c in comments}), [c.id for c in comments], ERASED_EVENT,
            timeout=LONG_TIMEOUT_S)

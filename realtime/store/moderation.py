"""What moderators keep: the audit log, readers' reports, the policy and bans."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson

from ..errors import NotFound
from ..models import Audit, Comment, iso
from .base import BAN_COLUMNS, StoreBase, active_ban, ban_of, page


class ModerationStore(StoreBase):
    """The audit_log, reports, settings and bans tables."""

    async def report(self, comment_id: int, reporter: bytes, reason: str) -> bool:
        """Record a reader's report; False when this reader had already reported it.

        A counted report is a change moderators see at once: the comment's version grows and
        the `moderation` channel hears it (readers see no difference, so no public event).
        """
        async with self.pool.acquire() as conn, conn.transaction():
            added = await conn.fetchval(
                "INSERT INTO reports (comment_id, reporter, reason) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING RETURNING true", comment_id, reporter, reason)
            if added:
                before = await self._fetch_comment(conn, comment_id)
                await conn.execute(
                    "UPDATE comments SET report_count = report_count + 1, version = version + 1"
                    " WHERE id = $1", comment_id)
                await self._emit_private(conn, before, await self._fetch_comment(conn, comment_id))
        return bool(added)

    async def audit_log(self, after: int | None, limit: int, *, moderator: str | None = None,
                        action: str | None = None) -> tuple[list[dict[str, Any]], int | None]:
        """Moderator actions, newest first, of one moderator and one action when given; the
        cursor is the id of the last entry."""
        where = ["($1::bigint IS NULL OR a.id < $1)"]
        args: list[Any] = [after, limit + 1]
        for column, value in (("a.moderator", moderator), ("a.action", action)):
            if value is not None:
                args.append(value)
                where.append(f"{column} = ${len(args)}")
        rows = await self.pool.fetch(
            "SELECT a.id, a.moderator, a.action, a.comment_id, p.slug AS post, a.reason,"
            " a.detail::text AS detail, a.created_at FROM audit_log a"
            f" LEFT JOIN posts p ON p.id = a.post_id WHERE {' AND '.join(where)}"
            " ORDER BY a.id DESC LIMIT $2", *args)
        found, cursor = page(rows, limit, "id")
        return [{**dict(r), "detail": None if r["detail"] is None else orjson.loads(r["detail"]),
                 "created_at": iso(r["created_at"])} for r in found], cursor

    async def audit_moderators(self) -> list[str]:
        """Everyone who appears in the audit log, for its filter."""
        rows = await self.pool.fetch("SELECT DISTINCT moderator FROM audit_log ORDER BY 1")
        return [r["moderator"] for r in rows]

    async def policy(self) -> Any:
        """The stored moderation policy object, or None on a fresh database."""
        return await self.pool.fetchval("SELECT value FROM settings WHERE name = 'moderation'")

    async def put_policy(self, value: dict[str, Any], audit: Audit | None = None) -> None:
        """Store the whole moderation policy object (and its audit row, in one transaction)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO settings (name, value) VALUES ('moderation', $1::jsonb)"
                " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                orjson.dumps(value).decode())
            await self._audit(conn, audit)

    async def author_standing(self, comment: Comment, *, name: str,
                              email: str | None) -> dict[str, Any]:
        """What an edit of the comment is judged by: the stored policy, the post's moderation,
        whether the author is trusted (another approved comment under the e-mail) and, over
        the active bans that match the author, `shadow` (NULL: none, false: a real ban)."""
        row = await self.pool.fetchrow(
            "SELECT (SELECT value FROM settings WHERE name = 'moderation') AS policy,"
            " (SELECT moderation FROM posts WHERE id = $1) AS moderation,"
            " ($3::text IS NOT NULL AND EXISTS (SELECT 1 FROM comments WHERE author_email = $3"
            "  AND status = 'approved' AND id <> $2)) AS trusted,"
            f" (SELECT bool_and(shadow) FROM bans WHERE {active_ban('$4', '$5', '$6')})"
            " AS shadow", comment.post_id, comment.id, comment.author_email, comment.ip,
            email, name)
        return dict(row)

    async def list_bans(self) -> list[dict[str, Any]]:
        """Every ban, newest first."""
        rows = await self.pool.fetch(f"SELECT {BAN_COLUMNS} FROM bans ORDER BY id DESC")
        return [ban_of(r) for r in rows]

    async def add_ban(self, kind: str, value: str, *, match: str, shadow: bool,
                      reason: str | None, expires_at: datetime | None, created_by: str,
                      audit: Audit | None = None,
                      comment: Comment | None = None) -> dict[str, Any]:
        """Record a ban (`match`: the folded name or e-mail it matches); the audit row (naming
        the ban, and the comment it came from) goes in the same transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "INSERT INTO bans (kind, value, match_value, shadow, reason, expires_at,"
                f" created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {BAN_COLUMNS}",
                kind, value, None if kind == "ip" else match, shadow, reason, expires_at,
                created_by)
            ban = ban_of(row)
            if audit is not None:
                audit = replace(audit, detail={**(audit.detail or {}), "ban": ban})
            await self._audit(conn, audit, comment)
        return ban

    async def delete_ban(self, ban_id: int, audit: Audit | None = None) -> None:
        """Lift a ban, or NotFound; the audit row names the ban lifted."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(f"DELETE FROM bans WHERE id = $1 RETURNING {BAN_COLUMNS}",
                                      ban_id)
            if row is None:
                raise NotFound(f"no ban {ban_id}")
            if audit is not None:
                audit = replace(audit, detail={**(audit.detail or {}), "ban": ban_of(row)})
            await self._audit(conn, audit)

"""What moderators keep: the audit log, readers' reports, the policy and bans."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from ..errors import NotFound
from ..models import Comment, Moderator, iso
from .base import BAN_COLUMNS, StoreBase, ban_of, page


class ModerationStore(StoreBase):
    """The audit_log, reports, settings and bans tables."""

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
        found, cursor = page(rows, limit, "id")
        return [{**dict(r), "created_at": iso(r["created_at"])} for r in found], cursor

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
        return [ban_of(r) for r in rows]

    async def add_ban(self, kind: str, value: str, *, shadow: bool, reason: str | None,
                      expires_at: datetime | None, created_by: str) -> dict[str, Any]:
        """Record a ban."""
        row = await self.pool.fetchrow(
            "INSERT INTO bans (kind, value, shadow, reason, expires_at, created_by)"
            f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {BAN_COLUMNS}",
            kind, value, shadow, reason, expires_at, created_by)
        return ban_of(row)

    async def delete_ban(self, ban_id: int) -> None:
        """Lift a ban, or NotFound."""
        result: str = await self.pool.execute("DELETE FROM bans WHERE id = $1", ban_id)
        if result.endswith(" 0"):
            raise NotFound(f"no ban {ban_id}")

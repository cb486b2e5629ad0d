"""Moderator accounts and their sessions."""

from __future__ import annotations

from datetime import datetime

from ..models import Moderator
from .base import StoreBase, token_hash


class AccountStore(StoreBase):
    """The moderators and sessions tables."""

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

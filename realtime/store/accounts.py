"""Moderator accounts, their sessions, and the failed logins that throttle guessing."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..errors import NotFound
from ..models import Moderator, iso
from .base import StoreBase, token_hash


@dataclass(frozen=True)
class LoginStart:
    """A login attempt as the database took it: `attempt` is the id of the failure it counts
    as until its password proves right, or None when the address (or the account at this
    address) is at its limit for `wait` more seconds; the account and its password hash, if
    there is one."""

    attempt: int | None
    wait: int
    account: tuple[Moderator, str] | None


class AccountStore(StoreBase):
    """The moderators, sessions and login_failures tables."""

    async def create_moderator(self, username: str, password_hash: str) -> Moderator:
        """Add a moderator, or set a new password for an existing one."""
        row = await self.pool.fetchrow(
            "INSERT INTO moderators (username, password_hash) VALUES ($1, $2)"
            " ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash"
            " RETURNING id, username", username, password_hash)
        return Moderator(row["id"], row["username"])

    async def set_password_hash(self, moderator: Moderator, password_hash: str) -> None:
        """Store a rehashed password (argon2 parameters moved on)."""
        await self.pool.execute("UPDATE moderators SET password_hash = $2 WHERE id = $1",
                                moderator.id, password_hash)

    async def create_session(self, moderator: Moderator, token: str, expires_at: datetime, *,
                             ip: str | None = None, user_agent: str | None = None,
                             login: tuple[int, str, bytes] | None = None) -> None:
        """Remember a login, and where it came from. `login` is the attempt that proved
        right (its id, address and account): it and the account's earlier failures at that
        address no longer count, in the same statement."""
        attempt, address, account = login or (None, None, None)
        await self.pool.execute(
            "WITH forgotten AS (DELETE FROM login_failures WHERE $6::bigint IS NOT NULL"
            " AND (id = $6 OR (address = $7 AND account = $8)))"
            " INSERT INTO sessions (token_hash, moderator_id, expires_at, ip, user_agent)"
            " VALUES ($1, $2, $3, $4::inet, $5)",
            token_hash(token), moderator.id, expires_at, ip, user_agent, attempt, address,
            account)

    async def session_moderator(self, token: str) -> Moderator | None:
        """The moderator a live session token belongs to."""
        row = await self.pool.fetchrow(
            "SELECT m.id, m.username FROM sessions s JOIN moderators m ON m.id = s.moderator_id"
            " WHERE s.token_hash = $1 AND s.expires_at > now()", token_hash(token))
        return None if row is None else Moderator(row["id"], row["username"])

    async def live_sessions(self, tokens: set[str]) -> set[str]:
        """Those of `tokens` that still belong to a session that has not expired."""
        hashed = {token_hash(t): t for t in tokens}
        rows = await self.pool.fetch(
            "SELECT token_hash FROM sessions WHERE token_hash = ANY($1::bytea[])"
            " AND expires_at > now()", list(hashed))
        return {hashed[r["token_hash"]] for r in rows}

    async def delete_session(self, token: str) -> None:
        """Forget a login."""
        await self.pool.execute("DELETE FROM sessions WHERE token_hash = $1", token_hash(token))

    async def sessions(self, moderator: Moderator, token: str) -> list[dict[str, Any]]:
        """A moderator's live sessions, newest first; `current` marks the one of `token`."""
        rows = await self.pool.fetch(
            "SELECT id, created_at, expires_at, host(ip) AS ip, user_agent,"
            " token_hash = $2 AS current FROM sessions"
            " WHERE moderator_id = $1 AND expires_at > now() ORDER BY created_at DESC, id DESC",
            moderator.id, token_hash(token))
        return [{**dict(r), "created_at": iso(r["created_at"]),
                 "expires_at": iso(r["expires_at"])} for r in rows]

    async def end_session(self, moderator: Moderator, session_id: int) -> None:
        """End one of the moderator's own sessions, or NotFound."""
        result: str = await self.pool.execute(
            "DELETE FROM sessions WHERE id = $1 AND moderator_id = $2", session_id, moderator.id)
        if result.endswith(" 0"):
            raise NotFound(f"no session {session_id}")

    async def end_all_sessions(self, moderator: Moderator) -> int:
        """End every session of the moderator, on every device; how many there were."""
        result: str = await self.pool.execute("DELETE FROM sessions WHERE moderator_id = $1",
                                              moderator.id)
        return int(result.rsplit(" ", 1)[1])

    async def begin_login(self, address: str, account: bytes, username: str,
                          window: timedelta, per_account: int, per_address: int) -> LoginStart:
        """Count a login attempt as failed until it proves right, unless the address, or the
        account at this address, is at its limit; with the account and its password hash.
        One round trip: the count and the insert run under a lock on the address, on every
        node alike, so attempts sent at once cannot all slip under the limit
        (`realtime_begin_login` in migration 015)."""
        row = await self.pool.fetchrow(
            "SELECT * FROM realtime_begin_login($1, $2, $3, $4, $5, $6)",
            address, account, username, window, per_account, per_address)
        found = (None if row["moderator_id"] is None
                 else (Moderator(row["moderator_id"], row["username"]), row["password_hash"]))
        wait = 0 if row["attempt"] is not None else max(1, math.ceil(row["wait_s"]))
        return LoginStart(row["attempt"], wait, found)

    async def prune_login_failures(self, window: timedelta) -> None:
        """Forget failed logins older than the window they count in."""
        await self.pool.execute(
            "DELETE FROM login_failures WHERE created_at < now() - $1::interval", window)

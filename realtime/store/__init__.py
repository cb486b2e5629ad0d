"""Every SQL statement for posts, comments, events, moderators, sessions and moderation.

The store holds SQL and nothing else: it returns models, and what a change means for readers
(its events) comes from `realtime.events`. One class per group of tables; `Store` is all of
them over one pool.
"""

from __future__ import annotations

from .accounts import AccountStore
from .base import COMMENT_COLUMNS, Written, token_hash
from .comments import CommentStore
from .feed import FeedStore
from .imports import ImportStore
from .moderation import ModerationStore
from .posts import PostStore
from .privacy import PrivacyStore
from .threads import ThreadPage, ThreadStore
from .transfer import TransferStore

__all__ = ["COMMENT_COLUMNS", "Store", "ThreadPage", "Written", "token_hash"]


class Store(PostStore, CommentStore, ThreadStore, FeedStore, ModerationStore, AccountStore,
            PrivacyStore, ImportStore, TransferStore):
    """Posts, comments, events, moderators, sessions, moderation, imports and exports in
    PostgreSQL."""

    async def ping(self, timeout: float) -> None:
        """Raise when the database cannot answer within about `timeout` seconds."""
        async with self.pool.acquire(timeout) as conn:
            await conn.fetchval("SELECT 1", timeout=timeout)

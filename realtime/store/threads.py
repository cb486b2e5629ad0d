"""Threads as the widget reads them: top-level comments page by page with their replies, one
comment in context, comment counts of many posts, and threads created on first view."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import NotFound, RateLimited
from ..models import Comment, Post
from .base import (
    COMMENT_SELECT,
    POST_COLUMNS,
    PUBLIC_FILTER,
    StoreBase,
    comment_of,
    post_of,
)

# One advisory-lock namespace for counting thread creations per address (the second key is
# the address's hash), so two nodes cannot both let the tenth and eleventh through.
CREATION_LOCK = 0x726C7463

# The first `$2` public replies of each root in `$1`, in id order (one index scan per root);
# the root's id comes last, after the columns of a comment.
REPLIES_OF_ROOTS = f"""
SELECT r.*, root.id AS root_of FROM unnest($1::bigint[]) AS root(id) CROSS JOIN LATERAL (
    {COMMENT_SELECT} WHERE c.root_id = root.id AND {PUBLIC_FILTER}
    ORDER BY c.root_id, c.id LIMIT $2) r
"""


@dataclass(frozen=True)
class ThreadPage:
    """Comments of one post read in one snapshot: roots with their first replies.

    `more` maps a root whose replies were cut short to (the cursor to continue after, how many
    public replies are left); `next` is the cursor of the next page of roots, or None.
    """

    post: Post
    comments: list[Comment]
    next: int | None = None
    more: dict[int, tuple[int, int]] = field(default_factory=dict)


class ThreadStore(StoreBase):
    """Paged thread reads for the widget, counts, and auto-created posts."""

    async def thread_page(self, slug: str, *, newest: bool, after: int | None, limit: int,
                          replies: int) -> ThreadPage:
        """`limit` public top-level comments after the cursor, oldest or newest first, each
        with its first `replies` public replies, and the post with its seq, in one snapshot."""
        async with self.pool.acquire() as conn, conn.transaction(
                isolation="repeatable_read", readonly=True):
            post = await self._post(conn, slug)
            # Row comparisons and order as in the (post_id, id) partial index of roots, so
            # the planner walks that index from the cursor (see read_thread).
            order = "DESC" if newest else "ASC"
            compare = "<" if newest else ">"
            bound = "" if after is None else f" AND (c.post_id, c.id) {compare} ($1, $3)"
            rows = await conn.fetch(
                f"{COMMENT_SELECT} WHERE c.post_id = $1 AND c.parent_id IS NULL{bound}"
                f" AND {PUBLIC_FILTER} ORDER BY c.post_id {order}, c.id {order} LIMIT $2",
                post.id, limit + 1, *([] if after is None else [after]))
            roots = [comment_of(r) for r in rows[:limit]]
            cursor = roots[-1].id if len(rows) > limit else None
            under, more = await self._replies(conn, [r.id for r in roots], replies)
        comments = [c for root in roots for c in (root, *under.get(root.id, []))]
        return ThreadPage(post, comments, cursor, more)

    async def replies(self, root_id: int, *, after: int | None,
                      limit: int) -> tuple[list[Comment], int | None]:
        """Public replies under a public top-level comment, in id order, after the cursor."""
        async with self.pool.acquire() as conn:
            root = await self._fetch_comment(conn, root_id)
            if root.parent_id is not None or not root.is_public:
                raise NotFound(f"no top-level comment {root_id}")
            rows = await conn.fetch(
                f"{COMMENT_SELECT} WHERE c.root_id = $1 AND c.id > $2 AND {PUBLIC_FILTER}"
                " ORDER BY c.root_id, c.id LIMIT $3", root_id, after or 0, limit + 1)
        found = [comment_of(r) for r in rows[:limit]]
        return found, (found[-1].id if len(rows) > limit else None)

    async def context(self, comment_id: int, *, replies: int) -> ThreadPage:
        """A public comment in context: its top-level comment with the first replies, and every
        comment on the way down to it, with the post and its seq, in one snapshot."""
        async with self.pool.acquire() as conn, conn.transaction(
                isolation="repeatable_read", readonly=True):
            row = await conn.fetchrow(
                "SELECT p.slug, coalesce(c.root_id, c.id) AS root FROM comments c"
                " JOIN posts p ON p.id = c.post_id WHERE c.id = $1", comment_id)
            if row is None:
                raise NotFound(f"no comment {comment_id}")
            post = await self._post(conn, row["slug"])
            chain = [comment_of(r) for r in await conn.fetch(
                "WITH RECURSIVE up AS (SELECT id, parent_id FROM comments WHERE id = $1"
                " UNION ALL SELECT c.id, c.parent_id FROM comments c"
                " JOIN up ON c.id = up.parent_id)"
                f" {COMMENT_SELECT} WHERE c.id IN (SELECT id FROM up) ORDER BY c.id", comment_id)]
            if not chain or chain[-1].id != comment_id or not chain[-1].is_public:
                raise NotFound(f"no comment {comment_id}")
            root = chain[0]
            under, more = await self._replies(conn, [root.id], replies)
        found = {c.id: c for c in [*under.get(root.id, []), *chain[1:]]}
        return ThreadPage(post, [root, *sorted(found.values(), key=lambda c: c.id)], None, more)

    async def comment_counts(self, slugs: list[str]) -> dict[str, int]:
        """The public comment count of each of these posts that exists."""
        rows = await self.pool.fetch(
            "SELECT slug, comment_count FROM posts WHERE slug = ANY($1::text[])", slugs)
        return {r["slug"]: r["comment_count"] for r in rows}

    async def create_post_on_view(self, slug: str, title: str, url: str, *, ip: str | None,
                                  moderation: str, per_hour: int) -> tuple[Post, bool]:
        """The post, created with this title and URL unless it exists; at most `per_hour`
        creations per address per hour (else RateLimited), counted in the database."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(f"SELECT {POST_COLUMNS} FROM posts WHERE slug = $1", slug)
            if row is not None:
                return post_of(row), False
            address = ip or "0.0.0.0"
            await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))",
                               CREATION_LOCK, address)
            recent = await conn.fetchrow(
                "SELECT count(*) AS n, extract(epoch FROM min(created_at) + interval '1 hour'"
                " - now())::float8 AS wait FROM thread_creations"
                " WHERE ip = $1::inet AND created_at > now() - interval '1 hour'", address)
            if recent["n"] >= per_hour:
                raise RateLimited("too many new threads from this address; try again later",
                                  retry_after=max(1, math.ceil(recent["wait"] or 1)))
            row = await conn.fetchrow(
                "INSERT INTO posts (slug, title, url, moderation) VALUES ($1, $2, $3, $4)"
                f" ON CONFLICT (slug) DO NOTHING RETURNING {POST_COLUMNS}",
                slug, title, url, moderation)
            if row is None:  # created by another request since the first read
                return await self._post(conn, slug), False
            await conn.execute("INSERT INTO thread_creations (ip) VALUES ($1::inet)", address)
            return post_of(row), True

    async def prune_thread_creations(self) -> None:
        """Forget creations older than the hour they count for."""
        await self.pool.execute(
            "DELETE FROM thread_creations WHERE created_at < now() - interval '1 hour'")

    async def _post(self, conn: Any, slug: str) -> Post:
        row = await conn.fetchrow(f"SELECT {POST_COLUMNS} FROM posts WHERE slug = $1", slug)
        if row is None:
            raise NotFound(f"no post {slug!r}")
        return post_of(row)

    async def _replies(self, conn: Any, roots: list[int], limit: int
                       ) -> tuple[dict[int, list[Comment]], dict[int, tuple[int, int]]]:
        """The first `limit` public replies of each root, and `more` for the roots cut short."""
        by_root: dict[int, list[Comment]] = {}
        if roots and limit:
            for row in await conn.fetch(REPLIES_OF_ROOTS, roots, limit + 1):
                by_root.setdefault(row["root_of"], []).append(comment_of(tuple(row)[:-1]))
        cut = [root for root in roots if len(by_root.get(root, [])) > limit or not limit]
        more: dict[int, tuple[int, int]] = {}
        if cut:
            totals = await conn.fetch(
                "SELECT c.root_id, count(*) AS n FROM comments c"
                f" WHERE c.root_id = ANY($1::bigint[]) AND {PUBLIC_FILTER} GROUP BY c.root_id",
                cut)
            for total in totals:
                kept = by_root.get(total["root_id"], [])[:limit]
                more[total["root_id"]] = (kept[-1].id if kept else 0, total["n"] - len(kept))
        return {root: found[:limit] for root, found in by_root.items()}, more

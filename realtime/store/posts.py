"""Posts: listing, reading, creating and updating threads."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from ..errors import Conflict, NotFound, ValidationFailed
from ..events import notify_payload
from ..models import Audit, Post
from .base import POST_COLUMNS, StoreBase, page, post_of


class PostStore(StoreBase):
    """The posts table."""

    async def list_posts(self, limit: int, after: int | None) -> tuple[list[Post], int | None]:
        """Posts newest first; the cursor is the id of the last post of the page."""
        rows = await self.pool.fetch(
            f"SELECT {POST_COLUMNS} FROM posts WHERE ($1::bigint IS NULL OR id < $1)"
            " ORDER BY id DESC LIMIT $2", after, limit + 1)
        found, cursor = page(rows, limit, "id")
        return [post_of(r) for r in found], cursor

    async def get_post(self, slug: str) -> Post:
        """One post, or NotFound."""
        row = await self.pool.fetchrow(f"SELECT {POST_COLUMNS} FROM posts WHERE slug = $1", slug)
        if row is None:
            raise NotFound(f"no post {slug!r}")
        return post_of(row)

    async def put_post(self, slug: str, fields: dict[str, Any], *, default_moderation: str,
                       audit: Audit | None = None) -> tuple[Post, bool]:
        """Create the post, or update the fields given; a visible change bumps its seq.

        `audit` is written in the same transaction when the post is created or changed.
        """
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
                await self._audit(conn, audit, post_id=row["id"])
                return post_of(row), True
            post = post_of(row)
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
                             [notify_payload(slug, updated.seq, "post.updated", data, None)])
            await self._audit(conn, audit, post_id=post.id)
            return updated, False

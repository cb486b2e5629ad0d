"""Importing whole threads from another system: one transaction per thread, one reset event.

A thread's new comments are written together under the post's lock, remembered by their
source ids (`imported_comments`), and announced to open readers by a single `post.reset`
event instead of one event per comment, so a reader reloads once and every `seq` stays
gap-free.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..models import REMOVED, VISIBLE, ImportedComment, ImportedThread, Post
from .base import POST_COLUMNS, StoreBase, post_of

# The event that tells open readers to reload the thread (the hub turns it into `reset`).
# Rows per INSERT: big enough to make a large thread cheap, small enough to bound memory.
BATCH = 2000
INSERT_COMMENTS = """
INSERT INTO comments (id, post_id, parent_id, depth, kind, status, author_name, author_email,
                      author_url, avatar, ip, body, html, created_at, public_replies)
SELECT u.id, $1, u.parent_id, u.depth, u.kind, u.status, u.name, u.email, u.url, u.avatar,
       u.ip::inet, u.body, u.html, u.created_at, u.replies
  FROM unnest($2::bigint[], $3::bigint[], $4::int[], $5::text[], $6::text[], $7::text[],
              $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
              $14::timestamptz[], $15::int[])
       AS u(id, parent_id, depth, kind, status, name, email, url, avatar, ip, body, html,
            created_at, replies)
"""


class ImportStore(StoreBase):
    """The imported_comments table, and threads written whole."""

    async def import_thread(self, source: str, slug: str, title: str, url: str | None,
                            moderation: str, comments: list[ImportedComment],
                            avatars: list[str]) -> ImportedThread:
        """Add a thread's comments that `source` has not given us before, in one transaction.

        The post is the one with this URL, else this slug, else a new one. `comments` come
        parents first; a comment whose parent is neither earlier in the list nor imported
        before on this post is attached to the thread's root and counted as an orphan.
        Ids are handed out in list order, so a reply always gets a higher id than its parent.
        `avatars` are the comments' avatar hashes, in the same order.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            post, created = await self._import_post(conn, slug, title, url, moderation)
            wanted = {c.source_id for c in comments}
            wanted.update(c.parent_source_id for c in comments if c.parent_source_id)
            known = {r["source_id"]: (r["comment_id"], r["post_id"], r["depth"])
                     for r in await conn.fetch(
                         "SELECT i.source_id, i.comment_id, c.post_id, c.depth"
                         " FROM imported_comments i JOIN comments c ON c.id = i.comment_id"
                         " WHERE i.source = $1 AND i.source_id = ANY($2::text[])",
                         source, list(wanted))}
            avatar_of = {c.source_id: a for c, a in zip(comments, avatars, strict=True)}
            fresh: list[ImportedComment] = []
            seen: set[str] = set()
            for comment in comments:
                # One comment listed twice in a file counts once.
                if comment.source_id not in known and comment.source_id not in seen:
                    seen.add(comment.source_id)
                    fresh.append(comment)
            ids = sorted(await conn.fetchval(
                "SELECT array_agg(nextval('comments_id_seq')) FROM generate_series(1, $1)",
                len(fresh)) or [])
            placed: dict[str, tuple[int, int]] = {}
            rows: list[tuple[Any, ...]] = []
            orphans = 0
            for new_id, comment in zip(ids, fresh, strict=True):
                parent_id, depth = None, 0
                parent = comment.parent_source_id
                if parent in placed:
                    parent_id, depth = placed[parent][0], placed[parent][1] + 1
                elif parent in known and known[parent][1] == post.id:
                    parent_id, depth = known[parent][0], known[parent][2] + 1
                elif parent:
                    orphans += 1
                placed[comment.source_id] = (new_id, depth)
                rows.append((new_id, parent_id, depth, comment))
            replies = _public_replies(rows)
            for start in range(0, len(rows), BATCH):
                await self._insert_rows(conn, post.id, source, rows[start:start + BATCH],
                                        replies, avatar_of)
            added = Counter(c.status for c in fresh)
            seq = None
            if fresh:
                # New comments were stored with their counts; this fixes their parents from
                # earlier imports, which may now keep a tombstone.
                await self._count_public_replies(conn, post.id)
                seq = await self._emit_reset(conn, post, "imported", count_delta=added[VISIBLE])
            already = sum(1 for c in comments if c.source_id in known)
            return ImportedThread(post, created, dict(added), already, orphans, seq)

    async def _import_post(self, conn: Any, slug: str, title: str, url: str | None,
                           moderation: str) -> tuple[Post, bool]:
        """The post to import into, locked: matched by URL, then by slug, else created."""
        for _ in range(2):
            row = await conn.fetchrow(
                f"SELECT {POST_COLUMNS} FROM posts WHERE slug = $1 OR ($2::text IS NOT NULL"
                " AND url = $2) ORDER BY url IS NOT DISTINCT FROM $2 DESC, id LIMIT 1"
                " FOR UPDATE", slug, url)
            if row is not None:
                return post_of(row), False
            row = await conn.fetchrow(
                "INSERT INTO posts (slug, title, url, moderation) VALUES ($1, $2, $3, $4)"
                f" ON CONFLICT (slug) DO NOTHING RETURNING {POST_COLUMNS}",
                slug, title, url, moderation)
            if row is not None:
                return post_of(row), True
        raise RuntimeError(f"post {slug!r} could be neither found nor created")

    async def _insert_rows(self, conn: Any, post_id: int, source: str,
                           rows: list[tuple[int, int | None, int, ImportedComment]],
                           replies: Counter[int], avatar_of: dict[str, str]) -> None:
        comments = [r[3] for r in rows]
        await conn.execute(
            INSERT_COMMENTS, post_id, [r[0] for r in rows], [r[1] for r in rows],
            [r[2] for r in rows], [c.kind for c in comments], [c.status for c in comments],
            [c.author_name for c in comments], [c.author_email for c in comments],
            [c.author_url for c in comments], [avatar_of[c.source_id] for c in comments],
            [c.ip for c in comments], [c.body for c in comments], [c.html for c in comments],
            [c.created_at for c in comments], [replies[r[0]] for r in rows])
        await conn.execute(
            "INSERT INTO imported_comments (source, source_id, comment_id)"
            " SELECT $1, s, i FROM unnest($2::text[], $3::bigint[]) AS u(s, i)",
            source, [c.source_id for c in comments], [r[0] for r in rows])

    async def _count_public_replies(self, conn: Any, post_id: int) -> None:
        """Recount each comment's public replies on the post, children before parents.

        A removed comment stays public (as a tombstone) while it has public replies, so the
        counts are taken bottom-up; a reply's id is always above its parent's.
        """
        rows = await conn.fetch(
            "SELECT id, parent_id, status, public_replies FROM comments WHERE post_id = $1"
            " ORDER BY id DESC", post_id)
        counts: Counter[int] = Counter()
        changed: list[tuple[int, int, bool]] = []
        for row in rows:
            replies = counts[row["id"]]
            public = row["status"] == VISIBLE or (row["status"] in REMOVED and replies > 0)
            if public and row["parent_id"] is not None:
                counts[row["parent_id"]] += 1
            if replies != row["public_replies"]:
                was_public = row["status"] in REMOVED and row["public_replies"] > 0
                changed.append((row["id"], replies, public != was_public
                                and row["status"] != VISIBLE))
        if changed:
            await conn.execute(
                "UPDATE comments c SET public_replies = u.n, version = c.version + u.flip::int"
                " FROM unnest($1::bigint[], $2::int[], $3::bool[]) AS u(id, n, flip)"
                " WHERE c.id = u.id", [c[0] for c in changed], [c[1] for c in changed],
                [c[2] for c in changed])


def _public_replies(rows: list[tuple[int, int | None, int, ImportedComment]]) -> Counter[int]:
    """Each new comment's public replies among the new ones, children before parents."""
    counts: Counter[int] = Counter()
    for new_id, parent_id, _, comment in reversed(rows):
        public = comment.status == VISIBLE or (comment.status in REMOVED and counts[new_id] > 0)
        if public and parent_id is not None:
            counts[parent_id] += 1
    return counts

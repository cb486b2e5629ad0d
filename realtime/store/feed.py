"""What the moderator console reads: comments of every post by status and post, in either
order; what surrounds each one (its post, its parent, its author's history and bans, open
reports); and how many comments each status holds."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ..models import STATUSES, Comment, iso
from ..moderation import folded
from .base import BAN_COLUMNS, COMMENT_SELECT, StoreBase, ban_of, comment_of, page

# Each of models.FILTERS as SQL over `comments c`; a fixed text per filter (not an
# `$1 IS NULL OR ...` catch-all) so each gets a plan that uses its index.
FILTERS: dict[str, str | None] = {
    **{status: f"c.status = '{status}'" for status in STATUSES},
    "reported": "c.report_count > 0 AND c.status = 'approved'",
    "all": None,
}
EXCERPT = 200

COUNTS = """
SELECT (SELECT count(*) FROM comments c WHERE {post} c.status = 'pending') AS pending,
       (SELECT count(*) FROM comments c WHERE {post} c.report_count > 0
                                          AND c.status = 'approved') AS reported,
       (SELECT count(*) FROM comments c WHERE {post} c.status = 'spam') AS spam,
       (SELECT count(*) FROM comments c WHERE {post} c.status = 'rejected') AS rejected,
       (SELECT count(*) FROM comments c WHERE {post} c.status = 'deleted') AS deleted,
       (SELECT coalesce(sum(comment_count), 0) FROM posts p {post_of_posts}) AS approved
"""

BANS_OF = f"""
SELECT x.id AS comment_id, {', '.join('b.' + c.strip() for c in BAN_COLUMNS.split(','))}
  FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS x(id, email, name, ip)
  JOIN bans b ON (b.expires_at IS NULL OR b.expires_at > now())
             AND ((b.kind = 'email' AND b.match_value = x.email)
               OR (b.kind = 'name' AND b.match_value = x.name)
               OR (b.kind = 'ip' AND x.ip IS NOT NULL AND b.network >>= x.ip::inet))
 ORDER BY b.id DESC
"""


def _author_key(comment: Comment) -> tuple[str, str]:
    """Whose history a comment counts towards: its e-mail, else its name."""
    if comment.author_email:
        return "email", comment.author_email
    return "name", comment.author_name


class FeedStore(StoreBase):
    """Reads over comments, reports, bans and posts for moderators."""

    async def moderator_comments(self, status: str, post_id: int | None, *,
                                 after: int | None = None, before: int | None = None,
                                 ids: list[int] | None = None, limit: int,
                                 newest_first: bool) -> tuple[list[Comment], int | None]:
        """A page of comments matching a filter of `FILTERS` (and a post, and ids), oldest
        or newest first; the cursor is the id to continue after (or before)."""
        where: list[str] = []
        args: list[Any] = []
        condition = FILTERS[status]
        if condition is not None:
            where.append(condition)
        for clause, value in (("c.post_id = ${}", post_id), ("c.id > ${}", after),
                              ("c.id < ${}", before), ("c.id = ANY(${}::bigint[])", ids)):
            if value is not None:
                args.append(value)
                where.append(clause.format(len(args)))
        args.append(limit + 1)
        order = "DESC" if newest_first else "ASC"
        rows = await self.pool.fetch(
            f"{COMMENT_SELECT} {'WHERE ' + ' AND '.join(where) if where else ''}"
            f" ORDER BY c.id {order} LIMIT ${len(args)}", *args)
        found, cursor = page(rows, limit, "id")
        return [comment_of(r) for r in found], cursor

    async def status_counts(self, post_id: int | None) -> dict[str, int]:
        """How many comments each filter holds; approved comes from the posts' counters."""
        if post_id is None:
            row = await self.pool.fetchrow(COUNTS.format(post="", post_of_posts=""))
        else:
            row = await self.pool.fetchrow(COUNTS.format(
                post="c.post_id = $1 AND", post_of_posts="WHERE p.id = $1"), post_id)
        counts = {name: int(value) for name, value in dict(row).items()}
        counts["all"] = sum(counts[status] for status in STATUSES)
        return counts

    async def contexts(self, comments: list[Comment]) -> dict[int, dict[str, Any]]:
        """What a moderator sees around each comment, by comment id: its post, its parent,
        its author's history (comments by status, active bans) and its open reports."""
        if not comments:
            return {}
        ids = [c.id for c in comments]
        keys = {c.id: _author_key(c) for c in comments}
        emails = sorted({v for k, v in keys.values() if k == "email"})
        names = sorted({v for k, v in keys.values() if k == "name"})
        async with self.pool.acquire() as conn:
            posts = {r["id"]: {"slug": r["slug"], "title": r["title"], "url": r["url"]}
                     for r in await conn.fetch("SELECT id, slug, title, url FROM posts"
                                               " WHERE id = ANY($1::bigint[])",
                                               list({c.post_id for c in comments}))}
            parents = {r["id"]: {"id": r["id"], "author": {"name": r["author_name"]},
                                 "status": r["status"], "excerpt": r["excerpt"]}
                       for r in await conn.fetch(
                           "SELECT id, author_name, status, left(body, $2) AS excerpt"
                           " FROM comments WHERE id = ANY($1::bigint[])",
                           [c.parent_id for c in comments if c.parent_id is not None],
                           EXCERPT)}
            history: dict[tuple[str, str], dict[str, int]] = defaultdict(
                lambda: dict.fromkeys(STATUSES, 0))
            for kind, sql, values in (
                    ("email", "SELECT author_email AS key, status, count(*) AS n FROM comments"
                              " WHERE author_email = ANY($1::text[]) GROUP BY 1, 2", emails),
                    ("name", "SELECT author_name AS key, status, count(*) AS n FROM comments"
                             " WHERE author_email IS NULL AND author_name = ANY($1::text[])"
                             " GROUP BY 1, 2", names)):
                if values:
                    for r in await conn.fetch(sql, values):
                        history[(kind, r["key"])][r["status"]] = r["n"]
            bans: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for r in await conn.fetch(
                    BANS_OF, ids, [folded(c.author_email or "") for c in comments],
                    [folded(c.author_name).strip() for c in comments], [c.ip for c in comments]):
                bans[r["comment_id"]].append(ban_of({k: v for k, v in dict(r).items()
                                                     if k != "comment_id"}))
            reports: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for r in await conn.fetch(
                    "SELECT comment_id, reason, created_at FROM reports"
                    " WHERE comment_id = ANY($1::bigint[]) AND dismissed_at IS NULL"
                    " ORDER BY created_at", ids):
                reports[r["comment_id"]].append({"reason": r["reason"],
                                                 "created_at": iso(r["created_at"])})
        return {c.id: {"post": posts.get(c.post_id),
                       "parent": parents.get(c.parent_id) if c.parent_id else None,
                       "author": {"by": keys[c.id][0], **history[keys[c.id]],
                                  "bans": bans[c.id]},
                       "reports": reports[c.id]}
                for c in comments}

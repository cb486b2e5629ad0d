"""A whole site out as rows and back in: `realtime export` and `realtime import jsonl`.

Rows travel as PostgreSQL's own JSON of each row (`to_jsonb`), every column included, so an
export keeps everything the database holds about posts, comments, bans and settings, and
columns added by later migrations come along without changes here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson

from ..errors import Conflict
from .base import StoreBase

# What an export holds, in the order it is written and restored (parents before children).
TABLES = ("settings", "bans", "posts", "comments", "imported_comments")
ORDER = {"settings": "name", "bans": "id", "posts": "id", "comments": "post_id, id",
         "imported_comments": "comment_id, source, source_id"}
SELECTED = {"posts": "slug = $1",
            "comments": "post_id = (SELECT id FROM posts WHERE slug = $1)",
            "imported_comments": "comment_id IN (SELECT c.id FROM comments c"
                                 " JOIN posts p ON p.id = c.post_id WHERE p.slug = $1)"}
SERIAL = ("posts", "comments", "bans")
BATCH = 1000


class TransferStore(StoreBase):
    """Every row of the exported tables, out and in."""

    async def schema_version(self) -> int:
        """The newest migration applied to this database."""
        return int(await self.pool.fetchval("SELECT max(version) FROM schema_migrations"))

    async def export_rows(self, slug: str | None) -> AsyncIterator[tuple[str, str]]:
        """(table, row as JSON) for every exported row, from one snapshot; with `slug`, only
        that post, its comments and where they came from."""
        async with self.pool.acquire() as conn, conn.transaction(
                isolation="repeatable_read", readonly=True):
            for table in TABLES:
                if slug is not None and table not in SELECTED:
                    continue
                where = f" WHERE {SELECTED[table]}" if slug is not None else ""
                query = f"SELECT to_jsonb(t)::text FROM {table} t{where} ORDER BY {ORDER[table]}"
                async for row in conn.cursor(query, *([slug] if slug is not None else [])):
                    yield table, row[0]

    async def restore(self, rows: Iterable[tuple[str, dict[str, Any]]]) -> Counter[str]:
        """Insert exported rows, tables in TABLES order, into a database without posts,
        comments or bans, all in one transaction; returns the rows restored per table."""
        counts: Counter[str] = Counter()
        async with self.pool.acquire() as conn, conn.transaction():
            if await conn.fetchval("SELECT EXISTS (SELECT FROM posts) OR EXISTS"
                                   " (SELECT FROM comments) OR EXISTS (SELECT FROM bans)"):
                raise Conflict("the database already holds posts, comments or bans: restore"
                               " into a new, empty database")
            columns = await self._columns(conn)
            batch: list[dict[str, Any]] = []
            current = ""
            for table, row in rows:
                if table != current or len(batch) >= BATCH:
                    await self._restore_rows(conn, current, batch, columns)
                    counts[current] += len(batch)
                    batch, current = [], table
                batch.append(row)
            await self._restore_rows(conn, current, batch, columns)
            counts[current] += len(batch)
            for table in SERIAL:
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id))"
                    f" FROM {table} HAVING max(id) IS NOT NULL")
        counts.pop("", None)
        return counts

    @staticmethod
    async def _columns(conn: Any) -> dict[str, list[str]]:
        rows = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ANY($1::text[])"
            # Generated columns (bans.network) are computed again, never written.
            " AND is_generated = 'NEVER' ORDER BY ordinal_position", list(TABLES))
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row["table_name"], []).append(row["column_name"])
        return found

    @staticmethod
    async def _restore_rows(conn: Any, table: str, rows: list[dict[str, Any]],
                      columns: dict[str, list[str]]) -> None:
        if not rows:
            return
        # The file's columns that this database has: newer columns it lacks are dropped,
        # older files leave newer columns to their defaults.
        present = set().union(*rows)
        names = ", ".join(f'"{c}"' for c in columns[table] if c in present)
        conflict = " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value" \
            if table == "settings" else ""
        await conn.execute(
            f"INSERT INTO {table} ({names}) SELECT {names}"
            f" FROM jsonb_populate_recordset(NULL::{table}, $1::jsonb){conflict}",
            orjson.dumps(rows).decode())

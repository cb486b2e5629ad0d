"""Migrations: applied once, idempotent, and safe when several processes start together."""

from __future__ import annotations

import asyncio

import asyncpg

from realtime import db
from realtime.models import Comment
from realtime.store import COMMENT_COLUMNS

from conftest import with_database


async def _fresh(database_url: str, name: str) -> str:
    conn = await asyncpg.connect(database_url)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return with_database(database_url, name)


async def _drop(database_url: str, name: str) -> None:
    conn = await asyncpg.connect(database_url)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


async def test_migrations_apply_once(database_url: str) -> None:
    """A second run applies nothing and the schema is complete."""
    url = await _fresh(database_url, "rt_migrate_once")
    try:
        conn = await asyncpg.connect(url)
        first = await db.migrate(conn)
        second = await db.migrate(conn)
        tables = {r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        await conn.close()
        assert first == [name for _, name, _ in db.migration_files()] and second == []
        assert {"posts", "comments", "events", "moderators", "sessions", "bans", "settings",
                "audit_log", "schema_migrations"} <= tables
    finally:
        await _drop(database_url, "rt_migrate_once")


async def test_concurrent_migrations_are_safe(database_url: str) -> None:
    """Eight connections migrating at once apply each migration exactly once, without errors."""
    url = await _fresh(database_url, "rt_migrate_race")
    try:
        conns = [await asyncpg.connect(url) for _ in range(8)]
        results = await asyncio.gather(*[db.migrate(c) for c in conns])
        rows = await conns[0].fetch("SELECT version FROM schema_migrations")
        for conn in conns:
            await conn.close()
        assert sum(len(r) for r in results) == len(db.migration_files())
        assert len(rows) == len(db.migration_files())
    finally:
        await _drop(database_url, "rt_migrate_race")


async def test_comment_columns_are_the_comment_fields_in_order(clean_db: str) -> None:
    """Rows become comments by position (`Comment._make`), so the SELECT list must match."""
    conn = await asyncpg.connect(clean_db)
    try:
        statement = await conn.prepare(
            f"SELECT {COMMENT_COLUMNS} FROM comments c JOIN posts p ON p.id = c.post_id")
        assert [a.name for a in statement.get_attributes()] == list(Comment._fields)
    finally:
        await conn.close()

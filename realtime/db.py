"""The asyncpg pool and the ordered SQL migrations in `realtime/migrations/`.

Migrations run under a PostgreSQL advisory lock, so nodes starting together apply each file
exactly once: the second waits for the first, then finds nothing left to do.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x7265616C74696D65  # "realtime" as a 64-bit key


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration, in order."""
    found = []
    for entry in resources.files("realtime.migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(conn: Any) -> list[str]:
    """Apply the migrations this database lacks; return the names applied."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())")
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in migration_files():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
            log.info("applied migration %s", name)
            applied.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied


async def connect(url: str) -> Any:
    """One connection outside any pool (migrations, the LISTEN connection)."""
    return await asyncpg.connect(url)


async def create_pool(url: str, size: int) -> Any:
    """The pool every request borrows from."""
    return await asyncpg.create_pool(url, min_size=min(2, size), max_size=size, reset=_release)


async def open_pool(url: str, size: int) -> Any:
    """Bring the database up to date, then open the pool: how every process starts."""
    conn = await connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return await create_pool(url, size)


async def _release(conn: Any) -> None:
    """Nothing to undo when a connection goes back to the pool.

    asyncpg still rolls back a transaction left open before calling this; its default reset
    would add `UNLISTEN *`, `RESET ALL` and more: one round trip per request, for state that
    pool connections here never take (LISTEN runs on its own connection; nothing SETs or
    takes session locks).
    """

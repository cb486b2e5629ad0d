"""The asyncpg pool and the ordered SQL migrations in `realtime/migrations/`.

Migrations run under a PostgreSQL advisory lock, so nodes starting together apply each file
exactly once: the second waits for the first, then finds nothing left to do.

Every database wait has a deadline (`REALTIME_DB_TIMEOUT_S`): opening a connection, getting
one from the pool, and each statement. A frozen or unreachable database then makes a request
fail with 503 in seconds instead of hanging it; `DOWN` lists every error that means the
database, not the request, is at fault.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import asyncpg
from asyncpg import exceptions

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x7265616C74696D65  # "realtime" as a 64-bit key
# Errors that say the database cannot serve right now, whatever was asked: the connection
# broke (class 08, or asyncpg's protocol state after a terminated backend), the server is
# shutting down, starting, out of connections or of resources (57, 53, 58), a failover made
# it read-only, a transaction lost a deadlock or serialization race (40, safe to retry), or
# a wait ran past its deadline.
DOWN: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, asyncpg.InterfaceError, exceptions.InternalClientError,
    asyncpg.PostgresConnectionError, exceptions.OperatorInterventionError,
    exceptions.InsufficientResourcesError, exceptions.PostgresSystemError,
    exceptions.ReadOnlySQLTransactionError, exceptions.TransactionRollbackError)


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


class Pool:
    """asyncpg's pool, with a deadline on getting a connection from it.

    asyncpg bounds statements (`command_timeout`) but waits for a free connection for as
    long as it takes, and a statement that timed out holds its connection until the
    database acknowledges the cancel (or that wait times out too): with a frozen database
    every request would queue behind them.
    """

    def __init__(self, pool: Any, timeout: float) -> None:
        self.pool = pool
        self.timeout = timeout

    @asynccontextmanager
    async def acquire(self, timeout: float | None = None) -> AsyncIterator[Any]:
        """A connection for a `with` block; TimeoutError when none comes in time."""
        async with self.pool.acquire(timeout=timeout or self.timeout) as conn:
            yield conn

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> Any:
        """Rows of one statement."""
        async with self.acquire() as conn:
            return await conn.fetch(query, *args, timeout=timeout)

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> Any:
        """The first row of one statement, or None."""
        async with self.acquire() as conn:
            return await conn.fetchrow(query, *args, timeout=timeout)

    async def fetchval(self, query: str, *args: Any, timeout: float | None = None) -> Any:
        """The first value of one statement, or None."""
        async with self.acquire() as conn:
            return await conn.fetchval(query, *args, timeout=timeout)

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> Any:
        """Run one statement; its status text."""
        async with self.acquire() as conn:
            return await conn.execute(query, *args, timeout=timeout)

    async def close(self) -> None:
        """Close every connection."""
        await self.pool.close()


async def create_pool(url: str, size: int, timeout: float) -> Pool:
    """The pool every request borrows from; `timeout` bounds connecting, waiting for a
    connection and each statement."""
    pool = await asyncpg.create_pool(url, min_size=min(2, size), max_size=size, reset=_release,
                                     timeout=timeout, command_timeout=timeout)
    return Pool(pool, timeout)


async def open_pool(url: str, size: int, timeout: float, *, direct_url: str = "") -> Any:
    """Bring the database up to date (through `direct_url` when given: the advisory lock
    needs a session of its own), then open the pool: how every process starts."""
    conn = await connect(direct_url or url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return await create_pool(url, size, timeout)


async def _release(conn: Any) -> None:
    """Nothing to undo when a connection goes back to the pool.

    asyncpg still rolls back a transaction left open before calling this; its default reset
    would add `UNLISTEN *`, `RESET ALL` and more: one round trip per request, for state that
    pool connections here never take (LISTEN runs on its own connection; nothing SETs or
    takes session locks).
    """

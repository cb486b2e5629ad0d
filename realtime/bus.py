"""LISTEN/NOTIFY on one dedicated connection per node, kept alive and reconnected.

The connection lives outside the pool (the pool's reset runs `UNLISTEN *`). Its notification
callbacks are synchronous, so notifications reach the hub in commit order (asyncpg runs async
callbacks as separate tasks, which could finish out of order). A periodic `SELECT 1` notices a
dead TCP connection; after any loss the bus reconnects with backoff and tells the hub to
repair every channel from `events`, because notifications are only wake-ups: `events` is the
truth.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

import asyncpg
import orjson

from .events import NOTIFY_CHANNEL, NOTIFY_LIMIT

log = logging.getLogger(__name__)

PRESENCE_CHANNEL = "realtime_presence"


class Bus:
    """The node's ear on the database: calls `on_event` for every NOTIFY, in order."""

    def __init__(self, url: str, *, on_event: Callable[[str], None],
                 on_presence: Callable[[str], None], on_reconnect: Callable[[], None],
                 keepalive: float = 5.0, max_backoff: float = 5.0) -> None:
        self.url = url
        self.on_event = on_event
        self.on_presence = on_presence
        self.on_reconnect = on_reconnect
        self.keepalive = keepalive
        self.max_backoff = max_backoff
        self.up = asyncio.Event()
        self.conn: Any = None
        self.backend_pid: int | None = None
        self._lost = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.reconnects = 0

    async def start(self, timeout: float = 30.0) -> None:
        """Connect and listen; returns once listening (the first attempt must succeed)."""
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.up.wait(), timeout)

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        self._stopping = True
        self._lost.set()
        if self._task is not None:
            await self._task

    async def announce(self, node: str, counts: dict[str, int]) -> None:
        """Send this node's presence counts, split to respect the NOTIFY size limit."""
        if not self.up.is_set() or not counts:
            return
        chunk: dict[str, int] = {}
        chunks = [chunk]
        size = 0
        for channel, count in counts.items():
            if size + len(channel) + 24 > NOTIFY_LIMIT - 100:
                chunk = {}
                chunks.append(chunk)
                size = 0
            chunk[channel] = count
            size += len(channel) + 24
        try:
            async with self._lock:
                for part in chunks:
                    payload = orjson.dumps({"node": node, "counts": part}).decode()
                    await self.conn.execute("SELECT pg_notify($1, $2)", PRESENCE_CHANNEL, payload)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, AttributeError):
            log.debug("presence not announced: the listener is down")

    def _notified(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        if channel == NOTIFY_CHANNEL:
            self.on_event(payload)
        else:
            self.on_presence(payload)

    def _terminated(self, conn: Any) -> None:
        self._lost.set()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self.url)
        await conn.add_listener(NOTIFY_CHANNEL, self._notified)
        await conn.add_listener(PRESENCE_CHANNEL, self._notified)
        conn.add_termination_listener(self._terminated)
        self.backend_pid = conn.get_server_pid()
        self.conn = conn

    async def _run(self) -> None:
        backoff = 0.05
        first = True
        while not self._stopping:
            try:
                self._lost.clear()
                await self._connect()
                self.up.set()
                if not first:
                    self.reconnects += 1
                    log.info("listener reconnected; repairing channels from events")
                    self.on_reconnect()
                first = False
                backoff = 0.05
                await self._watch()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("database listener lost: %s", type(exc).__name__)
            finally:
                self.up.clear()
                await self._close()
            if not self._stopping:
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, self.max_backoff)

    async def _watch(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._lost.wait(), self.keepalive)
            except TimeoutError:
                async with self._lock:
                    await self.conn.fetchval("SELECT 1", timeout=self.keepalive)
                continue
            return

    async def _close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            if self._stopping:
                await asyncio.wait_for(conn.close(), 2)
            else:
                conn.terminate()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            conn.terminate()

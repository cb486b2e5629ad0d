"""LISTEN/NOTIFY: one dedicated listening connection per node, probed, replaced when it hangs.

The listening connection lives outside the pool (the pool's reset would run `UNLISTEN *`) and
does nothing but listen: what this node says (presence counts) goes out through the pool, so
nothing queues in front of the listener's probe. Its notification callbacks are synchronous,
so notifications reach the hub in commit order (asyncpg runs async callbacks as separate
tasks, which could finish out of order).

Every `probe_every` seconds a `SELECT 1` must come back within `probe_timeout`: a dead TCP
connection, a killed backend and a hung one (a stopped process, a stuck network) all end in
a missed deadline or an error. Then the bus is down (`up` cleared, so /readyz answers 503),
connects anew with backoff, and tells the hub to catch every channel up from `events`:
notifications are only wake-ups, `events` is the truth.

The listener is named `realtime-listener:<node id>` (its `application_name`), so the other
nodes can tell from `pg_stat_activity` that this node is alive (`live_nodes`).
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
SESSIONS_CHANNEL = "realtime_sessions"
LISTENER_NAME = "realtime-listener:"
FAULTS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class Bus:
    """The node's ear on the database: calls `on_event` for every NOTIFY, in order."""

    def __init__(self, url: str, pool: Any, *, node_id: str, on_event: Callable[[str], None],
                 on_presence: Callable[[str], None], on_sessions: Callable[[], None],
                 on_reconnect: Callable[[], None], probe_every: float = 5.0,
                 probe_timeout: float = 5.0, max_backoff: float = 5.0) -> None:
        self.url = url
        self.pool = pool
        self.node_id = node_id
        self.handlers: dict[str, Callable[[str], None]] = {
            NOTIFY_CHANNEL: on_event, PRESENCE_CHANNEL: on_presence,
            SESSIONS_CHANNEL: lambda payload: on_sessions()}
        self.on_reconnect = on_reconnect
        self.probe_every = probe_every
        self.probe_timeout = probe_timeout
        self.max_backoff = max_backoff
        self.up = asyncio.Event()
        self.conn: Any = None
        self.backend_pid: int | None = None
        self._lost = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
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

    async def announce(self, counts: dict[str, int], timeout: float = 2.0) -> None:
        """Send this node's presence counts through the pool, split to fit NOTIFY's limit."""
        if not counts:
            return
        payloads: list[str] = []
        part: dict[str, int] = {}
        size = 0
        for key, count in counts.items():
            if size + len(key) + 24 > NOTIFY_LIMIT - 100:
                payloads.append(self._presence_payload(part))
                part, size = {}, 0
            part[key] = count
            size += len(key) + 24
        payloads.append(self._presence_payload(part))
        try:
            await asyncio.wait_for(self.pool.execute(
                "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", PRESENCE_CHANNEL,
                payloads), timeout)
        except FAULTS:
            log.debug("presence not announced: the database did not answer")

    def _presence_payload(self, counts: dict[str, int]) -> str:
        return orjson.dumps({"node": self.node_id, "counts": counts}).decode()

    async def live_nodes(self, timeout: float = 2.0) -> set[str] | None:
        """The nodes whose listeners are connected to this database; None when unknown."""
        try:
            rows = await asyncio.wait_for(self.pool.fetch(
                "SELECT substr(application_name, $1) AS node FROM pg_stat_activity"
                " WHERE datname = current_database() AND starts_with(application_name, $2)",
                len(LISTENER_NAME) + 1, LISTENER_NAME), timeout)
        except FAULTS:
            return None
        return {r["node"] for r in rows}

    def _notified(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self.handlers[channel](payload)

    def _terminated(self, conn: Any) -> None:
        self._lost.set()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(
            self.url, timeout=self.probe_timeout,
            server_settings={"application_name": LISTENER_NAME + self.node_id})
        self.conn = conn
        for channel in self.handlers:
            await asyncio.wait_for(conn.add_listener(channel, self._notified),
                                   self.probe_timeout)
        conn.add_termination_listener(self._terminated)
        self.backend_pid = conn.get_server_pid()

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
                    log.info("listener reconnected; catching channels up from events")
                    self.on_reconnect()
                first = False
                backoff = 0.05
                await self._watch()
            except FAULTS as exc:
                log.warning("database listener lost: %s", type(exc).__name__)
            finally:
                self.up.clear()
                await self._close()
            if not self._stopping:
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, self.max_backoff)

    async def _watch(self) -> None:
        """Probe the listener until it is lost; a probe past its deadline counts as lost."""
        while not self._stopping:
            try:
                await asyncio.wait_for(self._lost.wait(), self.probe_every)
            except TimeoutError:
                try:
                    await asyncio.wait_for(self.conn.fetchval("SELECT 1"), self.probe_timeout)
                except TimeoutError:
                    log.warning("the database listener missed its probe deadline (%.1f s);"
                                " replacing it", self.probe_timeout)
                    raise
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
        except FAULTS:
            conn.terminate()

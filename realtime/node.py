"""This node's live side: the hub, the bus, and the periodic work that keeps them in step.

- presence, every second: push changed "N watching" totals to subscribers, announce this
  node's changed counts, and forget nodes whose listeners are gone (a killed node stops
  counting within a second or two, not after the presence TTL);
- a heartbeat every `HEARTBEAT_S`: every count again, so a node that missed a change, or
  joined late, converges;
- sessions, every `SESSION_CHECK_S` and at once when a `sessions` row is deleted anywhere
  (the database trigger of migration 006 announces it): moderator sockets whose session
  ended are closed with 1008;
- pruning, hourly: events past their retention.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .bus import Bus
from .config import Settings
from .hub import Hub
from .protocol import Close
from .service import Service

log = logging.getLogger(__name__)

PRESENCE_S = 1.0
HEARTBEAT_S = 5.0
SESSION_CHECK_S = 10.0
PRUNE_S = 3600.0


async def _every(seconds: float, work: Callable[[], Awaitable[None]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await work()
        except Exception:
            log.exception("periodic task failed")


class Node:
    """The hub and the bus of one server process, and their periodic work."""

    def __init__(self, settings: Settings, service: Service, pool: Any, node_id: str) -> None:
        self.service = service
        self.hub = Hub(node_id=node_id, queue_size=settings.queue_size,
                       replay_limit=settings.replay_limit,
                       ip_limit=settings.max_connections_per_ip,
                       fetch_page=service.event_page,
                       fetch_moderation=service.moderation_changes)
        self.bus = Bus(settings.direct_url, pool, node_id=node_id, on_event=self.hub.notify,
                       on_presence=self.hub.presence.heard, on_sessions=self._sessions_changed,
                       on_reconnect=self._reconnected)
        self.loops: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Listen, then start the periodic work."""
        await self.bus.start()
        self.loops = [asyncio.create_task(_every(PRESENCE_S, self.presence)),
                      asyncio.create_task(_every(HEARTBEAT_S, self.heartbeat)),
                      asyncio.create_task(_every(SESSION_CHECK_S, self.check_sessions)),
                      asyncio.create_task(_every(PRUNE_S, self.service.prune))]

    async def stop(self) -> None:
        """Say goodbye to every client (1001), stop the periodic work and the listener."""
        for task in self.loops:
            task.cancel()
        await asyncio.gather(*self.loops, return_exceptions=True)
        await self.hub.close_all(Close.GOING_AWAY, "server going away")
        await self.bus.stop()

    async def presence(self) -> None:
        """Push changed totals, announce changed counts, forget dead nodes."""
        self.hub.push_presence()
        changes = self.hub.presence_changes()
        if changes:
            await self.bus.announce(changes)
        if self.hub.presence.nodes():
            alive = await self.bus.live_nodes()
            if alive is not None:
                self.hub.presence.keep_nodes(alive)

    async def heartbeat(self) -> None:
        """Announce every local count again."""
        await self.bus.announce(self.hub.local_counts())

    async def check_sessions(self) -> None:
        """Close the moderator connections whose sessions ended."""
        tokens = {conn.session for conn in self.hub.moderators if conn.session is not None}
        if tokens:
            live = await self.service.live_sessions(tokens)
            self.hub.sessions_ended(tokens - live)

    def _sessions_changed(self) -> None:
        if self.hub.moderators:
            self.hub.spawn(self.check_sessions())

    def _reconnected(self) -> None:
        self.hub.resync()
        self._sessions_changed()
        self.hub.spawn(self.heartbeat())

"""Channels to subscribers: per-connection bounded queues, fan-out, catch-up and presence.

The fan-out never awaits a socket: it writes whole frames into the sockets' transports, each
frame encoded once for every socket that gets it, and no task wakes per connection. At light
load `deliver` writes an event at once to every subscriber that has nothing waiting. Under
load (a flush pause is running) it only appends the message to each subscriber's queue; the
next flush writes what waits as one frame per connection, a JSON array when several wait, so
events pile up into batches. A socket whose buffer is full keeps its messages queued; one whose
queue overflows is closed with 4008 and everyone else goes on at full speed.

Per `post:` channel every subscription remembers the last seq it was given, so nothing is
sent twice and a gap is noticed. A gap, a large event that travelled as a key, and a
reconnect of the database listener all lead to the same repair: read the channel's events
after the lowest seq its subscribers have, from the database, and deliver them in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson

from . import protocol
from .models import Event

log = logging.getLogger(__name__)

FetchEvents = Callable[[str, int, int], Awaitable[list[Event] | None]]
FetchPrivate = Callable[[int], Awaitable[dict[str, Any] | None]]
PRESENCE_TTL = 15.0
FLUSH_PAUSE_MAX = 0.05


class Socket(Protocol):
    """What the hub needs of a WebSocket (realtime.uvicorn_ws.FrameSocket is the one)."""

    on_resume: Callable[[], None] | None

    @property
    def paused(self) -> bool: ...

    def write_frame(self, frame: bytes) -> bool: ...

    def close_now(self, code: int, reason: str) -> None: ...


class Connection:
    """One WebSocket's outbound side: a bounded queue of messages and its subscriptions.

    An event goes straight to the socket when nothing waits before it (`write_now`); else the
    hub's next flush writes what waits as one frame (a JSON array when several wait); no task
    runs per connection. While the socket's buffer is full it is `paused` and messages wait here;
    past `limit` the connection is closed with 4008 and everyone else goes on at full speed.
    The socket's resume schedules the next flush.
    """

    __slots__ = ("ip", "moderator", "limit", "queue", "closing", "subscriptions", "schedule",
                 "scheduled", "socket")

    def __init__(self, ip: str | None, moderator: str | None, limit: int,
                 schedule: Callable[[Connection], None] | None = None) -> None:
        self.ip = ip
        self.moderator = moderator
        self.limit = limit
        self.queue: list[bytes] = []
        self.closing: tuple[int, str] | None = None
        self.subscriptions: dict[str, Subscription] = {}
        self.schedule = schedule
        self.scheduled = False
        self.socket: Socket | None = None

    def attach(self, socket: Socket) -> None:
        """Start writing to `socket`."""
        self.socket = socket
        socket.on_resume = self._due
        self._due()

    def detach(self) -> None:
        """Stop writing; the socket is gone."""
        if self.socket is not None:
            self.socket.on_resume = None
            self.socket = None

    def _due(self) -> None:
        if self.socket is not None and self.schedule is not None and not self.scheduled \
                and (self.queue or self.closing):
            self.scheduled = True
            self.schedule(self)

    def write_now(self, frame: bytes) -> bool:
        """Write `frame` at once if nothing waits before it; False when it has to queue."""
        socket = self.socket
        if socket is None or self.queue or self.closing is not None or socket.paused:
            return False
        return socket.write_frame(frame)

    def push(self, message: bytes) -> None:
        """Queue a message; past the limit the connection is marked to close with 4008."""
        if self.closing is not None:
            return
        if len(self.queue) >= self.limit:
            self.queue.clear()
            self.close_soon(4008, "slow consumer")
            return
        self.queue.append(message)
        self._due()

    def close_soon(self, code: int, reason: str) -> None:
        """Close the socket after what is queued, at the next flush."""
        if self.closing is None:
            self.closing = (code, reason)
        self._due()

    def flush(self, frames: dict[tuple[bytes, ...], bytes]) -> None:
        """Write what waits as one frame, unless the socket is paused; then any close.

        `frames` caches the encoded frames of one flush: most connections of a channel wait
        for the same messages, so each distinct frame is built once.
        """
        self.scheduled = False
        socket = self.socket
        if socket is None or socket.paused and self.closing is None:
            return
        if self.queue:
            messages = tuple(self.queue)
            self.queue.clear()
            frame = frames.get(messages)
            if frame is None:
                frame = frames[messages] = protocol.text_frame(protocol.batch(list(messages)))
            socket.write_frame(frame)
        if self.closing is not None:
            socket.close_now(*self.closing)


class Subscription:
    """One connection's subscription to one channel."""

    __slots__ = ("conn", "channel", "last", "held")

    def __init__(self, conn: Connection, channel: str) -> None:
        self.conn = conn
        self.channel = channel
        self.last = 0
        # Live frames wait here while the subscription replays from the database.
        self.held: list[tuple[int, bytes]] | None = []

    def offer(self, seq: int, frame: bytes) -> bool:
        """Give the subscriber a post event; False when it reveals a gap."""
        if self.held is not None:
            self.held.append((seq, frame))
            return True
        if seq <= self.last:
            return True
        if seq > self.last + 1:
            return False
        self.last = seq
        self.conn.push(frame)
        return True

    def go_live(self, replayed_up_to: int) -> bool:
        """End the replay: send the held frames that the replay did not cover."""
        held, self.held = self.held or [], None
        self.last = replayed_up_to
        return all(self.offer(seq, frame) for seq, frame in sorted(held))


class Hub:
    """Every subscription of this node, and the fan-out of events to them."""

    def __init__(self, *, node_id: str, queue_size: int, replay_limit: int,
                 fetch_events: FetchEvents, fetch_private: FetchPrivate) -> None:
        self.node_id = node_id
        self.queue_size = queue_size
        self.replay_limit = replay_limit
        self.fetch_events = fetch_events
        self.fetch_private = fetch_private
        self.connections: set[Connection] = set()
        self.per_ip: Counter[str | None] = Counter()
        self.channels: dict[str, set[Subscription]] = {}
        self.repairing: dict[str, bool] = {}
        # channel -> node -> (count, when heard): what other nodes last said of their counts
        self.remote: dict[str, dict[str, tuple[int, float]]] = {}
        self.shown: dict[str, int] = {}
        self.announced: dict[str, int] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.delivered = 0
        self.dirty: list[Connection] = []
        self.flush_not_before = 0.0

    # connections and subscriptions ------------------------------------------------------

    def connect(self, ip: str | None, moderator: str | None) -> Connection:
        """A new connection, counted against its IP address."""
        conn = Connection(ip, moderator, self.queue_size, self._schedule_flush)
        self.connections.add(conn)
        self.per_ip[ip] += 1
        return conn

    def _schedule_flush(self, conn: Connection) -> None:
        """Flush `conn` soon, together with every other connection that has frames due.

        At light load that is the end of this event-loop turn. Under load, a flush waits until
        as long after the previous one as that one took (at most FLUSH_PAUSE_MAX): the fan-out
        then takes at most about half of the loop, requests keep being served, and the events
        of the pause go out together, one array frame per connection instead of one each.
        """
        if not self.dirty:
            loop = asyncio.get_running_loop()
            pause = self.flush_not_before - time.perf_counter()
            if pause > 0:
                loop.call_later(pause, self._flush)
            else:
                loop.call_soon(self._flush)
        self.dirty.append(conn)

    def _flush(self) -> None:
        started = time.perf_counter()
        dirty, self.dirty = self.dirty, []
        frames: dict[tuple[bytes, ...], bytes] = {}
        for conn in dirty:
            conn.flush(frames)
        self._paced(started)

    def _paced(self, started: float) -> None:
        """Note a fan-out that began at `started`: the next waits as long as it took.

        Durations come from perf_counter: uvloop's `loop.time()` only moves once per loop turn,
        in whole milliseconds, so a fan-out within one turn would measure as zero.
        """
        ended = time.perf_counter()
        self.flush_not_before = ended + min(ended - started, FLUSH_PAUSE_MAX)

    def disconnect(self, conn: Connection) -> None:
        """Forget a connection and all its subscriptions."""
        for channel in list(conn.subscriptions):
            self.unsubscribe(conn, channel)
        conn.detach()
        if conn in self.connections:
            self.connections.discard(conn)
            self.per_ip[conn.ip] -= 1
            if self.per_ip[conn.ip] <= 0:
                del self.per_ip[conn.ip]

    def subscribe(self, conn: Connection, channel: str) -> Subscription:
        """Register a subscription first, so nothing published from now on is missed."""
        self.unsubscribe(conn, channel)
        sub = Subscription(conn, channel)
        conn.subscriptions[channel] = sub
        self.channels.setdefault(channel, set()).add(sub)
        return sub

    def unsubscribe(self, conn: Connection, channel: str) -> bool:
        """Drop one subscription; False when there was none."""
        sub = conn.subscriptions.pop(channel, None)
        if sub is None:
            return False
        subs = self.channels.get(channel)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.channels[channel]
        return True

    def watching(self, channel: str) -> int:
        """Connections subscribed to a channel on all nodes."""
        now = time.monotonic()
        remote = sum(count for count, seen in self.remote.get(channel, {}).values()
                     if now - seen < PRESENCE_TTL)
        return len(self.channels.get(channel, ())) + remote

    # events from the bus ----------------------------------------------------------------

    def notify(self, payload: str) -> None:
        """A NOTIFY from any node, in commit order; must not block."""
        try:
            note = orjson.loads(payload)
            slug: str = note["post"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignored a malformed notification")
            return
        channel = protocol.post_channel(slug)
        seq = note.get("seq")
        if seq is not None and channel in self.channels:
            if note.get("key"):
                self.repair(channel)
            else:
                data = orjson.dumps(note["data"])
                self.deliver(channel, seq, protocol.event(channel, seq, note["event"], data))
        mod = note.get("mod")
        if mod is not None and protocol.MODERATION in self.channels:
            if "data" in mod:
                self.deliver_moderation(mod["event"], orjson.dumps(mod["data"]))
            else:
                self.spawn(self._fetch_moderation(mod["event"], mod["comment_id"]))

    def deliver(self, channel: str, seq: int, message: bytes) -> None:
        """Hand one encoded post event to every subscriber of its channel.

        Unless a flush pause is running (under load), the event is written at once to every
        connection that has nothing else waiting, skipping the queue and the flush: the
        first subscribers get it a whole fan-out sooner, and each costs one call, not five.
        """
        if channel in self.repairing:
            self.repairing[channel] = True
            return
        subs = self.channels.get(channel, ())
        gap = False
        started = time.perf_counter()
        if started >= self.flush_not_before:
            frame = protocol.text_frame(message)
            for sub in subs:
                if sub.held is None and seq == sub.last + 1 and sub.conn.write_now(frame):
                    sub.last = seq
                else:
                    gap = not sub.offer(seq, message) or gap
            self._paced(started)
        else:
            for sub in subs:
                gap = not sub.offer(seq, message) or gap
        self.delivered += len(subs)
        if gap:
            self.repair(channel)

    def deliver_moderation(self, name: str, data: bytes) -> None:
        """Hand one comment change to every moderator's connection."""
        frame = protocol.event(protocol.MODERATION, None, name, data)
        for sub in self.channels.get(protocol.MODERATION, ()):
            sub.conn.push(frame)

    def resync(self) -> None:
        """The listener was down: repair every channel from the database."""
        for channel in list(self.channels):
            if channel == protocol.MODERATION:
                for sub in self.channels[channel]:
                    sub.conn.push(protocol.reset(channel, "listener_reconnected"))
            else:
                self.repair(channel)

    def repair(self, channel: str) -> None:
        """Read the channel's events after its slowest live subscriber, and deliver them."""
        if channel in self.repairing:
            self.repairing[channel] = True
            return
        self.repairing[channel] = False
        self.spawn(self._repair(channel))

    async def _repair(self, channel: str) -> None:
        slug = protocol.channel_slug(channel)
        assert slug is not None
        try:
            while True:
                self.repairing[channel] = False
                live = [s for s in self.channels.get(channel, ()) if s.held is None]
                if not live:
                    break
                since = min(s.last for s in live)
                events = await self.fetch_events(slug, since, self.replay_limit + 1)
                if events is None or len(events) > self.replay_limit:
                    reason = "history_expired" if events is None else "too_far_behind"
                    for sub in live:
                        if sub.last == since:
                            sub.conn.push(protocol.reset(channel, reason))
                            self.unsubscribe(sub.conn, channel)
                    continue
                for event in events:
                    frame = protocol.event(channel, event.seq, event.type, event.data)
                    for sub in self.channels.get(channel, ()):
                        sub.offer(event.seq, frame)
                if not self.repairing[channel]:
                    break
        except Exception:
            log.exception("repair of %s failed; the next event retries", channel)
        finally:
            self.repairing.pop(channel, None)

    async def _fetch_moderation(self, name: str, comment_id: int) -> None:
        data = await self.fetch_private(comment_id)
        if data is not None:
            self.deliver_moderation(name, orjson.dumps(data))

    def spawn(self, work: Awaitable[None]) -> None:
        """Run `work` in the background, keeping a reference until it ends."""
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # presence ---------------------------------------------------------------------------

    def local_counts(self) -> dict[str, int]:
        """Subscriptions per channel on this node."""
        return {channel: len(subs) for channel, subs in self.channels.items()}

    def presence_changes(self) -> dict[str, int]:
        """Local counts that changed since last announced (zero for channels gone)."""
        counts = self.local_counts()
        changed = {ch: n for ch, n in counts.items() if self.announced.get(ch) != n}
        changed.update({ch: 0 for ch in self.announced if ch not in counts})
        self.announced = counts
        return changed

    def remote_presence(self, payload: str) -> None:
        """Another node's counts, from the bus."""
        try:
            note = orjson.loads(payload)
            node, counts = note["node"], note["counts"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if node == self.node_id or not isinstance(counts, dict):
            return
        now = time.monotonic()
        for channel, count in counts.items():
            if isinstance(count, int):
                self.remote.setdefault(channel, {})[node] = (count, now)

    def push_presence(self) -> None:
        """Tell subscribers of every channel whose total changed; at most once per call."""
        now = time.monotonic()
        for channel in list(self.remote):
            nodes = {node: entry for node, entry in self.remote[channel].items()
                     if now - entry[1] < PRESENCE_TTL and entry[0] > 0}
            if nodes:
                self.remote[channel] = nodes
            else:
                del self.remote[channel]
        for channel, subs in self.channels.items():
            total = self.watching(channel)
            if self.shown.get(channel) != total:
                self.shown[channel] = total
                frame = protocol.presence(channel, total)
                for sub in subs:
                    if sub.held is None:
                        sub.conn.push(frame)
        for channel in [c for c in self.shown if c not in self.channels]:
            del self.shown[channel]

    async def close_all(self, code: int, reason: str, timeout: float = 2.0) -> None:
        """Close every connection (server going away), waiting briefly for the frames."""
        for conn in list(self.connections):
            conn.close_soon(code, reason)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.connections and loop.time() < deadline:
            await asyncio.sleep(0.02)

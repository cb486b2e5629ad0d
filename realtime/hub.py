"""Channels to subscribers: the fan-out, the hand-over to replays, moderation and presence.

The fan-out never awaits a socket: it writes whole frames into the sockets' transports, each
frame encoded once for every socket that gets it, and no task wakes per connection. At light
load `deliver` writes an event at once to every subscriber that has nothing waiting. Under
load (a flush pause is running) it only appends the message to each subscriber's queue; the
next flush writes what waits as one frame per connection, a JSON array when several wait, so
events pile up into batches. A socket whose buffer is full keeps its messages queued; one whose
queue overflows is closed with 4008 and everyone else goes on at full speed.

Per `post:` channel every subscription remembers the last seq it was given, so nothing is
sent twice and a gap is noticed. A subscribe with `since`, a gap and a reconnect of the
database listener hand the subscriptions concerned to the channel's `Replay`
(realtime.replay), which catches them up from `events` and puts them back live. An event too
large for a NOTIFY travels as its seq: the hub reads it back and delivers it live, holding
the channel's later events until then, so its subscribers stay live (and can still be cut off
as slow consumers). Changes on the `moderation` channel always travel as keys: only nodes with
a moderator subscribed read them, in the order heard.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable

import orjson

from . import events, protocol
from .connection import DOUBTED, LIVE, OPENING, REPLAYING, Connection, Subscription
from .errors import NotFound
from .models import EventPage
from .presence import IP_PREFIX, Presence
from .protocol import MODERATION, Close
from .replay import PAGE, RETRY_S, FetchPage, Replay, entries

log = logging.getLogger(__name__)

# (comment id, version) keys of moderation changes -> (event name, moderator view JSON)
FetchModeration = Callable[[list[tuple[int, int]]], Awaitable[list[tuple[str, bytes]]]]
FLUSH_PAUSE_MAX = 0.05
# A post event heard live: seq, message (None until read back, for one that came as a key),
# and the reason of a post.reset.
Heard = tuple[int, bytes | None, str | None]


class Hub:
    """Every subscription of this node, and the fan-out of events to them."""

    def __init__(self, *, node_id: str, queue_size: int, replay_limit: int, ip_limit: int,
                 fetch_page: FetchPage, fetch_moderation: FetchModeration) -> None:
        self.node_id = node_id
        self.queue_size = queue_size
        self.replay_limit = replay_limit
        self.ip_limit = ip_limit
        # An address's count is shared with other nodes once it holds this many here.
        self.ip_share_at = max(1, ip_limit // 8)
        self.fetch_page = fetch_page
        self.fetch_moderation = fetch_moderation
        self.connections: set[Connection] = set()
        self.moderators: set[Connection] = set()
        self.per_ip: Counter[str | None] = Counter()
        self.channels: dict[str, set[Subscription]] = {}
        # channel -> the highest seq heard live while it has subscribers
        self.heads: dict[str, int] = {}
        self.replays: dict[str, Replay] = {}
        # channel -> events heard after one that travelled as a key, waiting for it to be read
        self.keyed: dict[str, list[Heard]] = {}
        self.moderation_keys: list[tuple[int, int]] = []
        self.moderation_reading = False
        self.presence = Presence(node_id)
        self.shown: dict[str, int] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.delivered = 0
        self.dirty: list[Connection] = []
        self.flush_not_before = 0.0

    # connections and subscriptions ------------------------------------------------------

    def admits(self, ip: str | None) -> bool:
        """Whether `ip` may open another connection: under the limit on all nodes together."""
        held = self.per_ip[ip]
        if ip is not None:
            held += self.presence.elsewhere(IP_PREFIX + ip)
        return held < self.ip_limit

    def connect(self, ip: str | None, moderator: str | None = None, session: str | None = None,
                kind: type[Connection] = Connection) -> Connection:
        """A new connection of `kind` (the transport's), counted against its IP address;
        `session` is the moderator's session token, watched until it ends."""
        conn = kind(ip, moderator, self.queue_size, self._schedule_flush, session)
        self.connections.add(conn)
        if conn.session is not None:
            self.moderators.add(conn)
        self.per_ip[conn.ip] += 1
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
        self.moderators.discard(conn)
        if conn in self.connections:
            self.connections.discard(conn)
            self.per_ip[conn.ip] -= 1
            if self.per_ip[conn.ip] <= 0:
                del self.per_ip[conn.ip]

    def subscribe(self, conn: Connection, channel: str, state: int = OPENING) -> Subscription:
        """Register a subscription (replacing the connection's old one to the channel)."""
        self.unsubscribe(conn, channel)
        sub = Subscription(conn, channel, state)
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
                self.heads.pop(channel, None)
        replay = self.replays.get(channel)
        if replay is not None:
            replay.wake()
        return True

    def subscriptions(self, channel: str) -> Iterable[Subscription]:
        """The subscriptions of a channel on this node."""
        return self.channels.get(channel, ())

    def head(self, channel: str) -> int:
        """The highest seq of the channel heard live since it had subscribers here."""
        return self.heads.get(channel, 0)

    def end(self, sub: Subscription, reason: str) -> None:
        """End a subscription with `reset`: the client reloads and subscribes again."""
        conn = sub.conn
        conn.push(protocol.reset(sub.channel, reason))
        if conn.subscriptions.get(sub.channel) is sub:
            self.unsubscribe(conn, sub.channel)
        conn.ended(sub.channel)

    async def open(self, conn: Connection, channel: str, since: int | None) -> None:
        """Subscribe to a post channel: `subscribed`, the events after `since`, then live.

        Answers `reset` instead when the client is more than the replay limit behind or its
        events were pruned, and `error` for an unknown post. The subscription is registered
        before the first read, so every event committed after that read is heard.
        """
        slug = protocol.channel_slug(channel)
        assert slug is not None, "the moderation channel has no events to replay"
        sub = self.subscribe(conn, channel)
        try:
            page = await self.fetch_page(slug, since, PAGE)
        except NotFound:
            if conn.subscriptions.get(channel) is sub:
                self.unsubscribe(conn, channel)
            conn.push(protocol.error("not_found", f"no post {slug!r}", channel))
            return
        if conn.subscriptions.get(channel) is not sub:
            return
        reason = self._refusal(page)
        if page is None or reason is not None:
            self.end(sub, reason or "history_expired")
            return
        conn.push(protocol.subscribed(channel, page.head, page.head - page.after,
                                      self.watching(channel)))
        sub.last = page.after
        doubted = sub.state == DOUBTED
        if not doubted and page.after >= max(page.head, self.head(channel)):
            sub.state = LIVE
            return
        sub.state = REPLAYING
        replay = self._replay(channel)
        replay.take(page)
        if doubted:
            replay.distrust()

    def _refusal(self, page: EventPage | None) -> str | None:
        if page is None or page.after > page.head:
            return "history_expired"
        if page.head - page.after > self.replay_limit:
            return "too_far_behind"
        return None

    def _replay(self, channel: str) -> Replay:
        """The channel's replay, started if it is not running, and told to look again."""
        replay = self.replays.get(channel)
        if replay is None:
            replay = self.replays[channel] = Replay(self, channel, self.fetch_page,
                                                    self.replay_limit)
            self.spawn(replay.run())
        replay.wake()
        return replay

    def replay_done(self, channel: str, replay: Replay) -> None:
        """A replay ran out of subscriptions to serve."""
        if self.replays.get(channel) is replay:
            del self.replays[channel]

    def _catch_up(self, subs: Iterable[Subscription]) -> None:
        """Hand live subscriptions that missed something to their channel's replay."""
        channels = set()
        for sub in subs:
            if sub.state == LIVE:
                sub.state = REPLAYING
                channels.add(sub.channel)
        for channel in channels:
            self._replay(channel).distrust()

    # events from the bus ----------------------------------------------------------------

    def notify(self, payload: str) -> None:
        """A NOTIFY from any node, in commit order; must not block."""
        note = events.parse_note(payload)
        if note is None:
            log.warning("ignored a malformed notification")
            return
        channel = protocol.post_channel(note.post)
        if note.seq is not None and channel in self.channels:
            entry: Heard = (note.seq, None, None)
            if note.data is not None:
                data = orjson.dumps(note.data)
                reason = events.reset_reason(note.event, data)
                entry = (note.seq, protocol.reset(channel, reason) if reason is not None else
                         protocol.event(channel, note.seq, note.event, data), reason)
            if entry[1] is None or channel in self.keyed:
                self._hold(channel, entry)
            else:
                self._live(channel, entry)
        if note.mod is not None and MODERATION in self.channels:
            self.moderation_keys.append(note.mod)
            if not self.moderation_reading:
                self.moderation_reading = True
                self.spawn(self._read_moderation())

    def _live(self, channel: str, entry: Heard) -> None:
        seq, message, reason = entry
        if reason is not None:
            self._reset_live(channel, seq, reason)
        elif message is not None:
            self.deliver(channel, seq, message)

    def _hold(self, channel: str, entry: Heard) -> None:
        """Keep an event heard while an earlier one that travelled as a key is being read."""
        self._heard(channel, entry[0])
        waiting = self.keyed.get(channel)
        if waiting is None:
            waiting = self.keyed[channel] = []
            self.spawn(self._read_keyed(channel, waiting))
        waiting.append(entry)

    async def _read_keyed(self, channel: str, waiting: list[Heard]) -> None:
        """Read the events that travelled as keys, and deliver them live, in order with those
        heard meanwhile. If that fails, the channel's subscribers catch up by replay."""
        slug = protocol.channel_slug(channel)
        assert slug is not None
        try:
            while waiting and channel in self.channels:
                while waiting and waiting[0][1] is not None:
                    self._live(channel, waiting.pop(0))
                if not waiting:
                    break
                missing = [entry[0] for entry in waiting if entry[1] is None]
                page = await self.fetch_page(slug, missing[0] - 1, missing[-1] - missing[0] + 1)
                found: dict[int, Heard] = {e[0]: e for e in entries(channel, page)} if page else {}
                if waiting[0][0] not in found:
                    raise LookupError(f"event {waiting[0][0]} of {channel} cannot be read")
                waiting[:] = [found.get(entry[0], entry) for entry in waiting]
        except Exception:
            log.exception("could not read the events of %s; catching up by replay", channel)
            self._catch_up(list(self.channels.get(channel, ())))
        finally:
            if self.keyed.get(channel) is waiting:
                del self.keyed[channel]

    def _heard(self, channel: str, seq: int) -> None:
        if seq > self.heads.get(channel, 0):
            self.heads[channel] = seq

    def deliver(self, channel: str, seq: int, message: bytes) -> None:
        """Hand one encoded post event to every live subscriber of its channel.

        Unless a flush pause is running (under load), the event is written at once to every
        connection that has nothing else waiting, skipping the queue and the flush: the
        first subscribers get it a whole fan-out sooner, and each costs one call, not five.
        """
        self._heard(channel, seq)
        subs = self.channels.get(channel, ())
        gaps: list[Subscription] = []
        started = time.perf_counter()
        if started >= self.flush_not_before:
            frame = protocol.text_frame(message)
            for sub in subs:
                if sub.state == LIVE and seq == sub.last + 1 and sub.conn.write_now(frame):
                    sub.last = seq
                elif not sub.offer(seq, message):
                    gaps.append(sub)
            self._paced(started)
        else:
            for sub in subs:
                if not sub.offer(seq, message):
                    gaps.append(sub)
        self.delivered += len(subs)
        if gaps:
            self._catch_up(gaps)

    def _reset_live(self, channel: str, seq: int, reason: str) -> None:
        """A `post.reset` heard live ends every live subscription that had not passed it."""
        self._heard(channel, seq)
        for sub in list(self.channels.get(channel, ())):
            if sub.state == LIVE and sub.last < seq:
                self.end(sub, reason)

    def resync(self) -> None:
        """The listener was down: catch every channel up from the database; moderators are
        told to re-read (their channel has no seq to resume from) and stay subscribed."""
        for channel, subs in list(self.channels.items()):
            if channel == MODERATION:
                for sub in subs:
                    sub.conn.push(protocol.reset(channel, "listener_reconnected"))
                continue
            for sub in subs:
                if sub.state == OPENING:
                    sub.state = DOUBTED
            self._catch_up(list(subs))

    def deliver_moderation(self, name: str, data: bytes) -> None:
        """Hand one comment change to every moderator's connection."""
        message = protocol.event(MODERATION, None, name, data)
        for sub in self.channels.get(MODERATION, ()):
            sub.conn.push(message)

    async def _read_moderation(self) -> None:
        """Read the moderator view of the changes heard, in order, in batches."""
        try:
            while self.moderation_keys and MODERATION in self.channels:
                keys, self.moderation_keys = self.moderation_keys, []
                try:
                    changes = await self.fetch_moderation(keys)
                except Exception:
                    log.exception("could not read moderation changes; retrying")
                    self.moderation_keys[:0] = keys
                    await asyncio.sleep(RETRY_S)
                    continue
                for name, data in changes:
                    self.deliver_moderation(name, data)
        finally:
            self.moderation_reading = False
            if MODERATION not in self.channels:
                self.moderation_keys.clear()

    def sessions_ended(self, ended: set[str]) -> None:
        """Close every moderator connection whose session token is in `ended` (1008)."""
        for conn in list(self.moderators):
            if conn.session in ended:
                self.moderators.discard(conn)
                conn.close_soon(Close.POLICY, "session ended")

    def spawn(self, work: Awaitable[None]) -> None:
        """Run `work` in the background, keeping a reference until it ends."""
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # presence ---------------------------------------------------------------------------

    def watching(self, channel: str) -> int:
        """Connections subscribed to a channel on all nodes."""
        return len(self.channels.get(channel, ())) + self.presence.elsewhere(channel)

    def local_counts(self) -> dict[str, int]:
        """Subscriptions per channel on this node, and connections of its busy addresses."""
        counts = {channel: len(subs) for channel, subs in self.channels.items()}
        counts.update({IP_PREFIX + ip: n for ip, n in self.per_ip.items()
                       if ip is not None and n >= self.ip_share_at})
        return counts

    def presence_changes(self) -> dict[str, int]:
        """Local counts that changed since last announced (zero for those gone)."""
        return self.presence.changes(self.local_counts())

    def push_presence(self) -> None:
        """Tell subscribers of every channel whose total changed; at most once per call."""
        self.presence.expire()
        for channel, subs in self.channels.items():
            total = self.watching(channel)
            if self.shown.get(channel) != total:
                self.shown[channel] = total
                message = protocol.presence(channel, total)
                for sub in subs:
                    if sub.state == LIVE or sub.state == REPLAYING:
                        sub.conn.push(message)
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

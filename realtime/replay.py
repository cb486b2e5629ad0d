"""Catching subscriptions up from the `events` table, at each socket's pace, then going live.

Every way a subscription can be behind ends here: a subscribe with `since`, a gap in the live
stream, an event too large for a NOTIFY (it travels as a key), and a database listener that
reconnected. One `Replay` per post channel serves all of that channel's subscriptions that
are behind: it reads the channel's events after a seq in pages of `PAGE`, shares each page
between every subscription that needs it, and adds a subscription's next events only while
its connection has room (`Connection.has_room`), so a replay of any length streams at the
socket's pace and never makes anyone a slow consumer.

While a subscription replays, live events of its channel are not sent to it (they are in the
database); the hub only notes the highest seq it heard (`Host.head`). A subscription goes
live once it has every event up to the highest seq known to exist, the one its last read saw
or the one the hub heard since. There is no await between that check and the switch, so an
event committed later is either heard afterwards, live, or was heard before and is read
first: no gap and no repeat at the seam.

A subscription more than `limit` events behind what is known to exist gets `reset`
(`too_far_behind`), as does one whose next events were pruned (`history_expired`); a
`post.reset` event among the replayed ones ends it with that event's reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from . import events, protocol
from .connection import LIVE, REPLAYING, Subscription
from .errors import NotFound
from .models import EventPage

log = logging.getLogger(__name__)

PAGE = 200
RETRY_S = 1.0
IDLE_READ_S = 0.05

FetchPage = Callable[[str, int | None, int], Awaitable[EventPage | None]]
# seq, the message to send, and the reason when the event is a post.reset
Entry = tuple[int, bytes, str | None]


class Host(Protocol):
    """What a replay needs of the hub."""

    def subscriptions(self, channel: str) -> Iterable[Subscription]: ...

    def head(self, channel: str) -> int: ...

    def end(self, sub: Subscription, reason: str) -> None: ...

    def replay_done(self, channel: str, replay: Replay) -> None: ...


def entries(channel: str, page: EventPage) -> list[Entry]:
    """A page of events as the messages the channel's subscribers get."""
    found: list[Entry] = []
    for event in page.events:
        reason = events.reset_reason(event.type, event.data)
        message = protocol.reset(channel, reason) if reason is not None else \
            protocol.event(channel, event.seq, event.type, event.data)
        found.append((event.seq, message, reason))
    return found


class Replay:
    """The catch-up of one post channel's subscriptions that are behind."""

    def __init__(self, host: Host, channel: str, fetch: FetchPage, limit: int) -> None:
        self.host = host
        self.channel = channel
        slug = protocol.channel_slug(channel)
        assert slug is not None, "only post channels replay"
        self.slug = slug
        self.fetch = fetch
        self.limit = limit
        # The last page read: `buffer[i]` is the event with seq `first + i`.
        self.first = 1
        self.buffer: list[Entry] = []
        # The highest seq any read saw in the post: every event up to it exists.
        self.read_head = 0
        self.reads = 0
        # While set, nobody goes live before the read numbered `doubt` has come back.
        self.doubt = 0
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something changed (room in a connection, a subscription added or gone): look again."""
        self._wake.set()

    def distrust(self) -> None:
        """Events may exist that neither a read nor a notification told of (the listener was
        down, a notification was lost): nobody goes live before a read started from now."""
        self.doubt = self.reads + 1

    def take(self, page: EventPage) -> None:
        """Keep a page read elsewhere (by a subscribe), so it is not read again."""
        self.first = page.after + 1
        self.buffer = entries(self.channel, page)
        self.read_head = max(self.read_head, page.head)

    async def run(self) -> None:
        """Serve the channel's replaying subscriptions until none is left."""
        try:
            while True:
                behind = self._behind()
                for sub in behind:
                    if sub.conn.has_room() and self._covers(sub):
                        self._feed(sub)
                behind = self._behind()
                if not behind:
                    return
                # Whoever still has room has had everything the last page holds.
                hungry = [sub for sub in behind if sub.conn.has_room()]
                if hungry:
                    await self._read(min(sub.last for sub in hungry))
                else:
                    await self._sleep(behind)
        finally:
            self.host.replay_done(self.channel, self)

    def _behind(self) -> list[Subscription]:
        """The subscriptions still replaying; the rest go live or are reset."""
        known = max(self.read_head, self.host.head(self.channel))
        behind = []
        for sub in list(self.host.subscriptions(self.channel)):
            if sub.state != REPLAYING:
                continue
            if sub.last >= known and not self.doubt:
                sub.state = LIVE
            elif known - sub.last > self.limit:
                self.host.end(sub, "too_far_behind")
            else:
                behind.append(sub)
        return behind

    def _covers(self, sub: Subscription) -> bool:
        return 0 <= sub.last + 1 - self.first < len(self.buffer)

    def _feed(self, sub: Subscription) -> None:
        """Add the subscription's next events from the page while its connection has room."""
        conn = sub.conn
        at = sub.last + 1 - self.first
        while at < len(self.buffer) and conn.has_room():
            seq, message, reason = self.buffer[at]
            if reason is not None:
                self.host.end(sub, reason)
                return
            conn.push_replayed(message)
            sub.last = seq
            at += 1

    async def _read(self, since: int) -> None:
        self.reads += 1
        number = self.reads
        try:
            page = await self.fetch(self.slug, since, PAGE)
        except NotFound:
            page = None
        except Exception:
            log.exception("replay of %s could not read events; retrying", self.channel)
            await asyncio.sleep(RETRY_S)
            return
        if number >= self.doubt:
            self.doubt = 0
        if page is None:
            for sub in list(self.host.subscriptions(self.channel)):
                if sub.state == REPLAYING and sub.last <= since:
                    self.host.end(sub, "history_expired")
            return
        self.take(page)
        if not page.events and self.host.head(self.channel) > page.head:
            # Heard of an event this read did not see (it was heard while the read ran):
            # the next read finds it. Never hammer the database should that ever not hold.
            await asyncio.sleep(IDLE_READ_S)

    async def _sleep(self, behind: list[Subscription]) -> None:
        self._wake.clear()
        for sub in behind:
            sub.conn.wait_for_room(self)
        await self._wake.wait()

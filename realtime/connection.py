"""One live client's outbound side: its bounded queue, its subscriptions, its transport.

A `Connection` is what the hub writes to, whatever carries it: a WebSocket (`Socket` is
realtime.uvicorn_ws.FrameSocket) or a Server-Sent Events stream (realtime.sse). No task runs
per connection: an event goes straight into the transport when nothing waits before it, else
the hub's next flush writes what waits as one frame.

Two budgets share the queue. Live messages may wait up to `limit`; past it the client is a
slow consumer and is closed with 4008. A replay (realtime.replay) adds messages only while the
transport is writable and fewer than `REPLAY_WINDOW` wait, so it streams at the socket's pace,
and its messages never count against `limit`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from . import protocol
from .protocol import Close

REPLAY_WINDOW = 64

# Subscription states: events are sent as they happen; the replay is catching it up from the
# database; the subscribe is still reading where to start (nothing is sent yet); or that
# read may have missed events because the database listener reconnected meanwhile.
LIVE, REPLAYING, OPENING, DOUBTED = 0, 1, 2, 3


class Socket(Protocol):
    """What a connection needs of its transport."""

    on_resume: Callable[[], None] | None

    @property
    def paused(self) -> bool: ...

    def write_frame(self, frame: bytes) -> bool: ...

    def close_now(self, code: int, reason: str) -> None: ...


class Sleeper(Protocol):
    """A replay waiting for room in some connection (realtime.replay.Replay)."""

    def wake(self) -> None: ...


class Connection:
    """One client's bounded queue of messages and its subscriptions.

    An event goes straight to the socket when nothing waits before it (`write_now`); else the
    hub's next flush writes what waits as one frame (a JSON array when several wait). While
    the socket's buffer is full it is `paused` and messages wait here; past `limit` live
    messages the connection is closed with 4008 and everyone else goes on at full speed. The
    socket's resume schedules the next flush.
    """

    __slots__ = ("ip", "moderator", "session", "limit", "queue", "replayed", "closing",
                 "subscriptions", "schedule", "scheduled", "socket", "sleepers")

    def __init__(self, ip: str | None, moderator: str | None, limit: int,
                 schedule: Callable[[Connection], None] | None = None,
                 session: str | None = None) -> None:
        self.ip = ip
        self.moderator = moderator
        self.session = session
        self.limit = limit
        self.queue: list[bytes] = []
        self.replayed = 0
        self.closing: tuple[int, str] | None = None
        self.subscriptions: dict[str, Subscription] = {}
        self.schedule = schedule
        self.scheduled = False
        self.socket: Socket | None = None
        self.sleepers: list[Sleeper] | None = None

    def attach(self, socket: Socket) -> None:
        """Start writing to `socket`."""
        self.socket = socket
        socket.on_resume = self._resumed
        self._due()

    def detach(self) -> None:
        """Stop writing; the socket is gone."""
        if self.socket is not None:
            self.socket.on_resume = None
            self.socket = None
        self._wake_sleepers()

    def _due(self) -> None:
        if self.socket is not None and self.schedule is not None and not self.scheduled \
                and (self.queue or self.closing):
            self.scheduled = True
            self.schedule(self)

    def _resumed(self) -> None:
        self._due()
        self._wake_sleepers()

    def write_now(self, frame: bytes) -> bool:
        """Write `frame` at once if nothing waits before it; False when it has to queue."""
        socket = self.socket
        if socket is None or self.queue or self.closing is not None or socket.paused:
            return False
        return socket.write_frame(frame)

    def push(self, message: bytes) -> None:
        """Queue a live message; past the limit the connection is marked to close with 4008."""
        if self.closing is not None:
            return
        if len(self.queue) - self.replayed >= self.limit:
            self.queue.clear()
            self.replayed = 0
            self.close_soon(Close.SLOW_CONSUMER, "slow consumer")
            return
        self.queue.append(message)
        self._due()

    def has_room(self) -> bool:
        """Whether a replay may add a message now: writable, and its window not full."""
        socket = self.socket
        return socket is not None and self.closing is None and not socket.paused \
            and len(self.queue) < REPLAY_WINDOW

    def push_replayed(self, message: bytes) -> None:
        """Queue a replayed message (the caller checked `has_room`); it never counts as slow."""
        self.queue.append(message)
        self.replayed += 1
        self._due()

    def wait_for_room(self, sleeper: Sleeper) -> None:
        """Wake `sleeper` once this connection has room again (or is gone)."""
        if self.sleepers is None:
            self.sleepers = []
        if sleeper not in self.sleepers:
            self.sleepers.append(sleeper)

    def _wake_sleepers(self) -> None:
        sleepers, self.sleepers = self.sleepers, None
        for sleeper in sleepers or ():
            sleeper.wake()

    def close_soon(self, code: int, reason: str) -> None:
        """Close the socket after what is queued, at the next flush."""
        if self.closing is None:
            self.closing = (code, reason)
        self._due()
        self._wake_sleepers()

    def ended(self, channel: str) -> None:
        """The server ended the subscription to `channel` (a reset); a WebSocket stays open."""

    def frame(self, messages: tuple[bytes, ...], frames: dict[tuple[bytes, ...], bytes]) -> bytes:
        """The bytes that carry `messages`: WebSocket text frames (one unless they are large),
        built once per flush for every connection waiting for the same messages."""
        frame = frames.get(messages)
        if frame is None:
            frame = frames[messages] = protocol.frames(messages)
        return frame

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
            self.replayed = 0
            socket.write_frame(self.frame(messages, frames))
        if self.closing is not None:
            socket.close_now(*self.closing)
        elif self.sleepers is not None and not socket.paused:
            self._wake_sleepers()


class Subscription:
    """One connection's subscription to one channel, and the last seq it was given."""

    __slots__ = ("conn", "channel", "last", "state")

    def __init__(self, conn: Connection, channel: str, state: int = OPENING) -> None:
        self.conn = conn
        self.channel = channel
        self.last = 0
        self.state = state

    def offer(self, seq: int, message: bytes) -> bool:
        """Give the subscriber a live post event; False when it reveals a gap.

        While the subscription opens or replays, live events are left to the replay, which
        reads them from the database in order.
        """
        if self.state != LIVE or seq <= self.last:
            return True
        if seq > self.last + 1:
            return False
        self.last = seq
        self.conn.push(message)
        return True

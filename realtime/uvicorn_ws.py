"""The WebSocket protocol uvicorn runs for us: its sans-I/O one, plus direct frame writes.

The hub sends the same event to every subscriber of a post. Going through ASGI, each delivery
would cross Starlette's `send_text`, its exception wrapper, uvicorn's `send` coroutine and the
`websockets` frame writer, and build the same frame again for every socket. This subclass of
uvicorn's `websockets-sansio` protocol adds the `realtime.socket` scope extension instead: the
endpoint gets this object and the hub writes each ready-made frame (server frames are not
masked, so one encoding serves every socket) straight into the transport. The handshake,
reading and pings stay uvicorn's.

What it takes from its bases, kept to the least and checked by tests/test_uvicorn_ws.py
against the installed versions (`REQUIREMENTS`):

- flow control from asyncio's public protocol methods: `connection_made` gives the transport,
  `pause_writing`/`resume_writing` say when its buffer is over the high-water mark (then the
  socket is `paused` and the hub keeps frames in its own bounded queue; `on_resume` is called
  when it drains), `connection_lost` says it is gone;
- closes through websockets' public sans-I/O `ServerProtocol` (uvicorn's `conn`): its `state`,
  `send_close` and `data_to_send`;
- from uvicorn itself: the constructor, `scope` and `run_asgi` to hand the socket to the
  endpoint, and `shutdown`, which its server calls on every connection when it stops: a socket
  the hub already closed must not be sent a second close frame;
- for memory alone (idle connections are most of a live server's connections): a one-waiter
  inbox and flag stand in for uvicorn's `queue` (an `asyncio.Queue`: four deques of about 760
  bytes) and `writable` (an `asyncio.Event`), and the handshake `request` and `response` are
  dropped once accepted. The test checks that uvicorn calls nothing else on `queue` and
  `writable` and reads `request` and `response` only while handshaking.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.protocol import State

EXTENSION = "realtime.socket"
CLOSE_TIMEOUT = 10.0

# What this module uses of uvicorn's class and of websockets' ServerProtocol, by name.
REQUIREMENTS = {
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol":
        ("scope", "run_asgi", "shutdown", "conn", "pause_writing", "resume_writing",
         "connection_made", "connection_lost", "queue", "writable", "request", "response"),
    "websockets.server.ServerProtocol": ("state", "send_close", "data_to_send"),
}
# What uvicorn may call on the stand-ins for its `queue` and `writable`.
STAND_INS = {"queue": ("put_nowait", "get", "empty"),
             "writable": ("set", "clear", "is_set", "wait")}
# The only methods of uvicorn's class that may read the handshake's `request` and `response`.
HANDSHAKE_READERS = ("handle_connect", "send")


class _OneWaiter:
    """Wakes the single coroutine that waits on it: what is left of asyncio's waiter deque."""

    __slots__ = ("waiter",)

    def __init__(self) -> None:
        self.waiter: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def _sleep(self) -> None:
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None


class _Inbox(_OneWaiter):
    """The part of `asyncio.Queue` uvicorn uses, for its single reader (the ASGI receive)."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        super().__init__()
        self.items: list[Any] = []

    def put_nowait(self, item: Any) -> None:
        self.items.append(item)
        self._wake()

    def empty(self) -> bool:
        return not self.items

    async def get(self) -> Any:
        while not self.items:
            await self._sleep()
        return self.items.pop(0)


class _Flag(_OneWaiter):
    """The part of `asyncio.Event` uvicorn uses for `writable`, for one waiting sender."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        super().__init__()
        self.value = True

    def is_set(self) -> bool:
        return self.value

    def set(self) -> None:
        self.value = True
        self._wake()

    def clear(self) -> None:
        self.value = False

    async def wait(self) -> None:
        while not self.value:
            await self._sleep()


def socket_of(scope: Mapping[str, Any]) -> FrameSocket | None:
    """The socket a WebSocket scope was opened on, when uvicorn runs this protocol."""
    found = scope.get("extensions", {}).get(EXTENSION, {}).get("socket")
    return found if isinstance(found, FrameSocket) else None


class FrameSocket(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol with a way to write whole frames directly."""

    on_resume: Callable[[], None] | None = None
    _paused = False
    _gone = False
    _closing = False
    _abort: asyncio.TimerHandle | None = None
    _transport: asyncio.Transport

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Flag()  # type: ignore[assignment]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        super().connection_made(transport)

    def pause_writing(self) -> None:
        self._paused = True
        super().pause_writing()

    def resume_writing(self) -> None:
        self._paused = False
        super().resume_writing()
        if self.on_resume is not None:
            self.on_resume()

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone = True
        if self._abort is not None:
            self._abort.cancel()
            self._abort = None
        super().connection_lost(exc)

    async def run_asgi(self) -> None:
        # Called once the handshake is accepted, before the app sees the scope.
        self.scope["extensions"][EXTENSION] = {"socket": self}
        await super().run_asgi()

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and hasattr(self, "response"):
            del self.request, self.response

    def shutdown(self) -> None:
        if self._closing:
            self._transport.close()
            return
        super().shutdown()

    @property
    def paused(self) -> bool:
        """The transport's buffer is over its high-water mark."""
        return self._paused

    @property
    def open(self) -> bool:
        """Accepted, and no close sent or received yet."""
        return not self._gone and self.conn.state is State.OPEN \
            and not self._transport.is_closing()

    def write_frame(self, frame: bytes) -> bool:
        """Write one encoded frame (see protocol.text_frame); False when the socket is done."""
        if not self.open:
            return False
        self._transport.write(frame)
        return True

    def close_now(self, code: int, reason: str) -> None:
        """Send a close frame behind what is buffered, without a task.

        The app's `receive` returns the disconnect once the peer answers; a peer that does not
        answer within CLOSE_TIMEOUT is cut off, even with unsent data in the buffer.
        """
        if not self.open:
            return
        self._closing = True
        self.conn.send_close(code, reason)
        self._transport.write(b"".join(self.conn.data_to_send()))
        self._abort = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT,
                                                            self._transport.abort)

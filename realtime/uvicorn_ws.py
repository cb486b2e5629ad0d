"""The WebSocket protocol uvicorn runs for us: its sans-I/O one, plus direct frame writes.

The hub sends the same event to every subscriber of a post. Going through ASGI, each delivery
would cross Starlette's `send_text`, its exception wrapper, uvicorn's `send` coroutine and the
`websockets` frame writer, and build the same frame again for every socket. This subclass of
uvicorn's `websockets-sansio` protocol adds the `realtime.socket` scope extension instead: the
endpoint gets this object and the hub writes each ready-made frame (server frames are not
masked, so one encoding serves every socket) straight into the transport. The handshake,
reading, pings and closes stay uvicorn's.

While the transport's buffer is above its high-water mark the socket reports itself `paused`
and the hub keeps frames in its own bounded queue; `on_resume` is called when it drains.

Idle connections are most of a live server's connections, so this class also trims what each
one keeps: a one-waiter inbox and flag instead of an `asyncio.Queue` (four deques of about
760 bytes each) and an `asyncio.Event`, and no handshake request and response once accepted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.http11 import Request

EXTENSION = "realtime.socket"


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


class FrameSocket(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol with a way to write whole frames directly."""

    on_resume: Callable[[], None] | None = None

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Flag()  # type: ignore[assignment]

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:
            # The ASGI task starts on the next loop turn, so the scope can still be extended.
            self.scope["extensions"][EXTENSION] = {"socket": self}

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and hasattr(self, "response"):
            del self.request, self.response

    @property
    def paused(self) -> bool:
        """The transport's buffer is over its high-water mark (uvicorn's `writable` is clear)."""
        return not self.writable.is_set()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.on_resume is not None:
            self.on_resume()

    @property
    def open(self) -> bool:
        """Accepted, and no close sent or received yet."""
        return self.handshake_complete and not self.close_sent and not self.disconnected \
            and not self.transport.is_closing()

    def write_frame(self, frame: bytes) -> bool:
        """Write one encoded frame (see protocol.text_frame); False when the socket is done."""
        if not self.open:
            return False
        self.transport.write(frame)
        return True

    def close_now(self, code: int, reason: str) -> None:
        """Send a close frame behind what is buffered, as the ASGI close would, without a task.

        The app's `receive` then returns the disconnect. A peer that does not answer within
        the close timeout is cut off, even with unsent data in the buffer.
        """
        if not self.open:
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)

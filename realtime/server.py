"""Running uvicorn, and closing WebSockets with 1001 (going away) when told to stop.

uvicorn closes open WebSockets with 1012 when it shuts down; the contract promises 1001,
which clients answer by reconnecting at once. So on SIGINT or SIGTERM the hub first closes
every socket with 1001, then uvicorn's own handler runs as usual.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

from .config import Settings
from .hub import Hub
from .protocol import Close
from .uvicorn_ws import FrameSocket

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def uvicorn_config(app: Any, settings: Settings, **extra: Any) -> uvicorn.Config:
    """The uvicorn options this server runs with; `extra` adds or overrides some.

    Per-message deflate stays off: the hub writes one uncompressed frame for every socket,
    where compression would take a zlib context per connection (about 50 KiB) and one
    encoding per socket.
    """
    options: dict[str, Any] = {
        "host": settings.host, "port": settings.port, "ws": FrameSocket,
        "ws_per_message_deflate": False, "ws_ping_interval": settings.ws_ping_interval,
        "ws_ping_timeout": settings.ws_ping_interval, "ws_max_size": 4096,
        "log_level": settings.log_level, "server_header": False,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default; the app decides whom
        # to believe (REALTIME_FORWARDED_ALLOW_IPS, realtime.proxy).
        "proxy_headers": False,
        "timeout_graceful_shutdown": 5}
    return uvicorn.Config(app, **{**options, **extra})


def run(settings: Settings, on_listening: Callable[[], None] = lambda: None) -> None:
    """Serve until stopped, in `settings.workers` processes sharing one socket.

    `on_listening` runs once the socket is bound; a port already taken ends the process
    (exit status 1, uvicorn logs why) before it runs.
    """
    config = uvicorn_config("realtime.app:app_from_env", settings, factory=True,
                            workers=settings.workers)
    sock = config.bind_socket()
    on_listening()
    if settings.workers <= 1:
        uvicorn.Server(config).run(sockets=[sock])
        return
    Multiprocess(config, sockets=[sock]).run()


def goodbye_on_signals(hub: Hub) -> Callable[[], None]:
    """Put a 1001 goodbye in front of the current signal handlers; returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}

    async def goodbye(sig: int, frame: FrameType | None) -> None:
        await hub.close_all(Close.GOING_AWAY, "server going away")
        handler = previous[signal.Signals(sig)]
        if callable(handler):
            handler(sig, frame)
        else:
            signal.signal(sig, handler)
            signal.raise_signal(sig)

    def on_signal(sig: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(lambda: hub.spawn(goodbye(sig, frame)))

    for sig in SIGNALS:
        signal.signal(sig, on_signal)

    def undo() -> None:
        for sig, handler in previous.items():
            if signal.getsignal(sig) is on_signal:
                signal.signal(sig, handler)

    return undo

"""The second reference: a bare Starlette WebSocket endpoint on uvicorn's `websockets-sansio`.

    python -m bench.reference_starlette PORT

The same little protocol as bench/reference.py (a subscribe op answered with `subscribed`;
`/publish` takes ready-made event frames), written the usual way for an ASGI app: each
connection has a queue and a task that awaits `send_text` for each frame in turn, so a slow
socket never holds up the others. No database, no batching, compression off: the floor that
realtime's own WebSocket path must not fall below.
"""

from __future__ import annotations

import asyncio
import sys

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

channels: dict[str, set[asyncio.Queue[str]]] = {}


async def publish(ws: WebSocket) -> None:
    await ws.accept()
    try:
        while True:
            text = await ws.receive_text()
            for queue in channels.get(orjson.loads(text)["channel"], ()):
                queue.put_nowait(text)
    except WebSocketDisconnect:
        return


async def subscriber(ws: WebSocket) -> None:
    await ws.accept()
    op = orjson.loads(await ws.receive_text())
    channel = op["channel"]
    queue: asyncio.Queue[str] = asyncio.Queue()
    subs = channels.setdefault(channel, set())
    subs.add(queue)

    async def write() -> None:
        while True:
            await ws.send_text(await queue.get())

    writer = asyncio.create_task(write())
    try:
        await ws.send_text(orjson.dumps({"type": "subscribed", "channel": channel, "seq": 0,
                                         "replayed": 0, "watching": len(subs)}).decode())
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass
    finally:
        subs.discard(queue)
        writer.cancel()


app = Starlette(routes=[WebSocketRoute("/ws", subscriber), WebSocketRoute("/publish", publish)])


def main(port: int) -> None:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, ws="websockets-sansio",
                            ws_per_message_deflate=False, ws_max_size=4096, log_level="warning",
                            backlog=4096, lifespan="off")
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        print("ready", flush=True)
        await task

    from bench.subscribers import run

    run(serve())


if __name__ == "__main__":
    main(int(sys.argv[1]))

"""The second reference: a bare Starlette WebSocket endpoint on uvicorn's `websockets-sansio`.

    python -m bench.reference_starlette PORT

The same little protocol as bench/reference.py (a subscribe op answered with `subscribed`;
`/publish` takes ready-made event frames), written the plain way for an ASGI app: the publish
handler awaits `send_text` on each subscriber in turn. (A queue and a writer task per
connection, the other usual way, measured 10,000 deliveries/s here: a task wake-up per
delivery costs more than the send.) No database, no batching, compression off: the floor
that realtime's own WebSocket path must not fall below.
"""

from __future__ import annotations

import asyncio
import sys

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

channels: dict[str, set[WebSocket]] = {}


async def publish(ws: WebSocket) -> None:
    await ws.accept()
    try:
        while True:
            text = await ws.receive_text()
            subs = channels.get(orjson.loads(text)["channel"], set())
            for sub in list(subs):
                try:
                    await sub.send_text(text)
                except (WebSocketDisconnect, RuntimeError, OSError):
                    subs.discard(sub)
    except WebSocketDisconnect:
        return


async def subscriber(ws: WebSocket) -> None:
    await ws.accept()
    op = orjson.loads(await ws.receive_text())
    channel = op["channel"]
    subs = channels.setdefault(channel, set())
    await ws.send_text(orjson.dumps({"type": "subscribed", "channel": channel, "seq": 0,
                                     "replayed": 0, "watching": len(subs) + 1}).decode())
    subs.add(ws)
    try:
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass
    finally:
        subs.discard(ws)


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

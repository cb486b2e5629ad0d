"""The reference: a minimal broadcaster written directly on the `websockets` library.

    python -m bench.reference PORT

`/ws` speaks just enough of realtime's protocol for the load generator: the first frame is a
subscribe op, answered with `subscribed`; from then on the socket receives every frame of its
channel. `/publish` takes ready-made event frames and hands each to `websockets.broadcast`,
which writes to every subscriber's transport without awaiting (and skips those whose buffer is
full). No database, no batching, compression off: what Python can do on this machine.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection, broadcast, serve

channels: dict[str, set[ServerConnection]] = {}


async def handler(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request is not None else "/ws"
    if path == "/publish":
        async for frame in ws:
            text = frame if isinstance(frame, str) else frame.decode()
            broadcast(channels.get(orjson.loads(text)["channel"], ()), text)
        return
    op: Any = json.loads(await ws.recv())
    channel = op["channel"]
    subs = channels.setdefault(channel, set())
    subs.add(ws)
    try:
        await ws.send(json.dumps({"type": "subscribed", "channel": channel, "seq": 0,
                                  "replayed": 0, "watching": len(subs)}))
        async for _ in ws:
            pass
    finally:
        subs.discard(ws)


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, compression=None, max_size=4096,
                     ping_interval=20, ping_timeout=20, backlog=4096) as server:
        print("ready", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    from bench.subscribers import run

    run(main(int(sys.argv[1])))

"""A subscriber load-generator process: many WebSocket connections, counting what arrives.

    python -m bench.subscribers '<json config>'

Config: targets [[host, port], ...], channels [...], count, max_seconds, name, ping_every
(seconds between application pings per connection, 0 for none). Connection i goes to
targets[i % len] and subscribes to channels[i % len].

It prints one JSON line when connected ({"ready": n, "failed": n}), then obeys stdin lines:
`dump PATH` writes the (send time, latency) samples since the last dump to PATH and prints the
counters as one JSON line; `stop` closes everything and exits. It exits by itself after
max_seconds whatever happens.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections import Counter
from typing import Any

from bench.wire import Samples, WSClient, load_config


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Subscribers:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.samples = Samples()
        self.open: set[WSClient] = set()
        self.closed: Counter[int | None] = Counter()

    def _closed(self, client: WSClient) -> None:
        if client in self.open:
            self.open.discard(client)
            self.closed[client.close_code] += 1

    async def connect_all(self) -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        targets = self.config["targets"]
        channels = self.config["channels"]
        gate = asyncio.Semaphore(self.config.get("parallel", 100))
        ok = failed = 0

        async def one(i: int) -> None:
            nonlocal ok, failed
            host, port = targets[i % len(targets)]
            channel = channels[i % len(channels)]
            async with gate:
                try:
                    _, client = await loop.create_connection(
                        lambda: WSClient(host, port, channel, self.samples, self._closed),
                        host, port)
                    self.open.add(client)
                    good = await asyncio.wait_for(client.ready, 30)
                except (OSError, TimeoutError):
                    good = False
            if good:
                ok += 1
            else:
                failed += 1

        await asyncio.gather(*(one(i) for i in range(self.config["count"])))
        return ok, failed

    async def pinger(self, every: float) -> None:
        """Each connection sends {"op":"ping"} every `every` seconds, spread evenly."""
        tick = 0.1
        n = 0
        while True:
            await asyncio.sleep(tick)
            clients = list(self.open)
            share = max(1, round(len(clients) * tick / every)) if clients else 0
            for k in range(share):
                clients[(n + k) % len(clients)].send_json(f'{{"op":"ping","id":{n + k}}}')
            n += share

    def dump(self, path: str) -> dict[str, Any]:
        s = self.samples
        with open(path, "wb") as f:
            f.write(len(s.sent).to_bytes(8, "little"))
            s.sent.tofile(f)
            s.lat_us.tofile(f)
        result = {"events": s.events, "frames": s.frames, "bytes": s.bytes,
                  "samples": len(s.sent), "open": len(self.open),
                  "closed": {str(k): v for k, v in self.closed.items()}}
        s.clear()
        return result

    async def run(self) -> None:
        ok, failed = await self.connect_all()
        print(json.dumps({"ready": ok, "failed": failed}), flush=True)
        if self.config.get("ping_every"):
            ping_task = asyncio.create_task(self.pinger(self.config["ping_every"]))
        else:
            ping_task = None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = (await reader.readline()).decode().strip()
            if not line or line == "stop":
                break
            cmd, _, arg = line.partition(" ")
            if cmd == "dump":
                print(json.dumps(self.dump(arg)), flush=True)
            elif cmd == "mem":
                print(json.dumps({"open": len(self.open)}), flush=True)
        if ping_task is not None:
            ping_task.cancel()
        for client in list(self.open):
            client.close()
        await asyncio.sleep(0.2)


def main() -> None:
    config = load_config(sys.argv[1])
    raise_fd_limit()
    deadline = config.get("max_seconds", 600)
    started = time.monotonic()

    async def bounded() -> None:
        try:
            await asyncio.wait_for(Subscribers(config).run(), deadline)
        except TimeoutError:
            print(json.dumps({"error": f"gave up after {time.monotonic() - started:.0f}s"}),
                  flush=True)

    run(bounded())


def run(main: Any) -> None:
    """asyncio.run on uvloop when it is installed (it is, with uvicorn[standard])."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


if __name__ == "__main__":
    main()

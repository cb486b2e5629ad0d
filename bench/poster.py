"""The poster load-generator process: comments over HTTP (or frames to the reference), reads.

    python -m bench.poster '<json config>'

Config: targets [[host, port], ...] (posts alternate between them), slugs, weights (optional,
how often each slug is picked), mode "http" or "ref" (publish ready-made event frames over a
WebSocket to bench/reference.py), connections (keep-alive HTTP connections), max_seconds.

Commands on stdin, one result JSON line each:
  step RATE SECONDS [READS_PER_S]   open loop: RATE comments/s (plus thread reads) for SECONDS
  flood CONCURRENCY SECONDS         closed loop: as many comments as the server takes
  reads CONCURRENCY SECONDS LIMIT   closed loop: thread pages at random keyset positions
  first COUNT LIMIT                 COUNT first-page reads one after another (latency)
  stop
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter
from typing import Any

import orjson

from bench.subscribers import run
from bench.wire import HTTPClient, comment_body, load_config


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ref_frame(channel: str, seq: int, pad: int) -> str:
    """An event frame shaped like the server's comment.created frame, with the marker."""
    sent = time.monotonic_ns()
    body = f"bench {sent} {seq} " + "x" * pad
    data = {"id": seq, "post": channel[5:], "parent_id": None, "kind": "comment",
            "author": {"name": f"bench{seq % 97}", "url": None, "avatar": "9f86d081884c7d65"},
            "body": body, "html": f"<p>{body}</p>", "status": "approved",
            "created_at": "2025-01-01T00:00:00.000000Z", "edited_at": None, "version": 1,
            "client_id": "00000000-0000-4000-8000-000000000000"}
    return orjson.dumps({"type": "event", "channel": channel, "seq": seq,
                         "event": "comment.created", "data": data}).decode()


class Poster:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.targets = [tuple(t) for t in config["targets"]]
        self.slugs: list[str] = config["slugs"]
        self.weights: list[float] | None = config.get("weights")
        self.rng = random.Random(7)
        self.seq = 0
        self.idle: asyncio.Queue[HTTPClient] = asyncio.Queue()
        self.ref_ws: list[Any] = []

    async def setup(self) -> None:
        per_target = max(1, self.config.get("connections", 16) // len(self.targets))
        for host, port in self.targets:
            for _ in range(per_target):
                self.idle.put_nowait(HTTPClient(host, port))
        if self.config.get("mode") == "ref":
            from websockets.asyncio.client import connect

            for host, port in self.targets:
                self.ref_ws.append(await connect(f"ws://{host}:{port}/publish",
                                                 compression=None, ping_interval=None))

    def pick(self) -> str:
        if self.weights is None:
            return self.slugs[self.seq % len(self.slugs)]
        return self.rng.choices(self.slugs, self.weights)[0]

    async def _post(self, client: HTTPClient, slug: str, seq: int, stats: dict[str, Any]) -> None:
        body, _ = comment_body(seq, self.config.get("pad", 40))
        status = await self._timed(client, "POST", f"/api/posts/{slug}/comments", body,
                                   stats["status"], stats["http_ms"])
        if status == 201:
            stats["ok"] += 1
            stats["per_slug"][slug] += 1

    async def _read(self, client: HTTPClient, path: str, stats: dict[str, Any]) -> None:
        await self._timed(client, "GET", path, None, stats["read_status"], stats["read_ms"])

    async def _timed(self, client: HTTPClient, method: str, path: str, body: bytes | None,
                     statuses: Counter[str], times_ms: list[float]) -> int | None:
        """One request on a borrowed client: its status (or error) counted, its time kept."""
        started = time.monotonic_ns()
        try:
            status, _ = await client.request(method, path, body)
        except (OSError, asyncio.IncompleteReadError) as exc:
            statuses[type(exc).__name__] += 1
            return None
        finally:
            self.idle.put_nowait(client)
        statuses[str(status)] += 1
        times_ms.append((time.monotonic_ns() - started) / 1e6)
        return status

    def _stats(self) -> dict[str, Any]:
        return {"ok": 0, "sent": 0, "status": Counter(), "per_slug": Counter(), "http_ms": [],
                "reads": 0, "read_status": Counter(), "read_ms": [], "behind_ms": 0.0}

    def _summary(self, stats: dict[str, Any], t0: int, t1: int) -> dict[str, Any]:
        http, reads = stats.pop("http_ms"), stats.pop("read_ms")
        stats.update(t0=t0, t1=t1, seconds=(t1 - t0) / 1e9,
                     http_p50_ms=percentile(http, 0.5), http_p99_ms=percentile(http, 0.99),
                     read_p50_ms=percentile(reads, 0.5), read_p99_ms=percentile(reads, 0.99),
                     status=dict(stats["status"]), per_slug=dict(stats["per_slug"]),
                     read_status=dict(stats["read_status"]))
        return stats

    async def step(self, rate: float, seconds: float, reads_per_s: float) -> dict[str, Any]:
        stats = self._stats()
        tasks: set[asyncio.Task[None]] = set()
        events: list[tuple[float, str]] = []
        n = int(rate * seconds)
        events += [(i / rate, "post") for i in range(n)]
        if reads_per_s:
            events += [(i / reads_per_s, "read") for i in range(int(reads_per_s * seconds))]
        events.sort()
        start = time.monotonic()
        t0 = time.monotonic_ns()
        for at, kind in events:
            delay = start + at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if kind == "post":
                self.seq += 1
                slug = self.pick()
                if self.ref_ws:
                    ws = self.ref_ws[self.seq % len(self.ref_ws)]
                    await ws.send(ref_frame(f"post:{slug}", self.seq, self.config.get("pad", 40)))
                    stats["ok"] += 1
                    stats["sent"] += 1
                    continue
                client = await self.idle.get()
                stats["sent"] += 1
                work = self._post(client, slug, self.seq, stats)
            else:
                client = await self.idle.get()
                stats["reads"] += 1
                slug = self.pick()
                work = self._read(client, f"/api/posts/{slug}/comments?limit=50", stats)
            stats["behind_ms"] = max(stats["behind_ms"],
                                     (time.monotonic() - start - at) * 1000)
            task = asyncio.create_task(work)
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        t1 = time.monotonic_ns()
        if tasks:
            await asyncio.wait(tasks, timeout=30)
        summary = self._summary(stats, t0, t1)
        summary["seconds"] = max(summary["seconds"], seconds)
        return summary

    async def flood(self, concurrency: int, seconds: float) -> dict[str, Any]:
        stats = self._stats()
        t0 = time.monotonic_ns()
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            while time.monotonic() < deadline:
                client = await self.idle.get()
                self.seq += 1
                stats["sent"] += 1
                await self._post(client, self.slugs[self.seq % len(self.slugs)], self.seq, stats)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return self._summary(stats, t0, time.monotonic_ns())

    async def reads(self, concurrency: int, seconds: float, limit: int) -> dict[str, Any]:
        stats = self._stats()
        top = int(self.config.get("max_id", 100_000))
        low = int(self.config.get("min_id", 0))
        t0 = time.monotonic_ns()
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            while time.monotonic() < deadline:
                client = await self.idle.get()
                stats["reads"] += 1
                after = self.rng.randrange(low, max(low + 1, top - limit))
                await self._read(client, f"/api/posts/{self.slugs[0]}/comments"
                                 f"?after={after}&limit={limit}", stats)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return self._summary(stats, t0, time.monotonic_ns())

    async def first(self, count: int, limit: int) -> dict[str, Any]:
        stats = self._stats()
        t0 = time.monotonic_ns()
        for _ in range(count):
            client = await self.idle.get()
            stats["reads"] += 1
            await self._read(client, f"/api/posts/{self.slugs[0]}/comments?limit={limit}", stats)
        return self._summary(stats, t0, time.monotonic_ns())

    async def run(self) -> None:
        await self.setup()
        print(json.dumps({"ready": True}), flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            words = (await reader.readline()).decode().split()
            if not words or words[0] == "stop":
                break
            if words[0] == "step":
                reads = float(words[3]) if len(words) > 3 else 0.0
                result = await self.step(float(words[1]), float(words[2]), reads)
            elif words[0] == "flood":
                result = await self.flood(int(words[1]), float(words[2]))
            elif words[0] == "reads":
                result = await self.reads(int(words[1]), float(words[2]), int(words[3]))
            elif words[0] == "first":
                result = await self.first(int(words[1]), int(words[2]))
            else:
                result = {"error": f"unknown command {words[0]}"}
            print(json.dumps(result), flush=True)
        for ws in self.ref_ws:
            await ws.close()


def main() -> None:
    config = load_config(sys.argv[1])

    async def bounded() -> None:
        try:
            await asyncio.wait_for(Poster(config).run(), config.get("max_seconds", 600))
        except TimeoutError:
            print(json.dumps({"error": "poster ran out of time"}), flush=True)

    run(bounded())


if __name__ == "__main__":
    main()

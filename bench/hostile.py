"""Scenario 8, a hostile poster: do bodies that are costly to render slow everyone else?

Subscribers on one post get a steady stream of ordinary comments; their delivery latency is
measured quietly, then again while a hostile client posts bodies chosen to be as costly as
possible for the Markdown renderer (10,000 characters of `![`, `[](` or `*a`) as fast as the
server answers, from 4 connections: first to another, existing thread, then to one that does
not exist. The hostile client has an address of its own (sent through X-Forwarded-For, which
this server trusts from loopback), as a real one would.

The module is also the hostile load generator, run as a process of its own:

    python -m bench.hostile @config.json

Config: targets [[host, port]], connections, forwarded_for, max_seconds. Commands on stdin,
one result JSON line each: `run SLUG SECONDS` (closed loop; answers sent, statuses, request
p50/p99), `stop`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from typing import Any

import orjson

from bench.poster import percentile
from bench.subscribers import run as run_loop
from bench.wire import HTTPClient, load_config

PATTERNS = ("![", "[](", "*a")
TARGET_RATIO = 1.2


def costly_body(seq: int) -> bytes:
    """A comment whose 10,000-character body is among the costliest to render."""
    pattern = PATTERNS[seq % len(PATTERNS)]
    text = (f"{seq} " + pattern * 10_000)[:10_000]
    return orjson.dumps({"body": text, "author": {"name": f"hostile{seq % 7}"},
                         "client_id": str(uuid.uuid4())})


class Hostile:
    """Closed-loop posting of costly bodies over keep-alive connections."""

    def __init__(self, config: dict[str, Any]) -> None:
        host, port = config["targets"][0]
        headers = {"X-Forwarded-For": config["forwarded_for"]}
        self.clients = [HTTPClient(host, port, headers) for _ in range(config["connections"])]
        self.seq = 0

    async def run(self, slug: str, seconds: float) -> dict[str, Any]:
        statuses: Counter[str] = Counter()
        times: list[float] = []
        deadline = time.monotonic() + seconds

        async def worker(client: HTTPClient) -> None:
            while time.monotonic() < deadline:
                self.seq += 1
                started = time.monotonic()
                try:
                    status, _ = await client.request("POST", f"/api/posts/{slug}/comments",
                                                     costly_body(self.seq))
                except (OSError, asyncio.IncompleteReadError) as exc:
                    statuses[type(exc).__name__] += 1
                    continue
                statuses[str(status)] += 1
                times.append((time.monotonic() - started) * 1000)

        t0 = time.monotonic()
        await asyncio.gather(*(worker(c) for c in self.clients))
        took = time.monotonic() - t0
        return {"sent": sum(statuses.values()), "seconds": took, "status": dict(statuses),
                "p50_ms": percentile(times, 0.5), "p99_ms": percentile(times, 0.99)}

    async def serve(self) -> None:
        print(json.dumps({"ready": True}), flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            words = (await reader.readline()).decode().split()
            if not words or words[0] == "stop":
                break
            if words[0] == "run":
                result = await self.run(words[1], float(words[2]))
            else:
                result = {"error": f"unknown command {words[0]}"}
            print(json.dumps(result), flush=True)
        for client in self.clients:
            client.close()


def main() -> None:
    config = load_config(sys.argv[1])

    async def bounded() -> None:
        try:
            await asyncio.wait_for(Hostile(config).serve(), config.get("max_seconds", 600))
        except TimeoutError:
            print(json.dumps({"error": "hostile poster ran out of time"}), flush=True)

    run_loop(bounded())


# -- the scenario (run by bench.runner) -------------------------------------------------------

def scenario_8(ctx: Any, results: dict[str, Any]) -> None:
    """Delivery latency to other subscribers, quiet and under a hostile poster."""
    from bench import runner

    n, rate, seconds = (100, 10.0, 4.0) if ctx.quick else (1000, 20.0, 20.0)
    quiet_slug, target = ctx.slug("s8"), ctx.slug("s8-target")
    runner.create_posts(ctx, [quiet_slug, target])
    port = runner.free_port()
    server = ctx.realtime("s8", port, forwarded_allow_ips="127.0.0.1")
    targets = [("127.0.0.1", port)]
    rows = []
    try:
        subs = ctx.subscribers(targets, [f"post:{quiet_slug}"], n)
        poster = ctx.poster(targets, [quiet_slug])
        hostile = runner.Child(ctx, "hostile", "bench.hostile",
                               {"targets": targets, "connections": 4,
                                "forwarded_for": "198.51.100.66", "max_seconds": 900})
        hostile.line(60)
        poster.call("step 2 1", 60)
        runner.collect(ctx, subs, 0)
        for label, slug in (("quiet: no hostile poster", None),
                            ("hostile poster, costly bodies to an existing thread", target),
                            ("hostile poster, costly bodies to an unknown thread",
                             ctx.slug("s8-nowhere"))):
            assert hostile.proc.stdin is not None
            if slug is not None:
                hostile.proc.stdin.write(f"run {slug} {seconds + 1}\n".encode())
                hostile.proc.stdin.flush()
                time.sleep(0.5)  # the hostile loop is at full speed before measuring
            window = runner.Window([server], [*subs, poster, hostile])
            with window.measure():
                posted = poster.call(f"step {rate} {seconds}", seconds + 120)
            time.sleep(ctx.plan.drain_s)
            got = runner.collect(ctx, subs, posted["t0"])
            attack = hostile.line(seconds + 120) if slug is not None else None
            rows.append((label, posted, got, window, attack))
    finally:
        ctx.release()
    quiet_p99 = rows[0][2].pct(0.99)
    table_rows = []
    for label, posted, got, window, attack in rows:
        ratio = got.pct(0.99) / quiet_p99 if quiet_p99 else float("nan")
        table_rows.append([
            label, runner.fmt(posted["ok"] / posted["seconds"], 1), f"{got.count:,}",
            runner.fmt(got.pct(0.5)), runner.fmt(got.pct(0.99)), runner.fmt(got.pct(1.0)),
            "–" if attack is None else f"{attack['sent'] / attack['seconds']:,.0f}",
            "–" if attack is None else ", ".join(
                f"{k}: {v:,}" for k, v in sorted(attack["status"].items())),
            runner.fmt(window.server_cpu, 0), window.cores_text(),
            "–" if attack is None else f"{ratio:.2f}"])
    worst = max(r[2].pct(0.99) for r in rows[1:])
    ratio = worst / quiet_p99 if quiet_p99 else float("inf")
    results["s8"] = {"quiet_p99": quiet_p99, "worst_p99": worst, "ratio": ratio}
    ctx.report.target("other subscribers' p99 delivery under a hostile poster at full speed",
                      f"≤ {TARGET_RATIO:.1f} × the quiet run",
                      f"{runner.fmt(worst)} vs {runner.fmt(quiet_p99)} ms ({ratio:.2f}×)",
                      ratio <= TARGET_RATIO)
    ctx.report.section(
        "8. Hostile poster",
        f"{n:,} subscribers on one post receive {rate:g} ordinary comments/s for {seconds:g} s"
        " (p99 delivery latency as in scenario 1); meanwhile a hostile client posts"
        " 10,000-character bodies built to be costly to render (`![`, `[](`, `*a` repeated)"
        " from 4 keep-alive connections as fast as the server answers, from an address of its"
        " own. The server renders long bodies in worker processes at a lower CPU priority,"
        " after the cheap checks, within a per-address budget of render time (a client past"
        " it gets 429 before its request is read).\n\n"
        + runner.table(["run", "posts/s", "deliveries", "p50 ms", "p99 ms", "max ms",
                        "hostile requests/s", "hostile answers", "server CPU %",
                        "core0/core1 busy %", "p99 / quiet"], table_rows))


if __name__ == "__main__":
    main()

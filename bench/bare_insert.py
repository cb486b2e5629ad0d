"""The bare write path: INSERT + NOTIFY in one transaction from asyncpg, as fast as it goes.

    python -m bench.bare_insert '<json config>'

Config: url, post_ids (one per worker, so workers do not queue on each other), concurrency,
seconds, notify (false: INSERT alone). Prints {"commits": n, "seconds": s, "rate": r}. This is
what the server's write path is compared with: it skips everything the server adds (request
parsing, validation, Markdown rendering, the idempotency and duplicate checks, the post's row
lock, the events row and the JSON answer).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import asyncpg

from bench.subscribers import run
from bench.wire import load_config

INSERT = ("INSERT INTO comments (post_id, status, author_name, author_email, avatar, body, html)"
          " VALUES ($1, 'approved', $2, $3, 'bench', $4, $5) RETURNING id")


async def bare(config: dict[str, Any]) -> dict[str, Any]:
    concurrency = config["concurrency"]
    post_ids = config["post_ids"]
    notify = config.get("notify", True)
    conns = [await asyncpg.connect(config["url"]) for _ in range(concurrency)]
    commits = 0
    deadline = time.monotonic() + config["seconds"]

    async def worker(i: int) -> None:
        nonlocal commits
        conn = conns[i]
        post_id = post_ids[i % len(post_ids)]
        n = 0
        while time.monotonic() < deadline:
            n += 1
            body = f"bare {time.monotonic_ns()} {i} {n} " + "x" * 40
            async with conn.transaction():
                comment_id = await conn.fetchval(INSERT, post_id, "bare", "bare@bench.example",
                                                 body, f"<p>{body}</p>")
                if notify:
                    payload = json.dumps({"post": "bare", "seq": n, "event": "comment.created",
                                          "data": {"id": comment_id, "body": body,
                                                   "html": f"<p>{body}</p>", "pad": "y" * 250}})
                    await conn.execute("SELECT pg_notify('realtime_bench_bare', $1)", payload)
            commits += 1

    started = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    seconds = time.monotonic() - started
    for conn in conns:
        await conn.close()
    return {"commits": commits, "seconds": seconds, "rate": commits / seconds}


def main() -> None:
    config = load_config(sys.argv[1])

    async def go() -> None:
        result = await asyncio.wait_for(bare(config), config["seconds"] + 60)
        print(json.dumps(result), flush=True)

    run(go())


if __name__ == "__main__":
    main()

"""Scenario 11: logins under load. Subscribers of one post receive 20 comments/s while 20
logins/s arrive (half with the right password from one address, half wrong ones spread over
other loopback addresses so the throttle does not answer them for free); their delivery
latency is compared with the same run without logins, in alternating rounds.

Every login costs an argon2 check, which the server runs off the event loop at low priority;
what it cannot check in time it sheds with 503.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.runner import (
    Context,
    collect,
    create_posts,
    fmt,
    free_port,
    sql,
    table,
)

RATE = 20.0  # comments per second, and logins per second
PASSWORD = "bench password, long enough"
LIMIT = 1.10  # p99 with logins at most 10 % above the run without


class Logins:
    """Logins at a fixed rate on a thread pool, bounded in time, until stopped."""

    def __init__(self, port: int, username: str, rate: float, seconds: float) -> None:
        self.port = port
        self.username = username
        self.rate = rate
        self.seconds = seconds
        self.status: Counter[int] = Counter()
        self.latency: list[float] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def one(self, i: int) -> None:
        right = i % 2 == 0
        source = "127.0.0.1" if right else f"127.0.{1 + i // 250 % 200}.{2 + i % 250}"
        body = json.dumps({"username": self.username,
                           "password": PASSWORD if right else f"guess {i}"})
        started = time.monotonic()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30,
                                              source_address=(source, 0))
            conn.request("POST", "/api/auth/login", body,
                         {"Content-Type": "application/json"})
            status = conn.getresponse().status
            conn.close()
        except OSError:
            status = 0
        with self.lock:
            self.status[status] += 1
            self.latency.append((time.monotonic() - started) * 1000)

    def run(self) -> None:
        with ThreadPoolExecutor(32) as pool:
            start = time.monotonic()
            for i in range(int(self.rate * self.seconds)):
                delay = start + i / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(self.one, i)

    def start(self) -> None:
        self.thread.start()

    def join(self) -> None:
        self.thread.join(self.seconds + 60)


def _moderator(ctx: Context) -> str:
    from realtime import auth, logins

    name = f"bench-{ctx.run_id}"
    password_hash = auth.hash_password(PASSWORD)

    async def work(conn: Any) -> None:
        await conn.execute("INSERT INTO moderators (username, password_hash) VALUES ($1, $2)",
                           name, password_hash)
        await conn.execute("DELETE FROM login_failures WHERE account = $1",
                           logins.account_key(name))

    sql(ctx, work)
    return name


def _drop_moderator(ctx: Context, name: str) -> None:
    from realtime import logins

    async def work(conn: Any) -> None:
        await conn.execute("DELETE FROM moderators WHERE username = $1", name)
        await conn.execute("DELETE FROM login_failures WHERE account = $1",
                           logins.account_key(name))

    sql(ctx, work)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def scenario_11(ctx: Context, results: dict[str, Any]) -> None:
    n = ctx.plan.node_subs
    seconds, rounds = (2.0, 2) if ctx.quick else (15.0, 8)
    slug = ctx.slug("s11")
    create_posts(ctx, [slug])
    name = _moderator(ctx)
    port = free_port()
    server = ctx.realtime("s11", port)
    latency: dict[bool, list[float]] = {False: [], True: []}
    logins: list[Logins] = []
    delivered: dict[bool, int] = {False: 0, True: 0}
    cpu: dict[bool, float] = {False: 0.0, True: 0.0}
    wall: dict[bool, float] = {False: 0.0, True: 0.0}
    try:
        targets = [("127.0.0.1", port)]
        subs = ctx.subscribers(targets, [f"post:{slug}"], n)
        poster = ctx.poster(targets, [slug])
        poster.call(f"step {RATE} 2", 60)  # warm-up: connections, caches, the first hash
        collect(ctx, subs, 0)
        for i in range(rounds):
            with_logins = i % 2 == 1
            load = Logins(port, name, RATE, seconds) if with_logins else None
            before, began = server.cpu(), time.monotonic()
            if load is not None:
                load.start()
                logins.append(load)
            posted = poster.call(f"step {RATE} {seconds}", seconds + 120)
            if load is not None:
                load.join()
            cpu[with_logins] += server.cpu() - before
            wall[with_logins] += time.monotonic() - began
            time.sleep(ctx.plan.drain_s)
            got = collect(ctx, subs, posted["t0"])
            latency[with_logins] += got.lat_ms
            delivered[with_logins] += got.count
    finally:
        ctx.release()
        _drop_moderator(ctx, name)
    quiet, busy = _pct(latency[False], 0.99), _pct(latency[True], 0.99)
    ratio = busy / quiet if quiet else float("nan")
    status: Counter[int] = Counter()
    login_ms: list[float] = []
    for load in logins:
        status.update(load.status)
        login_ms += load.latency
    results["s11"] = {"quiet_p99": quiet, "busy_p99": busy, "ratio": ratio}
    rows = [["without logins", fmt(_pct(latency[False], 0.5)), fmt(quiet),
             fmt(max(latency[False], default=0)), f"{delivered[False]:,}",
             fmt(100 * cpu[False] / wall[False], 0), "–", "–"],
            ["with 20 logins/s", fmt(_pct(latency[True], 0.5)), fmt(busy),
             fmt(max(latency[True], default=0)), f"{delivered[True]:,}",
             fmt(100 * cpu[True] / wall[True], 0),
             ", ".join(f"{code or 'failed'}: {count}" for code, count in sorted(status.items())),
             f"{fmt(_pct(login_ms, 0.5), 0)} / {fmt(_pct(login_ms, 0.99), 0)}"]]
    ctx.report.target(f"delivery p99 to {n:,} subscribers at 20 comments/s, with 20 logins/s",
                      "within 10 % of the run without logins",
                      f"{fmt(busy)} vs {fmt(quiet)} ms ({ratio:.2f}×)", busy <= LIMIT * quiet)
    ctx.report.section(
        "11. Logins under load",
        f"{n:,} subscribers of one post, 20 comments/s, {rounds} alternating rounds of"
        f" {seconds:g} s without and with 20 logins/s (half right from 127.0.0.1, half wrong"
        " from other loopback addresses). 200: logged in; 401: wrong password; 429: throttled;"
        " 503: shed, too many checks waiting.\n\n"
        + table(["run", "delivery p50 ms", "p99 ms", "max ms", "deliveries", "server CPU %",
                 "login answers", "login p50 / p99 ms"], rows))

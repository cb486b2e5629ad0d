"""The scenario runner behind `realtime bench`: servers, load generators, figures, report.

Every process it starts is a real separate process: the server under test (`python -m realtime
serve`, or a reference broadcaster) pinned to CPU 0 with `taskset` where there are two CPUs,
the load generators (bench/subscribers.c built with `cc`, else bench/subscribers.py;
bench/poster.py, bench/bare_insert.py) pinned to CPU 1. Only loopback addresses are used;
every load loop is bounded in count and in time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import platform
import random
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import psutil

ROOT = Path(__file__).resolve().parent.parent
# Each run's results sit between markers naming the scenarios it ran ("all" for a full
# run), so a run of some scenarios replaces only an earlier run of the same ones.
RESULTS = re.compile(r"<!-- results:begin(?: (?P<key>[0-9,]+|all))? -->.*?<!-- results:end"
                     r"(?: [0-9,]+| all)? -->\n?", re.S)
SCENARIOS = {
    "1": "Hot thread fan-out",
    "2": "Many threads",
    "3": "Idle connections",
    "4": "Writes",
    "5": "Reads",
    "6": "Two nodes",
    "7": "Reference broadcaster",
    "8": "Hostile poster",
    "9": "Embed first paint in a browser",
    "10": "Console live change",
    "11": "Logins under load",
    "12": "Import peak memory",
}
P99_LIMIT_MS = 100.0
TARGET_DELIVERIES = 20000


# -- configuration ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """The sizes of one run: the default run, or --quick."""

    fanout_subs: tuple[int, ...]
    ladder: tuple[int, ...]          # deliveries per second asked for, step by step
    step_s: float
    drain_s: float
    many_conns: int
    many_posts: int
    many_rate: float
    many_reads: float
    many_s: float
    idle_conns: int
    idle_max: bool
    write_concurrency: int
    write_subs_per_post: int
    write_s: float
    seed_comments: int
    read_s: float
    first_reads: int
    node_subs: int

    @classmethod
    def for_run(cls, quick: bool) -> Plan:
        if quick:
            return cls(fanout_subs=(100,), ladder=(1000, 3000), step_s=1.0, drain_s=0.3,
                       many_conns=300, many_posts=30, many_rate=20, many_reads=10, many_s=1.5,
                       idle_conns=300, idle_max=False, write_concurrency=4,
                       write_subs_per_post=5, write_s=1.5, seed_comments=3000, read_s=1.0,
                       first_reads=20, node_subs=100)
        return cls(fanout_subs=(1000, 10000),
                   ladder=(5000, 10000, 20000, 30000, 40000, 50000, 60000, 70000, 80000,
                           100000, 120000, 150000),
                   step_s=5.0, drain_s=1.0, many_conns=10000, many_posts=1000, many_rate=50,
                   many_reads=20, many_s=30.0, idle_conns=10000, idle_max=True,
                   write_concurrency=16, write_subs_per_post=10, write_s=10.0,
                   seed_comments=100_000, read_s=10.0, first_reads=200, node_subs=1000)


@dataclass
class Report:
    """What the run found, rendered as Markdown at the end."""

    sections: list[tuple[str, str]] = field(default_factory=list)
    targets: list[tuple[str, str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    background: str = ""

    def section(self, title: str, text: str) -> None:
        self.sections.append((title, text))
        print(f"\n## {title}\n{text}", flush=True)

    def target(self, what: str, goal: str, figure: str, met: bool | None) -> None:
        verdict = "n/a" if met is None else ("met" if met else "**missed**")
        self.targets.append((what, goal, figure, verdict))


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


# -- processes -------------------------------------------------------------------------------

def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def pin(cpu: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu)]
    return []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Child:
    """A load-generator process spoken to by JSON lines over its stdin and stdout."""

    def __init__(self, ctx: Context, name: str, module: str | list[str],
                 config: dict[str, Any]) -> None:
        """`module` is a Python module to run with `-m`, or the argv of a program."""
        self.name = name
        self.err = open(ctx.tmp / f"{name}.log", "wb")  # noqa: SIM115
        config_file = ctx.tmp / f"{name}.json"
        config_file.write_text(json.dumps(config))
        program = module if isinstance(module, list) else [sys.executable, "-m", module]
        self.proc = subprocess.Popen(
            [*pin(1), *program, f"@{config_file}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, cwd=ROOT,
            env=ctx.child_env)
        ctx.children.append(self)
        self.buf = b""
        self.ps = psutil.Process(self.proc.pid)

    def line(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None and not select.select(
                    [self.proc.stdout], [], [], 0)[0]:
                raise RuntimeError(f"{self.name} gave no answer (see {self.err.name}):"
                                   f" {self.tail()}")
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
                if not chunk and self.proc.poll() is not None:
                    continue
                self.buf += chunk
        text, _, self.buf = self.buf.partition(b"\n")
        found: dict[str, Any] = json.loads(text)
        if "error" in found:
            raise RuntimeError(f"{self.name}: {found['error']}")
        return found

    def call(self, command: str, timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()
        return self.line(timeout)

    def cpu(self) -> float:
        try:
            times = self.ps.cpu_times()
        except psutil.NoSuchProcess:
            return 0.0
        return float(times.user + times.system)

    def tail(self) -> str:
        self.err.flush()
        return Path(self.err.name).read_text(errors="replace")[-800:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(b"stop\n")
                self.proc.stdin.flush()
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.err.close()


class Server:
    """The server under test (or the reference), a separate process pinned to CPU 0."""

    def __init__(self, ctx: Context, name: str, argv: list[str], port: int,
                 env: dict[str, str] | None = None, ready_path: str = "/readyz") -> None:
        self.name = name
        self.port = port
        self.log = open(ctx.tmp / f"{name}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([*pin(0), *argv], stdout=self.log, stderr=self.log,
                                     cwd=ROOT, env={**ctx.child_env, **(env or {})})
        ctx.servers.append(self)
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {self.tail()}")
            try:
                if ready_path:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{ready_path}",
                                                timeout=2) as answer:
                        if answer.status == 200:
                            break
                else:
                    with socket.create_connection(("127.0.0.1", port), timeout=2):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start: {self.tail()}")
            time.sleep(0.2)

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def tail(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-1500:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@dataclass
class Context:
    url: str
    quick: bool
    plan: Plan
    tmp: Path
    run_id: str
    report: Report
    child_env: dict[str, str]
    children: list[Child] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)
    dumps: int = 0

    def slug(self, name: str) -> str:
        return f"bench-{self.run_id}-{name}"

    def realtime(self, name: str, port: int, **settings: Any) -> Server:
        env = {"REALTIME_DATABASE_URL": self.url, "REALTIME_LOG_LEVEL": "warning",
               "REALTIME_MAX_CONNECTIONS_PER_IP": "1000000"}
        env.update({f"REALTIME_{k.upper()}": str(v) for k, v in settings.items()})
        return Server(self, name, [sys.executable, "-m", "realtime", "serve", "--host",
                                   "127.0.0.1", "--port", str(port)], port, env)

    def reference(self, port: int, kind: str = "websockets") -> Server:
        """`websockets`: bench/reference.py; `starlette`: bench/reference_starlette.py."""
        module = "bench.reference" if kind == "websockets" else "bench.reference_starlette"
        return Server(self, f"reference-{kind}", [sys.executable, "-m", module, str(port)],
                      port, ready_path="")

    def subscribers(self, targets: list[tuple[str, int]], channels: list[str], count: int,
                    procs: int = 0, ping_every: float = 0.0) -> list[Child]:
        procs = procs or max(1, -(-count // 5000))
        children = []
        for i in range(procs):
            share = count // procs + (1 if i < count % procs else 0)
            # Each process takes a rotation of the channel list that keeps the global spread.
            mine = channels[i::procs] if len(channels) > 1 else channels
            children.append(Child(self, f"subs{len(self.children)}", subscriber_program(self),
                                  {"targets": targets, "channels": mine, "count": share,
                                   "max_seconds": 900, "ping_every": ping_every}))
        ready = failed = 0
        for child in children:
            answer = child.line(180)
            ready += answer["ready"]
            failed += answer["failed"]
        if failed:
            self.report.notes.append(f"{failed} of {count} subscribers failed to connect")
        return children

    def poster(self, targets: list[tuple[str, int]], slugs: list[str], mode: str = "http",
               **extra: Any) -> Child:
        child = Child(self, f"poster{len(self.children)}", "bench.poster",
                      {"targets": targets, "slugs": slugs, "mode": mode, "connections": 32,
                       "max_seconds": 900, **extra})
        child.line(60)
        return child

    def release(self) -> None:
        for child in self.children:
            child.stop()
        for server in self.servers:
            server.stop()
        self.children.clear()
        self.servers.clear()


def subscriber_program(ctx: Context) -> list[str]:
    """The subscriber generator: bench/subscribers.c built once per run into the run's temp
    directory when there is a C compiler (Python spends 15-20 µs per frame: at tens of
    thousands of deliveries/s the generator would be the bottleneck), else the Python one."""
    binary, log = ctx.tmp / "subscribers", ctx.tmp / "subscribers-cc.log"
    cc = shutil.which("cc")
    if cc and not log.exists():  # the log marks that the build was tried
        try:
            built = subprocess.run([cc, "-O2", "-o", str(binary),
                                    str(ROOT / "bench" / "subscribers.c")],
                                   capture_output=True, text=True, timeout=120)
            failure = (built.stdout + built.stderr) if built.returncode else ""
        except (OSError, subprocess.TimeoutExpired) as exc:
            failure = repr(exc)
        log.write_text(failure or "ok")
        if failure:
            binary.unlink(missing_ok=True)
            ctx.report.notes.append("`cc` could not build bench/subscribers.c, the Python"
                                    f" subscriber generator ran instead: {failure[-300:]}")
    if binary.exists():
        return [str(binary)]
    return [sys.executable, "-m", "bench.subscribers"]


def subscriber_generator(ctx: Context) -> list[str]:
    """The report header's line on which subscriber generator ran (none when none did)."""
    if (ctx.tmp / "subscribers").exists():
        return ["- subscriber load generator: C (`bench/subscribers.c` built with `cc -O2`;"
                " one epoll loop per process, 5,000 connections per process unless a"
                " scenario says otherwise)"]
    if any(ctx.tmp.glob("subs*.json")):
        why = "`cc` failed, see the notes" if (ctx.tmp / "subscribers-cc.log").exists() \
            else "no `cc` found"
        return ["- subscriber load generator: Python (`bench/subscribers.py`, asyncio on"
                f" uvloop; {why})"]
    return []


# -- database setup (benchmark setup, not product code) ---------------------------------------

def sql(ctx: Context, work: Callable[[Any], Any]) -> Any:
    async def go() -> Any:
        conn = await asyncpg.connect(ctx.url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def create_posts(ctx: Context, slugs: list[str]) -> list[int]:
    async def work(conn: Any) -> list[int]:
        rows = await conn.fetch(
            "INSERT INTO posts (slug, title) SELECT s, 'Benchmark ' || s FROM unnest($1::text[]) s"
            " RETURNING id, slug", slugs)
        by_slug = {r["slug"]: r["id"] for r in rows}
        return [by_slug[s] for s in slugs]

    result: list[int] = sql(ctx, work)
    return result


SEED_SQL = """
WITH ins AS (
  INSERT INTO comments (post_id, status, author_name, author_email, avatar, body, html,
                        created_at)
  SELECT $1, 'approved', 'reader ' || (g % 500), 'r' || (g % 500) || '@bench.example',
         substr(md5((g % 500)::text), 1, 16),
         'Seeded comment number ' || g || ': ' || repeat('lorem ipsum ', 6),
         '<p>Seeded comment number ' || g || ': ' || repeat('lorem ipsum ', 6) || '</p>',
         now() - interval '1 day' + g * interval '1 millisecond'
  FROM generate_series(1, $2) AS g
  RETURNING id
)
SELECT min(id), max(id), count(*) FROM ins
"""


def seed_thread(ctx: Context, post_id: int, count: int) -> tuple[int, int]:
    async def work(conn: Any) -> tuple[int, int]:
        row = await conn.fetchrow(SEED_SQL, post_id, count)
        await conn.execute("UPDATE posts SET comment_count = $2, seq = $3 WHERE id = $1",
                           post_id, count, count)
        await conn.execute("ANALYZE comments")
        return int(row[0]), int(row[1])

    result: tuple[int, int] = sql(ctx, work)
    return result


def cleanup(ctx: Context) -> None:
    async def work(conn: Any) -> None:
        await conn.execute("DELETE FROM posts WHERE slug LIKE $1", f"bench-{ctx.run_id}-%")
        # Hundreds of thousands of deleted rows would otherwise slow the index scans of the
        # next run's writes (seen: 466 -> 127 comments/s) until autovacuum caught up.
        await conn.execute("VACUUM (ANALYZE) comments, events, posts, reports")

    sql(ctx, work)


# -- measuring ---------------------------------------------------------------------------------

@dataclass
class Window:
    """CPU use of the servers, the generators and each core over one measured interval."""

    servers: list[Server]
    generators: list[Child]
    wall: float = 0.0
    server_cpu: float = 0.0
    gen_cpu: float = 0.0
    cores: list[float] = field(default_factory=list)

    @contextmanager
    def measure(self) -> Iterator[Window]:
        s0 = sum(s.cpu() for s in self.servers)
        g0 = sum(g.cpu() for g in self.generators)
        c0 = psutil.cpu_times(percpu=True)
        t0 = time.monotonic()
        yield self
        self.wall = time.monotonic() - t0
        self.server_cpu = (sum(s.cpu() for s in self.servers) - s0) / self.wall * 100
        self.gen_cpu = (sum(g.cpu() for g in self.generators) - g0) / self.wall * 100
        c1 = psutil.cpu_times(percpu=True)
        self.cores = []
        for a, b in zip(c0, c1, strict=True):
            total = sum(b) - sum(a)
            idle = (b.idle + getattr(b, "iowait", 0)) - (a.idle + getattr(a, "iowait", 0))
            self.cores.append(100 * (1 - idle / total) if total > 0 else 0.0)

    def cores_text(self) -> str:
        return "/".join(f"{c:.0f}" for c in self.cores)


@dataclass
class Deliveries:
    count: int
    lat_ms: list[float]
    frames: int
    bytes: int
    closed: Counter[str]

    def pct(self, q: float) -> float:
        if not self.lat_ms:
            return float("nan")
        return self.lat_ms[min(len(self.lat_ms) - 1, int(q * len(self.lat_ms)))]


def collect(ctx: Context, subs: list[Child], since_ns: int) -> Deliveries:
    """Every subscriber's samples since its last dump, of posts sent at or after since_ns."""
    lat: list[float] = []
    frames = nbytes = 0
    closed: Counter[str] = Counter()
    for child in subs:
        ctx.dumps += 1
        path = ctx.tmp / f"dump{ctx.dumps}.bin"
        answer = child.call(f"dump {path}", 120)
        frames += answer["frames"]
        nbytes += answer["bytes"]
        closed.update(answer["closed"])
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            sent, ms = array("q"), array("q")
            sent.fromfile(f, n)
            ms.fromfile(f, n)
        path.unlink()
        lat += [m / 1000 for s, m in zip(sent, ms, strict=True) if s >= since_ns]
    lat.sort()
    return Deliveries(len(lat), lat, frames, nbytes, closed)


def ladder(ctx: Context, label: str, servers: list[Server], subs: list[Child], poster: Child,
           n_subs: int) -> dict[str, Any]:
    """Post at a rising rate until p99 passes the limit; one row per step."""
    plan = ctx.plan
    rows: list[list[Any]] = []
    steps: list[dict[str, Any]] = []
    poster.call("step 2 1", 60)  # warm-up: connections, caches
    collect(ctx, subs, 0)
    for wanted in plan.ladder:
        rate = wanted / n_subs
        window = Window(servers, [*subs, poster])
        with window.measure():
            posted = poster.call(f"step {rate:.3f} {plan.step_s}", plan.step_s + 120)
        time.sleep(plan.drain_s)
        got = collect(ctx, subs, posted["t0"])
        expected = posted["ok"] * n_subs
        seconds = posted["seconds"] or plan.step_s
        achieved = posted["ok"] / seconds
        slow = got.closed.get("4008", 0)
        p99 = got.pct(0.99)
        ok = (p99 <= P99_LIMIT_MS and got.count >= 0.99 * expected
              and achieved >= 0.95 * rate and not slow)
        step = {"rate": rate, "achieved": achieved, "deliveries_s": got.count / seconds,
                "p50": got.pct(0.5), "p99": p99, "max": got.pct(1.0),
                "server_cpu": window.server_cpu, "gen_cpu": window.gen_cpu,
                "cores": window.cores_text(), "delivered": got.count / expected if expected
                else 0.0, "http_p50": posted["http_p50_ms"], "ok": ok,
                "batch": got.count / got.frames if got.frames else 0.0, "slow": slow}
        steps.append(step)
        rows.append([fmt(rate, 1), fmt(achieved, 1), fmt(step["deliveries_s"], 0),
                     fmt(step["p50"]), fmt(p99), fmt(step["max"]), fmt(window.server_cpu, 0),
                     fmt(window.gen_cpu, 0), step["cores"], fmt(100 * step["delivered"], 1),
                     fmt(step["batch"], 2), fmt(step["http_p50"]),
                     "yes" if ok else "no" + (f" ({slow}×4008)" if slow else "")])
        print(f"  {label} {rows[-1]}", flush=True)
        # Go on past a failed step until the target point (20 posts/s to 1,000 subscribers =
        # 20,000 deliveries/s) is covered, unless it is hopeless.
        if not ok and (wanted >= TARGET_DELIVERIES or p99 > 10 * P99_LIMIT_MS
                       or achieved < 0.5 * rate):
            break
    passing = []  # the steps up to the first that failed
    for s in steps:
        if not s["ok"]:
            break
        passing.append(s)
    best = max(passing, key=lambda s: s["deliveries_s"]) if passing else None
    text = table(["posts/s asked", "posts/s done", "deliveries/s", "p50 ms", "p99 ms", "max ms",
                  "server CPU %", "generators CPU %", "core0/core1 busy %", "delivered %",
                  "events/frame", "POST p50 ms", "p99 ≤ 100 ms"], rows)
    return {"steps": steps, "best": best, "peak": max(s["deliveries_s"] for s in steps),
            "text": text}


def fanout_run(ctx: Context, name: str, n: int, reference: str = "",
               nodes: int = 1) -> dict[str, Any]:
    """One ladder: N subscribers on one post, against realtime (1 or 2 nodes) or a reference
    (`websockets` or `starlette`, see Context.reference)."""
    slug = ctx.slug(f"{name}-{n}")
    create_posts(ctx, [slug])
    servers = []
    for i in range(nodes):
        port = free_port()
        servers.append(ctx.reference(port, reference) if reference
                       else ctx.realtime(f"{name}{i}", port))
    targets = [("127.0.0.1", s.port) for s in servers]
    try:
        subs = ctx.subscribers(targets, [f"post:{slug}"], n, procs=max(1, -(-n // 5000)))
        poster = ctx.poster(targets, [slug], mode="ref" if reference else "http")
        return ladder(ctx, f"{name} N={n}", servers, subs, poster, n)
    finally:
        ctx.release()


def summary_line(result: dict[str, Any]) -> str:
    best = result["best"]
    if best is None:
        return "no step kept p99 under 100 ms"
    return (f"highest rate with p99 ≤ 100 ms: {fmt(best['achieved'], 1)} posts/s ="
            f" **{fmt(best['deliveries_s'], 0)} deliveries/s** (p50 {fmt(best['p50'])} ms,"
            f" p99 {fmt(best['p99'])} ms, server CPU {fmt(best['server_cpu'], 0)} %);"
            f" peak {fmt(result['peak'], 0)} deliveries/s")


# -- scenarios ---------------------------------------------------------------------------------

def scenario_1(ctx: Context, results: dict[str, Any]) -> None:
    text = []
    for n in ctx.plan.fanout_subs:
        result = fanout_run(ctx, "s1", n)
        results[f"s1-{n}"] = result
        text.append(f"### {n:,} subscribers on one post\n\n{result['text']}\n\n"
                    f"{summary_line(result)}.")
    ctx.report.section("1. Hot thread fan-out", "\n\n".join(text))


REFERENCES = {"websockets": "`websockets.broadcast` reference",
              "starlette": "bare Starlette endpoint (uvicorn `websockets-sansio`)"}


def scenario_7(ctx: Context, results: dict[str, Any]) -> None:
    text = []
    for n in ctx.plan.fanout_subs:
        for kind, label in REFERENCES.items():
            result = fanout_run(ctx, f"s7{kind[0]}", n, reference=kind)
            results[f"s7{kind[0]}-{n}"] = result
            text.append(f"### {n:,} subscribers, {label}\n\n"
                        f"{result['text']}\n\n{summary_line(result)}.")
            ours = results.get(f"s1-{n}")
            if ours and ours["best"] and result["best"]:
                ratio = ours["best"]["deliveries_s"] / result["best"]["deliveries_s"]
                text.append(f"realtime / {label}, sustained deliveries/s at {n:,} subscribers:"
                            f" **{ratio:.2f}**; peak: {ours['peak'] / result['peak']:.2f}.")
    ctx.report.section(
        "7. References: a minimal `websockets` broadcaster and a bare Starlette endpoint",
        "The `websockets` one hands each frame to `websockets.broadcast`; the Starlette one"
        " awaits `send_text` on each subscriber in turn (bench/reference.py,"
        " bench/reference_starlette.py). Neither touches a database.\n\n" + "\n\n".join(text))


def scenario_6(ctx: Context, results: dict[str, Any]) -> None:
    n = ctx.plan.node_subs
    result = fanout_run(ctx, "s6", n, nodes=2)
    results["s6"] = result
    ctx.report.section(
        "6. Two nodes",
        f"Two `realtime serve` processes on the same database, **both pinned to CPU 0** (the"
        f" generators keep CPU 1); {n:,} subscribers split over them, posts alternating"
        f" between them. Server CPU is the sum of both.\n\n{result['text']}\n\n"
        f"{summary_line(result)}.")


def zipf_weights(n: int) -> list[float]:
    return [1 / (i + 1) for i in range(n)]


def scenario_2(ctx: Context, results: dict[str, Any]) -> None:
    plan = ctx.plan
    slugs = [ctx.slug(f"s2-{i}") for i in range(plan.many_posts)]
    create_posts(ctx, slugs)
    weights = zipf_weights(len(slugs))
    rng = random.Random(11)
    channels = [f"post:{s}" for s in rng.choices(slugs, weights, k=plan.many_conns)]
    readers = Counter(c[5:] for c in channels)
    port = free_port()
    server = ctx.realtime("s2", port)
    try:
        rss0 = server.rss()
        subs = ctx.subscribers([("127.0.0.1", port)], channels, plan.many_conns, procs=2,
                               ping_every=25.0)
        rss1 = server.rss()
        poster = ctx.poster([("127.0.0.1", port)], slugs, weights=weights, track=True)
        poster.call("step 2 1", 60)
        collect(ctx, subs, 0)
        window = Window([server], [*subs, poster])
        with window.measure():
            posted = poster.call(f"step {plan.many_rate} {plan.many_s} {plan.many_reads}",
                                 plan.many_s + 120)
        time.sleep(plan.drain_s)
        got = collect(ctx, subs, posted["t0"])
    finally:
        ctx.release()
    expected = sum(count * readers[slug] for slug, count in posted["per_slug"].items())
    seconds = posted["seconds"]
    results["s2"] = {"p50": got.pct(0.5), "p99": got.pct(0.99)}
    top = readers.most_common(1)[0][1]
    rows = [[f"{plan.many_conns:,} connections over {plan.many_posts:,} posts (readers per post"
             f" Zipf, busiest {top:,}, median"
             f" {sorted(readers.values())[len(readers) // 2]}); app ping every 25 s each",
             fmt(posted["ok"] / seconds, 1), fmt(posted["reads"] / seconds, 1),
             fmt(got.count / seconds, 0), fmt(100 * got.count / expected if expected else 0, 1),
             fmt(got.pct(0.5)), fmt(got.pct(0.99)), fmt(got.pct(1.0)),
             fmt(posted["read_p50_ms"]), fmt(window.server_cpu, 0), fmt(window.gen_cpu, 0),
             fmt((rss1 - rss0) / plan.many_conns / 1024, 1)]]
    ctx.report.section(
        "2. Many threads",
        "Comments go to posts with the same Zipf popularity as the readers; thread reads"
        " (`limit=50`) run beside them; every connection sends the client's application ping"
        " every 25 s.\n\n" + table(
            ["setup", "posts/s", "reads/s", "deliveries/s", "delivered %", "p50 ms", "p99 ms",
             "max ms", "read p50 ms", "server CPU %", "generators CPU %", "KiB/connection"],
            rows))


def scenario_3(ctx: Context, results: dict[str, Any]) -> None:
    plan = ctx.plan
    n = plan.idle_conns
    slugs = [ctx.slug(f"s3-{i}") for i in range(100)]
    create_posts(ctx, slugs)
    channels = [f"post:{s}" for s in slugs]
    rows = []
    for label, reference in (("realtime", ""), ("reference (`websockets`)", "websockets"),
                             ("bare Starlette (uvicorn `websockets-sansio`)", "starlette")):
        port = free_port()
        server = ctx.reference(port, reference) if reference else ctx.realtime("s3", port)
        try:
            time.sleep(1.0)
            rss0 = server.rss()
            subs = ctx.subscribers([("127.0.0.1", port)], channels, n, procs=max(1, n // 5000))
            time.sleep(2.0)
            rss1 = server.rss()
            per = (rss1 - rss0) / n / 1024
            results[f"s3-{reference or 'rt'}"] = per
            most = ""
            if plan.idle_max and not reference:
                limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
                more = max(0, limit - n - 300)
                extra = ctx.subscribers([("127.0.0.1", port)], channels, more, procs=2)
                time.sleep(2.0)
                held = sum(c.call("mem", 30)["open"] for c in [*subs, *extra])
                most = (f"{held:,} held (asked {n + more:,}; the process's file limit is"
                        f" {limit:,}); RSS {server.rss() / 2**20:,.0f} MiB")
                results["s3-held"] = held
            rows.append([label, f"{n:,}", f"{rss0 / 2**20:,.1f}", f"{rss1 / 2**20:,.1f}",
                         fmt(per, 1), most or "–"])
        finally:
            ctx.release()
    ctx.report.section(
        "3. Idle connections",
        "Each connection completes the handshake and subscribes to one of 100 posts, then"
        " idles; memory is the server's RSS growth divided by the connections.\n\n"
        + table(["server", "connections", "RSS before MiB", "RSS after MiB", "KiB/connection",
                 "most held by one process"], rows))


def scenario_4(ctx: Context, results: dict[str, Any]) -> None:
    plan = ctx.plan
    c = plan.write_concurrency
    bare_slugs = [ctx.slug(f"s4-bare-{i}") for i in range(c)]
    bare_ids = create_posts(ctx, bare_slugs)
    bare = {}
    for notify in (True, False):
        child = Child(ctx, f"bare{int(notify)}", "bench.bare_insert",
                      {"url": ctx.url, "post_ids": bare_ids, "concurrency": c,
                       "seconds": plan.write_s, "notify": notify})
        window = Window([], [child])
        with window.measure():
            bare[notify] = child.line(plan.write_s + 120)
        bare[notify]["cores"] = window.cores_text()
        child.stop()
    ctx.children.clear()
    slugs = [ctx.slug(f"s4-{i}") for i in range(c)]
    create_posts(ctx, slugs)
    port = free_port()
    server = ctx.realtime("s4", port)
    try:
        subs = ctx.subscribers([("127.0.0.1", port)], [f"post:{s}" for s in slugs],
                               c * plan.write_subs_per_post, procs=1)
        poster = ctx.poster([("127.0.0.1", port)], slugs, connections=c)
        poster.call("step 5 1", 60)
        window = Window([server], [*subs, poster])
        with window.measure():
            posted = poster.call(f"flood {c} {plan.write_s}", plan.write_s + 120)
        time.sleep(plan.drain_s)
        got = collect(ctx, subs, posted["t0"])
    finally:
        ctx.release()
    rate = posted["ok"] / posted["seconds"]
    ratio = rate / bare[True]["rate"]
    results["s4"] = {"rate": rate, "bare": bare[True]["rate"], "ratio": ratio}
    rows = [
        ["bare asyncpg: INSERT + NOTIFY per transaction", fmt(bare[True]["rate"], 0), "–", "–",
         bare[True]["cores"]],
        ["bare asyncpg: INSERT alone", fmt(bare[False]["rate"], 0), "–", "–",
         bare[False]["cores"]],
        [f"realtime: POST /api/posts/…/comments, {c * plan.write_subs_per_post} subscribers"
         f" ({plan.write_subs_per_post} per post)", fmt(rate, 0), fmt(window.server_cpu, 0),
         f"{fmt(posted['http_p50_ms'])} / {fmt(posted['http_p99_ms'])}",
         window.cores_text()],
    ]
    ctx.report.section(
        "4. Writes",
        f"{c} concurrent writers, each on its own post (so none waits for another's row lock),"
        f" closed loop for {plan.write_s:g} s. Non-201 answers:"
        f" {({k: v for k, v in posted['status'].items() if k != '201'}) or 'none'};"
        f" deliveries during the flood: {got.count:,} ({got.pct(0.99):.1f} ms p99).\n\n"
        + table(["writer", "commits/s", "server CPU %", "POST p50 / p99 ms",
                 "core0/core1 busy %"], rows)
        + f"\n\nrealtime / bare INSERT + NOTIFY: **{ratio:.2f}**")


def scenario_5(ctx: Context, results: dict[str, Any]) -> None:
    plan = ctx.plan
    slug = ctx.slug("s5-big")
    (post_id,) = create_posts(ctx, [slug])
    started = time.monotonic()
    low, high = seed_thread(ctx, post_id, plan.seed_comments)
    seeded = time.monotonic() - started
    port = free_port()
    server = ctx.realtime("s5", port)
    rows = []
    try:
        poster = ctx.poster([("127.0.0.1", port)], [slug], connections=8, min_id=low,
                            max_id=high)
        poster.call("first 5 50", 60)
        for limit in (50, 500):
            first = poster.call(f"first {plan.first_reads} {limit}", 300)
            window = Window([server], [poster])
            with window.measure():
                pages = poster.call(f"reads 8 {plan.read_s} {limit}", plan.read_s + 120)
            rate = pages["reads"] / pages["seconds"]
            results[f"s5-{limit}"] = {"first_p50": first["read_p50_ms"], "rate": rate}
            rows.append([limit, fmt(first["read_p50_ms"], 2), fmt(first["read_p99_ms"], 2),
                         fmt(rate, 0), fmt(pages["read_p50_ms"], 2), fmt(window.server_cpu, 0),
                         window.cores_text()])
    finally:
        ctx.release()
    ctx.report.section(
        "5. Reads",
        f"One post seeded with {plan.seed_comments:,} approved comments by one"
        f" `generate_series` INSERT ({seeded:.1f} s). Time to first page: {plan.first_reads}"
        " sequential `GET /api/posts/{slug}/comments?limit=N` (no cursor); pages/s: 8"
        " concurrent readers on random keyset positions (`after=`). `limit=500` is the"
        " largest page the API gives.\n\n"
        + table(["limit", "first page p50 ms", "first page p99 ms", "pages/s",
                 "page p50 ms (8 readers)", "server CPU %", "core0/core1 busy %"], rows))


def scenario_8(ctx: Context, results: dict[str, Any]) -> None:
    from bench.hostile import scenario_8 as hostile

    hostile(ctx, results)


def scenario_9(ctx: Context, results: dict[str, Any]) -> None:
    from bench import embed_paint  # its own module; imported late, it imports this one

    embed_paint.run(ctx, results)


def scenario_10(ctx: Context, results: dict[str, Any]) -> None:
    from bench.console_live import scenario_10 as run

    run(ctx, results)


def scenario_11(ctx: Context, results: dict[str, Any]) -> None:
    from bench.console_logins import scenario_11 as run

    run(ctx, results)


def scenario_12(ctx: Context, results: dict[str, Any]) -> None:
    from bench import import_memory  # its own module; imported late, it imports this one

    import_memory.scenario_12(ctx, results)


RUNNERS: dict[str, Callable[[Context, dict[str, Any]], None]] = {
    "1": scenario_1, "2": scenario_2, "3": scenario_3, "4": scenario_4, "5": scenario_5,
    "6": scenario_6, "7": scenario_7, "8": scenario_8, "9": scenario_9, "10": scenario_10,
    "11": scenario_11, "12": scenario_12,
}


# -- the report --------------------------------------------------------------------------------

def versions(ctx: Context) -> str:
    def v(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    pg = sql(ctx, lambda conn: conn.fetchval("SHOW server_version"))
    packages = ", ".join(f"{p} {v(p)}" for p in ("realtime", "starlette", "uvicorn", "websockets",
                                                  "asyncpg", "orjson", "uvloop", "httptools"))
    return f"Python {platform.python_version()}; PostgreSQL {pg}; {packages}"


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    return (f"{os.cpu_count()} × {cpu}, {mem:.0f} GiB RAM, {platform.system()}"
            f" {platform.release()}; file limit {resource.getrlimit(resource.RLIMIT_NOFILE)[1]:,}")


def targets(ctx: Context, results: dict[str, Any]) -> None:
    r = ctx.report
    light = results.get("s1-1000")
    if light:
        at20 = next((s for s in light["steps"] if abs(s["rate"] - 20) < 0.01), None)
        if at20:
            r.target("post-to-delivery, 1,000 subscribers at 20 comments/s",
                     "p50 ≤ 10 ms, p99 ≤ 40 ms",
                     f"p50 {fmt(at20['p50'])} ms, p99 {fmt(at20['p99'])} ms",
                     at20["p50"] <= 10 and at20["p99"] <= 40)
    for n in ctx.plan.fanout_subs:
        ours = results.get(f"s1-{n}")
        for key, goal in (("s7w", "≥ raw `websockets` broadcaster, same run"),
                          ("s7s", "never below the bare Starlette endpoint, same run")):
            ref = results.get(f"{key}-{n}")
            if ours and ref:
                a = ours["best"]["deliveries_s"] if ours["best"] else 0.0
                b = ref["best"]["deliveries_s"] if ref["best"] else 0.0
                r.target(f"deliveries/s from one process, {n:,} subscribers (p99 ≤ 100 ms)",
                         goal, f"{fmt(a, 0)} vs {fmt(b, 0)} ({a / b if b else 0:.2f}×)",
                         a >= b if b else None)
    if "s3-rt" in results:
        r.target(f"{ctx.plan.idle_conns:,} idle subscribed connections in one process",
                 "< 20 KiB each", f"{fmt(results['s3-rt'], 1)} KiB"
                 + "".join(f"; {name}: {fmt(results[key], 1)} KiB"
                           for key, name in (("s3-websockets", "`websockets`"),
                                             ("s3-starlette", "bare Starlette"))
                           if key in results),
                 results["s3-rt"] < 20)
    if "s4" in results:
        s4 = results["s4"]
        r.target("posting rate vs bare asyncpg INSERT + NOTIFY", "≥ 70 %",
                 f"{fmt(s4['rate'], 0)} vs {fmt(s4['bare'], 0)}/s = {100 * s4['ratio']:.0f} %",
                 s4["ratio"] >= 0.7)
    for limit in (50, 500):
        if f"s5-{limit}" in results:
            s5 = results[f"s5-{limit}"]
            r.target(f"first thread page (limit={limit}) of a {ctx.plan.seed_comments:,}-comment"
                     " post", "p50 < 10 ms", f"{fmt(s5['first_p50'], 2)} ms",
                     s5["first_p50"] < 10)


def run_key(chosen: list[str]) -> str:
    """The name of a run's results block: "all", or its scenarios."""
    return "all" if set(chosen) == set(SCENARIOS) else ",".join(chosen)


def render(ctx: Context, key: str, command: str, started: dt.datetime, took: float) -> str:
    r = ctx.report
    parts = [
        f"<!-- results:begin {key} -->",
        "## The run (generated by `realtime bench`)",
        "",
        f"- command: `{command}`" + (" (**quick**: small sizes, short steps)" if ctx.quick
                                     else ""),
        f"- date: {started:%Y-%m-%d %H:%M} UTC; took {took / 60:.1f} min",
        f"- machine: {machine()}",
        f"- versions: {versions(ctx)}",
        f"- other load on the machine just before the run (per-core busy %, 1 s):"
        f" {ctx.report.background}",
        f"- database: {'REALTIME_DATABASE_URL' if os.environ.get('REALTIME_DATABASE_URL') else 'embedded PostgreSQL'}"  # noqa: E501
        f" (the server's pool: 10 connections); server under test pinned to CPU 0"
        f" {'with taskset' if pin(0) else '(not pinned: no taskset or one CPU)'}, load"
        " generators on CPU 1; uvicorn with realtime's subclass of its `websockets-sansio`"
        " protocol, per-message deflate off",
        "- latency = from the poster's `time.monotonic_ns()` just before it writes the POST"
        " (carried in the comment body) to the subscriber process reading the frame;"
        " each event of a batched array frame counts once",
        *subscriber_generator(ctx),
        "",
    ]
    if r.targets:
        parts += ["### Targets", "", table(["target", "goal", "measured", "verdict"],
                                           [list(t) for t in r.targets]), ""]
    for title, text in r.sections:
        parts += [f"### {title}", "", text, ""]
    if r.notes:
        parts += ["### Notes from the run", ""] + [f"- {n}" for n in r.notes] + [""]
    parts.append(f"<!-- results:end {key} -->")
    return "\n".join(parts)


def write_report(out: Path, generated: str, key: str) -> None:
    """Put a run's block into the report: a full run replaces every earlier block, a run of
    some scenarios replaces an earlier run of the same ones, else it goes after the others."""
    old = out.read_text() if out.exists() else "# Benchmarks\n\n"
    blocks = list(RESULTS.finditer(old))
    block = generated + "\n"
    if not blocks:
        out.write_text(old.rstrip("\n") + "\n\n" + block)
        return
    if key == "all":
        kept = RESULTS.sub("", old[blocks[0].start():])
        out.write_text(old[:blocks[0].start()] + block + kept.lstrip("\n"))
        return
    found = next((b for b in blocks if b["key"] == key), None)
    if found is not None:
        out.write_text(old[:found.start()] + block + old[found.end():])
    else:
        last = blocks[-1]
        out.write_text(old[:last.end()] + "\n" + block + old[last.end():])


# -- entry point -------------------------------------------------------------------------------

@contextmanager
def database() -> Iterator[str]:
    url = os.environ.get("REALTIME_DATABASE_URL")
    if url:
        yield url
        return
    from realtime.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(Path(tempfile.gettempdir()) / "realtime-bench-pg")
    try:
        yield embedded.start()
    finally:
        embedded.stop()


def main(scenarios: list[str], quick: bool, out: Path, command: str) -> int:
    """Run the scenarios (all when none are named) and write the report; returns an exit code."""
    chosen = scenarios or sorted(SCENARIOS)
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario {unknown[0]!r}; choose from"
                         f" {', '.join(sorted(SCENARIOS, key=int))}")
    # Figures of 7 are ratios to those of 1: run 1 first when both are asked.
    chosen = sorted(set(chosen), key=int)
    raise_fd_limit()
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    from realtime import db

    with database() as url, tempfile.TemporaryDirectory(prefix="realtime-bench-") as tmp:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        env.pop("REALTIME_DATABASE_URL", None)
        ctx = Context(url=url, quick=quick, plan=Plan.for_run(quick), tmp=Path(tmp),
                      run_id=uuid.uuid4().hex[:8], report=Report(), child_env=env)
        sql(ctx, db.migrate)
        ctx.report.background = "/".join(
            f"{c:.0f}" for c in psutil.cpu_percent(interval=1.0, percpu=True))
        results: dict[str, Any] = {}
        try:
            for scenario in chosen:
                print(f"== scenario {scenario}: {SCENARIOS[scenario]}", flush=True)
                try:
                    RUNNERS[scenario](ctx, results)
                except Exception as exc:  # one broken scenario must not lose the others
                    ctx.release()
                    ctx.report.notes.append(f"scenario {scenario} failed: {exc!r}"[:2000])
                    print(f"scenario {scenario} failed: {exc!r}", file=sys.stderr, flush=True)
        finally:
            ctx.release()
            cleanup(ctx)
        targets(ctx, results)
        key = run_key(chosen)
        write_report(out, render(ctx, key, command, started, time.monotonic() - t0), key)
    print(f"\nwrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    quick = "--quick" in args
    sys.exit(main([a for a in args if a != "--quick"], quick, ROOT / "BENCHMARKS.md",
                  "python -m bench.runner " + " ".join(args)))

"""Rendering off the event loop: worker processes with a CPU limit, and a budget per client.

markdown-it is pure Python and some inputs cost it far more than their length suggests: 10,000
characters of `![` take a third of a second, and one Markdown parser running on the event loop
stalls every live socket of the process for that long. So the loop renders only bodies that
cannot be slow (`render.renders_inline`: short, or of ordinary length with little markup);
the others go to a few worker processes (realtime.render_worker) that run at a lower CPU
priority (where ordinary comments would wait behind anything else the machine runs), stop a
body after `REALTIME_RENDER_CPU_LIMIT_S` of processor time (the comment is refused as too
complex), and answer over a pipe. Each client address has a budget of worker time for
costly bodies (`Budget`): a client that keeps sending them is refused with 429, before its
next request is even read, so it can neither keep the workers from everyone else nor cost
the event loop more than a refusal.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
import time
from dataclasses import dataclass
from typing import Any

import orjson

from . import render
from .auth import address_key
from .errors import RateLimited, Unavailable, ValidationFailed
from .render_worker import NICENESS

log = logging.getLogger(__name__)

WAIT_LIMIT_S = 10.0
# What a body costs past FREE_S is charged to its sender's address, which may owe BUDGET_S
# at most and pays back REFILL_PER_S: ordinary comments (well under FREE_S) never count.
FREE_S = 0.005
BUDGET_S = 0.5
REFILL_PER_S = 1.0 / 60
BUDGET_ENTRIES = 10_000


class _Worker:
    """One worker process and its pipes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, cpu_limit: float) -> _Worker:
        # Niced from its first instruction: a starting interpreter is CPU work too.
        nice = ["nice", "-n", str(NICENESS)] if shutil.which("nice") else []
        process = await asyncio.create_subprocess_exec(
            *nice, sys.executable, "-m", "realtime.render_worker", str(cpu_limit),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        return cls(process)

    async def ask(self, body: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        data = body.encode()
        self.process.stdin.write(len(data).to_bytes(4, "big") + data)
        await self.process.stdin.drain()
        size = int.from_bytes(await self.process.stdout.readexactly(4), "big")
        reply: dict[str, Any] = orjson.loads(await self.process.stdout.readexactly(size))
        return reply

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@dataclass(frozen=True)
class Rendered:
    """A body's HTML, the links the link limit counts in it, and the worker time it cost."""

    html: str
    links: int
    cpu: float


class RenderPool:
    """Up to `size` worker processes, started when first needed."""

    def __init__(self, size: int, cpu_limit: float) -> None:
        self.size = size
        self.cpu_limit = cpu_limit
        self.idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self.workers: set[_Worker] = set()
        self.starting = 0
        self.spawning: set[asyncio.Task[None]] = set()
        self.closed = False

    async def render(self, body: str) -> Rendered:
        """The body rendered by a worker; TooComplex when it used up the CPU limit,
        Unavailable when no worker answers within WAIT_LIMIT_S."""
        try:
            async with asyncio.timeout(WAIT_LIMIT_S):
                worker = await self._take()
                try:
                    reply = await worker.ask(body)
                except BaseException:
                    # Cancelled or failed mid-answer, the pipe is out of step: replace it.
                    await asyncio.shield(self._discard(worker))
                    raise
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            log.warning("no render worker answered in time; failed ones are replaced")
            raise Unavailable("too busy to render comments", retry_after=5) from None
        self.idle.put_nowait(worker)
        if "html" not in reply:
            raise TooComplex(reply["cpu"])
        return Rendered(reply["html"], reply["links"], reply["cpu"])

    async def _take(self) -> _Worker:
        if self.closed:
            raise Unavailable("the server is stopping", retry_after=5)
        if self.idle.empty():
            # Any need starts every missing worker: a later burst then neither waits for
            # nor pays for a start.
            for _ in range(self.size - len(self.workers) - self.starting):
                self._spawn()
        return await self.idle.get()

    def _spawn(self) -> None:
        self.starting += 1

        async def start() -> None:
            try:
                worker = await _Worker.start(self.cpu_limit)
            except OSError:
                log.exception("a render worker could not start")
                return
            finally:
                self.starting -= 1
            if self.closed:
                await worker.stop()
                return
            self.workers.add(worker)
            self.idle.put_nowait(worker)

        task = asyncio.create_task(start())
        self.spawning.add(task)
        task.add_done_callback(self.spawning.discard)

    async def _discard(self, worker: _Worker) -> None:
        self.workers.discard(worker)
        await worker.stop()

    async def close(self) -> None:
        """Stop every worker (those still starting stop as they come up)."""
        self.closed = True
        await asyncio.gather(*self.spawning, return_exceptions=True)
        for worker in list(self.workers):
            await self._discard(worker)


class TooComplex(ValidationFailed):
    """A body that used up the render CPU limit: refused as bad input."""

    def __init__(self, cpu: float) -> None:
        super().__init__("body: is too complex to render; simplify its Markdown",
                         errors=[{"field": "body",
                                  "message": "is too complex to render; simplify its Markdown"}])
        self.cpu = cpu


def client_key(ip: str | None) -> str:
    """Whose budget a request spends: its address (an IPv6 address by its /64)."""
    return "" if ip is None else address_key(ip)


class Budget:
    """Worker time per client address: `capacity` seconds at most, refilled at `refill`
    seconds per second."""

    def __init__(self, capacity: float = BUDGET_S, refill: float = REFILL_PER_S) -> None:
        self.capacity = capacity
        self.refill = refill
        self.spent: dict[str, tuple[float, float]] = {}  # key -> (seconds owed, when)

    def _owed(self, key: str, now: float) -> float:
        owed, when = self.spent.get(key, (0.0, now))
        return max(0.0, owed - (now - when) * self.refill)

    def check(self, key: str) -> None:
        """Refuse (429) a client that has used up its worker time."""
        owed = self._owed(key, time.monotonic())
        if owed >= self.capacity:
            wait = max(1, round((owed - self.capacity) / self.refill) + 1)
            raise RateLimited(f"your comments took too long to render; wait {wait} s",
                              retry_after=wait)

    def charge(self, key: str, cpu: float) -> None:
        """Add what one of the client's bodies cost past FREE_S."""
        if cpu <= FREE_S:
            return
        now = time.monotonic()
        self.spent[key] = (self._owed(key, now) + cpu - FREE_S, now)
        if len(self.spent) > BUDGET_ENTRIES:
            self.spent = {k: v for k, v in self.spent.items() if self._owed(k, now) > 0}


class Renderer:
    """Markdown to HTML for the service: cheap bodies at once, the rest by the pool within the
    client's budget."""

    def __init__(self, workers: int, cpu_limit: float) -> None:
        self.pool = RenderPool(workers, cpu_limit)
        self.budget = Budget()

    async def render(self, body: str, ip: str | None) -> tuple[str, int]:
        """Safe HTML for a body sent from `ip`, and how many links the link limit counts."""
        if render.renders_inline(body):
            return render.render_with_links(body)
        key = client_key(ip)
        self.budget.check(key)
        try:
            rendered = await self.pool.render(body)
        except TooComplex as exc:
            self.budget.charge(key, exc.cpu)
            raise
        self.budget.charge(key, rendered.cpu)
        return rendered.html, rendered.links

    def check(self, ip: str | None) -> None:
        """Refuse (429) a client out of render budget, before anything else is done for it."""
        self.budget.check(client_key(ip))

    async def close(self) -> None:
        """Stop the workers."""
        await self.pool.close()

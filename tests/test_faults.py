"""A sick database: frozen (every byte stops), or with its backends terminated under load.

The server reaches PostgreSQL through a TCP proxy on loopback that this test controls; to
freeze the database it stops forwarding in both directions and holds new connections
without answering, as a hung server or a dropped network path would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from conftest import Running, comment_body, login, start_server, wait_for
from test_api import assert_problem

URL = "/api/posts/hello-world/comments"


class FreezingProxy:
    """Forwards TCP connections to `upstream` until frozen; thawing lets everything flow."""

    def __init__(self, upstream: tuple[str, int] | str) -> None:
        """`upstream`: (host, port), or the path of a Unix socket."""
        self.upstream = upstream
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    def freeze(self) -> None:
        self.flowing.clear()

    def thaw(self) -> None:
        self.flowing.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        writers = [writer]
        try:
            await self.flowing.wait()
            up_reader, up_writer = await (
                asyncio.open_unix_connection(self.upstream) if isinstance(self.upstream, str)
                else asyncio.open_connection(*self.upstream))
            writers.append(up_writer)
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for each in writers:
                each.close()
            self.tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            await self.flowing.wait()
            writer.write(data)
            await writer.drain()
        writer.close()

    async def stop(self) -> None:
        self.thaw()
        assert self.server is not None
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest.fixture
async def proxied(clean_db: str) -> AsyncIterator[tuple[Running, FreezingProxy]]:
    """A server whose database connections all pass through a FreezingProxy."""
    parts = urlsplit(clean_db)
    socket_dir = parse_qs(parts.query).get("host", [""])[0]
    proxy = FreezingProxy(f"{socket_dir}/.s.PGSQL.{parts.port or 5432}" if socket_dir
                          else (parts.hostname or "127.0.0.1", parts.port or 5432))
    port = await proxy.start()
    netloc = f"{parts.username}@127.0.0.1:{port}" if parts.username else f"127.0.0.1:{port}"
    running = await start_server(urlunsplit(parts._replace(netloc=netloc, query="")))
    try:
        yield running, proxy
    finally:
        proxy.thaw()
        await running.stop()
        await proxy.stop()


async def test_frozen_database_answers_503_in_time(
        proxied: tuple[Running, FreezingProxy]) -> None:
    """With the database frozen, /readyz answers 503 within 10 s and a post or a read 503
    `unavailable` with Retry-After within 15 s; after it thaws everything works again."""
    server, proxy = proxied
    mod = await login(server)
    await mod.put("/api/posts/hello-world", json={"title": "Hello"})
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        assert (await client.post(URL, json=comment_body("before"))).status_code == 201
        proxy.freeze()
        try:
            async with asyncio.timeout(10):
                assert_problem(await client.get("/readyz"), 503, "unavailable")
            for method, body in (("POST", comment_body("frozen")), ("GET", None)):
                async with asyncio.timeout(15):
                    answer = await client.request(method, URL, json=body)
                assert_problem(answer, 503, "unavailable")
                assert int(answer.headers["retry-after"]) > 0
        finally:
            proxy.thaw()

        async def healthy() -> bool:
            return (await client.get("/readyz")).status_code == 200 and \
                (await client.post(URL, json=comment_body("after"))).status_code == 201

        await wait_for(healthy, timeout=30, what="the server to recover")
        bodies = [c["body"] for c in (await client.get(URL)).json()["comments"]]
        assert bodies == ["before", "after"]
    await mod.aclose()


async def test_terminated_backends_give_503_never_500(server: Running,
                                                      mod: httpx.AsyncClient,
                                                      post: dict[str, Any],
                                                      database_url: str) -> None:
    """Backends terminated while requests run make those requests 503 (with Retry-After),
    never 500, and the connections stay usable for the next requests."""
    admin = await asyncpg.connect(database_url)
    statuses: Counter[int] = Counter()
    stop = asyncio.Event()

    async def terminate() -> None:
        # The pool's connections: the listener's reconnection is the bus's own business.
        while not stop.is_set():
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND pid <> $1", server.app.state.realtime.bus.backend_pid)
            await asyncio.sleep(0.05)

    async def load(client: httpx.AsyncClient, worker: int) -> None:
        for i in range(40):
            answer = await (client.post(URL, json=comment_body(f"c{worker}-{i}",
                                                               name=f"N{worker}"))
                            if i % 2 else client.get(URL))
            statuses[answer.status_code] += 1
            if answer.status_code == 503:
                assert_problem(answer, 503, "unavailable")
                assert int(answer.headers["retry-after"]) > 0

    killer = asyncio.create_task(terminate())
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            await asyncio.gather(*(load(client, w) for w in range(6)))
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await killer
        await admin.close()
    assert set(statuses) <= {200, 201, 503}, statuses
    assert statuses[503] > 0, statuses
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        await wait_for(lambda: _ok(client), timeout=30, what="the pool to recover")


async def _ok(client: httpx.AsyncClient) -> bool:
    return (await client.get(URL)).status_code == 200

"""Shared fixtures: a real PostgreSQL, real uvicorn servers on loopback ports, HTTP clients.

The database is the one `REALTIME_TEST_DATABASE_URL` points at (a fresh database is created on
it for the run), else an embedded PostgreSQL started for the run in a temporary directory.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
import uvicorn
import websockets
from playwright.async_api import Browser, Page, async_playwright
from starlette.applications import Starlette

from realtime import auth, db
from realtime.app import create_app
from realtime.config import Settings
from realtime.server import uvicorn_config
from realtime.store import Store

TABLES = ("posts, comments, events, moderation_events, moderators, sessions, bans, settings,"
          " audit_log, thread_creations, login_failures")
MOD_USER, MOD_PASSWORD = "mod", "correct horse battery"


async def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `check` (sync or async) until it returns a truthy value, or fail after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_ready(url: str, process: subprocess.Popen[Any], timeout: float = 60) -> None:
    """Wait until a server process answers /readyz with 200; fail early if it died."""

    async def answers() -> bool:
        assert process.poll() is None, process.communicate()
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(url + "/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    await wait_for(answers, timeout=timeout, what=f"{url} to be ready")


def with_database(url: str, name: str) -> str:
    """The same server URL naming another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A migrated, empty database for this test run."""
    admin = os.environ.get("REALTIME_TEST_DATABASE_URL")
    embedded = None
    if not admin:
        from realtime.embedded import EmbeddedPostgres

        # Not under pytest's tmp_path: a concurrent pytest run resets its root to 0700, which
        # locks out the unprivileged account the embedded server runs as when we are root.
        embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="realtime-test-pg-")))
        admin = embedded.start()
    name = f"realtime_test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        conn = await asyncpg.connect(with_database(admin, name))
        await db.migrate(conn)
        await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    asyncio.run(create())
    try:
        yield with_database(admin, name)
    finally:
        asyncio.run(drop())
        if embedded is not None:
            embedded.stop()
            shutil.rmtree(embedded.data_dir, ignore_errors=True)


@pytest.fixture
async def clean_db(database_url: str) -> str:
    """The test database with every table emptied."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
    return database_url


@dataclass
class Running:
    """A uvicorn server running the app in this event loop on a loopback port."""

    url: str
    settings: Settings
    app: Starlette
    server: uvicorn.Server
    task: asyncio.Task[None]

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"

    @property
    def store(self) -> Store:
        return self.app.state.realtime.service.store  # type: ignore[no-any-return]

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 15)


async def start_server(database_url: str, uvicorn_options: dict[str, Any] | None = None,
                       **overrides: Any) -> Running:
    """Start the app on a free loopback port and wait until it serves.

    `overrides` are settings (`port` restarts a server where one ran); `uvicorn_options`
    change how uvicorn runs it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", overrides.pop("port", 0)))
    port = sock.getsockname()[1]
    settings = Settings(database_url=database_url, host="127.0.0.1", port=port,
                        data_dir=Path("unused"), **overrides)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(app, settings.replace(log_level="warning"),
                                           **(uvicorn_options or {})))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await wait_for(lambda: server.started or task.done(), what="uvicorn to start")
    if task.done():
        task.result()
    return Running(f"http://127.0.0.1:{port}", settings, app, server, task)


@pytest.fixture
async def make_server(clean_db: str) -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    """Start servers with chosen settings; all are stopped after the test."""
    started: list[Running] = []

    async def make(**overrides: Any) -> Running:
        running = await start_server(clean_db, **overrides)
        started.append(running)
        return running

    yield make
    for running in started:
        await running.stop()


@pytest.fixture
async def server(make_server: Callable[..., Awaitable[Running]]) -> Running:
    """A server with default settings on an empty database."""
    return await make_server()


@pytest.fixture
async def client(server: Running) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous HTTP client of `server`."""
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        yield http


@functools.cache
def _password_hash() -> str:
    return auth.hash_password(MOD_PASSWORD)


async def moderator_session(running: Running) -> str:
    """The session token of a new session of the test moderator (created when missing;
    argon2 runs once per test run, not here)."""
    moderator = await running.store.create_moderator(MOD_USER, _password_hash())
    token = auth.new_token()
    await running.store.create_session(moderator, token, datetime.now(UTC) + timedelta(days=1))
    return token


async def login(running: Running) -> httpx.AsyncClient:
    """A new HTTP client with a moderator session."""
    token = await moderator_session(running)
    return httpx.AsyncClient(base_url=running.url, timeout=10, headers={"Origin": running.url},
                             cookies={auth.SESSION_COOKIE: token})


@pytest.fixture
async def mod(server: Running) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of `server` with a moderator session and the server's Origin."""
    http = await login(server)
    yield http
    await http.aclose()


@pytest.fixture
async def post(mod: httpx.AsyncClient) -> dict[str, Any]:
    """A post-moderated thread."""
    answer = await mod.put("/api/posts/hello-world", json={"title": "Hello, world"})
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def comment_body(text: str = "A fine comment", name: str = "Ann", **extra: Any) -> dict[str, Any]:
    """A valid new-comment request body."""
    return {"body": text, "author": {"name": name, "email": f"{name.lower()}@example.org"},
            **extra}


class Live:
    """A real WebSocket client of the server that unpacks batched frames into messages."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.pending: collections.deque[dict[str, Any]] = collections.deque()

    @classmethod
    async def connect(cls, url: str, **options: Any) -> Live:
        return cls(await websockets.connect(url, open_timeout=10, **options))

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next message, whether it came alone or in a batch."""
        while not self.pending:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            self.pending.extend(frame if isinstance(frame, list) else [frame])
        return self.pending.popleft()

    async def next_of(self, *types: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next message of one of these types, skipping presence updates."""
        while True:
            message = await self.next(timeout)
            if message["type"] in types:
                return message
            assert message["type"] == "presence", message

    async def subscribe(self, channel: str, since: int | None = None) -> dict[str, Any]:
        """Subscribe and return the `subscribed` answer (or the reset/error instead)."""
        op: dict[str, Any] = {"op": "subscribe", "channel": channel}
        if since is not None:
            op["since"] = since
        await self.send(op)
        return await self.next_of("subscribed", "reset", "error")

    async def events(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """The next `count` event messages."""
        return [await self.next_of("event", timeout=timeout) for _ in range(count)]

    async def close(self) -> None:
        await self.ws.close()

    async def closed_code(self, timeout: float = 20.0) -> int | None:
        """Read until the server closes; the close code it sent."""
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Node:
    """`python -m realtime serve` in its own process."""

    def __init__(self, database_url: str, *args: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        environ = {**os.environ, "REALTIME_DATABASE_URL": database_url,
                   "REALTIME_LOG_LEVEL": "warning", **env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "realtime", "serve", "--port", str(self.port), *args],
            env=environ, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    async def ready(self) -> None:
        await wait_ready(self.url, self.process, timeout=30)

    def stop(self) -> None:
        """Kill the node and, with --workers, its worker processes (its process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        if self.process.stderr:
            self.process.stderr.close()


@pytest.fixture
async def nodes(clean_db: str) -> AsyncIterator[Callable[..., Awaitable[Node]]]:
    """Start server processes on the test database; all are killed afterwards."""
    started: list[Node] = []

    async def start(*args: str, **env: str) -> Node:
        node = Node(clean_db, *args, **env)
        started.append(node)
        await node.ready()
        return node

    yield start
    for node in started:
        node.stop()


# -- a real headless Chromium, for the tests marked `browser` ---------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic",
                 "--no-first-run"]
OpenPage = Callable[..., Awaitable[Page]]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the whole run; each test opens its own contexts."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    async with async_playwright() as playwright:
        found = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                 headless=True)
        yield found
        await found.close()


@pytest.fixture
async def open_page(browser: Browser, server: Running) -> AsyncIterator[OpenPage]:
    """Open a server path in a fresh browser context (a separate reader); `moderator=True`
    brings a session cookie. Fails the test on any script error."""
    contexts = []
    errors: list[str] = []

    async def open_(path: str, setup: Callable[[Page], Awaitable[None]] | None = None, *,
                    moderator: bool = False, color_scheme: str = "light",
                    width: int = 1280) -> Page:
        context = await browser.new_context(color_scheme=color_scheme,  # type: ignore[arg-type]
                                            viewport={"width": width, "height": 900})
        contexts.append(context)
        if moderator:
            await context.add_cookies([{"name": auth.SESSION_COOKIE,
                                        "value": await moderator_session(server),
                                        "url": server.url}])
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        if setup is not None:
            await setup(page)
        await page.goto(server.url + path)
        return page

    yield open_
    # Closed before the server stops (this fixture depends on it), so no socket holds it up.
    for context in contexts:
        await context.close()
    assert not errors, errors

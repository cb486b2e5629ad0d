"""`create_app(settings)`: wiring, error handlers, health checks and the lifespan."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg
import orjson
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from . import api, catalogs, db, embed_api, metrics, openapi, pages, ws
from .bus import Bus
from .config import Settings
from .errors import RealtimeError, Unavailable
from .hub import Hub
from .origins import EmbedOrigins
from .pages import static_dir
from .server import goodbye_on_signals
from .service import Service
from .state import AppState, state_of
from .store import Store

log = logging.getLogger(__name__)

DATABASE_DOWN = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                 asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError,
                 asyncpg.AdminShutdownError, TimeoutError)
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}


def problem_response(error: RealtimeError) -> Response:
    """An error as application/problem+json."""
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return Response(orjson.dumps(error.problem()), status_code=error.status, headers=headers,
                    media_type="application/problem+json")


async def on_realtime_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RealtimeError)
    return problem_response(exc)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    body = {"type": "about:blank", "title": exc.detail, "status": exc.status_code,
            "code": HTTP_CODES.get(exc.status_code, "http_error"), "detail": exc.detail}
    return Response(orjson.dumps(body), status_code=exc.status_code, headers=exc.headers,
                    media_type="application/problem+json")


async def on_database_down(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable: %s", type(exc).__name__)
    return problem_response(Unavailable("the database is unavailable", retry_after=5))


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem_response(RealtimeError("an unexpected error happened"))


async def healthz(request: Request) -> Response:
    return api.json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    if not state_of(request.app).bus.up.is_set():
        return problem_response(Unavailable("the database listener is down", retry_after=2))
    try:
        await state_of(request.app).service.ping()
    except DATABASE_DOWN:
        return problem_response(Unavailable("the database is unavailable", retry_after=5))
    return api.json_response({"status": "ready"})


async def metrics_text(request: Request) -> Response:
    state = state_of(request.app)
    return Response(metrics.render(state.metrics), media_type=CONTENT_TYPE_LATEST)


async def openapi_json(request: Request) -> Response:
    return api.json_response(openapi.document())


async def _every(seconds: float, work: Callable[[], Awaitable[None]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await work()
        except Exception:
            log.exception("periodic task failed")


class RealtimeApp(Starlette):
    """Starlette, with the WebSocket endpoint called ahead of the middleware stack.

    A live connection stays for hours, and every layer it passes (error middleware, CORS,
    exception handling, the router) keeps a coroutine frame for it: about 4 KiB per idle
    connection. None of them acts on a WebSocket here (CORS ignores them, the endpoint checks
    the origin itself, and uvicorn logs and closes on an unexpected error as they would).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and \
                scope["path"].removeprefix(scope.get("root_path", "")) == ws.PATH:
            scope["app"] = self
            await ws.endpoint(WebSocket(scope, receive, send))
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, store: Store | None = None) -> Starlette:
    """The ASGI app for these settings; the lifespan connects, migrates and cleans up."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own_pool: Any = None
        # LISTEN and the migrations' advisory lock need a session of their own, which a
        # pooler in transaction mode (PgBouncer) does not give: they may take another URL.
        direct_url = settings.direct_database_url or settings.database_url
        if store is None:
            conn = await db.connect(direct_url)
            try:
                await db.migrate(conn)
            finally:
                await conn.close()
            own_pool = await db.create_pool(settings.database_url, settings.pool_size)
        the_store = store or Store(own_pool)

        node = uuid.uuid4().hex[:12]
        service = Service(the_store, settings)
        hub = Hub(node_id=node, queue_size=settings.queue_size,
                  replay_limit=settings.replay_limit, fetch_events=service.events_after,
                  fetch_private=service.private_comment)
        bus = Bus(direct_url, on_event=hub.notify, on_presence=hub.remote_presence,
                  on_reconnect=hub.resync)
        await bus.start()

        async def presence() -> None:
            changes = hub.presence_changes()
            if changes:
                await bus.announce(node, changes)
            hub.push_presence()

        async def heartbeat() -> None:
            await bus.announce(node, hub.local_counts())

        async def prune() -> None:
            await service.prune(timedelta(days=settings.retention_days))

        app.state.realtime = AppState(settings=settings, service=service,
                                      hub=hub, bus=bus, pool=own_pool,
                                      metrics=metrics.registry_for(hub, bus))
        loops = [asyncio.create_task(_every(1.0, presence)),
                 asyncio.create_task(_every(5.0, heartbeat)),
                 asyncio.create_task(_every(3600.0, prune))]
        undo_signals = goodbye_on_signals(hub)
        try:
            yield
        finally:
            undo_signals()
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await hub.close_all(1001, "server going away")
            await bus.stop()
            if own_pool is not None:
                await own_pool.close()

    routes = [
        *api.ROUTES,
        *embed_api.ROUTES,
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_text, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        *pages.ROUTES,
        *catalogs.routes(static_dir() / "i18n"),
        Mount("/static", StaticFiles(directory=static_dir()), name="static"),
    ]
    handlers: dict[Any, Any] = {RealtimeError: on_realtime_error, HTTPException: on_http_error,
                                Exception: on_unexpected}
    handlers.update({kind: on_database_down for kind in DATABASE_DOWN})
    # EmbedOrigins first: a foreign page's request gets a readable refusal, not CORS silence.
    middleware = [Middleware(EmbedOrigins),
                  Middleware(CORSMiddleware, allow_origins=sorted(settings.extra_origins),
                             allow_methods=["GET", "POST", "PATCH", "DELETE"],
                             allow_headers=["Content-Type", "Authorization"], max_age=600)]
    return RealtimeApp(routes=routes, lifespan=lifespan, exception_handlers=handlers,
                       middleware=middleware)


def app_from_env() -> Starlette:
    """The app for `uvicorn --factory`: settings from `REALTIME_*` variables."""
    return create_app(Settings.from_env())

"""`create_app(settings)`: wiring, error handlers, health checks and the lifespan."""

from __future__ import annotations

import gc
import hmac
import ipaddress
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from . import api, auth, catalogs, db, embed_api, headers, metrics, openapi, pages, sse, ws
from .config import Settings
from .errors import Forbidden, RealtimeError, Unauthorized, Unavailable
from .node import Node
from .origins import EmbedOrigins
from .pages import static_dir
from .proxy import TrustedProxies
from .server import goodbye_on_signals
from .service import Service
from .state import AppState, state_of
from .store import Store
from .tarpit import Tarpit

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 3.0
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
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return Response(orjson.dumps(body), status_code=exc.status_code, headers=headers,
                    media_type="application/problem+json")


def allowed_methods(request: Request) -> list[str]:
    """Every method the request's path takes: starlette's 405 names only those of the
    first route that matched the path, and each method here is a route of its own."""
    found: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods and \
                route.matches(request.scope)[0] != Match.NONE:
            found |= route.methods
    return sorted(found)


async def on_database_down(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                type(exc).__name__)
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
        await state_of(request.app).service.ping(READY_TIMEOUT_S)
    except db.DOWN:
        return problem_response(Unavailable("the database is unavailable", retry_after=5))
    return api.json_response({"status": "ready"})


async def metrics_text(request: Request) -> Response:
    state = state_of(request.app)
    token = state.settings.metrics_token
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or \
                not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise Unauthorized("send the metrics token: Authorization: Bearer <token>")
    elif not from_this_machine(request):
        raise Forbidden("metrics are served to this machine only;"
                        " set REALTIME_METRICS_TOKEN to scrape them from elsewhere")
    return Response(metrics.render(state.metrics), media_type=CONTENT_TYPE_LATEST)


def from_this_machine(request: Request) -> bool:
    """A loopback client that no proxy relayed (a proxy on this machine that is not in
    REALTIME_FORWARDED_ALLOW_IPS still names a client in its headers)."""
    host = auth.ip_or_none(request.client.host if request.client else None)
    relayed = "x-forwarded-for" in request.headers or "forwarded" in request.headers
    return host is not None and ipaddress.ip_address(host).is_loopback and not relayed


async def openapi_json(request: Request) -> Response:
    return api.json_response(openapi.document())


class RealtimeApp(Starlette):
    """Starlette, with the client's address and scheme taken from trusted proxies' headers
    (see realtime.proxy), security headers on every answer (realtime.headers, outside the
    middleware so that even a 500 has them), refusals slowed for addresses that keep being
    refused (realtime.tarpit), and the WebSocket endpoint called ahead of the middleware
    stack.

    A live connection stays for hours, and every layer it passes (error middleware, CORS,
    exception handling, the router) keeps a coroutine frame for it: about 4 KiB per idle
    connection. None of them acts on a WebSocket here (CORS ignores them, the endpoint checks
    the origin itself, and uvicorn logs and closes on an unexpected error as they would).
    """

    def __init__(self, *, proxies: TrustedProxies, **options: Any) -> None:
        super().__init__(**options)
        self.proxies = proxies
        self.tarpit = Tarpit()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            self.proxies.rewrite(scope)
        if scope["type"] == "http":
            send = self.tarpit.slowed(scope, headers.secured(scope, send))
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
        own_pool = None if store is not None else await db.open_pool(
            settings.database_url, settings.pool_size, settings.db_timeout_s,
            direct_url=settings.direct_url)
        the_store = store or Store(own_pool)
        service = Service(the_store, settings)
        await service.start()
        node = Node(settings, service, the_store.pool, uuid.uuid4().hex[:12])
        await node.start()
        app.state.realtime = AppState(settings=settings, service=service,
                                      hub=node.hub, bus=node.bus, pool=own_pool,
                                      metrics=metrics.registry_for(node.hub, node.bus))
        undo_signals = goodbye_on_signals(node.hub)
        # Everything built so far lives as long as the process: out of the collector's
        # sight, a full collection (which a burst of large requests triggers) no longer
        # walks it and pauses every socket for tens of milliseconds.
        gc.freeze()
        try:
            yield
        finally:
            undo_signals()
            try:
                await node.stop()
            finally:
                # Whatever the listener died of, the pool and the render workers still go.
                await service.close()
                if own_pool is not None:
                    await own_pool.close()

    routes = [
        *api.ROUTES,
        *embed_api.ROUTES,
        *sse.ROUTES,
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
    handlers.update({kind: on_database_down for kind in db.DOWN})
    # EmbedOrigins first: a foreign page's request gets a readable refusal, not CORS silence.
    middleware = [Middleware(EmbedOrigins),
                  Middleware(CORSMiddleware, allow_origins=sorted(settings.extra_origins),
                             allow_methods=["GET", "POST", "PATCH", "DELETE"],
                             allow_headers=["Content-Type", "Authorization", "Last-Event-ID"],
                             max_age=600)]
    return RealtimeApp(routes=routes, lifespan=lifespan, exception_handlers=handlers,
                       middleware=middleware,
                       proxies=TrustedProxies(settings.forwarded_allow_ips))


def app_from_env() -> Starlette:
    """The app for `uvicorn --factory`: settings from `REALTIME_*` variables."""
    return create_app(Settings.from_env())

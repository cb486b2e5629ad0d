"""Which sites may embed: a page of a refused origin gets one clear answer, and the widget's
own files load anywhere so it can show that answer instead of a blank space.

Browsers hide an answer without CORS headers from the page, so a foreign page's widget could
only fail silently. Here every API request whose `Origin` is not allowed is answered with 403
`forbidden` that the page may read (it carries no data), and the refused origin is logged once
per process, so the site owner learns what to add to REALTIME_ALLOWED_ORIGINS.
"""

from __future__ import annotations

import logging

import orjson
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import auth
from .api import own_origin
from .errors import Forbidden
from .state import state_of

log = logging.getLogger(__name__)

# Origins already logged; bounded so a client inventing origins cannot grow it without end.
LOGGED_AT_MOST = 1000


class EmbedOrigins:
    """ASGI middleware: refuse API requests of foreign origins readably; open static files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.logged: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        if path.startswith("/static/"):
            await self.app(scope, receive, _public(send))
            return
        origin = Headers(scope=scope).get("origin")
        if origin and path.startswith("/api/") and scope["method"] != "OPTIONS":
            request = Request(scope)
            extra = state_of(request.app).settings.extra_origins
            if not auth.origin_allowed(origin, own_origin(request), extra):
                self._log_once(origin)
                await _refuse(origin, send)
                return
        await self.app(scope, receive, send)

    def _log_once(self, origin: str) -> None:
        if origin in self.logged or len(self.logged) >= LOGGED_AT_MOST:
            return
        self.logged.add(origin)
        log.warning("refused a request from %r: add it to REALTIME_ALLOWED_ORIGINS to let that"
                    " site embed comments", origin[:200])


def _public(send: Send) -> Send:
    """Static files are public: any page may load the widget's scripts, styles and catalogs."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            MutableHeaders(scope=message)["Access-Control-Allow-Origin"] = "*"
        await send(message)

    return sending


async def _refuse(origin: str, send: Send) -> None:
    error = Forbidden("this site is not allowed to embed comments from this server")
    body = orjson.dumps(error.problem())
    await send({"type": "http.response.start", "status": error.status, "headers": [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"access-control-allow-origin", origin.encode("latin-1", "replace")),
        (b"vary", b"Origin")]})
    await send({"type": "http.response.body", "body": body})

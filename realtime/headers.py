"""Security headers on every HTTP answer: what a browser may run, load, frame or sniff.

The embed inserts server-rendered HTML with `innerHTML`; the sanitizer is the first wall and
the Content-Security-Policy of the server's own pages is the second: scripts only from this
server's files (no inline script, no `eval`, no `javascript:` URL), nothing loaded from
elsewhere. The moderator console may not be framed by any page (clickjacking its buttons);
the demo pages may, like any page that embeds a thread. Answers that are not pages (JSON,
problems, scripts) get a policy that allows nothing, so a browser tricked into opening one
as a document runs nothing in it. A route that sets its own policy keeps it.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Scope, Send

PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
               " connect-src 'self' {sockets}; object-src 'none'; base-uri 'none';"
               " form-action 'self'")
NOTHING_POLICY = "default-src 'none'; frame-ancestors 'none'"
CONSOLE_PATHS = ("/moderate", "/static/moderate.html")


def is_console(path: str) -> bool:
    """Whether a path serves the moderator console."""
    return path in CONSOLE_PATHS or path.startswith("/moderate/")


def headers_for(scope: Scope, content_type: str) -> dict[str, str]:
    """The security headers of one answer."""
    found = {"X-Content-Type-Options": "nosniff",
             "Referrer-Policy": "strict-origin-when-cross-origin"}
    if not content_type.startswith("text/html"):
        found["Content-Security-Policy"] = NOTHING_POLICY
        return found
    host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
    # CSP Level 3 lets 'self' cover the page's own ws: and wss: origins; older browsers
    # need them named.
    sockets = f"ws://{host} wss://{host}" if host else ""
    policy = PAGE_POLICY.format(sockets=sockets)
    if is_console(scope["path"]):
        found["Content-Security-Policy"] = policy + "; frame-ancestors 'none'"
        found["X-Frame-Options"] = "DENY"
        found["Referrer-Policy"] = "no-referrer"
        found["Cross-Origin-Opener-Policy"] = "same-origin"
    else:
        found["Content-Security-Policy"] = policy
    return found


def secured(scope: Scope, send: Send) -> Send:
    """`send`, adding the security headers to the answer's start (where not set already)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in headers_for(scope, headers.get("content-type", "")).items():
                headers.setdefault(name, value)
        await send(message)

    return sending

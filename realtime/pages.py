"""The HTML pages the server shows itself: an index of posts, a demo page per post, and the
moderator console."""

from __future__ import annotations

from functools import cache
from html import escape
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .errors import NotFound
from .models import SLUG
from .state import state_of

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="/static/realtime.css">
</head>
<body>
<main class="rt-page">
{content}
</main>
</body>
</html>
"""


async def index(request: Request) -> HTMLResponse:
    posts, _ = await state_of(request.app).service.list_posts(100, None)
    items = "\n".join(
        f'<li><a href="/p/{escape(p.slug)}">{escape(p.title)}</a>'
        f' <span class="rt-count">{p.comment_count} comments</span></li>' for p in posts)
    content = (f"<h1>realtime</h1>\n<ul class=\"rt-posts\">\n{items}\n</ul>" if posts else
               "<h1>realtime</h1><p>No posts yet: <code>realtime create-post SLUG --title T</code>"
               " or <code>realtime serve --demo</code>.</p>")
    content += '\n<p><a href="/moderate">Moderation</a></p>'
    return HTMLResponse(PAGE.format(title="realtime", content=content))


async def post_page(request: Request) -> HTMLResponse:
    slug = request.path_params["slug"]
    if not SLUG.match(slug):
        raise NotFound(f"no post {slug!r}")
    post = await state_of(request.app).service.get_post(slug)
    link = (f'<p class="rt-source"><a href="{escape(post.url)}" rel="nofollow noopener">'
            f"{escape(post.url)}</a></p>" if post.url else "")
    content = (f"<article><h1>{escape(post.title)}</h1>{link}</article>\n"
               f'<div data-realtime-post="{escape(slug)}"></div>\n'
               '<script type="module" src="/static/embed.js"></script>')
    return HTMLResponse(PAGE.format(title=escape(post.title), content=content))


# The console shows e-mail and IP addresses and acts with the moderator's cookie: no other
# page may frame it (clickjacking), and it loads nothing but its own scripts and styles.
CONSOLE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self';"
                               " img-src 'self' data:; connect-src 'self'; object-src 'none';"
                               " base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def static_dir() -> Path:
    """The browser client: realtime/static inside an installed wheel, else static/ beside the
    package in a source checkout (an editable install maps no data directories)."""
    package = Path(__file__).resolve().parent
    installed = package / "static"
    return installed if installed.is_dir() else package.parent / "static"


@cache
def _console_html() -> bytes:
    return (static_dir() / "moderate.html").read_bytes()


async def console(request: Request) -> Response:
    return Response(_console_html(), media_type="text/html; charset=utf-8",
                    headers=CONSOLE_HEADERS)


async def old_console(request: Request) -> Response:
    return RedirectResponse("/moderate", status_code=308, headers=CONSOLE_HEADERS)


ROUTES = [
    Route("/", index, methods=["GET"]),
    Route("/p/{slug}", post_page, methods=["GET"]),
    Route("/moderate", console, methods=["GET"]),
    # Where the console used to be; bookmarks keep working.
    Route("/static/moderate.html", old_console, methods=["GET"]),
]

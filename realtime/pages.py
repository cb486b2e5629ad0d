"""The HTML pages the server shows itself: an index of posts and a demo page per post."""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from .errors import NotFound
from .schemas import SLUG
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
    content += '\n<p><a href="/static/moderate.html">Moderation</a></p>'
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


ROUTES = [
    Route("/", index, methods=["GET"]),
    Route("/p/{slug}", post_page, methods=["GET"]),
]

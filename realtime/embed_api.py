"""HTTP routes the embedded widget and count.js need beyond the core API: a thread read page by
page, more replies, a comment in context, many comment counts at once, the thread created on
first view, and a preview of a comment before it is posted."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import auth
from .api import (
    check_origin,
    client_ip,
    id_of,
    json_response,
    own_origin,
    query_int,
    query_one,
    read_body,
    slug_of,
)
from .errors import Forbidden, ValidationFailed
from .models import MAX_ID, SLUG
from .schemas import CommentEdit, NewThread
from .service import Service
from .state import state_of
from .store import ThreadPage

MAX_COUNTS = 100


def _service(request: Request) -> Service:
    return state_of(request.app).service


def _page(page: ThreadPage) -> dict[str, Any]:
    return {"post": page.post.public(), "seq": page.post.seq,
            "comments": [c.public() for c in page.comments], "next": page.next,
            "more_replies": {str(root): {"after": after, "count": count}
                             for root, (after, count) in page.more.items()}}


def _replies(request: Request) -> int:
    """How many replies to bring with each top-level comment (0-100, default 10)."""
    return query_int(request, "replies", 10, 0, 100) or 0


async def read_page(request: Request) -> Response:
    slug = slug_of(request)
    sort = query_one(request, "sort") or "oldest"
    if sort not in ("oldest", "newest"):
        raise ValidationFailed.field("sort", "must be oldest or newest")
    page = await _service(request).thread_page(
        slug, newest=sort == "newest", after=query_int(request, "after", None, 0, MAX_ID),
        limit=query_int(request, "limit", 20, 1, 100) or 20,
        replies=_replies(request))
    return json_response(_page(page))


async def read_replies(request: Request) -> Response:
    comments, cursor = await _service(request).replies(
        id_of(request), query_int(request, "after", None, 0, MAX_ID),
        query_int(request, "limit", 100, 1, 500) or 100)
    return json_response({"comments": [c.public() for c in comments], "next": cursor})


async def read_context(request: Request) -> Response:
    page = await _service(request).context(id_of(request), _replies(request))
    return json_response({**_page(page), "root": page.comments[0].id})


async def counts(request: Request) -> Response:
    raw = query_one(request, "slugs") or ""
    slugs = list(dict.fromkeys(s for s in raw.split(",") if s))
    if not 1 <= len(slugs) <= MAX_COUNTS or not all(SLUG.match(s) for s in slugs):
        raise ValidationFailed.field(
            "slugs", f"must be 1 to {MAX_COUNTS} comma-separated post slugs")
    return json_response({"counts": await _service(request).comment_counts(slugs)})


async def open_post(request: Request) -> Response:
    """Find or create the thread a page embeds: only a browser on an allowed origin may."""
    if not request.headers.get("origin"):
        raise Forbidden("threads are created by pages of an allowed origin")
    check_origin(request)
    fields = await read_body(request, NewThread)
    settings = state_of(request.app).settings
    if not auth.origin_allowed(fields.url, own_origin(request), settings.extra_origins):
        raise ValidationFailed.field("url", "must be a page of an allowed origin")
    post, created = await _service(request).open_post(fields.slug, fields.title, fields.url,
                                                      client_ip(request))
    return json_response(post.public(), 201 if created else 200)


async def preview(request: Request) -> Response:
    ip = client_ip(request)
    _service(request).check_render_budget(ip)
    body = await read_body(request, CommentEdit)
    html, links = await _service(request).preview(body.body, ip)
    return json_response({"html": html, "links": links})


ROUTES = [
    Route("/api/posts", open_post, methods=["POST"]),
    Route("/api/posts/{slug}/thread", read_page, methods=["GET"]),
    Route("/api/comments/{id:int}/replies", read_replies, methods=["GET"]),
    Route("/api/comments/{id:int}/context", read_context, methods=["GET"]),
    Route("/api/counts", counts, methods=["GET"]),
    Route("/api/preview", preview, methods=["POST"]),
]

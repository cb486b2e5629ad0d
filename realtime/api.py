"""HTTP routes: parse the request, call the service, answer JSON or problem+json."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import Route

from . import auth, moderation
from .errors import (
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from .models import AUDIT_ACTIONS, FILTERS, MAX_ID, SLUG, Draft, Moderator
from .schemas import (
    CommentEdit,
    Login,
    ModeratorAction,
    NewBan,
    NewComment,
    PolicyFields,
    PostFields,
    Report,
    field_errors,
)
from .service import Actor, Service
from .state import state_of

# The largest valid comment, its text written as JSON escapes (an astral character is
# `\ud83d\ude00`, 12 bytes): 10,000 characters of body, 100 of name, 320 of e-mail and
# 2,000 of URL come to about 150,000 bytes.
MAX_BODY = 160 * 1024
M = TypeVar("M", bound=BaseModel)


def json_response(data: Any, status: int = 200) -> Response:
    """A JSON answer encoded with orjson."""
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


async def read_body(request: Request, model: type[M], *, optional: bool = False) -> M:
    """The JSON body validated by `model`: 415, 413 and 422 before anything is done."""
    declared = request.headers.get("content-length")
    if optional and declared in (None, "0") and "transfer-encoding" not in request.headers:
        return model.model_validate({})
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadTooLarge(f"request bodies are limited to {MAX_BODY} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise PayloadTooLarge(f"request bodies are limited to {MAX_BODY} bytes")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValidationFailed.field("body", "is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValidationFailed.field("body", "must be a JSON object")
    if _has_nul(data):
        raise ValidationFailed.field("body", "must not contain NUL characters")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(exc)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise ValidationFailed(detail, errors=errors) from None


def query_one(request: Request, name: str) -> str | None:
    """A query parameter given at most once (a repeat is ambiguous: 422)."""
    found = request.query_params.getlist(name)
    if len(found) > 1:
        raise ValidationFailed.field(name, "must be given at most once")
    return found[0] if found else None


def query_int(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    """An integer query parameter within bounds, else 422."""
    raw = query_one(request, name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise ValidationFailed.field(name, f"must be an integer from {low} to {high}")
    return int(raw)


def slug_of(request: Request) -> str:
    """The post slug of the path (404 when it cannot be one)."""
    slug: str = request.path_params["slug"]
    if not SLUG.match(slug):
        raise NotFound(f"no post {slug!r}")
    return slug


def id_of(request: Request, what: str = "comment") -> int:
    """The id of the path (404 past the largest id there can be)."""
    found: int = request.path_params["id"]
    if found > MAX_ID:
        raise NotFound(f"no {what} {found}")
    return found


def client_ip(request: Request) -> str | None:
    """The client's IP address, when the transport gives one."""
    return auth.ip_or_none(request.client.host if request.client else None)


def _service(request: Request) -> Service:
    return state_of(request.app).service


async def current_moderator(request: Request) -> Moderator | None:
    """The moderator whose session cookie came with the request."""
    token = request.cookies.get(auth.SESSION_COOKIE)
    if not token:
        return None
    return await _service(request).session_moderator(token)


def own_origin(request: HTTPConnection) -> str:
    """The server's own origin: REALTIME_PUBLIC_URL's when set, else the request's (its
    scheme from a trusted proxy, see realtime.proxy; a WebSocket handshake's ws/wss counting
    as http/https). Every origin check compares with this."""
    public = state_of(request.app).settings.public_url
    scheme = {"ws": "http", "wss": "https"}.get(request.url.scheme, request.url.scheme)
    return auth.origin_of(public) or f"{scheme}://{request.url.netloc}"


def check_origin(request: Request) -> None:
    """Cookie-authenticated writes must come from an allowed origin (CSRF)."""
    settings = state_of(request.app).settings
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not auth.origin_allowed(origin, own_origin(request), settings.extra_origins):
        raise Forbidden("this request must come from an allowed origin")


async def require_moderator(request: Request, *, write: bool = True) -> Moderator:
    """The moderator making the request, else 401; writes also pass the origin check."""
    moderator = await current_moderator(request)
    if moderator is None:
        raise Unauthorized("log in as a moderator")
    if write:
        check_origin(request)
    return moderator


async def actor_of(request: Request) -> Actor:
    """A moderator session or an `Authorization: Edit <token>` header."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    ip = client_ip(request)
    if scheme.lower() == "edit" and token.strip():
        return Actor(edit_token=token.strip(), ip=ip)
    moderator = await current_moderator(request)
    if moderator is not None:
        check_origin(request)
        return Actor(moderator=moderator, ip=ip)
    return Actor(ip=ip)


# posts ----------------------------------------------------------------------------------

async def list_posts(request: Request) -> Response:
    limit = query_int(request, "limit", 50, 1, 500) or 50
    after = query_int(request, "after", None, 0, MAX_ID)
    posts, cursor = await _service(request).list_posts(limit, after)
    return json_response({"posts": [p.public() for p in posts], "next": cursor})


async def get_post(request: Request) -> Response:
    post = await _service(request).get_post(slug_of(request))
    return json_response(post.public())


async def put_post(request: Request) -> Response:
    moderator = await require_moderator(request)
    slug: str = request.path_params["slug"]
    if not SLUG.match(slug):
        raise ValidationFailed.field("slug", "must be 1..200 characters of a-z, 0-9, '.', '_', '-'")
    fields = await read_body(request, PostFields)
    post, created = await _service(request).put_post(
        slug, fields.model_dump(exclude_unset=True), moderator)
    return json_response(post.public(), 201 if created else 200)


# comments -------------------------------------------------------------------------------

async def read_thread(request: Request) -> Response:
    slug = slug_of(request)
    limit = query_int(request, "limit", 200, 1, 500) or 200
    after = query_int(request, "after", None, 0, MAX_ID)
    post, comments, cursor = await _service(request).read_thread(slug, after, limit)
    return json_response({"post": post.public(), "comments": [c.public() for c in comments],
                          "next": cursor, "seq": post.seq})


async def post_comment(request: Request) -> Response:
    slug = slug_of(request)
    _service(request).check_render_budget(client_ip(request))
    new = await read_body(request, NewComment)
    draft = Draft(body=new.body, author_name=new.author.name, author_email=new.author.email,
                  author_url=new.author.url, parent_id=new.parent_id, client_id=new.client_id,
                  ip=client_ip(request), user_agent=request.headers.get("user-agent"))
    created = await _service(request).create_comment(slug, draft)
    return json_response(created.answer(), 201 if created.created else 200)


async def get_comment(request: Request) -> Response:
    comment = await _service(request).public_comment(id_of(request))
    return json_response({"comment": comment.public()})


async def report_comment(request: Request) -> Response:
    body = await read_body(request, Report)
    reader = client_ip(request) or request.headers.get("user-agent", "unknown")
    await _service(request).report(id_of(request), reader, body.reason)
    return json_response({"reported": True}, 202)


async def edit_comment(request: Request) -> Response:
    actor = await actor_of(request)
    _service(request).check_render_budget(actor.ip)
    edit = await read_body(request, CommentEdit)
    shown = await _service(request).edit_comment(id_of(request), edit.body, actor)
    return json_response({"comment": shown})


async def delete_comment(request: Request) -> Response:
    actor = await actor_of(request)
    await _service(request).delete_comment(id_of(request), actor)
    return Response(status_code=204)


# moderators -----------------------------------------------------------------------------

async def login(request: Request) -> Response:
    if request.headers.get("origin"):
        check_origin(request)
    body = await read_body(request, Login)
    moderator, token = await _service(request).login(
        body.username, body.password, ip=client_ip(request),
        user_agent=request.headers.get("user-agent"))
    response = json_response({"moderator": {"username": moderator.username}})
    days = state_of(request.app).settings.session_days
    response.set_cookie(auth.SESSION_COOKIE, token, max_age=days * 86400, httponly=True,
                        samesite="lax", secure=own_origin(request).startswith("https:"), path="/",
                        expires=datetime.now(UTC) + timedelta(days=days))
    return response


async def logout(request: Request) -> Response:
    token = request.cookies.get(auth.SESSION_COOKIE)
    if token:
        check_origin(request)
        await _service(request).logout(token)
    response = Response(status_code=204)
    response.delete_cookie(auth.SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=own_origin(request).startswith("https:"))
    return response


async def me(request: Request) -> Response:
    moderator = await require_moderator(request, write=False)
    return json_response({"moderator": {"username": moderator.username}})


async def list_sessions(request: Request) -> Response:
    moderator = await require_moderator(request, write=False)
    token = request.cookies.get(auth.SESSION_COOKIE, "")
    return json_response({"sessions": await _service(request).sessions(moderator, token)})


async def end_session(request: Request) -> Response:
    moderator = await require_moderator(request)
    await _service(request).end_session(moderator, id_of(request, "session"))
    return Response(status_code=204)


async def end_all_sessions(request: Request) -> Response:
    moderator = await require_moderator(request)
    await _service(request).end_all_sessions(moderator)
    response = Response(status_code=204)
    response.delete_cookie(auth.SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


def query_filter(request: Request, default: str) -> tuple[str, str | None]:
    """The `status` filter (a status, `reported` or `all`) and the `post` slug, else 422."""
    status = query_one(request, "status")
    if status is None:
        status = default
    if status not in FILTERS:
        raise ValidationFailed.field("status", "must be one of " + ", ".join(FILTERS))
    post = query_one(request, "post")
    if post is not None and not SLUG.match(post):
        raise ValidationFailed.field("post", "must be a post's slug")
    return status, post


def query_ids(request: Request) -> list[int] | None:
    """`ids`: up to 100 comma-separated comment ids, else 422."""
    raw = query_one(request, "ids")
    if raw is None:
        return None
    parts = raw.split(",")
    if not 0 < len(parts) <= 100 or not all(p.isdigit() and 0 < int(p) <= MAX_ID
                                             for p in parts):
        raise ValidationFailed.field("ids", "must be 1 to 100 comma-separated comment ids")
    return [int(p) for p in parts]


async def moderation_queue(request: Request) -> Response:
    await require_moderator(request, write=False)
    status, post = query_filter(request, "pending")
    limit = query_int(request, "limit", 100, 1, 500) or 100
    after = query_int(request, "after", None, 0, MAX_ID)
    comments, cursor = await _service(request).queue(status, post, after, limit)
    return json_response({"comments": [c.private() for c in comments], "next": cursor})


async def moderation_comments(request: Request) -> Response:
    await require_moderator(request, write=False)
    status, post = query_filter(request, "all")
    limit = query_int(request, "limit", 50, 1, 500) or 50
    before = query_int(request, "before", None, 0, MAX_ID)
    ids = query_ids(request)
    comments, cursor = await _service(request).feed(status, post, before,
                                                    len(ids) if ids else limit, ids)
    return json_response({"comments": comments, "next": None if ids else cursor})


async def moderation_counts(request: Request) -> Response:
    await require_moderator(request, write=False)
    _, post = query_filter(request, "all")
    return json_response({"counts": await _service(request).counts(post)})


async def moderation_log(request: Request) -> Response:
    await require_moderator(request, write=False)
    limit = query_int(request, "limit", 100, 1, 500) or 100
    after = query_int(request, "after", None, 0, MAX_ID)
    who = query_one(request, "moderator")
    action = query_one(request, "action")
    if action is not None and action not in AUDIT_ACTIONS:
        raise ValidationFailed.field("action", "must be one of " + ", ".join(AUDIT_ACTIONS))
    service = _service(request)
    entries, cursor = await service.audit_log(after, limit, moderator=who, action=action)
    return json_response({"entries": entries, "next": cursor,
                          "moderators": await service.audit_moderators()})


async def get_policy(request: Request) -> Response:
    await require_moderator(request, write=False)
    return json_response((await _service(request).policy()).public())


async def put_policy(request: Request) -> Response:
    moderator = await require_moderator(request)
    fields = await read_body(request, PolicyFields)
    policy = await _service(request).put_policy(fields.model_dump(exclude_unset=True), moderator)
    return json_response(policy.public())


async def list_bans(request: Request) -> Response:
    await require_moderator(request, write=False)
    return json_response({"bans": await _service(request).list_bans()})


async def add_ban(request: Request) -> Response:
    moderator = await require_moderator(request)
    fields = await read_body(request, NewBan)
    ban = await _service(request).ban(fields.kind, fields.value, fields.comment_id,
                                      shadow=fields.shadow, reason=fields.reason,
                                      expires_at=fields.expires_at, moderator=moderator)
    return json_response(ban, 201)


async def delete_ban(request: Request) -> Response:
    moderator = await require_moderator(request)
    await _service(request).lift_ban(id_of(request, "ban"), moderator)
    return Response(status_code=204)


async def moderate(request: Request) -> Response:
    action = request.path_params["action"]
    if action not in moderation.ACTIONS:
        raise NotFound(f"no action {action!r}")
    moderator = await require_moderator(request)
    body = await read_body(request, ModeratorAction, optional=True)
    comment = await _service(request).moderate(id_of(request), action, moderator,
                                               body.version, body.reason)
    return json_response({"comment": comment.private()})


ROUTES = [
    Route("/api/posts", list_posts, methods=["GET"]),
    Route("/api/posts/{slug}", get_post, methods=["GET"]),
    Route("/api/posts/{slug}", put_post, methods=["PUT"]),
    Route("/api/posts/{slug}/comments", read_thread, methods=["GET"]),
    Route("/api/posts/{slug}/comments", post_comment, methods=["POST"]),
    Route("/api/comments/{id:int}", get_comment, methods=["GET"]),
    Route("/api/comments/{id:int}", edit_comment, methods=["PATCH"]),
    Route("/api/comments/{id:int}", delete_comment, methods=["DELETE"]),
    Route("/api/comments/{id:int}/report", report_comment, methods=["POST"]),
    Route("/api/auth/login", login, methods=["POST"]),
    Route("/api/auth/logout", logout, methods=["POST"]),
    Route("/api/auth/me", me, methods=["GET"]),
    Route("/api/auth/sessions", list_sessions, methods=["GET"]),
    Route("/api/auth/sessions", end_all_sessions, methods=["DELETE"]),
    Route("/api/auth/sessions/{id:int}", end_session, methods=["DELETE"]),
    Route("/api/moderation/queue", moderation_queue, methods=["GET"]),
    Route("/api/moderation/comments", moderation_comments, methods=["GET"]),
    Route("/api/moderation/counts", moderation_counts, methods=["GET"]),
    Route("/api/moderation/comments/{id:int}/{action}", moderate, methods=["POST"]),
    Route("/api/moderation/log", moderation_log, methods=["GET"]),
    Route("/api/moderation/settings", get_policy, methods=["GET"]),
    Route("/api/moderation/settings", put_policy, methods=["PUT"]),
    Route("/api/moderation/bans", list_bans, methods=["GET"]),
    Route("/api/moderation/bans", add_ban, methods=["POST"]),
    Route("/api/moderation/bans/{id:int}", delete_ban, methods=["DELETE"]),
]

"""The HTTP API as an OpenAPI 3.1 document, built from the request models."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

from . import __version__
from .models import AUDIT_ACTIONS, FILTERS, MAX_ID, SLUG, STATUSES
from .moderation import ACTIONS
from .schemas import (
    CommentEdit,
    Login,
    ModeratorAction,
    NewBan,
    NewComment,
    NewThread,
    PolicyFields,
    PostFields,
    Report,
)

REQUEST_MODELS: list[type[BaseModel]] = [NewComment, CommentEdit, PostFields, Login,
                                         ModeratorAction, Report, PolicyFields, NewBan,
                                         NewThread]

_nullable_str = {"type": ["string", "null"]}
_time = {"type": "string", "format": "date-time"}
REASON = {"type": "object", "required": ["rule"], "properties": {"rule": {"enum": [
    "hold_word", "block_word", "links", "pre_moderation", "shadow_ban"]}}}
RESPONSE_SCHEMAS: dict[str, Any] = {
    "Post": {"type": "object", "required": [
        "slug", "title", "url", "moderation", "open", "comment_count", "seq", "created_at"],
        "properties": {
            "slug": {"type": "string"}, "title": {"type": "string"}, "url": _nullable_str,
            "moderation": {"enum": ["post", "pre"]}, "open": {"type": "boolean"},
            "comment_count": {"type": "integer"}, "seq": {"type": "integer"},
            "created_at": _time}},
    # The public view; the moderator view (the queue, moderator actions and edits) adds
    # author.email, ip, user_agent, depth, reports and reasons.
    "Comment": {"type": "object", "required": [
        "id", "post", "parent_id", "kind", "author", "body", "html", "status", "created_at",
        "edited_at", "version", "client_id"], "properties": {
        "id": {"type": "integer"}, "post": {"type": "string"},
        "parent_id": {"type": ["integer", "null"]}, "kind": {"enum": ["comment", "pingback"]},
        "author": {"type": "object", "required": ["name", "url", "avatar"], "properties": {
            "name": {"type": "string"}, "url": _nullable_str, "avatar": {"type": "string"},
            "email": _nullable_str}},
        "body": {"type": "string"}, "html": {"type": "string"},
        "status": {"enum": list(STATUSES)},
        "created_at": _time, "edited_at": {"type": ["string", "null"], "format": "date-time"},
        "version": {"type": "integer"}, "client_id": _nullable_str,
        "ip": _nullable_str, "user_agent": _nullable_str, "depth": {"type": "integer"},
        "reports": {"type": "integer"}, "reasons": {"type": "array", "items": REASON}}},
    "Problem": {"type": "object", "required": ["type", "title", "status", "code", "detail"],
                "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "code": {"type": "string"}, "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "required": [
            "field", "message"], "properties": {
            "field": {"type": "string"}, "message": {"type": "string"}}}}}},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _wrapped(**props: Any) -> dict[str, Any]:
    """An object that always has these properties (and may gain others later)."""
    return {"type": "object", "required": list(props), "properties": props}


POST_LIST = _wrapped(posts={"type": "array", "items": _ref("Post")},
                     next={"type": ["integer", "null"]})
THREAD = _wrapped(post=_ref("Post"), comments={"type": "array", "items": _ref("Comment")},
                  next={"type": ["integer", "null"]}, seq={"type": "integer"})
ONE_COMMENT = _wrapped(comment=_ref("Comment"))
CREATED = _wrapped(comment=_ref("Comment"), edit_token={"type": "string"},
                   edit_until={"type": "string", "format": "date-time"},
                   seq={"type": ["integer", "null"]})
MORE_REPLIES = {"type": "object", "additionalProperties": _wrapped(
    after={"type": "integer"}, count={"type": "integer"})}
THREAD_PAGE = _wrapped(post=_ref("Post"), seq={"type": "integer"},
                       comments={"type": "array", "items": _ref("Comment")},
                       next={"type": ["integer", "null"]}, more_replies=MORE_REPLIES)
CONTEXT = _wrapped(post=_ref("Post"), seq={"type": "integer"},
                   comments={"type": "array", "items": _ref("Comment")},
                   next={"type": "null"}, more_replies=MORE_REPLIES, root={"type": "integer"})
COUNTS = _wrapped(counts={"type": "object", "additionalProperties": {"type": "integer"}})
PREVIEW = _wrapped(html={"type": "string"}, links={"type": "integer"})
QUEUE = _wrapped(comments={"type": "array", "items": _ref("Comment")},
                 next={"type": ["integer", "null"]})
MODERATOR = _wrapped(moderator=_wrapped(username={"type": "string"}))
STATUS = _wrapped(status={"type": "string"})
REPORTED = _wrapped(reported={"type": "boolean"})
BAN = _wrapped(id={"type": "integer"}, kind={"enum": ["ip", "email", "name"]},
               value={"type": "string"}, shadow={"type": "boolean"},
               reason={"type": ["string", "null"]},
               expires_at={"type": ["string", "null"], "format": "date-time"},
               created_at={"type": "string", "format": "date-time"},
               created_by=_nullable_str)
BANS = _wrapped(bans={"type": "array", "items": BAN})
POLICY = _wrapped(default_moderation={"enum": ["post", "pre"]},
                  hold_words={"type": "array", "items": {"type": "string"}},
                  block_words={"type": "array", "items": {"type": "string"}},
                  max_links={"type": "integer"}, trusted_authors={"type": "boolean"},
                  edit_window_s={"type": "integer"},
                  flood=_wrapped(min_interval_s={"type": "integer"},
                                 max_per_10_min={"type": "integer"}))
LOG = _wrapped(entries={"type": "array", "items": _wrapped(
    id={"type": "integer"}, moderator={"type": "string"}, action={"type": "string"},
    comment_id={"type": ["integer", "null"]}, post={"type": ["string", "null"]},
    reason={"type": ["string", "null"]}, detail={"type": ["object", "null"]},
    created_at={"type": "string", "format": "date-time"})},
    next={"type": ["integer", "null"]},
    moderators={"type": "array", "items": {"type": "string"}})
_counts = {"type": "integer", "minimum": 0}
FEED_CONTEXT = _wrapped(
    post={"type": ["object", "null"], "properties": {
        "slug": {"type": "string"}, "title": {"type": "string"}, "url": _nullable_str}},
    parent={"type": ["object", "null"], "properties": {
        "id": {"type": "integer"}, "author": _wrapped(name={"type": "string"}),
        "status": {"type": "string"}, "excerpt": {"type": "string"}}},
    author=_wrapped(by={"enum": ["email", "name"]}, approved=_counts, pending=_counts,
                    spam=_counts, rejected=_counts, deleted=_counts,
                    bans={"type": "array", "items": BAN}),
    reports={"type": "array", "items": _wrapped(
        reason={"type": "string"}, created_at={"type": "string", "format": "date-time"})})
FEED = _wrapped(comments={"type": "array", "items": {"allOf": [
    _ref("Comment"), _wrapped(context=FEED_CONTEXT)]}}, next={"type": ["integer", "null"]})
FILTER_COUNTS = _wrapped(counts=_wrapped(**{name: _counts for name in FILTERS}))
SESSIONS = _wrapped(sessions={"type": "array", "items": _wrapped(
    id={"type": "integer"}, created_at={"type": "string", "format": "date-time"},
    expires_at={"type": "string", "format": "date-time"}, ip=_nullable_str,
    user_agent=_nullable_str, current={"type": "boolean"})})

# The body of a Server-Sent Events stream (docs/protocol.md, "Server-Sent Events").
EVENT_STREAM = {"type": "string", "contentMediaType": "text/event-stream",
                "description": "one `data:` line of stream-message JSON per event; `id:` is"
                               " the seq of `event` messages; `: ping` every 20 s"}
HEADER_PARAMETERS = {"/api/posts/{slug}/events": [{
    "name": "Last-Event-ID", "in": "header", "required": False,
    "description": "the last seq received; wins over `since`",
    "schema": {"type": "string", "pattern": "^[0-9]+$"}}]}

# (method, path, summary, request model, {status: schema or None}, query parameters: a name
# from QUERY_SCHEMAS, or (name, schema) where an operation differs)
Query = str | tuple[str, dict[str, Any]]
OPERATIONS: list[tuple[str, str, str, str | None, dict[int, Any], list[Query]]] = [
    ("get", "/api/posts", "List posts, newest first", None, {200: POST_LIST},
     ["limit", "after"]),
    ("get", "/api/posts/{slug}", "Get one post", None, {200: _ref("Post")}, []),
    ("put", "/api/posts/{slug}", "Create or update a post (moderator)", "PostFields",
     {200: _ref("Post"), 201: _ref("Post")}, []),
    ("get", "/api/posts/{slug}/comments", "Read a thread with its seq", None, {200: THREAD},
     ["limit", "after"]),
    ("post", "/api/posts", "Find or create the thread a page embeds (browsers of allowed origins;"
     " 10 new threads per IP per hour)", "NewThread", {200: _ref("Post"), 201: _ref("Post")}, []),
    ("get", "/api/posts/{slug}/thread", "Top-level comments page by page, with their first"
     " replies", None, {200: THREAD_PAGE},
     ["sort", ("limit", {"type": "integer", "minimum": 1, "maximum": 100}), "after", "replies"]),
    ("get", "/api/comments/{id}/replies", "More replies under a top-level comment", None,
     {200: QUEUE}, ["limit", "after"]),
    ("get", "/api/comments/{id}/context", "A comment in context: its top-level comment and the"
     " comments on the way to it", None, {200: CONTEXT}, ["replies"]),
    ("get", "/api/counts", "Comment counts of many posts", None, {200: COUNTS}, ["slugs"]),
    ("post", "/api/preview", "Render a comment body without posting it", "CommentEdit",
     {200: PREVIEW}, []),
    ("post", "/api/posts/{slug}/comments", "Post a comment", "NewComment",
     {201: CREATED, 200: ONE_COMMENT}, []),
    ("get", "/api/posts/{slug}/events", "The thread's live stream as Server-Sent Events", None,
     {200: EVENT_STREAM}, ["since"]),
    ("get", "/api/comments/{id}", "Get one visible comment", None, {200: ONE_COMMENT}, []),
    ("patch", "/api/comments/{id}", "Edit a comment (edit token or moderator)", "CommentEdit",
     {200: ONE_COMMENT}, []),
    ("delete", "/api/comments/{id}", "Delete a comment (edit token or moderator)", None,
     {204: None}, []),
    ("post", "/api/comments/{id}/report", "Report a comment to the moderators (once per reader)",
     "Report", {202: REPORTED}, []),
    ("post", "/api/auth/login", "Log in as a moderator", "Login", {200: MODERATOR}, []),
    ("post", "/api/auth/logout", "Log out", None, {204: None}, []),
    ("get", "/api/auth/me", "The logged-in moderator", None, {200: MODERATOR}, []),
    ("get", "/api/auth/sessions", "The moderator's live sessions", None, {200: SESSIONS}, []),
    ("delete", "/api/auth/sessions", "Log out everywhere: end every session of the moderator",
     None, {204: None}, []),
    ("delete", "/api/auth/sessions/{id}", "End one of the moderator's sessions", None,
     {204: None}, []),
    ("get", "/api/moderation/queue", "Comments of any status on all posts, oldest first", None,
     {200: QUEUE}, ["status", "post", "limit", "after"]),
    ("get", "/api/moderation/comments",
     "The moderator feed: comments by filter and post, newest first, each with its context",
     None, {200: FEED}, ["status", "post", "before", "limit", "ids"]),
    ("get", "/api/moderation/counts", "How many comments each filter holds", None,
     {200: FILTER_COUNTS}, ["post"]),
    ("post", "/api/moderation/comments/{id}/{action}", "Moderate a comment", "ModeratorAction",
     {200: ONE_COMMENT}, []),
    ("get", "/api/moderation/log", "Moderator actions, newest first", None, {200: LOG},
     ["limit", "after", "moderator", "action"]),
    ("get", "/api/moderation/settings", "The moderation policy in force", None,
     {200: POLICY}, []),
    ("put", "/api/moderation/settings", "Change the moderation policy (a subset is fine)",
     "PolicyFields", {200: POLICY}, []),
    ("get", "/api/moderation/bans", "Every ban, newest first", None, {200: BANS}, []),
    ("post", "/api/moderation/bans", "Ban by IP, e-mail or name (or a comment's author)",
     "NewBan", {201: BAN}, []),
    ("delete", "/api/moderation/bans/{id}", "Lift a ban", None, {204: None}, []),
    ("get", "/healthz", "Liveness", None, {200: STATUS}, []),
    ("get", "/readyz", "Readiness: database and listener up", None, {200: STATUS}, []),
]


def _path_parameters(path: str) -> list[dict[str, Any]]:
    params = []
    for name in ("slug", "id", "action"):
        if "{" + name + "}" in path:
            schema: dict[str, Any] = {"type": "integer"} if name == "id" else {"type": "string"}
            if name == "action":
                schema = {"enum": list(ACTIONS)}
            params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


# Query parameters an operation cannot do without (only /api/counts has one).
REQUIRED_QUERIES = {"slugs"}
QUERY_SCHEMAS: dict[str, dict[str, Any]] = {
    "limit": {"type": "integer", "minimum": 1, "maximum": 500},
    "status": {"enum": list(FILTERS)},
    "post": {"type": "string", "pattern": SLUG.pattern},
    "ids": {"type": "string", "pattern": r"^[0-9]+(,[0-9]+){0,99}$",
            "description": "up to 100 comma-separated comment ids"},
    "moderator": {"type": "string"},
    "action": {"enum": list(AUDIT_ACTIONS)},
    "sort": {"enum": ["oldest", "newest"]},
    "replies": {"type": "integer", "minimum": 0, "maximum": 100},
    "slugs": {"type": "string", "pattern": r"^,*[a-z0-9._-]{1,200}(,+[a-z0-9._-]{1,200}){0,99},*$",
              "description": "1 to 100 post slugs, separated by commas"},
}


def _query_parameter(query: Query) -> dict[str, Any]:
    name, schema = query if isinstance(query, tuple) else (
        query, QUERY_SCHEMAS.get(query, {"type": "integer", "minimum": 0, "maximum": MAX_ID}))
    return {"name": name, "in": "query", "required": name in REQUIRED_QUERIES, "schema": schema}


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document."""
    schemas: dict[str, Any] = dict(RESPONSE_SCHEMAS)
    for model in REQUEST_MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    problem = {"description": "error",
               "content": {"application/problem+json": {"schema": _ref("Problem")}}}
    paths: dict[str, Any] = {}
    for method, path, summary, body, answers, query in OPERATIONS:
        responses: dict[str, Any] = {}
        for status, schema in answers.items():
            entry: dict[str, Any] = {"description": "success"}
            if schema is not None:
                media = "text/event-stream" if schema is EVENT_STREAM else "application/json"
                entry["content"] = {media: {"schema": schema}}
            responses[str(status)] = entry
        responses["default"] = problem
        operation: dict[str, Any] = {
            "summary": summary, "responses": responses,
            "parameters": _path_parameters(path) + [_query_parameter(q) for q in query]
            + HEADER_PARAMETERS.get(path, [])}
        if body is not None:
            operation["requestBody"] = {"required": body != "ModeratorAction", "content": {
                "application/json": {"schema": _ref(body)}}}
        paths.setdefault(path, {})[method] = operation
    return {"openapi": "3.1.0",
            "info": {"title": "realtime", "version": __version__,
                     "description": "Real-time discussion server: HTTP API"},
            "paths": paths, "components": {"schemas": schemas}}

"""The HTTP API against a real server and database: round trips, rules and every error."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from realtime.api import MAX_BODY

from conftest import MOD_PASSWORD, MOD_USER, Running, comment_body, login

PRIVATE = ("email", "ip", "user_agent", "edit_token_hash", "author_email")


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def assert_inert(html: str) -> None:
    """Parsed as a browser would, the HTML has only safe tags, no handlers, no script URLs."""
    parser = _Elements()
    parser.feed(html)
    for tag, attrs in parser.found:
        assert tag in {"p", "a", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li",
                       "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6"}, tag
        for name, value in attrs:
            assert not name.startswith("on"), name
            if name == "href":
                assert re.match(r"(?i)(https?://[^/\\\s?#]|mailto:\S)", value or ""), value


def assert_problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The answer is problem+json with this status and code."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = answer.json()
    assert problem["status"] == status and problem["code"] == code
    assert problem["type"] == "about:blank" and problem["title"] and problem["detail"]
    return problem


async def test_post_and_read_round_trip(client: httpx.AsyncClient, post: dict[str, Any]) -> None:
    """A posted comment comes back rendered, in the thread, with the seq it was given."""
    answer = await client.post("/api/posts/hello-world/comments",
                               json=comment_body("Hello *there*", client_id=str(uuid.uuid4())))
    assert answer.status_code == 201
    created = answer.json()
    assert created["seq"] == 1 and created["edit_token"]
    edit_until = datetime.fromisoformat(created["edit_until"])
    written = datetime.fromisoformat(created["comment"]["created_at"])
    assert edit_until - written == timedelta(seconds=900)
    comment = created["comment"]
    assert comment["html"] == "<p>Hello <em>there</em></p>"
    assert comment["status"] == "approved" and comment["version"] == 1
    thread = (await client.get("/api/posts/hello-world/comments")).json()
    assert thread["seq"] == 1 and thread["next"] is None
    assert [c["id"] for c in thread["comments"]] == [comment["id"]]
    assert thread["post"]["comment_count"] == 1
    one = (await client.get(f"/api/comments/{comment['id']}")).json()["comment"]
    assert one["body"] == "Hello *there*"


async def test_posts_list_and_get(mod: httpx.AsyncClient) -> None:
    """Posts list newest first in keyset pages; one post reads by slug."""
    for i in range(3):
        assert (await mod.put(f"/api/posts/p{i}", json={"title": f"P{i}"})).status_code == 201
    page = (await mod.get("/api/posts", params={"limit": 2})).json()
    assert [p["slug"] for p in page["posts"]] == ["p2", "p1"]
    rest = (await mod.get("/api/posts", params={"limit": 2, "after": page["next"]})).json()
    assert [p["slug"] for p in rest["posts"]] == ["p0"] and rest["next"] is None
    one = (await mod.get("/api/posts/p1")).json()
    assert one["title"] == "P1" and one["moderation"] == "post" and one["open"] is True


async def test_put_post_updates_and_bumps_seq(mod: httpx.AsyncClient,
                                              post: dict[str, Any]) -> None:
    """Updating a post answers 200, bumps seq once, and a no-op update changes nothing."""
    answer = await mod.put("/api/posts/hello-world", json={"open": False, "title": "Closed"})
    assert answer.status_code == 200
    assert answer.json()["seq"] == 1 and answer.json()["open"] is False
    again = await mod.put("/api/posts/hello-world", json={"open": False})
    assert again.status_code == 200 and again.json()["seq"] == 1
    bad = await mod.put("/api/posts/Not%20A%20Slug", json={"title": "x"})
    assert_problem(bad, 422, "validation_error")
    untitled = await mod.put("/api/posts/untitled", json={"open": True})
    assert_problem(untitled, 422, "validation_error")


async def test_thread_pages_cover_every_comment(client: httpx.AsyncClient,
                                                post: dict[str, Any]) -> None:
    """Keyset pages return every visible comment once, in id order."""
    for i in range(7):
        answer = await client.post("/api/posts/hello-world/comments",
                                   json=comment_body(f"comment {i}", name=f"N{i}"))
        assert answer.status_code == 201
    seen: list[int] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"after": after} if after else {})
        page = (await client.get("/api/posts/hello-world/comments", params=params)).json()
        seen += [c["id"] for c in page["comments"]]
        after = page["next"]
        if after is None:
            break
    assert seen == sorted(seen) and len(seen) == 7


async def test_client_id_retry_returns_first_comment(client: httpx.AsyncClient,
                                                     post: dict[str, Any]) -> None:
    """The same client_id posted again answers 200 with the first comment and writes nothing."""
    client_id = str(uuid.uuid4())
    first = await client.post("/api/posts/hello-world/comments",
                              json=comment_body("once", client_id=client_id))
    retry = await client.post("/api/posts/hello-world/comments",
                              json=comment_body("once", client_id=client_id))
    assert first.status_code == 201 and retry.status_code == 200
    assert retry.json()["comment"]["id"] == first.json()["comment"]["id"]
    assert "edit_token" not in retry.json()
    thread = (await client.get("/api/posts/hello-world/comments")).json()
    assert len(thread["comments"]) == 1 and thread["seq"] == 1


async def test_client_id_retry_after_thread_closed(client: httpx.AsyncClient,
                                                   mod: httpx.AsyncClient,
                                                   post: dict[str, Any]) -> None:
    """A retry still gets its comment back after the thread closed."""
    client_id = str(uuid.uuid4())
    first = await client.post("/api/posts/hello-world/comments",
                              json=comment_body(client_id=client_id))
    await mod.put("/api/posts/hello-world", json={"open": False})
    retry = await client.post("/api/posts/hello-world/comments",
                              json=comment_body(client_id=client_id))
    assert retry.status_code == 200
    assert retry.json()["comment"]["id"] == first.json()["comment"]["id"]


async def test_concurrent_retries_create_one_comment(client: httpx.AsyncClient,
                                                     post: dict[str, Any]) -> None:
    """Racing retries of one client_id create exactly one comment."""
    body = comment_body(client_id=str(uuid.uuid4()))
    answers = await asyncio.gather(*[client.post("/api/posts/hello-world/comments", json=body)
                                     for _ in range(8)])
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert len({a.json()["comment"]["id"] for a in answers}) == 1


async def test_duplicate_body_refused(client: httpx.AsyncClient, post: dict[str, Any]) -> None:
    """The same body from the same e-mail under a new client_id is a 409 duplicate_comment."""
    assert (await client.post("/api/posts/hello-world/comments",
                              json=comment_body("same"))).status_code == 201
    again = await client.post("/api/posts/hello-world/comments", json=comment_body("same"))
    assert_problem(again, 409, "duplicate_comment")


@pytest.mark.parametrize(("body", "field"), [
    ({"body": "   ", "author": {"name": "Ann"}}, "body"),
    ({"body": "x" * 10_001, "author": {"name": "Ann"}}, "body"),
    ({"body": "x", "author": {"name": ""}}, "author.name"),
    ({"body": "x", "author": {"name": "n" * 101}}, "author.name"),
    ({"body": "x", "author": {"name": "Ann", "url": "javascript:alert(1)"}}, "author.url"),
    ({"body": "x", "author": {"name": "Ann", "email": "not-an-address"}}, "author.email"),
    ({"body": "x", "author": {"name": "Ann"}, "client_id": "nope"}, "client_id"),
    ({"body": "x", "author": {"name": "Ann"}, "parent_id": "1"}, "parent_id"),
    ({"body": 5, "author": {"name": "Ann"}}, "body"),
    ({"body": "x", "author": {"name": "Ann"}, "admin": True}, "admin"),
    ({"body": "x"}, "author"),
    ({"body": "x\u0000y", "author": {"name": "Ann"}}, "body"),
    ({"body": "x", "author": {"name": "Ann"}, "parent_id": 2**63}, "parent_id"),
])
async def test_invalid_comment_refused(client: httpx.AsyncClient, post: dict[str, Any],
                                       body: dict[str, Any], field: str) -> None:
    """Each invalid field answers 422 naming the field, and nothing is written."""
    answer = await client.post("/api/posts/hello-world/comments", json=body)
    problem = assert_problem(answer, 422, "validation_error")
    assert field in [e["field"] for e in problem["errors"]]
    thread = (await client.get("/api/posts/hello-world/comments")).json()
    assert thread["comments"] == [] and thread["seq"] == 0


async def test_malformed_requests(client: httpx.AsyncClient, post: dict[str, Any]) -> None:
    """Broken JSON is 422, a wrong content type 415, an oversized body 413."""
    url = "/api/posts/hello-world/comments"
    broken = await client.post(url, content=b"{not json",
                               headers={"content-type": "application/json"})
    assert_problem(broken, 422, "validation_error")
    array = await client.post(url, json=[1, 2])
    assert_problem(array, 422, "validation_error")
    form = await client.post(url, data={"body": "x"})
    assert_problem(form, 415, "unsupported_media_type")
    huge = await client.post(url, content=b'{"body": "' + b"x" * MAX_BODY + b'"}',
                             headers={"content-type": "application/json"})
    assert_problem(huge, 413, "payload_too_large")

    async def chunks() -> Any:
        for _ in range(MAX_BODY // 4096 + 2):
            yield b"x" * 4096

    streamed = await client.post(url, content=chunks(),
                                 headers={"content-type": "application/json"})
    assert_problem(streamed, 413, "payload_too_large")
    assert (await client.get("/api/posts/hello-world")).json()["comment_count"] == 0


async def test_unknown_things_are_404(client: httpx.AsyncClient) -> None:
    """Unknown posts, comments and routes answer 404 problem+json."""
    assert_problem(await client.get("/api/posts/nope"), 404, "not_found")
    assert_problem(await client.get("/api/posts/nope/comments"), 404, "not_found")
    assert_problem(await client.post("/api/posts/nope/comments", json=comment_body()),
                   404, "not_found")
    assert_problem(await client.get("/api/posts/Bad%20Slug"), 404, "not_found")
    assert_problem(await client.get("/api/comments/999"), 404, "not_found")
    assert_problem(await client.get(f"/api/comments/{2**70}"), 404, "not_found")
    assert_problem(await client.get("/api/nothing-here"), 404, "not_found")


async def test_bad_query_parameters(client: httpx.AsyncClient, post: dict[str, Any]) -> None:
    """Out-of-range limits and cursors answer 422."""
    for params in ({"limit": 0}, {"limit": 501}, {"limit": "x"}, {"after": -1},
                   {"after": str(2**64)}):
        answer = await client.get("/api/posts/hello-world/comments", params=params)
        assert_problem(answer, 422, "validation_error")


async def test_closed_thread_refuses(client: httpx.AsyncClient, mod: httpx.AsyncClient,
                                     post: dict[str, Any]) -> None:
    """A closed thread answers 403 thread_closed and stores nothing."""
    await mod.put("/api/posts/hello-world", json={"open": False})
    answer = await client.post("/api/posts/hello-world/comments", json=comment_body())
    assert_problem(answer, 403, "thread_closed")
    assert (await client.get("/api/posts/hello-world")).json()["comment_count"] == 0


@pytest.mark.parametrize("payload", [
    "<script>alert(1)</script>",
    "[click](javascript:alert(1))",
    "<img src=x onerror=alert(1)>",
    "[x](JaVaScRiPt:alert(1))",
    "![a](javascript:alert(1))",
    "<a href=\"http://e.example\" onclick=\"alert(1)\">x</a>",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "<svg onload=alert(1)>",
])
async def test_xss_is_inert(client: httpx.AsyncClient, post: dict[str, Any],
                            payload: str) -> None:
    """Scripts, event handlers and script URLs never survive rendering."""
    answer = await client.post("/api/posts/hello-world/comments",
                               json=comment_body(payload, name=f"x{abs(hash(payload))}"))
    assert_inert(answer.json()["comment"]["html"])


async def test_links_get_rel(client: httpx.AsyncClient, post: dict[str, Any]) -> None:
    """Links are marked nofollow ugc noopener."""
    answer = await client.post("/api/posts/hello-world/comments",
                                json=comment_body("see [this](https://e.example/)"))
    assert answer.json()["comment"]["html"] == (
        '<p>see <a href="https://e.example/" rel="nofollow ugc noopener">this</a></p>')


async def test_private_fields_never_public(server: Running, client: httpx.AsyncClient,
                                           mod: httpx.AsyncClient,
                                           post: dict[str, Any]) -> None:
    """E-mail, IP and user agent appear in no public answer, only to moderators."""
    created = await client.post("/api/posts/hello-world/comments",
                                json=comment_body("hi", name="Eve"),
                                headers={"user-agent": "SecretAgent/1.0"})
    comment_id = created.json()["comment"]["id"]
    public = [created.text, (await client.get("/api/posts/hello-world/comments")).text,
              (await client.get(f"/api/comments/{comment_id}")).text,
              (await client.get("/api/posts")).text]
    for text in public:
        assert "eve@example.org" not in text and "127.0.0.1" not in text
        assert "SecretAgent" not in text
        assert not any(f'"{k}"' in text for k in PRIVATE)
    queue = (await mod.get("/api/moderation/queue", params={"status": "all"})).json()
    mine = queue["comments"][0]
    assert mine["author"]["email"] == "eve@example.org" and mine["ip"] == "127.0.0.1"
    assert mine["user_agent"] == "SecretAgent/1.0"


async def test_replies_nest_and_depth_is_capped(make_server: Any) -> None:
    """Replies nest under visible parents; past max_depth they attach to the deepest allowed."""
    server = await make_server(max_depth=3)
    mod = await login(server)
    await mod.put("/api/posts/deep", json={"title": "Deep"})
    parent = None
    ids = []
    for level in range(5):
        answer = await mod.post("/api/posts/deep/comments",
                                json=comment_body(f"level {level}", name=f"L{level}",
                                                  parent_id=parent))
        assert answer.status_code == 201, answer.text
        parent = answer.json()["comment"]["id"]
        ids.append(answer.json()["comment"])
    await mod.aclose()
    assert [c["parent_id"] for c in ids] == [None, ids[0]["id"], ids[1]["id"], ids[1]["id"],
                                             ids[1]["id"]]


async def test_reply_parent_must_be_visible_and_same_post(client: httpx.AsyncClient,
                                                          mod: httpx.AsyncClient,
                                                          post: dict[str, Any]) -> None:
    """A reply to a missing, removed or foreign comment is a 422 on parent_id."""
    await mod.put("/api/posts/other", json={"title": "Other"})
    foreign = (await client.post("/api/posts/other/comments", json=comment_body())).json()
    gone = (await client.post("/api/posts/hello-world/comments",
                              json=comment_body("to delete"))).json()
    await mod.post(f"/api/moderation/comments/{gone['comment']['id']}/delete")
    for parent in (foreign["comment"]["id"], gone["comment"]["id"], 10_000):
        answer = await client.post("/api/posts/hello-world/comments",
                                   json=comment_body(f"reply to {parent}", parent_id=parent))
        problem = assert_problem(answer, 422, "validation_error")
        assert problem["errors"][0]["field"] == "parent_id"


async def test_edit_and_delete_with_token(client: httpx.AsyncClient,
                                          post: dict[str, Any]) -> None:
    """The edit token edits and deletes its own comment; a wrong one is refused."""
    created = (await client.post("/api/posts/hello-world/comments",
                                 json=comment_body("first draft"))).json()
    other = (await client.post("/api/posts/hello-world/comments",
                               json=comment_body("other", name="Bob"))).json()
    cid = created["comment"]["id"]
    auth = {"Authorization": f"Edit {created['edit_token']}"}
    edited = await client.patch(f"/api/comments/{cid}", json={"body": "*final*"}, headers=auth)
    assert edited.status_code == 200
    assert edited.json()["comment"]["html"] == "<p><em>final</em></p>"
    assert edited.json()["comment"]["version"] == 2 and edited.json()["comment"]["edited_at"]
    wrong = await client.patch(f"/api/comments/{other['comment']['id']}",
                               json={"body": "hijack"}, headers=auth)
    assert_problem(wrong, 403, "forbidden")
    assert_problem(await client.patch(f"/api/comments/{cid}", json={"body": "x"}),
                   401, "unauthorized")
    assert_problem(await client.patch(f"/api/comments/{cid}", json={"body": " "},
                                      headers=auth), 422, "validation_error")
    assert (await client.delete(f"/api/comments/{cid}", headers=auth)).status_code == 204
    assert_problem(await client.get(f"/api/comments/{cid}"), 404, "not_found")
    thread = (await client.get("/api/posts/hello-world/comments")).json()
    assert [c["id"] for c in thread["comments"]] == [other["comment"]["id"]]
    assert thread["post"]["comment_count"] == 1


async def test_edit_window_expires(make_server: Any) -> None:
    """After the edit window the token no longer edits or deletes."""
    server = await make_server(edit_window_s=0)
    mod = await login(server)
    await mod.put("/api/posts/w", json={"title": "W"})
    async with httpx.AsyncClient(base_url=server.url) as client:
        created = (await client.post("/api/posts/w/comments", json=comment_body())).json()
        auth = {"Authorization": f"Edit {created['edit_token']}"}
        cid = created["comment"]["id"]
        assert_problem(await client.patch(f"/api/comments/{cid}", json={"body": "late"},
                                          headers=auth), 403, "forbidden")
        assert_problem(await client.delete(f"/api/comments/{cid}", headers=auth),
                       403, "forbidden")
    assert (await mod.patch(f"/api/comments/{cid}", json={"body": "mod edit"})).status_code == 200
    await mod.aclose()


async def test_tombstone_keeps_thread_shape(client: httpx.AsyncClient, mod: httpx.AsyncClient,
                                            post: dict[str, Any]) -> None:
    """A deleted comment with a visible reply stays as a blank tombstone until the reply goes."""
    parent = (await client.post("/api/posts/hello-world/comments",
                                json=comment_body("parent"))).json()["comment"]
    reply = (await client.post("/api/posts/hello-world/comments",
                               json=comment_body("reply", name="Bob",
                                                 parent_id=parent["id"]))).json()["comment"]
    await mod.post(f"/api/moderation/comments/{parent['id']}/delete")
    thread = (await client.get("/api/posts/hello-world/comments")).json()
    tomb = thread["comments"][0]
    assert tomb["id"] == parent["id"] and tomb["status"] == "deleted"
    assert tomb["body"] == "" and tomb["html"] == "" and tomb["author"]["name"] == ""
    assert thread["comments"][1]["id"] == reply["id"]
    assert thread["post"]["comment_count"] == 1
    await mod.post(f"/api/moderation/comments/{reply['id']}/delete")
    thread = (await client.get("/api/posts/hello-world/comments")).json()
    assert thread["comments"] == [] and thread["post"]["comment_count"] == 0


async def test_pre_moderation_and_approval(client: httpx.AsyncClient, mod: httpx.AsyncClient,
                                           post: dict[str, Any]) -> None:
    """A pre-moderated thread keeps comments pending until a moderator approves."""
    await mod.put("/api/posts/hello-world", json={"moderation": "pre"})
    created = (await client.post("/api/posts/hello-world/comments",
                                 json=comment_body())).json()
    assert created["comment"]["status"] == "pending" and created["seq"] is None
    assert (await client.get("/api/posts/hello-world/comments")).json()["comments"] == []
    queue = (await mod.get("/api/moderation/queue")).json()["comments"]
    assert [c["id"] for c in queue] == [created["comment"]["id"]]
    approved = await mod.post(f"/api/moderation/comments/{created['comment']['id']}/approve",
                              json={"version": 1})
    assert approved.json()["comment"]["status"] == "approved"
    assert approved.json()["comment"]["version"] == 2
    assert len((await client.get("/api/posts/hello-world/comments")).json()["comments"]) == 1


async def test_moderator_actions_and_conflict(client: httpx.AsyncClient,
                                              mod: httpx.AsyncClient,
                                              post: dict[str, Any]) -> None:
    """Actions move the status, a no-op keeps the version, a stale version is a 409."""
    cid = (await client.post("/api/posts/hello-world/comments",
                             json=comment_body())).json()["comment"]["id"]
    same = await mod.post(f"/api/moderation/comments/{cid}/approve")
    assert same.status_code == 200 and same.json()["comment"]["version"] == 1
    spam = await mod.post(f"/api/moderation/comments/{cid}/spam", json={"version": 1})
    assert spam.json()["comment"]["status"] == "spam"
    stale = await mod.post(f"/api/moderation/comments/{cid}/restore", json={"version": 1})
    problem = assert_problem(stale, 409, "conflict")
    assert problem["comment"]["version"] == 2 and problem["comment"]["status"] == "spam"
    restored = await mod.post(f"/api/moderation/comments/{cid}/restore", json={"version": 2})
    assert restored.json()["comment"]["status"] == "approved"
    for action in ("reject", "delete"):
        answer = await mod.post(f"/api/moderation/comments/{cid}/{action}")
        assert answer.status_code == 200
    assert_problem(await mod.post(f"/api/moderation/comments/{cid}/explode"), 404, "not_found")
    assert_problem(await mod.post("/api/moderation/comments/999/approve"), 404, "not_found")
    assert_problem(await mod.post(f"/api/moderation/comments/{cid}/approve",
                                  json={"version": "2"}), 422, "validation_error")


async def test_login_logout_and_me(server: Running, client: httpx.AsyncClient) -> None:
    """Login sets an HttpOnly SameSite cookie; wrong passwords are 401; logout ends it."""
    await login(server)
    credentials = {"username": MOD_USER, "password": MOD_PASSWORD}
    answer = await client.post("/api/auth/login", json=credentials)
    assert answer.status_code == 200
    assert answer.json() == {"moderator": {"username": MOD_USER}}
    set_cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie and "path=/" in set_cookie
    assert (await client.get("/api/auth/me")).json() == {"moderator": {"username": MOD_USER}}
    assert (await client.post("/api/auth/logout",
                              headers={"Origin": server.url})).status_code == 204
    assert_problem(await client.get("/api/auth/me"), 401, "unauthorized")
    wrong = await client.post("/api/auth/login", json={"username": MOD_USER, "password": "no"})
    assert_problem(wrong, 401, "unauthorized")
    unknown = await client.post("/api/auth/login", json={"username": "who", "password": "x"})
    assert_problem(unknown, 401, "unauthorized")
    assert_problem(await client.get("/api/auth/me"), 401, "unauthorized")


async def test_moderator_writes_need_allowed_origin(server: Running,
                                                    post: dict[str, Any]) -> None:
    """A cookie-authenticated write from a foreign or missing origin is 403 forbidden."""
    mod = await login(server)
    for headers in ({"Origin": "https://evil.example"}, {}):
        mod.headers.pop("Origin", None)
        answer = await mod.put("/api/posts/hello-world", json={"title": "pwned"},
                               headers=headers)
        assert_problem(answer, 403, "forbidden")
    assert (await mod.get("/api/posts/hello-world")).json()["title"] == "Hello, world"
    await mod.aclose()


async def test_moderator_only_routes(client: httpx.AsyncClient, post: dict[str, Any]) -> None:
    """Moderator routes answer 401 to anonymous callers."""
    assert_problem(await client.put("/api/posts/x", json={"title": "x"}), 401, "unauthorized")
    assert_problem(await client.get("/api/moderation/queue"), 401, "unauthorized")
    assert_problem(await client.post("/api/moderation/comments/1/approve"), 401,
                   "unauthorized")


async def test_health_and_openapi(client: httpx.AsyncClient) -> None:
    """Health, readiness, metrics and the OpenAPI document are served."""
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    scrape = (await client.get("/metrics")).text
    assert "realtime_ws_connections 0.0" in scrape and "realtime_listener_up 1.0" in scrape
    spec = (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    assert "/api/posts/{slug}/comments" in spec["paths"]
    assert "NewComment" in spec["components"]["schemas"]


async def test_database_down_is_503(make_server: Any, database_url: str) -> None:
    """With the database unreachable, requests answer 503 unavailable with Retry-After."""
    server = await make_server()
    await server.store.pool.close()
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer = await client.get("/api/posts")
    problem = assert_problem(answer, 503, "unavailable")
    assert problem["detail"] and answer.headers["retry-after"]


async def test_concurrent_posts_get_gap_free_seq_and_events(server: Running,
                                                            client: httpx.AsyncClient,
                                                            post: dict[str, Any]) -> None:
    """Concurrent posts to one thread get distinct seqs 1..N, each with its events row."""
    answers = await asyncio.gather(*[
        client.post("/api/posts/hello-world/comments", json=comment_body(f"c{i}", name=f"C{i}"))
        for i in range(60)])
    assert all(a.status_code == 201 for a in answers)
    by_seq = {a.json()["seq"]: a.json()["comment"]["id"] for a in answers}
    assert sorted(by_seq) == list(range(1, 61))
    rows = await server.store.pool.fetch(
        "SELECT e.seq, e.type, e.data FROM events e JOIN posts p ON p.id = e.post_id"
        " WHERE p.slug = 'hello-world' ORDER BY e.seq")
    assert [r["seq"] for r in rows] == list(range(1, 61))
    for row in rows:
        assert row["type"] == "comment.created"
        assert json.loads(row["data"])["id"] == by_seq[row["seq"]]
    assert (await client.get("/api/posts/hello-world")).json()["seq"] == 60


async def test_reports_count_once_per_reader(client: httpx.AsyncClient, mod: httpx.AsyncClient,
                                             post: dict[str, Any]) -> None:
    """A report answers 202; the same reader again counts once; moderators see the count."""
    cid = (await client.post("/api/posts/hello-world/comments",
                             json=comment_body("buy now"))).json()["comment"]["id"]
    for _ in range(2):
        answer = await client.post(f"/api/comments/{cid}/report", json={"reason": "spam"})
        assert answer.status_code == 202 and answer.json() == {"reported": True}
    queue = (await mod.get("/api/moderation/queue", params={"status": "approved"})).json()
    assert queue["comments"][0]["reports"] == 1
    public = (await client.get(f"/api/comments/{cid}")).json()["comment"]
    assert "reports" not in public
    assert_problem(await client.post("/api/comments/999/report", json={"reason": "x"}),
                   404, "not_found")
    assert_problem(await client.post(f"/api/comments/{cid}/report", json={"reason": " "}),
                   422, "validation_error")
    assert_problem(await client.post(f"/api/comments/{cid}/report", json={}),
                   422, "validation_error")


async def test_moderation_log_lists_actions(client: httpx.AsyncClient, mod: httpx.AsyncClient,
                                            post: dict[str, Any]) -> None:
    """Every moderator action is in the audit log, newest first, for moderators only."""
    cid = (await client.post("/api/posts/hello-world/comments",
                             json=comment_body())).json()["comment"]["id"]
    await mod.post(f"/api/moderation/comments/{cid}/spam", json={"reason": "link farm"})
    await mod.post(f"/api/moderation/comments/{cid}/restore")
    log = (await mod.get("/api/moderation/log")).json()
    assert [(e["action"], e["comment_id"], e["post"]) for e in log["entries"]] == [
        ("restore", cid, "hello-world"), ("spam", cid, "hello-world"),
        ("post", None, "hello-world")]
    assert log["entries"][1]["reason"] == "link farm" and log["entries"][1]["moderator"] == "mod"
    page = (await mod.get("/api/moderation/log", params={"limit": 1})).json()
    assert len(page["entries"]) == 1 and page["next"] == log["entries"][0]["id"]
    assert_problem(await client.get("/api/moderation/log"), 401, "unauthorized")


async def test_405_allow_lists_every_method(client: httpx.AsyncClient) -> None:
    """A method a path does not take is 405 with every method it does take in Allow."""
    for path, method, allowed in (
            ("/api/posts/hello-world", "POST", "GET, HEAD, PUT"),
            ("/api/posts/hello-world/comments", "DELETE", "GET, HEAD, POST"),
            ("/api/comments/1", "PUT", "DELETE, GET, HEAD, PATCH"),
            ("/api/moderation/settings", "POST", "GET, HEAD, PUT"),
            ("/api/moderation/bans", "PUT", "GET, HEAD, POST"),
            ("/api/auth/login", "GET", "POST")):
        answer = await client.request(method, path)
        assert_problem(answer, 405, "method_not_allowed")
        assert answer.headers["allow"] == allowed, (path, answer.headers["allow"])


async def test_astral_body_at_the_length_limit_is_accepted(client: httpx.AsyncClient,
                                                           post: dict[str, Any]) -> None:
    """10,000 astral characters written as JSON escapes (120,000 bytes) are a valid body."""
    sent = {"body": "\U0001f600" * 10_000, "author": {
        "name": "\U0001f600" * 100, "url": "https://e.example/" + "\u00e9" * 1900}}
    raw = json.dumps(sent).encode()  # ensure_ascii: astral characters as surrogate escapes
    assert len(raw) > 120_000 and b"\\ud83d\\ude00" in raw
    answer = await client.post("/api/posts/hello-world/comments", content=raw,
                               headers={"content-type": "application/json"})
    assert answer.status_code == 201, answer.text[:300]
    assert answer.json()["comment"]["body"] == "\U0001f600" * 10_000
    longer = json.dumps({**sent, "body": sent["body"] + "x"}).encode()
    assert_problem(await client.post("/api/posts/hello-world/comments", content=longer,
                                     headers={"content-type": "application/json"}),
                   422, "validation_error")


async def test_an_unparsable_origin_is_refused_not_a_crash(server: Running) -> None:
    """An Origin (or a page URL) that URL parsing rejects is a 403, never a 500."""
    mod = await login(server)
    mod.headers["Origin"] = "http://[evil"
    assert_problem(await mod.put("/api/posts/x", json={"title": "X"}), 403, "forbidden")
    await mod.aclose()

"""The widget's API against a real server and database: paged threads, context, counts,
threads created on first view, preview, link counting and foreign origins."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from conftest import Running, comment_body, login
from test_api import assert_problem

SLUG = "hello-world"
BLOG = "http://blog.example"


async def add(client: httpx.AsyncClient, text: str, parent: int | None = None,
              slug: str = SLUG) -> int:
    answer = await client.post(f"/api/posts/{slug}/comments",
                               json=comment_body(text, parent_id=parent))
    assert answer.status_code == 201, answer.text
    return int(answer.json()["comment"]["id"])


async def test_pages_of_roots_bring_their_replies(client: httpx.AsyncClient,
                                                  post: dict[str, Any]) -> None:
    """Each page holds top-level comments with their first replies; the rest come on demand."""
    roots = [await add(client, f"root {i}") for i in range(5)]
    replies = [await add(client, f"reply {i}", roots[0]) for i in range(4)]
    deep = await add(client, "deeper", replies[0])
    late = await add(client, "late reply to root 1", roots[1])

    page = (await client.get(f"/api/posts/{SLUG}/thread",
                             params={"limit": 2, "replies": 2})).json()
    assert [c["id"] for c in page["comments"]] == [roots[0], replies[0], replies[1], roots[1],
                                                   late]
    assert page["seq"] == page["post"]["seq"] == 11 and page["next"] == roots[1]
    assert page["more_replies"] == {str(roots[0]): {"after": replies[1], "count": 3}}
    rest = (await client.get(f"/api/comments/{roots[0]}/replies",
                             params={"after": replies[1], "limit": 2})).json()
    assert [c["id"] for c in rest["comments"]] == [replies[2], replies[3]]
    last = (await client.get(f"/api/comments/{roots[0]}/replies",
                             params={"after": rest["next"]})).json()
    assert [c["id"] for c in last["comments"]] == [deep] and last["next"] is None

    following = (await client.get(f"/api/posts/{SLUG}/thread",
                                  params={"limit": 2, "after": page["next"]})).json()
    assert [c["id"] for c in following["comments"]] == roots[2:4]
    newest = (await client.get(f"/api/posts/{SLUG}/thread",
                               params={"sort": "newest", "limit": 2, "replies": 0})).json()
    assert [c["id"] for c in newest["comments"]] == [roots[4], roots[3]]
    older = (await client.get(f"/api/posts/{SLUG}/thread", params={
        "sort": "newest", "limit": 10, "replies": 0, "after": newest["next"]})).json()
    assert [c["id"] for c in older["comments"]] == [roots[2], roots[1], roots[0]]
    assert older["next"] is None
    assert older["more_replies"] == {str(roots[0]): {"after": 0, "count": 5},
                                     str(roots[1]): {"after": 0, "count": 1}}
    for params, field in (({"sort": "top"}, "sort"), ({"limit": 101}, "limit"),
                          ({"replies": -1}, "replies")):
        answer = await client.get(f"/api/posts/{SLUG}/thread", params=params)
        assert assert_problem(answer, 422, "validation_error")["errors"][0]["field"] == field
    assert_problem(await client.get(f"/api/comments/{replies[0]}/replies"), 404, "not_found")


async def test_context_opens_a_deep_comment(client: httpx.AsyncClient, mod: httpx.AsyncClient,
                                            post: dict[str, Any]) -> None:
    """A comment far down a thread comes with its top-level comment and every step to it."""
    root = await add(client, "root")
    chain = [root]
    for i in range(14):
        chain.append(await add(client, f"level {i}", chain[-1] if i < 4 else chain[4]))
    answer = (await client.get(f"/api/comments/{chain[-1]}/context",
                               params={"replies": 3})).json()
    ids = [c["id"] for c in answer["comments"]]
    assert ids == [root, *chain[1:5], chain[-1]]  # chain[4] is on the way to the last
    assert answer["root"] == root and answer["seq"] == 15 and answer["post"]["slug"] == SLUG
    assert answer["more_replies"] == {str(root): {"after": chain[3], "count": 11}}
    # A removed comment in the middle stays as a tombstone, so the path is unbroken.
    assert (await mod.delete(f"/api/comments/{chain[1]}")).status_code == 204
    answer = (await client.get(f"/api/comments/{chain[2]}/context")).json()
    assert [c["status"] for c in answer["comments"][:3]] == ["approved", "deleted", "approved"]
    assert (await mod.post(f"/api/moderation/comments/{chain[-1]}/spam")).status_code == 200
    assert_problem(await client.get(f"/api/comments/{chain[-1]}/context"), 404, "not_found")


async def test_counts_of_many_posts_in_one_request(client: httpx.AsyncClient,
                                                   mod: httpx.AsyncClient,
                                                   post: dict[str, Any]) -> None:
    """One request answers the counts of every post named; unknown posts are left out."""
    await mod.put("/api/posts/other", json={"title": "Other"})
    for _ in range(3):
        await add(client, f"comment {_}")
    await add(client, "elsewhere", slug="other")
    answer = await client.get("/api/counts", params={"slugs": f"{SLUG},other,nope,other"})
    assert answer.json() == {"counts": {SLUG: 3, "other": 1}}
    for slugs in ("", "Bad Slug", ",".join(f"p{i}" for i in range(101))):
        answer = await client.get("/api/counts", params={"slugs": slugs})
        assert assert_problem(answer, 422, "validation_error")["errors"][0]["field"] == "slugs"


def thread(slug: str = "my-post", **extra: Any) -> dict[str, Any]:
    return {"slug": slug, "title": "My post", "url": f"{BLOG}/2026/my-post", **extra}


async def posts(running: Running) -> list[str]:
    conn = await asyncpg.connect(running.settings.database_url)
    try:
        return [r["slug"] for r in await conn.fetch("SELECT slug FROM posts ORDER BY slug")]
    finally:
        await conn.close()


async def test_thread_created_on_first_view(make_server: Callable[..., Awaitable[Running]]
                                            ) -> None:
    """A page of an allowed origin creates its thread once, with the site's default moderation."""
    server = await make_server(allowed_origins=BLOG, default_moderation="pre")
    async with httpx.AsyncClient(base_url=server.url, headers={"Origin": BLOG}) as page:
        answer = await page.post("/api/posts", json=thread())
        assert answer.status_code == 201, answer.text
        created = answer.json()
        assert (created["slug"], created["title"], created["url"], created["moderation"]) == (
            "my-post", "My post", f"{BLOG}/2026/my-post", "pre")
        again = await page.post("/api/posts", json=thread(title="Another title"))
        assert again.status_code == 200 and again.json()["title"] == "My post"
        assert again.headers["access-control-allow-origin"] == BLOG
        for body, field in ((thread(url="https://elsewhere.example/x"), "url"),
                            (thread(url="javascript:alert(1)//"), "url"),
                            (thread(title="  "), "title"), (thread(slug="Not A Slug"), "slug"),
                            (thread(title="x" * 301), "title")):
            answer = await page.post("/api/posts", json={**body, "slug": body["slug"]})
            assert assert_problem(answer, 422, "validation_error")["errors"][0]["field"] == field
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        assert_problem(await anonymous.post("/api/posts", json=thread("no-origin")), 403,
                       "forbidden")
        foreign = await anonymous.post("/api/posts", json=thread("foreign"),
                                       headers={"Origin": "http://evil.example"})
        assert_problem(foreign, 403, "forbidden")
        assert foreign.headers["access-control-allow-origin"] == "http://evil.example"
    assert await posts(server) == ["my-post"]


async def test_thread_creation_is_limited_per_address_across_nodes(
        make_server: Callable[..., Awaitable[Running]]) -> None:
    """The eleventh new thread from one address within an hour is refused on any node."""
    nodes = [await make_server(allowed_origins=BLOG) for _ in range(2)]
    for i in range(10):
        async with httpx.AsyncClient(base_url=nodes[i % 2].url,
                                     headers={"Origin": BLOG}) as page:
            answer = await page.post("/api/posts", json=thread(f"post-{i}"))
            assert answer.status_code == 201, answer.text
    for node in nodes:
        async with httpx.AsyncClient(base_url=node.url, headers={"Origin": BLOG}) as page:
            refused = await page.post("/api/posts", json=thread("one-too-many"))
            assert_problem(refused, 429, "rate_limited")
            assert 3500 <= int(refused.headers["retry-after"]) <= 3600
            # An existing thread is found, not created: it costs nothing.
            assert (await page.post("/api/posts", json=thread("post-3"))).status_code == 200
    assert "one-too-many" not in await posts(nodes[0])


async def test_auto_creation_can_be_turned_off(make_server: Callable[..., Awaitable[Running]]
                                               ) -> None:
    """With REALTIME_AUTO_CREATE=false a page finds existing threads and creates none."""
    server = await make_server(allowed_origins=BLOG, auto_create=False)
    mod = await login(server)
    await mod.put("/api/posts/exists", json={"title": "Made by a moderator"})
    await mod.aclose()
    async with httpx.AsyncClient(base_url=server.url, headers={"Origin": BLOG}) as page:
        problem = assert_problem(await page.post("/api/posts", json=thread()), 404, "not_found")
        assert problem["detail"] == "comments are not enabled for this page yet"
        found = await page.post("/api/posts", json=thread("exists"))
        assert found.status_code == 200 and found.json()["title"] == "Made by a moderator"
    assert await posts(server) == ["exists"]


async def test_preview_renders_without_posting(client: httpx.AsyncClient,
                                               post: dict[str, Any]) -> None:
    """Preview answers the sanitized HTML and the link count, and stores nothing."""
    answer = await client.post("/api/preview", json={
        "body": "*hi* https://a.example <script>x</script> `http://b.example`"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"html": '<p><em>hi</em> <a href="https://a.example" rel="nofollow'
                             ' ugc noopener">https://a.example</a> &lt;script&gt;x&lt;/script&gt;'
                             " <code>http://b.example</code></p>", "links": 2}
    answer = await client.post("/api/preview", json={"body": "x" * 10_001})
    assert assert_problem(answer, 422, "validation_error")["errors"][0]["field"] == "body"
    thread_now = (await client.get(f"/api/posts/{SLUG}/comments")).json()
    assert thread_now["comments"] == [] and thread_now["seq"] == 0


async def test_every_web_url_counts_towards_the_link_limit(client: httpx.AsyncClient,
                                                           mod: httpx.AsyncClient,
                                                           post: dict[str, Any]) -> None:
    """Bare URLs become safe links, and four of them (linked or not) exceed a limit of 2."""
    body = "see https://a.example/1 and http://b.example/2 `https://c.example/3` https://d.example"
    answer = await client.post(f"/api/posts/{SLUG}/comments", json=comment_body(body))
    assert answer.status_code == 201, answer.text
    shown = answer.json()["comment"]
    assert shown["status"] == "pending"
    assert shown["html"].count('rel="nofollow ugc noopener"') == 3
    held = (await mod.get("/api/moderation/queue")).json()["comments"][0]
    assert held["reasons"] == [{"rule": "links", "count": 4, "limit": 2}]
    two = await client.post(f"/api/posts/{SLUG}/comments", json=comment_body(
        "[https://a.example](https://a.example) and www.b.example, ftp://c.example", "Bo"))
    assert two.json()["comment"]["status"] == "approved"
    assert two.json()["comment"]["html"].count("<a ") == 1


async def test_foreign_origin_is_refused_readably_and_logged_once(
        server: Running, client: httpx.AsyncClient, post: dict[str, Any],
        caplog: pytest.LogCaptureFixture) -> None:
    """A page of a foreign origin gets a readable 403 (logged once); static files load anywhere."""
    foreign = {"Origin": "http://foreign.example"}
    with caplog.at_level(logging.WARNING, logger="realtime.origins"):
        for _ in range(3):
            answer = await client.get(f"/api/posts/{SLUG}/thread", headers=foreign)
            assert_problem(answer, 403, "forbidden")
            assert answer.headers["access-control-allow-origin"] == "http://foreign.example"
    refusals = [r for r in caplog.records if "foreign.example" in r.getMessage()]
    assert len(refusals) == 1
    assert "REALTIME_ALLOWED_ORIGINS" in refusals[0].getMessage()
    same = await client.get(f"/api/posts/{SLUG}/thread", headers={"Origin": server.url})
    assert same.status_code == 200
    script = await client.get("/static/embed.js", headers=foreign)
    assert script.status_code == 200 and script.headers["access-control-allow-origin"] == "*"

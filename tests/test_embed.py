"""The embed as a site owner and readers meet it, in a real Chromium against a real server:
other origins, creation on first view, languages, huge threads, SSE, counts, accessibility."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, BrowserContext, Page, WebSocketRoute, expect

from realtime import demo

from conftest import OpenPage, Running, login
from test_browser import LIVE, add_comment, serve_site

pytestmark = pytest.mark.browser

Site = Callable[[str], Awaitable[str]]

HOSTILE_CSS = """<style>
* { font-family: "Comic Sans MS", cursive !important; color: #f0f !important; }
button { background: red !important; border: 5px dotted lime !important; }
div, section, ol, li, article { display: inline !important; padding: 40px !important; }
[data-realtime-post] { --rt-accent: #c80064; }
</style>"""


def host_page(server: Running, *, slug: str = "", lang: str = "en", head: str = "",
              body: str = "") -> str:
    """A blog post of another site embedding a thread with the two-line snippet."""
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>My post'
            f"</title>{head}</head><body><h1>My post</h1><p class=host>Host text.</p>{body}"
            f'<div data-realtime-post="{slug}"></div>'
            f'<script type="module" src="{server.url}/static/embed.js"></script></body></html>')


@pytest.fixture
async def site() -> AsyncIterator[tuple[dict[str, str], str, str]]:
    """A website of its own on a loopback port: (its page source, allowed origin, foreign one)."""
    source: dict[str, str] = {}
    served = await serve_site(source)
    port = served.sockets[0].getsockname()[1]
    yield source, f"http://127.0.0.1:{port}", f"http://localhost:{port}"
    served.close()
    await served.wait_closed()


@pytest.fixture
async def contexts(browser: Browser) -> AsyncIterator[Callable[..., Awaitable[BrowserContext]]]:
    """New browser contexts (separate readers) that fail the test on a JavaScript error."""
    made: list[BrowserContext] = []
    errors: list[str] = []

    async def make(**options: Any) -> BrowserContext:
        context = await browser.new_context(**options)
        context.on("weberror", lambda e: errors.append(str(e.error)))
        made.append(context)
        return context

    yield make
    for context in made:
        await context.close()
    assert not errors, errors


async def slugs_in(running: Running) -> dict[str, tuple[str, str | None]]:
    conn = await asyncpg.connect(running.settings.database_url)
    try:
        return {r["slug"]: (r["title"], r["url"])
                for r in await conn.fetch("SELECT slug, title, url FROM posts")}
    finally:
        await conn.close()


async def computed(page: Page, selector: str, prop: str) -> str:
    return str(await page.locator(selector).first.evaluate(
        f"(el) => getComputedStyle(el).getPropertyValue({prop!r})"))


async def test_two_lines_on_another_site(make_server: Any, site: Any, contexts: Any) -> None:
    """A never-created thread on an allowed site is created, styled despite hostile CSS, live."""
    source, blog, _ = site
    server = await make_server(allowed_origins=blog)
    source["html"] = host_page(server, head=HOSTILE_CSS + f'<link rel="canonical" href="{blog}'
                               '/2026/11/My-Post/">')
    reader, writer = await (await contexts()).new_page(), await (await contexts()).new_page()
    host_sheets = None
    for page in (reader, writer):
        await page.goto(f"{blog}/2026/11/my-post?utm_source=feed")
        await expect(page.locator(".rt-count")).to_have_text("No comments yet")
        host_sheets = await page.evaluate("document.styleSheets.length")
    assert (await slugs_in(server)) == {"2026-11-my-post": ("My post", f"{blog}/2026/11/My-Post/")}
    # Styled by its own sheet: the host's !important rules and display tricks do not reach in,
    # its custom property does (the theming hook), and the host page is left as it was.
    submit = ".rt-submit"
    assert await computed(writer, submit, "background-color") == "rgb(200, 0, 100)"
    assert "Comic Sans" not in await computed(writer, ".rt-count", "font-family")
    assert await computed(writer, ".rt-root", "display") == "block"
    assert await computed(writer, ".rt-form", "display") == "block"
    assert await computed(writer, ".rt-count", "color") == "rgb(31, 35, 40)"
    assert await computed(writer, ".rt-count", "font-size") == "19.2px"
    assert await computed(writer, "p.host", "color") == "rgb(255, 0, 255)"
    assert await writer.evaluate("document.styleSheets.length") == host_sheets
    assert await writer.evaluate("document.querySelector('[data-realtime-post]').shadowRoot"
                                 ".mode") == "open"

    form = writer.locator(".rt-form")
    await form.get_by_label("Name").fill("Ann")
    await form.get_by_label("Comment").fill("Hello from the *blog*")
    await form.get_by_role("button", name="Post Comment").click()
    await expect(writer.locator(".rt-status-approved .rt-body em")).to_have_text("blog")
    await expect(reader.locator(".rt-comment .rt-body")).to_have_text("Hello from the blog",
                                                                       timeout=LIVE)
    await expect(reader.locator(".rt-count")).to_have_text("1 comment")
    await expect(reader.locator("[data-realtime-post]")).to_have_attribute(
        "data-realtime-transport", "websocket")


async def test_refused_origin_says_so(make_server: Any, site: Any, contexts: Any,
                                      caplog: pytest.LogCaptureFixture) -> None:
    """A site that is not allowed sees one sentence, creates nothing, and the server logs it."""
    source, blog, foreign = site
    server = await make_server(allowed_origins=blog)
    source["html"] = host_page(server, slug="stolen")
    page = await (await contexts()).new_page()
    with caplog.at_level(logging.WARNING, logger="realtime.origins"):
        for _ in range(2):
            await page.goto(f"{foreign}/post")
            await expect(page.locator(".rt-notice")).to_have_text(
                "Comments cannot be shown here: this site is not on the comment server's list"
                " of allowed sites.")
    assert [r for r in caplog.records if foreign in r.getMessage()] != []
    assert len([r for r in caplog.records if foreign in r.getMessage()]) == 1
    assert await slugs_in(server) == {}


async def test_auto_creation_off(make_server: Any, site: Any, contexts: Any) -> None:
    """With REALTIME_AUTO_CREATE=false the widget says so, in the page's language."""
    source, blog, _ = site
    server = await make_server(allowed_origins=blog, auto_create=False)
    page = await (await contexts()).new_page()
    source["html"] = host_page(server, slug="new-post")
    await page.goto(f"{blog}/new-post")
    await expect(page.locator(".rt-notice")).to_have_text(
        "Comments are not enabled for this page yet.")
    source["html"] = host_page(server, slug="new-post", lang="de")
    await page.goto(f"{blog}/new-post")
    await expect(page.locator(".rt-notice")).to_have_text(
        "Kommentare sind für diese Seite noch nicht freigeschaltet.")
    assert await slugs_in(server) == {}


@pytest.mark.parametrize(("lang", "labels"), [
    ("de", {"count": "2 Kommentare", "reply": "Antworten", "submit": "Kommentar senden",
            "name": "Name", "when": "vor 2 Stunden"}),
    ("ja", {"count": "2件のコメント", "reply": "返信", "submit": "コメントを送信",
            "name": "名前", "when": "2 時間前"}),
])
async def test_page_language(make_server: Any, site: Any, contexts: Any, lang: str,
                             labels: dict[str, str]) -> None:
    """<html lang> picks the catalog: labels, plurals and relative times in that language."""
    source, blog, _ = site
    server = await make_server(allowed_origins=blog)
    mod = await login(server)
    await mod.put("/api/posts/talk", json={"title": "Talk"})
    for text in ("one", "two"):
        await add_comment_to(mod, "talk", text)
    await backdate(server, hours=2)
    await mod.aclose()
    source["html"] = host_page(server, slug="talk", lang=lang)
    page = await (await contexts(locale="en-US")).new_page()
    await page.goto(f"{blog}/talk")
    await expect(page.locator(".rt-count")).to_have_text(labels["count"])
    await expect(page.locator(".rt-reply").first).to_have_text(labels["reply"])
    await expect(page.locator(".rt-submit")).to_have_text(labels["submit"])
    await expect(page.get_by_label(labels["name"], exact=True)).to_be_visible()
    await expect(page.locator(".rt-permalink time").first).to_have_text(labels["when"])
    await expect(page.locator(".rt-root")).to_have_attribute("lang", lang)


async def add_comment_to(client: httpx.AsyncClient, slug: str, text: str,
                         parent: int | None = None) -> dict[str, Any]:
    answer = await client.post(f"/api/posts/{slug}/comments", json={
        "body": text, "author": {"name": "Ann"}, "parent_id": parent})
    assert answer.status_code == 201, answer.text
    return answer.json()["comment"]  # type: ignore[no-any-return]


async def backdate(running: Running, hours: int) -> None:
    conn = await asyncpg.connect(running.settings.database_url)
    try:
        await conn.execute("UPDATE comments SET created_at = now() - $1::interval",
                           timedelta(hours=hours))
    finally:
        await conn.close()


SEED = """
WITH roots AS (
  INSERT INTO comments (post_id, status, author_name, avatar, body, html, created_at)
  SELECT $1, 'approved', 'Reader ' || g, substr(md5(g::text), 1, 16), 'Root ' || g,
         '<p>Root ' || g || '</p>', now() - interval '2 days' + g * interval '1 second'
  FROM generate_series(1, $2) AS g RETURNING id, body)
INSERT INTO comments (post_id, parent_id, depth, status, author_name, avatar, body, html)
SELECT $1, r.id, 1, 'approved', 'Replier', 'abcdef0123456789', 'Reply ' || k || ' to ' || r.body,
       '<p>Reply ' || k || ' to ' || r.body || '</p>'
FROM roots r CROSS JOIN LATERAL generate_series(1, CASE substr(r.body, 6)::int
  WHEN 1 THEN 30 ELSE CASE WHEN substr(r.body, 6)::int <= 986 THEN 2 ELSE 0 END END) AS k
"""


async def seed(running: Running, slug: str, roots: int) -> int:
    """A thread of `roots` top-level comments: the first with 30 replies, the next 985 with 2."""
    conn = await asyncpg.connect(running.settings.database_url)
    try:
        post_id = await conn.fetchval(
            "INSERT INTO posts (slug, title) VALUES ($1, 'Huge') RETURNING id", slug)
        await conn.execute(SEED, post_id, roots)
        total = await conn.fetchval("SELECT count(*) FROM comments WHERE post_id = $1", post_id)
        await conn.execute("UPDATE posts SET comment_count = $2 WHERE id = $1", post_id, total)
        return int(total)
    finally:
        await conn.close()


async def comment_id(running: Running, body: str) -> int:
    conn = await asyncpg.connect(running.settings.database_url)
    try:
        return int(await conn.fetchval("SELECT id FROM comments WHERE body = $1", body))
    finally:
        await conn.close()


async def test_huge_thread_pages_and_permalinks(server: Running, open_page: OpenPage
                                                ) -> None:
    """3,000 comments: the first page draws alone, "Show more" reaches the end, a permalink
    deep in the thread opens in context."""
    assert await seed(server, "huge", 1000) == 3000
    reads: list[str] = []

    async def count_reads(page: Page) -> None:
        page.on("request", lambda r: "/api/" in r.url and reads.append(r.url))

    page = await open_page("/p/huge", count_reads)
    await expect(page.locator(".rt-count")).to_have_text("3,000 comments")
    top = page.locator(".rt-comments > .rt-comment")
    await expect(top).to_have_count(20)
    assert len([r for r in reads if "/thread" in r]) == 1
    first = await comment_id(server, "Root 1")
    more_replies = page.locator(f"#comment-{first} > .rt-more-replies")
    await expect(more_replies).to_have_text("Show 20 more replies")
    await more_replies.click()
    await expect(page.locator(f"#comment-{first} > .rt-children > .rt-comment")).to_have_count(30)
    await expect(more_replies).to_have_count(0)
    await expect(page.get_by_role("button", name="Show more", exact=True)).to_be_visible()
    # CSS from here: role queries compute the name of each of thousands of buttons.
    more = page.locator(".rt-more")
    settled = page.locator(".rt-more:enabled, .rt-more[hidden]")
    for _ in range(20):
        if not await more.is_visible():
            break
        await more.click()
        await expect(settled).to_have_count(1)
    await expect(more).to_be_hidden()
    await expect(top).to_have_count(1000)
    await expect(top.last.locator(".rt-body")).to_have_text("Root 1000")
    assert await page.locator(".rt-comment").count() == 3000

    deep = await comment_id(server, "Reply 2 to Root 950")
    linked = await open_page(f"/p/huge#comment-{deep}")
    target = linked.locator(f"#comment-{deep}")
    root = await comment_id(server, "Root 950")
    await expect(linked.locator(f"#comment-{root} > .rt-children > #comment-{deep}")
                 ).to_have_count(1)
    await expect(target).to_have_class("rt-comment rt-status-approved rt-target")
    await expect(target.locator(".rt-card")).to_be_focused()
    await expect(target).to_be_in_viewport()
    assert await linked.locator(".rt-comments > .rt-comment").count() == 21


async def test_new_comments_do_not_move_the_page(server: Running, open_page: OpenPage,
                                                 client: httpx.AsyncClient) -> None:
    """Comments arriving above the one being read keep it in place; a button leads to them."""
    await seed(server, "busy", 40)
    page = await open_page("/p/busy")
    await page.set_viewport_size({"width": 800, "height": 600})
    await page.get_by_label("Sort").select_option("newest")
    ninth = page.locator(".rt-comments > .rt-comment").nth(8)
    await expect(ninth.locator(".rt-body").first).to_have_text("Root 32")
    reading = page.locator(f"#{await ninth.get_attribute('id')}")
    await reading.evaluate("(el) => window.scrollBy(0, el.getBoundingClientRect().top - 100)")
    before = (await reading.bounding_box() or {})["y"]
    assert 90 < before < 110
    for text in ("Breaking news", "More news"):
        answer = await client.post("/api/posts/busy/comments", json={
            "body": text, "author": {"name": "Newcomer"}})
        assert answer.status_code == 201
    button = page.get_by_role("button", name="2 new comments")
    await expect(button).to_be_visible(timeout=LIVE)
    await expect(page.locator(".rt-comments > .rt-comment").first.locator(".rt-body")
                 ).to_have_text("More news")
    assert abs((await reading.bounding_box() or {})["y"] - before) < 2
    await button.click()
    newest = page.locator(".rt-comments > .rt-comment").first
    await expect(newest).to_be_in_viewport()
    await expect(newest.locator(".rt-card").first).to_be_focused()
    await expect(button).to_be_hidden()
    assert await page.locator(".rt-thread [aria-live]").count() == 1
    await expect(page.locator(".rt-thread [aria-live]")).to_have_text("2 new comments")


def has_sse(running: Running) -> bool:
    return any(getattr(r, "path", "") == "/api/posts/{slug}/events" for r in running.app.routes)


async def test_sse_fallback_when_websockets_are_blocked(make_server: Any, contexts: Any) -> None:
    """With the socket blocked the widget uses SSE: live comments, and after a server restart
    it resumes with no gap and no repeat."""
    server, other = await make_server(), await make_server()
    if not has_sse(server):
        pytest.skip("the SSE endpoint (GET /api/posts/{slug}/events) is not on this branch yet")
    mod = await login(other)
    await mod.put("/api/posts/hello-world", json={"title": "Hello"})

    async def blocked(ws: WebSocketRoute) -> None:
        await ws.close(code=1006)

    context = await contexts()
    await context.route_web_socket("**/ws", blocked)
    page = await context.new_page()
    await page.goto(f"{server.url}/p/hello-world")
    widget = page.locator("[data-realtime-post]")
    await expect(widget).to_have_attribute("data-realtime-transport", "sse", timeout=LIVE)
    await expect(widget).to_have_attribute("data-realtime-state", "live", timeout=LIVE)
    first = await add_comment(mod, "Over SSE")
    await expect(page.locator(".rt-comment .rt-body")).to_have_text(["Over SSE"], timeout=LIVE)
    port = int(server.url.rsplit(":", 1)[1])
    await server.stop()
    await expect(widget).to_have_attribute("data-realtime-state", "reconnecting", timeout=LIVE)
    await add_comment(mod, "Posted while the server was down")
    await make_server(port=port)
    await add_comment(mod, "After the restart")
    await expect(page.locator(".rt-comment .rt-body")).to_have_text(
        ["Over SSE", "Posted while the server was down", "After the restart"], timeout=LIVE * 3)
    await expect(page.locator(".rt-thread")).to_have_attribute("data-seq", "3")
    await expect(widget).to_have_attribute("data-realtime-state", "live")
    assert first["id"]
    await mod.aclose()


async def test_count_js_fills_counts_with_one_request(make_server: Any, site: Any,
                                                     contexts: Any) -> None:
    """Every count on an index page comes from one request, in the reader's language."""
    source, blog, _ = site
    server = await make_server(allowed_origins=blog)
    mod = await login(server)
    for slug, n in (("three", 3), ("one", 1), ("none", 0)):
        await mod.put(f"/api/posts/{slug}", json={"title": slug})
        for i in range(n):
            await add_comment_to(mod, slug, f"comment {i}")
    await mod.aclose()
    page = await (await contexts()).new_page()
    counted: list[str] = []
    page.on("request", lambda r: "/api/counts" in r.url and counted.append(r.url))
    for lang, texts in (("en", ["3 comments", "1 comment", "0 comments", "0 comments"]),
                        ("de", ["3 Kommentare", "1 Kommentar", "0 Kommentare", "0 Kommentare"])):
        counted.clear()
        source["html"] = (
            f'<!doctype html><html lang="{lang}"><title>Blog</title><ul>'
            '<li><a href="/three">Three</a> <span data-realtime-count="three"></span>'
            '<li><a href="/one#comments" data-realtime-count="one"></a>'
            '<li><span data-realtime-count="none"></span>'
            '<li><a href="/never-created#comments" data-realtime-count=""></a></ul>'
            f'<script type="module" src="{server.url}/static/count.js"></script>')
        await page.goto(f"{blog}/")
        await expect(page.locator("[data-realtime-count]")).to_have_text(texts)
        assert len(counted) == 1


async def axe_violations(page: Page) -> list[str]:
    """Critical and serious axe-core violations on the page (shadow roots included)."""
    results = await Axe().run(page)
    return [f"{v['id']}: {v['help']} {[(n['target'], n['failureSummary']) for n in v['nodes']]}"
            for v in results.response["violations"] if v["impact"] in ("critical", "serious")]


async def test_no_serious_accessibility_violations(make_server: Any, site: Any,
                                                   contexts: Any) -> None:
    """axe-core finds nothing critical or serious on the demo page or a host page, light or
    dark, with replies, a pingback, a tombstone, a pending comment and an open form."""
    source, blog, _ = site
    server = await make_server(allowed_origins=blog)
    await demo.create_demo(server.app.state.realtime.service)
    mod = await login(server)
    listed = (await mod.get(f"/api/posts/{demo.SLUG}/comments")).json()["comments"]
    await mod.delete(f"/api/comments/{listed[0]['id']}")
    await mod.aclose()
    source["html"] = host_page(server, slug=demo.SLUG)
    for scheme in ("light", "dark"):
        context = await contexts(color_scheme=scheme)
        for url in (f"{server.url}/p/{demo.SLUG}", f"{blog}/post"):
            page = await context.new_page()
            await page.goto(url)
            await expect(page.locator(".rt-status-live")).to_be_visible(timeout=LIVE)
            await page.locator(".rt-reply").first.click()
            await page.locator(".rt-report").nth(2).click()
            assert await axe_violations(page) == [], (url, scheme)


async def test_keyboard_only_reading_replying_posting(open_page: OpenPage,
                                                      client: httpx.AsyncClient,
                                                      post: dict[str, Any]) -> None:
    """A skip link reaches the form; Escape cancels a reply; Ctrl+Enter posts; focus follows
    the posted comment; Preview shows the rendered Markdown; offline hides the watchers."""
    for i in range(10):
        await add_comment(client, f"Comment {i}", f"Reader{i}")
    page = await open_page("/p/hello-world")
    await expect(page.locator(".rt-count")).to_have_text("10 comments")
    await expect(page.locator(".rt-watching")).to_have_text("1 watching", timeout=LIVE)
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to the comment form")
    await expect(skip).to_be_focused()
    outline = await skip.evaluate("(el) => getComputedStyle(el).outlineStyle")
    assert outline == "solid"
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Name")).to_be_focused()
    await page.keyboard.type("Kim")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Comment", exact=True)).to_be_focused()
    await page.keyboard.type("Typed with *keys* only")
    preview = page.get_by_role("button", name="Preview")
    await preview.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator(".rt-preview em")).to_have_text("keys")
    await expect(preview).to_have_attribute("aria-pressed", "true")
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Comment", exact=True)).to_be_focused()
    await page.keyboard.press("Control+Enter")
    mine = page.locator(".rt-status-approved", has_text="Typed with keys only")
    await expect(mine.locator(".rt-card")).to_be_focused()
    await expect(page.locator(".rt-thread [aria-live]")).to_have_text("Your comment was posted.")

    # Reply by keyboard: Escape gives up and returns to the Reply button; Ctrl+Enter posts.
    reply = page.get_by_role("button", name="Reply to Reader3")
    await reply.focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Comment", exact=True)).to_be_focused()
    await expect(page.locator(".rt-form-title")).to_have_text("Replying to Reader3")
    await page.keyboard.press("Escape")
    await expect(reply).to_be_focused()
    await expect(page.locator(".rt-root-slot > .rt-form")).to_have_count(1)
    await page.keyboard.press("Enter")
    await page.keyboard.type("A keyboard reply")
    await page.keyboard.press("Control+Enter")
    answer = page.locator(".rt-children .rt-comment", has_text="A keyboard reply")
    await expect(answer.locator(".rt-card")).to_be_focused()
    assert await page.evaluate("document.activeElement.tagName") != "BODY"

    await page.context.set_offline(True)
    widget = page.locator("[data-realtime-post]")
    await expect(widget).to_have_attribute("data-realtime-state", "offline")
    await expect(page.locator(".rt-status")).to_have_text("Offline")
    await expect(page.locator(".rt-watching")).to_be_hidden()
    await page.context.set_offline(False)
    await expect(page.locator(".rt-status")).to_have_text("Live", timeout=LIVE)

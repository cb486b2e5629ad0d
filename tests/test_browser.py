"""The static client in a real headless Chromium: the embed, the moderator console, the model."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import (
    Browser,
    Page,
    Route,
    WebSocketRoute,
    expect,
)

from realtime.models import Draft

from conftest import OpenPage, Running, comment_body, wait_for

pytestmark = pytest.mark.browser

STATIC = Path(__file__).resolve().parent.parent / "static"
SLUG = "hello-world"
LIVE = 10_000  # ms: a live change crosses PostgreSQL NOTIFY, the hub and the socket

async def add_comment(client: httpx.AsyncClient, text: str, name: str = "Ann",
                      **extra: Any) -> dict[str, Any]:
    """Post a comment over HTTP and return it."""
    answer = await client.post(f"/api/posts/{SLUG}/comments",
                               json=comment_body(text, name, **extra))
    assert answer.status_code == 201, answer.text
    return answer.json()["comment"]  # type: ignore[no-any-return]


def comment(page: Page, comment_id: int) -> Any:
    return page.locator(f"#comment-{comment_id}")


async def test_thread_is_rendered_nested(open_page: OpenPage, server: Running,
                                         client: httpx.AsyncClient, post: dict[str, Any]) -> None:
    """The demo page shows existing comments threaded, replies nested under their parents."""
    first = await add_comment(client, "The first word", "Ann")
    reply = await add_comment(client, "A reply to Ann", "Bob", parent_id=first["id"])
    deeper = await add_comment(client, "A reply to Bob", "Cy", parent_id=reply["id"])
    other = await add_comment(client, "Another thread", "Dee")
    answer = await client.post(f"/api/posts/{SLUG}/comments", json={
        "body": "<img src=x onerror=window.pwned=1> *hi*",
        "author": {"name": '<img src=x onerror="window.pwned=1">'}})
    assert answer.status_code == 201, answer.text
    nasty = answer.json()["comment"]
    ping = await server.app.state.realtime.service.create_comment(SLUG, Draft(
        body="[Elsewhere](https://elsewhere.example/a) links here", author_name="Elsewhere",
        author_email=None, author_url="https://elsewhere.example/a", parent_id=None,
        client_id=None, ip=None, user_agent=None, kind="pingback"))

    page = await open_page(f"/p/{SLUG}")
    await expect(page.locator(".rt-count")).to_have_text("6 comments")
    root = page.locator(".rt-comments")
    await expect(root.locator(f":scope > #comment-{first['id']}")).to_have_count(1)
    await expect(root.locator(f":scope > #comment-{other['id']}")).to_have_count(1)
    await expect(page.locator(
        f"#comment-{first['id']} > .rt-children > #comment-{reply['id']}"
        f" > .rt-children > #comment-{deeper['id']}")).to_have_count(1)
    await expect(comment(page, reply["id"]).locator(".rt-body").first).to_have_text(
        "A reply to Ann")
    pingback = comment(page, ping.comment.id)
    await expect(pingback).to_have_class("rt-comment rt-status-approved rt-pingback")
    await expect(pingback.locator(".rt-kind")).to_have_text("Pingback")
    link = pingback.locator("a.rt-author")
    await expect(link).to_have_attribute("rel", "nofollow ugc noopener")
    await expect(link).to_have_attribute("href", "https://elsewhere.example/a")
    await expect(comment(page, first["id"]).locator("svg.rt-avatar rect").first).to_be_attached()
    # Names are text, bodies are the server's sanitized HTML: nothing typed runs as markup.
    await expect(comment(page, nasty["id"]).locator(".rt-author")).to_have_text(
        '<img src=x onerror="window.pwned=1">')
    await expect(comment(page, nasty["id"]).locator(".rt-body em")).to_have_text("hi")
    assert await page.locator(".rt-thread img").count() == 0
    assert await page.evaluate("window.pwned") is None


async def test_posted_comment_is_optimistic_then_live(open_page: OpenPage,
                                                       post: dict[str, Any]) -> None:
    """A comment posted in the form shows at once, once after confirmation, and live elsewhere."""
    text = "Posted from the browser"
    writer = await open_page(f"/p/{SLUG}")
    reader = await open_page(f"/p/{SLUG}")
    for page in (writer, reader):
        await expect(page.locator(".rt-count")).to_have_text("No comments yet")
    await expect(writer.locator(".rt-watching")).to_have_text("2 watching", timeout=LIVE)

    release = asyncio.Event()

    async def hold(route: Route) -> None:
        if route.request.method == "POST":
            await release.wait()
        await route.continue_()

    # Holding the POST proves the comment is on screen before the server has answered.
    await writer.route(f"**/api/posts/{SLUG}/comments", hold)
    form = writer.locator(".rt-form")
    await form.locator("[name=name]").fill("Ann")
    await form.locator("[name=email]").fill("ann@example.org")
    await form.locator("[name=body]").fill(text)
    await form.locator(".rt-submit").click()
    await expect(writer.locator(".rt-status-sending .rt-body")).to_have_text(text)
    release.set()

    confirmed = writer.locator(".rt-status-approved", has_text=text)
    await expect(confirmed).to_have_count(1)
    # seq 1 applied: the live echo of our own comment has arrived and was merged, not added.
    await expect(writer.locator(".rt-thread")).to_have_attribute("data-seq", "1", timeout=LIVE)
    await expect(writer.locator(".rt-comment")).to_have_count(1)
    await expect(writer.locator(".rt-count")).to_have_text("1 comment")
    await expect(form.locator("[name=body]")).to_have_value("")
    await expect(confirmed.locator(".rt-edit")).to_be_visible()

    seen = reader.locator(".rt-comment", has_text=text)
    await expect(seen).to_have_count(1, timeout=LIVE)
    await expect(reader.locator(".rt-count")).to_have_text("1 comment")
    await expect(seen.locator(".rt-edit")).to_have_count(0)


async def test_own_comment_edit_and_delete(open_page: OpenPage, post: dict[str, Any]) -> None:
    """Its author edits and deletes a comment with the stored edit token; others see it live."""
    writer = await open_page(f"/p/{SLUG}")
    reader = await open_page(f"/p/{SLUG}")
    await expect(reader.locator(".rt-count")).to_have_text("No comments yet")
    form = writer.locator(".rt-form")
    await form.locator("[name=name]").fill("Ann")
    await form.locator("[name=body]").fill("First thoughts")
    await form.locator(".rt-submit").click()
    mine = writer.locator(".rt-status-approved", has_text="First thoughts")
    await expect(mine).to_have_count(1)

    await mine.locator(".rt-edit").click()
    await writer.get_by_label("Edit your comment").fill("Second thoughts")
    await mine.locator(".rt-edit-form button[type=submit]").click()
    seen = reader.locator(".rt-comment", has_text="Second thoughts")
    await expect(seen).to_have_count(1, timeout=LIVE)
    await expect(seen.locator(".rt-edited")).to_have_text("edited")

    mine = writer.locator(".rt-status-approved", has_text="Second thoughts")
    await mine.locator(".rt-delete").click()
    await mine.locator(".rt-delete").click()  # the second click confirms
    await expect(writer.locator(".rt-comment")).to_have_count(0)
    await expect(reader.locator(".rt-comment")).to_have_count(0, timeout=LIVE)
    await expect(reader.locator(".rt-count")).to_have_text("No comments yet")


async def test_edit_and_delete_by_moderator_show_live(open_page: OpenPage, mod: httpx.AsyncClient,
                                                      client: httpx.AsyncClient,
                                                      post: dict[str, Any]) -> None:
    """Edits and deletions made over HTTP reach an open page: a tombstone, or nothing at all."""
    parent = await add_comment(client, "I have a reply", "Ann")
    reply = await add_comment(client, "Replying here", "Bob", parent_id=parent["id"])
    single = await add_comment(client, "Nobody answered me", "Cy")
    page = await open_page(f"/p/{SLUG}")
    await expect(page.locator(".rt-count")).to_have_text("3 comments")

    answer = await mod.patch(f"/api/comments/{single['id']}", json={"body": "Edited by a *mod*"})
    assert answer.status_code == 200, answer.text
    await expect(comment(page, single["id"]).locator(".rt-body")).to_have_text(
        "Edited by a mod", timeout=LIVE)
    await expect(comment(page, single["id"]).locator(".rt-body em")).to_have_text("mod")

    answer = await mod.delete(f"/api/comments/{parent['id']}")
    assert answer.status_code == 204, answer.text
    tomb = comment(page, parent["id"])
    await expect(tomb.locator(".rt-tombstone")).to_have_text("This comment was deleted.",
                                                             timeout=LIVE)
    await expect(tomb).not_to_contain_text("I have a reply")
    await expect(tomb.locator(f":scope > .rt-children > #comment-{reply['id']}")).to_have_count(1)

    answer = await mod.delete(f"/api/comments/{single['id']}")
    assert answer.status_code == 204, answer.text
    await expect(comment(page, single["id"])).to_have_count(0, timeout=LIVE)
    await expect(page.locator(".rt-count")).to_have_text("1 comment")


async def test_validation_error_keeps_the_text(open_page: OpenPage, client: httpx.AsyncClient,
                                               post: dict[str, Any]) -> None:
    """A refused comment says what to fix, in the reader's words, and keeps what was typed."""
    text = "Something worth keeping"
    refused = await client.post(f"/api/posts/{SLUG}/comments", json={
        "body": text, "author": {"name": ""}, "parent_id": None,
        "client_id": str(uuid.uuid4())})
    assert refused.status_code == 422
    page = await open_page(f"/p/{SLUG}")
    await expect(page.locator(".rt-count")).to_have_text("No comments yet")
    form = page.locator(".rt-form")
    await form.locator("[name=body]").fill(text)
    await form.locator(".rt-submit").click()
    assert refused.json()["errors"][0]["field"] == "author.name"
    await expect(form.locator(".rt-error")).to_have_text(
        "Please give a name (at most 100 characters).")
    await expect(form.locator("[name=body]")).to_have_value(text)
    await expect(page.locator(".rt-comment")).to_have_count(0)


async def test_reader_resumes_after_gap_and_restart(open_page: OpenPage, server: Running,
                                                   client: httpx.AsyncClient,
                                                   post: dict[str, Any]) -> None:
    """A lost event makes the page resubscribe with since; after 1001 it catches up at once."""
    sent: list[list[dict[str, Any]]] = []
    received: list[dict[str, Any]] = []
    drop = {"armed": False}
    gate = asyncio.Event()
    gate.set()

    async def proxy(ws: WebSocketRoute) -> None:
        ops: list[dict[str, Any]] = []
        sent.append(ops)
        early: list[str | bytes] = []
        upstream: list[WebSocketRoute] = []

        def from_page(message: str | bytes) -> None:
            ops.append(json.loads(message))
            if upstream:
                upstream[0].send(message)
            else:
                early.append(message)

        def from_server(message: str | bytes) -> None:
            data = json.loads(message)
            frames = data if isinstance(data, list) else [data]
            received.extend(frames)
            events = [i for i, f in enumerate(frames) if f.get("type") == "event"]
            if drop["armed"] and events:
                drop["armed"] = False
                del frames[events[0]]
            if frames:
                ws.send(json.dumps(frames))

        ws.on_message(from_page)
        # Held while the test changes the thread: the page can only learn of it by `since`.
        await gate.wait()
        upstream.append(ws.connect_to_server())
        upstream[0].on_message(from_server)
        for message in early:
            upstream[0].send(message)

    async def setup(page: Page) -> None:
        await page.route_web_socket("**/ws", proxy)

    page = await open_page(f"/p/{SLUG}", setup)
    await expect(page.locator(".rt-count")).to_have_text("No comments yet")
    await wait_for(lambda: any(f.get("type") == "subscribed" for f in received),
                   what="the first subscription")

    drop["armed"] = True
    first = await add_comment(client, "Lost on the way", "Ann")
    second = await add_comment(client, "Arrived after a gap", "Bob")
    await expect(comment(page, first["id"])).to_have_count(1, timeout=LIVE)
    await expect(comment(page, second["id"])).to_have_count(1)
    await expect(page.locator(".rt-thread")).to_have_attribute("data-seq", "2")
    assert not drop["armed"]
    subscribes = [op for op in sent[0] if op["op"] == "subscribe"]
    assert subscribes == [{"op": "subscribe", "channel": f"post:{SLUG}", "since": 0}] * 2

    # A server going away (1001): the page reconnects at once, while we hold the new socket
    # and post a comment it cannot hear live.
    gate.clear()
    await server.app.state.realtime.hub.close_all(1001, "restarting")
    await wait_for(lambda: len(sent) == 2, what="the page to reconnect")
    missed = await add_comment(client, "Posted while away", "Cy")
    gate.set()
    await expect(comment(page, missed["id"])).to_have_count(1, timeout=LIVE)
    await expect(page.locator(".rt-thread")).to_have_attribute("data-seq", "3")
    await expect(page.locator(".rt-comment")).to_have_count(3)
    assert sent[1][0] == {"op": "subscribe", "channel": f"post:{SLUG}", "since": 2}


# The pure model, run in the browser that runs it in production; served by a route, no server.
MODEL_SCRIPT = """async () => {
  const { Thread, APPLIED, IGNORED, RESYNC, keyOf } = await import("/static/thread.js");
  const c = (id, version, extra = {}) => ({ id, version, parent_id: null, kind: "comment",
    status: "approved", client_id: null, body: `v${version}`, html: `<p>v${version}</p>`,
    author: { name: "Ann", url: null, avatar: "ab12" }, ...extra });
  const shape = (t) => Object.fromEntries(
    [...t.tree()].map(([parent, kids]) => [String(parent), kids.map(keyOf)]));
  const t = new Thread();
  const out = {};
  t.load({ slug: "p" }, [c(1, 1), c(2, 1, { parent_id: 1 }), c(3, 2)], 5);
  out.loaded = shape(t);
  out.newer = t.applyEvent({ seq: 6, event: "comment.updated", data: c(1, 3) });
  out.older = t.applyEvent({ seq: 7, event: "comment.updated", data: c(1, 2) });
  out.kept = t.get(1).body;
  out.repeat = t.applyEvent({ seq: 7, event: "comment.updated", data: c(1, 9) });
  out.gap = t.applyEvent({ seq: 9, event: "comment.updated", data: c(1, 9) });
  out.afterGap = [t.seq, t.get(1).body];
  const tomb = c(1, 4, { status: "deleted", body: "", html: "",
    author: { name: "", url: null, avatar: "" } });
  out.tombstone = t.applyEvent({ seq: 8, event: "comment.deleted",
    data: { id: 1, version: 4, tombstone: tomb } });
  out.tombShape = [t.get(1).status, shape(t)["1"]];
  t.applyEvent({ seq: 9, event: "comment.deleted", data: { id: 3, version: 3, tombstone: null } });
  out.removed = t.get(3) === undefined;
  out.revived = t.upsert(c(3, 2));
  t.addLocal({ client_id: "a", parent_id: 2, body: "hi", author: { name: "Bo" } });
  out.optimistic = shape(t)["2"];
  // The live event wins the race against the 201 answer, then the answer arrives.
  t.applyEvent({ seq: 10, event: "comment.created",
    data: c(4, 1, { parent_id: 2, client_id: "a" }) });
  t.confirm(c(4, 1, { parent_id: 2, client_id: "a" }));
  // The 201 answer wins the race, then the live event arrives.
  t.addLocal({ client_id: "b", parent_id: null, body: "yo", author: { name: "Cy" } });
  t.confirm(c(5, 1, { client_id: "b" }));
  t.applyEvent({ seq: 11, event: "comment.created", data: c(5, 1, { client_id: "b" }) });
  out.reconciled = shape(t);
  out.count = t.count();
  // A refused post disappears; one's own pending comment survives a reload of the thread.
  t.addLocal({ client_id: "c", parent_id: null, body: "no", author: { name: "Di" } });
  t.dropLocal("c");
  t.upsert(c(6, 1, { status: "pending" }));
  t.load({ slug: "p" }, [c(2, 1, { parent_id: 1 }), c(4, 1, { parent_id: 2 })], 20);
  out.reloaded = shape(t);
  out.seq = t.seq;
  out.codes = [APPLIED, IGNORED, RESYNC];
  // A big thread known in part: two of five top-level comments, and one of root 1's replies.
  const p = new Thread();
  p.load({ slug: "p", comment_count: 40 }, [c(1, 1), c(2, 1, { parent_id: 1 }), c(3, 1)], 1,
    { next: 3, moreReplies: { 1: { after: 2, count: 4 } } });
  const ev = (seq, event, data) => p.applyEvent({ seq, event, data });
  ev(2, "comment.created", c(50, 1));                      // a new root on an unread page
  ev(3, "comment.created", c(51, 1, { parent_id: 3 }));     // a reply to a drawn root
  ev(4, "comment.created", c(52, 1, { parent_id: 1 }));     // a reply past root 1's cursor
  ev(5, "comment.created", c(53, 1, { parent_id: 40 }));    // a reply in an unread subtree
  out.partShape = shape(p);
  out.partCounts = [p.count(), p.moreReplies.get(1).count, p.countUnsure];
  ev(6, "comment.deleted", { id: 41, version: 2, tombstone: null });  // unread: unknowable
  out.unsure = [p.count(), p.countUnsure];
  ev(7, "comment.deleted", { id: 42, version: 2, tombstone: c(42, 2, { status: "deleted" }) });
  out.setCount = [p.setCount(41, 6), p.setCount(42, 7), p.count(), p.countUnsure];
  const newest = new Thread({ sort: "newest" });
  newest.load({ slug: "p", comment_count: 3 }, [c(9, 1), c(7, 1)], 1, { next: 7 });
  newest.applyEvent({ seq: 2, event: "comment.created", data: c(12, 1) });
  newest.applyEvent({ seq: 3, event: "comment.created", data: c(3, 1) });
  out.newest = [shape(newest)["null"], newest.count()];
  return out;
}"""


async def test_thread_model(browser: Browser) -> None:
    """The model keeps the newest version, spots seq gaps, keeps tombstones, merges client_ids."""
    context = await browser.new_context()

    async def serve(route: Route) -> None:
        path = urlsplit(route.request.url).path
        if path.startswith("/static/"):
            await route.fulfill(path=STATIC / path.removeprefix("/static/"),
                                content_type="text/javascript")
        else:
            await route.fulfill(body="<!doctype html><title>model</title>",
                                content_type="text/html")

    try:
        await context.route("http://model.test/**", serve)
        page = await context.new_page()
        await page.goto("http://model.test/")
        out = await page.evaluate(MODEL_SCRIPT)
    finally:
        await context.close()
    applied, ignored, resync = out["codes"]
    assert out["loaded"] == {"null": ["id:1", "id:3"], "1": ["id:2"]}
    assert (out["newer"], out["older"], out["kept"]) == (applied, applied, "v3")
    assert out["repeat"] == ignored
    assert out["gap"] == resync
    assert out["afterGap"] == [7, "v3"]
    assert out["tombstone"] == applied
    assert out["tombShape"] == ["deleted", ["id:2"]]
    assert out["removed"] is True
    assert out["revived"] is False
    assert out["optimistic"] == ["local:a"]
    assert out["reconciled"] == {"null": ["id:1", "id:5"], "1": ["id:2"], "2": ["id:4"]}
    assert out["count"] == 3
    assert out["reloaded"] == {"null": ["id:2", "id:6"], "2": ["id:4"]}
    assert out["seq"] == 20
    # Events outside the part that is read change the counts, never the drawn tree.
    assert out["partShape"] == {"null": ["id:1", "id:3"], "1": ["id:2"], "3": ["id:51"]}
    assert out["partCounts"] == [44, 5, False]
    assert out["unsure"] == [44, True]
    assert out["setCount"] == [False, True, 42, False]
    assert out["newest"] == [["id:12", "id:9", "id:7"], 5]


async def test_reader_reports_a_comment(open_page: OpenPage, mod: httpx.AsyncClient,
                                        client: httpx.AsyncClient,
                                        post: dict[str, Any]) -> None:
    """Report asks why in a labelled form (no window.prompt), and the moderators see it."""
    troll = await add_comment(client, "Everyone here is wrong", "Troll")
    page = await open_page(f"/p/{SLUG}")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.type))
    button = comment(page, troll["id"]).locator(".rt-report")
    await button.click()
    reason = page.get_by_label("What is wrong with this comment? The moderators will see it.")
    await expect(reason).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(reason).to_have_count(0)
    await expect(button).to_be_focused()
    await page.keyboard.press("Enter")
    await reason.fill("insults people")
    await page.get_by_role("button", name="Send report").click()
    await expect(button).to_have_text("Reported")
    await expect(button).to_be_disabled()
    queue = (await mod.get("/api/moderation/queue", params={"status": "approved"})).json()
    assert queue["comments"][0]["reports"] == 1
    assert dialogs == []


async def serve_site(page: dict[str, str]) -> asyncio.Server:
    """A one-page website on its own loopback port (the blog a thread is embedded in); it
    answers every request with `page["html"]` as it is at that moment."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = page["html"].encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)

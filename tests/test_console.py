"""The moderator console in a real headless Chromium against a real server: the live feed,
acting by button and by keyboard, bans, settings, reports, two consoles at once, the other
panes, a bounded DOM, and accessibility."""

from __future__ import annotations

import asyncio
import json
from html.parser import HTMLParser
from typing import Any

import asyncpg
import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, Route, WebSocketRoute, expect

from realtime import logins

from conftest import MOD_PASSWORD, MOD_USER, OpenPage, Running, comment_body, wait_for

pytestmark = pytest.mark.browser

SLUG = "hello-world"
LIVE = 10_000  # ms: a live change crosses PostgreSQL NOTIFY, the hub and the socket

class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


async def add(client: httpx.AsyncClient, text: str, name: str = "Ann", slug: str = SLUG,
              **extra: Any) -> dict[str, Any]:
    """Post a comment over HTTP and return it."""
    answer = await client.post(f"/api/posts/{slug}/comments",
                               json=comment_body(text, name, **extra))
    assert answer.status_code == 201, answer.text
    return answer.json()["comment"]  # type: ignore[no-any-return]


def entry(page: Page, comment_id: int) -> Any:
    return page.locator(f"#rt-m-{comment_id}")


def empty(page: Page) -> Any:
    return page.locator("[data-pane=feed] .rt-empty")


def filter_button(page: Page, name: str) -> Any:
    return page.get_by_role("group", name="Status").get_by_role("button", name=name)


class DeafSocket:
    """The console's socket routed through the test, which can stop the server's messages
    from reaching the page (`deaf = True`) and send the page messages of its own (`send`)."""

    def __init__(self) -> None:
        self.deaf = False
        self.pages: list[WebSocketRoute] = []

    async def route(self, ws: WebSocketRoute) -> None:
        self.pages.append(ws)
        server_side = ws.connect_to_server()

        def from_server(message: str | bytes) -> None:
            if not self.deaf:
                ws.send(message)

        server_side.on_message(from_server)

    def send(self, message: dict[str, Any]) -> None:
        self.pages[-1].send(json.dumps(message))


async def open_console(open_page: OpenPage, path: str = "/moderate") -> Page:
    page = await open_page(path, moderator=True)
    await expect(page.locator(".rt-live")).to_have_text("Live", timeout=LIVE)
    return page


async def test_login_then_pending_appears_and_approve_goes_live(
        open_page: OpenPage, server: Running, mod: httpx.AsyncClient, client: httpx.AsyncClient,
        post: dict[str, Any]) -> None:
    """A moderator logs in; a held comment appears without a reload; "Approve" makes it
    appear on a reader's page live."""
    await mod.put(f"/api/posts/{SLUG}", json={"moderation": "pre"})
    reader = await open_page(f"/p/{SLUG}")
    console = await open_page("/moderate")
    await console.get_by_label("Username").fill(MOD_USER)
    await console.get_by_label("Password").fill(MOD_PASSWORD)
    await console.get_by_role("button", name="Log in").click()
    await expect(console.locator(".rt-who")).to_have_text(f"Logged in as {MOD_USER}")
    await expect(console.locator(".rt-live")).to_have_text("Live", timeout=LIVE)
    await expect(empty(console)).to_be_visible()

    held = await add(client, "Please let me in", "Ann")
    row = entry(console, held["id"])
    await expect(row.locator(".rt-body")).to_have_text("Please let me in", timeout=LIVE)
    await expect(row.locator(".rt-held")).to_contain_text("Pre-moderated thread")
    await expect(row).to_contain_text("ann@example.org")
    await expect(filter_button(console, "Pending")).to_contain_text("1", timeout=LIVE)
    await expect(reader.get_by_text("Please let me in")).to_have_count(0)

    await row.get_by_role("button", name="Approve").click()
    await expect(row).to_have_count(0)  # the pending view holds pending comments only
    await expect(reader.get_by_text("Please let me in")).to_have_count(1, timeout=LIVE)
    await expect(filter_button(console, "Pending")).to_contain_text("0", timeout=LIVE)


async def test_delete_removes_it_from_two_readers(open_page: OpenPage, client: httpx.AsyncClient,
                                                  post: dict[str, Any]) -> None:
    """"Delete" in the console removes the comment live from every open page."""
    troll = await add(client, "You are all idiots", "Troll")
    readers = [await open_page(f"/p/{SLUG}") for _ in range(2)]
    for reader in readers:
        await expect(reader.get_by_text("You are all idiots")).to_have_count(1)
    console = await open_console(open_page, "/moderate#/feed?status=approved")
    await entry(console, troll["id"]).get_by_role("button", name="Delete").click()
    await expect(entry(console, troll["id"])).to_have_count(0)
    for reader in readers:
        await expect(reader.get_by_text("You are all idiots")).to_have_count(0, timeout=LIVE)
    assert (await client.get(f"/api/comments/{troll['id']}")).status_code == 404


async def test_ban_author_refuses_their_next_comment(open_page: OpenPage, client: httpx.AsyncClient,
                                                     post: dict[str, Any]) -> None:
    """"Ban author" by e-mail: the author's next comment gets 403 banned, and every entry of
    theirs shows the ban."""
    troll = await add(client, "First provocation", "Troll")
    console = await open_console(open_page, "/moderate#/feed?status=all")
    row = entry(console, troll["id"])
    await row.get_by_role("button", name="Ban author").click()
    form = row.get_by_role("form", name="Ban author")
    await expect(form.get_by_role("group", name="Ban by")).to_be_visible()
    await form.get_by_label("E-mail").check()
    await form.get_by_label("Duration").select_option(label="forever")
    await form.get_by_label("Reason").fill("insults")
    await form.get_by_role("button", name="Ban").click()
    await expect(form).to_have_count(0)
    await expect(row.locator(".rt-note")).to_contain_text("Banned troll@example.org")
    await expect(row.locator(".rt-bans")).to_contain_text("Ban by e-mail, forever", timeout=LIVE)
    again = await client.post(f"/api/posts/{SLUG}/comments",
                              json=comment_body("Another one", "Troll"))
    assert again.status_code == 403 and again.json()["code"] == "banned"


async def test_shadow_ban_hides_the_next_comment_from_others(
        open_page: OpenPage, client: httpx.AsyncClient, post: dict[str, Any]) -> None:
    """A shadow ban from the console: the author sees their next comment, another reader
    never does."""
    sly = await add(client, "Innocent start", "Sly")
    console = await open_console(open_page, "/moderate#/feed?status=all")
    row = entry(console, sly["id"])
    await row.get_by_role("button", name="Ban author").click()
    form = row.get_by_role("form", name="Ban author")
    await form.get_by_label("E-mail").check()
    await form.get_by_label("Shadow ban").check()
    await form.get_by_label("Duration").select_option(label="1 week")
    await form.get_by_role("button", name="Ban").click()
    await expect(row.locator(".rt-bans")).to_contain_text("Shadow ban by e-mail", timeout=LIVE)

    author = await open_page(f"/p/{SLUG}")
    reader = await open_page(f"/p/{SLUG}")
    await expect(reader.get_by_text("Innocent start")).to_have_count(1)
    fields = author.locator(".rt-form")
    await fields.locator("[name=name]").fill("Sly")
    await fields.locator("[name=email]").fill("sly@example.org")
    await fields.locator("[name=body]").fill("Only I can read this")
    await fields.locator(".rt-submit").click()
    await expect(author.get_by_text("Only I can read this")).to_have_count(1)
    # A later visible comment reaching the reader proves the stream went past the hidden one.
    await add(client, "Visible to all", "Vic")
    await expect(reader.get_by_text("Visible to all")).to_have_count(1, timeout=LIVE)
    await expect(reader.get_by_text("Only I can read this")).to_have_count(0)
    # By its words: the page shows it before the server has answered, so "Visible to all"
    # may have been stored first.
    spam = console.locator(".rt-entry", has_text="Only I can read this")
    await filter_button(console, "Spam").click()
    await expect(spam.locator(".rt-held")).to_contain_text("Author is shadow-banned")


async def test_hold_word_from_settings_holds_and_shows_why(
        open_page: OpenPage, client: httpx.AsyncClient, post: dict[str, Any]) -> None:
    """A hold word saved in the settings pane holds the next comment, and its entry says
    which word held it."""
    console = await open_console(open_page, "/moderate#/settings")
    words = console.get_by_label("Hold words")
    await expect(words).to_have_value("")
    await words.fill("poker\ncasino, lottery")
    await console.get_by_label("Link limit").fill("3")
    await console.get_by_role("button", name="Save").click()
    await expect(console.locator(".rt-saved")).to_contain_text("Saved")
    await expect(words).to_have_value("poker\ncasino\nlottery")
    answer = await client.post(f"/api/posts/{SLUG}/comments",
                               json=comment_body("Come to the Casino tonight", "Cas"))
    held = answer.json()["comment"]
    assert held["status"] == "pending"
    await console.get_by_role("link", name="Feed").click()
    row = entry(console, held["id"])
    await expect(row.locator(".rt-held li")).to_have_text(["Hold word “casino”"])
    await console.reload()
    await console.get_by_role("link", name="Settings").click()
    await expect(console.get_by_label("Link limit")).to_have_value("3")


async def test_reported_filter_shows_reasons_live(open_page: OpenPage, client: httpx.AsyncClient,
                                                  post: dict[str, Any]) -> None:
    """A report reaches the "Reported" filter live, with its reason; approving dismisses it."""
    target = await add(client, "Contested opinion", "Ann")
    await add(client, "Nobody minds this", "Bob")
    console = await open_console(open_page, "/moderate#/feed?status=reported")
    await expect(empty(console)).to_be_visible()
    answer = await client.post(f"/api/comments/{target['id']}/report",
                               json={"reason": "Personal attack"})
    assert answer.status_code == 202
    row = entry(console, target["id"])
    await expect(row.locator(".rt-reports")).to_contain_text("Personal attack", timeout=LIVE)
    await expect(console.locator(".rt-entry")).to_have_count(1)
    await expect(filter_button(console, "Reported")).to_contain_text("1", timeout=LIVE)
    await row.get_by_role("button", name="Approve").click()
    await expect(row).to_have_count(0)
    await expect(empty(console)).to_be_visible()


async def test_two_consoles_see_each_others_actions(open_page: OpenPage, client: httpx.AsyncClient,
                                                    mod: httpx.AsyncClient,
                                                    post: dict[str, Any]) -> None:
    """Two moderators at once: what one does leaves or changes the other's view live."""
    await mod.put(f"/api/posts/{SLUG}", json={"moderation": "pre"})
    first = await add(client, "Held one", "Ann")
    second = await add(client, "Held two", "Bob")
    one = await open_console(open_page)
    two = await open_console(open_page, "/moderate#/feed?status=all")
    await expect(entry(one, first["id"])).to_be_visible()
    await entry(one, first["id"]).get_by_role("button", name="Reject").click()
    await expect(entry(one, first["id"])).to_have_count(0)
    await expect(entry(two, first["id"]).locator(".rt-badge").first).to_have_text(
        "Rejected", timeout=LIVE)
    await entry(two, second["id"]).get_by_role("button", name="Spam").click()
    await expect(entry(one, second["id"])).to_have_count(0, timeout=LIVE)
    await expect(empty(one)).to_be_visible()


async def test_keyboard_alone_approves(open_page: OpenPage, client: httpx.AsyncClient,
                                       mod: httpx.AsyncClient, post: dict[str, Any]) -> None:
    """j moves to a comment, a approves it, and focus moves on to the next one."""
    await mod.put(f"/api/posts/{SLUG}", json={"moderation": "pre"})
    older = await add(client, "Older one", "Ann")
    newer = await add(client, "Newer one", "Bob")
    console = await open_console(open_page)
    await expect(entry(console, newer["id"])).to_be_visible()
    await console.keyboard.press("?")
    dialog = console.get_by_role("dialog", name="Keyboard shortcuts")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("approve")
    await console.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await console.keyboard.press("j")
    await expect(entry(console, newer["id"])).to_be_focused()
    await console.keyboard.press("j")
    await expect(entry(console, older["id"])).to_be_focused()
    await console.keyboard.press("k")
    await expect(entry(console, newer["id"])).to_be_focused()
    await console.keyboard.press("a")
    await expect(entry(console, newer["id"])).to_have_count(0)
    # The entry that took its place has the focus: the keyboard goes on from there.
    await expect(entry(console, older["id"])).to_be_focused()
    await console.keyboard.press("a")
    await expect(empty(console)).to_be_focused()
    thread = (await client.get(f"/api/posts/{SLUG}/comments")).json()["comments"]
    assert {c["id"] for c in thread} == {older["id"], newer["id"]}


async def test_keyboard_bans_and_escape_returns(open_page: OpenPage, client: httpx.AsyncClient,
                                                post: dict[str, Any]) -> None:
    """b opens the ban form on the current entry; Escape closes it and focus comes back."""
    troll = await add(client, "Troll text", "Troll")
    console = await open_console(open_page, "/moderate#/feed?status=all")
    await expect(entry(console, troll["id"])).to_be_visible()
    await console.keyboard.press("j")
    await expect(entry(console, troll["id"])).to_be_focused()
    await console.keyboard.press("b")
    form = entry(console, troll["id"]).get_by_role("form", name="Ban author")
    await expect(form.get_by_label("E-mail")).to_be_focused()
    await console.keyboard.press("Escape")
    await expect(form).to_have_count(0)
    await expect(entry(console, troll["id"]).get_by_role("button", name="Ban author")
                 ).to_be_focused()


async def test_each_filter_stays_true_as_items_arrive(open_page: OpenPage,
                                                      client: httpx.AsyncClient,
                                                      mod: httpx.AsyncClient,
                                                      post: dict[str, Any]) -> None:
    """The pending view takes in new pending comments only; filtering by post keeps others
    out; counts follow."""
    await mod.put("/api/posts/other", json={"title": "Other post", "moderation": "pre"})
    await mod.put("/api/moderation/settings", json={"block_words": ["viagra"]})
    console = await open_console(open_page)
    await add(client, "An approved comment", "Ann")
    await add(client, "cheap viagra", "Spammer")
    held = await add(client, "Held elsewhere", "Cy", slug="other")
    await expect(entry(console, held["id"])).to_be_visible(timeout=LIVE)
    await expect(console.locator(".rt-entry")).to_have_count(1)
    await expect(filter_button(console, "Spam")).to_contain_text("1", timeout=LIVE)
    await expect(filter_button(console, "All")).to_contain_text("3")
    await console.get_by_label("Post", exact=True).select_option(label="Hello, world")
    await expect(empty(console)).to_be_visible()
    await add(client, "Also approved", "Dee")
    later = await add(client, "Held too", "Eve", slug="other")
    await filter_button(console, "All").click()
    await expect(console.locator(".rt-entry")).to_have_count(3)
    await expect(entry(console, later["id"])).to_have_count(0)
    assert "post=hello-world" in console.url and "status=all" in console.url


async def seed(database_url: str, count: int) -> None:
    """`count` approved comments on the test post, straight into the database."""
    conn = await asyncpg.connect(database_url)
    try:
        post_id = await conn.fetchval("SELECT id FROM posts WHERE slug = $1", SLUG)
        await conn.execute(
            "INSERT INTO comments (post_id, status, author_name, author_email, avatar, body,"
            " html) SELECT $1, 'approved', 'reader ' || g, 'r' || g || '@example.org', 'ab',"
            " 'Seeded ' || g, '<p>Seeded ' || g || '</p>' FROM generate_series(1, $2) g",
            post_id, count)
        await conn.execute("UPDATE posts SET comment_count = $2 WHERE id = $1", post_id, count)
    finally:
        await conn.close()


async def test_load_older_keeps_the_dom_bounded(open_page: OpenPage, server: Running,
                                                client: httpx.AsyncClient,
                                                post: dict[str, Any]) -> None:
    """"Load older" pages through history while the DOM stays at most 150 entries; live
    comments above the window wait behind "Show newer"."""
    await seed(server.settings.database_url, 400)
    console = await open_console(open_page, "/moderate#/feed?status=all")
    pane = console.locator("[data-pane=feed]")
    await expect(pane).to_have_attribute("data-loaded", "50")
    older = console.get_by_role("button", name="Load older")
    for loaded in (100, 150, 200, 250):
        await older.click()
        await expect(pane).to_have_attribute("data-loaded", str(loaded))
    await expect(console.locator(".rt-entry")).to_have_count(150)
    await expect(console.locator(".rt-entry").first).to_contain_text("Seeded 300")
    newest = await add(client, "Arrived meanwhile", "Zed")
    await expect(console.get_by_role("button", name="Show newer (101)")).to_be_visible(
        timeout=LIVE)
    await expect(console.locator(".rt-entry")).to_have_count(150)
    for _ in range(3):
        await console.get_by_role("button", name="Show newer").click()
    await expect(console.locator(".rt-entry").first).to_have_attribute(
        "id", f"rt-m-{newest['id']}")
    await expect(console.locator(".rt-entry")).to_have_count(150)


async def test_stale_view_gets_the_comment_as_it_is(open_page: OpenPage, client: httpx.AsyncClient,
                                                    mod: httpx.AsyncClient,
                                                    post: dict[str, Any]) -> None:
    """An action on an outdated copy is refused (409) and the entry shows the comment as it
    is now, with a note."""
    await mod.put(f"/api/posts/{SLUG}", json={"moderation": "pre"})
    held = await add(client, "Original words", "Ann")
    socket = DeafSocket()
    reads: list[str] = []

    async def setup(page: Page) -> None:
        await page.route_web_socket("**/ws", socket.route)
        page.on("requestfinished", lambda request: reads.append(request.url)
                if "/api/moderation/comments?" in request.url and "status=" in request.url
                else None)

    console = await open_page("/moderate", moderator=True, setup=setup)
    row = entry(console, held["id"])
    await expect(row.locator(".rt-body")).to_have_text("Original words")
    await expect(console.locator(".rt-live")).to_have_text("Live", timeout=LIVE)
    # The first read, then the one after the channel is subscribed: only then is the view
    # as fresh as it will get without the socket.
    await wait_for(lambda: len(reads) >= 2, what="the read after subscribing")
    socket.deaf = True
    await mod.patch(f"/api/comments/{held['id']}", json={"body": "Edited meanwhile"})
    await row.get_by_role("button", name="Reject").click()
    await expect(row.locator(".rt-note")).to_contain_text("changed meanwhile")
    await expect(row.locator(".rt-body")).to_have_text("Edited meanwhile")
    assert (await mod.get("/api/moderation/comments", params={"ids": held["id"]})).json()[
        "comments"][0]["status"] == "pending"


async def test_changes_as_the_console_connects_are_not_missed(
        open_page: OpenPage, client: httpx.AsyncClient, mod: httpx.AsyncClient,
        post: dict[str, Any]) -> None:
    """The moderation channel has no seq: a comment held after the first read but before the
    server has the subscription, and one held while the read that follows the subscription
    is on its way, both appear; "Live" shows only once the channel is subscribed."""
    await mod.put(f"/api/posts/{SLUG}", json={"moderation": "pre"})
    gate = asyncio.Event()
    heard: list[dict[str, Any]] = []
    reads = {"count": 0}
    during: list[dict[str, Any]] = []

    async def proxy(ws: WebSocketRoute) -> None:
        server_side = ws.connect_to_server()
        held: list[str | bytes] = []

        def from_page(message: str | bytes) -> None:
            if json.loads(message).get("op") == "subscribe" and not gate.is_set():
                held.append(message)
            else:
                server_side.send(message)

        def from_server(message: str | bytes) -> None:
            data = json.loads(message)
            heard.extend(data if isinstance(data, list) else [data])
            ws.send(message)

        ws.on_message(from_page)
        server_side.on_message(from_server)
        await gate.wait()
        for message in held:
            server_side.send(message)

    async def read(route: Route) -> None:
        reads["count"] += 1
        if reads["count"] != 2:
            await route.continue_()
            return
        # The read that follows the subscription: answered as the server saw it before a
        # comment that the channel then delivers to the page first.
        answer = await route.fetch()
        during.append(await add(client, "Held during the read", "Bea"))
        await wait_for(lambda: any(m.get("type") == "event"
                                   and m["data"]["id"] == during[0]["id"] for m in heard),
                       what="the event for the comment held during the read")
        await route.fulfill(response=answer)

    async def setup(page: Page) -> None:
        await page.route_web_socket("**/ws", proxy)
        await page.route("**/api/moderation/comments?*status=*", read)

    console = await open_page("/moderate", moderator=True, setup=setup)
    await expect(empty(console)).to_be_visible()
    await expect(console.locator(".rt-live")).to_have_text("Connecting…")
    before = await add(client, "Held before the subscription", "Ann")
    gate.set()
    await expect(console.locator(".rt-live")).to_have_text("Live", timeout=LIVE)
    await expect(entry(console, before["id"])).to_have_count(1, timeout=LIVE)
    await wait_for(lambda: during, what="the second read")
    await expect(entry(console, during[0]["id"])).to_have_count(1, timeout=LIVE)
    await expect(console.locator(".rt-entry")).to_have_count(2)


async def test_a_reset_of_the_moderation_channel_brings_what_was_missed(
        open_page: OpenPage, client: httpx.AsyncClient, mod: httpx.AsyncClient,
        post: dict[str, Any]) -> None:
    """`reset` (listener_reconnected) on `moderation`: the console reads the feed again, so
    a change whose event never came shows, and the entries already shown stay."""
    await mod.put(f"/api/posts/{SLUG}", json={"moderation": "pre"})
    first = await add(client, "Shown from the start", "Ann")
    socket = DeafSocket()

    async def setup(page: Page) -> None:
        await page.route_web_socket("**/ws", socket.route)

    console = await open_page("/moderate", moderator=True, setup=setup)
    await expect(console.locator(".rt-live")).to_have_text("Live", timeout=LIVE)
    shown = entry(console, first["id"])
    await expect(shown).to_have_count(1)
    await shown.evaluate("node => { node.dataset.kept = 'yes'; }")
    socket.deaf = True
    missed = await add(client, "Its event was lost", "Bob")
    socket.send({"type": "reset", "channel": "moderation", "reason": "listener_reconnected"})
    await expect(entry(console, missed["id"])).to_have_count(1, timeout=LIVE)
    await expect(shown).to_have_attribute("data-kept", "yes")


async def test_posts_log_and_account_panes(open_page: OpenPage, client: httpx.AsyncClient,
                                           post: dict[str, Any]) -> None:
    """Create and close a post, pre-moderate it, find both in the log, lift a ban, and log
    out everywhere."""
    console = await open_console(open_page, "/moderate#/posts")
    form = console.get_by_role("form", name="New post")
    await form.get_by_label("Slug").fill("fresh-post")
    await form.get_by_label("Title").fill("A fresh post")
    await form.get_by_role("button", name="Create post").click()
    await expect(console.get_by_role("link", name="A fresh post")).to_be_visible()
    await console.get_by_role("button", name="Close A fresh post").click()
    await expect(console.get_by_role("button", name="Open A fresh post")).to_be_visible()
    await console.get_by_label("Moderation of A fresh post").select_option("pre")
    await expect(console.get_by_label("Moderation of A fresh post")).to_be_focused()
    fresh = (await client.get("/api/posts/fresh-post")).json()
    assert (fresh["open"], fresh["moderation"]) == (False, "pre")

    await console.get_by_role("link", name="Bans").click()
    ban_form = console.get_by_role("form", name="New ban")
    await ban_form.get_by_label("Ban by").select_option(label="Name")
    await ban_form.get_by_label("Value").fill("Spammer")
    await ban_form.get_by_role("button", name="Add ban").click()
    await console.get_by_role("button", name="Lift ban on name Spammer").click()
    await expect(console.locator("[data-pane=bans] .rt-empty")).to_have_text("No bans.")

    await console.get_by_role("link", name="Log").click()
    log = console.locator("[data-pane=log] tbody")
    await expect(log.locator("tr")).to_have_count(6)  # 2 posts, 2 changes, ban, unban
    await console.get_by_label("Action").select_option("unban")
    await expect(log.locator("tr")).to_have_count(1)
    await expect(log).to_contain_text("Spammer")

    await console.get_by_role("link", name="Account").click()
    sessions = console.locator("[data-pane=account] tbody tr")
    await expect(sessions).to_have_count(2)  # this browser's, and the `mod` fixture's
    await expect(sessions.filter(has_text="this browser")).to_have_count(1)
    await console.get_by_role("button", name="Log out everywhere").click()
    await expect(console.get_by_role("button", name="Log in")).to_be_visible()
    await expect(console.locator(".rt-login .rt-error")).to_contain_text(
        "logged out everywhere")


async def check_axe(page: Page, what: str) -> None:
    results = await Axe().run(page)
    serious = [v for v in results.response["violations"]
               if v["impact"] in ("critical", "serious")]
    assert not serious, (what, json.dumps(serious, indent=1)[:4000])


async def test_console_is_accessible(open_page: OpenPage, client: httpx.AsyncClient,
                                     mod: httpx.AsyncClient, post: dict[str, Any]) -> None:
    """axe-core finds no critical or serious violation on any pane, light or dark, at
    desktop and tablet width; every control has an accessible name."""
    await mod.put("/api/moderation/settings", json={"hold_words": ["casino"]})
    first = await add(client, "A fine comment with a [link](https://example.org)", "Ann")
    await add(client, "casino", "Cas", parent_id=first["id"])
    await client.post(f"/api/comments/{first['id']}/report", json={"reason": "rude"})
    await mod.post("/api/moderation/bans", json={"kind": "name", "value": "x", "reason": "y"})
    login_page = await open_page("/moderate")
    await expect(login_page.get_by_role("button", name="Log in")).to_be_visible()
    await check_axe(login_page, "login")
    for scheme, width in (("light", 1280), ("dark", 1280), ("light", 768)):
        page = await open_page("/moderate#/feed?status=all", moderator=True,
                               color_scheme=scheme, width=width)
        await expect(page.locator(".rt-entry")).to_have_count(2)
        await expect(page.locator(".rt-card dt", has_text="History").first).to_be_visible(
            timeout=LIVE)
        await page.locator(".rt-entry").first.get_by_role("button", name="Ban author").click()
        await check_axe(page, f"feed {scheme} {width}")
        unnamed = await page.evaluate("""() => [...document.querySelectorAll(
            'button, input, select, textarea, a[href]')].filter((el) => el.checkVisibility()
            && !(el.labels?.length || el.getAttribute('aria-label') || el.textContent.trim()
                 || el.getAttribute('aria-labelledby'))).map((el) => el.outerHTML)""")
        assert unnamed == [], unnamed
        if scheme == "light" and width == 1280:
            for pane in ("settings", "bans", "posts", "log", "account"):
                await page.get_by_role("link", name=pane.capitalize()).click()
                await expect(page.locator(f"[data-pane={pane}]")).to_be_visible()
                await page.wait_for_load_state("networkidle")
                await check_axe(page, pane)
            await page.get_by_role("link", name="Feed").click()
            await page.keyboard.press("?")
            await check_axe(page, "keys dialog")


async def test_the_console_cannot_be_framed(client: httpx.AsyncClient) -> None:
    """/moderate forbids framing and foreign scripts; the old address redirects to it."""
    page = await client.get("/moderate")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "'unsafe-inline'" not in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    parser = _Tags()
    parser.feed(page.text)
    for tag, attrs in parser.found:
        assert not any(name.startswith("on") or name == "style" for name, _ in attrs), tag
        if tag == "script":
            assert dict(attrs).get("src"), "inline script"
    old = await client.get("/static/moderate.html")
    assert old.status_code == 308 and old.headers["location"] == "/moderate"
    home = await client.get("/")
    assert 'href="/moderate"' in home.text


async def test_login_form_says_when_throttled(open_page: OpenPage, server: Running) -> None:
    """At the failed-login limit the form says to wait rather than that the password is
    wrong."""
    for _ in range(server.settings.login_max_failures):
        await server.store.begin_login("127.0.0.1", logins.account_key(MOD_USER), MOD_USER,
                                       logins.WINDOW, server.settings.login_max_failures,
                                       server.settings.login_max_failures_per_ip)
    page = await open_page("/moderate")
    await page.get_by_label("Username").fill(MOD_USER)
    await page.get_by_label("Password").fill(MOD_PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator(".rt-login .rt-error")).to_have_text(
        "Too many failed logins from here; wait a while and try again.")
    await expect(page.get_by_label("Password")).to_be_focused()

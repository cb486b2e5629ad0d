"""Importing WordPress and Disqus exports with `realtime import`, checked through the HTTP API.

The fixtures are real export files (origin and licences in tests/fixtures/README.md): the
WordPress Theme Unit Test data and the Disqus sample of Isso's test suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from conftest import Live, Running, login
from test_api import assert_inert

FIXTURES = Path(__file__).resolve().parent / "fixtures"
WXR = FIXTURES / "wordpress-theme-unit-test.wxr.xml"
DISQUS = FIXTURES / "isso-disqus-sample.xml"
TEMPLATE = "2012-01-03-template-comments"
PINGS = "2012-01-01-template-pingbacks-an-trackbacks"


def realtime(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m realtime ARGS` against the database at url."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_")}
    env.update(REALTIME_DATABASE_URL=url, REALTIME_LOG_LEVEL="warning")
    return subprocess.run([sys.executable, "-m", "realtime", *args], text=True,
                          capture_output=True, timeout=300, env=env)


def imported(url: str, kind: str, path: Path) -> str:
    """Import a file; the report it printed."""
    result = realtime(url, "import", kind, str(path))
    assert result.returncode == 0, result.stderr
    return result.stdout


async def thread(client: httpx.AsyncClient, slug: str) -> dict[str, Any]:
    answer = await client.get(f"/api/posts/{slug}/comments", params={"limit": 500})
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def everything(mod: httpx.AsyncClient) -> list[dict[str, Any]]:
    answer = await mod.get("/api/moderation/queue", params={"status": "all", "limit": 500})
    return answer.json()["comments"]  # type: ignore[no-any-return]


async def counts(url: str) -> tuple[int, int, int]:
    """Posts, comments and events in the database."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow("SELECT (SELECT count(*) FROM posts), (SELECT count(*) FROM"
                                  " comments), (SELECT count(*) FROM events)")
        return row[0], row[1], row[2]
    finally:
        await conn.close()


async def test_wordpress_export(server: Running, client: httpx.AsyncClient) -> None:
    """The WXR fixture: posts by URL, threading, statuses, pingbacks, dates, private authors."""
    report = imported(server.settings.database_url, "wordpress", WXR)
    assert "posts: 7 created, 0 matched" in report
    assert "comments added: 33 (30 approved, 3 pending)" in report
    posts = (await client.get("/api/posts", params={"limit": 50})).json()["posts"]
    assert {p["slug"] for p in posts} >= {TEMPLATE, PINGS, "about-page-with-comments"}
    template = await thread(client, TEMPLATE)
    assert template["post"]["title"] == "Template: Comments"
    assert template["post"]["url"] == ("https://wpthemetestdata.wordpress.com/2012/01/03/"
                                       "template-comments/")
    comments = template["comments"]
    assert len(comments) == 19 and template["post"]["comment_count"] == 19
    by_id = {c["id"]: c for c in comments}
    deepest = next(c for c in comments if c["body"].startswith("Comment Depth 10"))
    depth = 0
    while deepest["parent_id"] is not None:
        assert deepest["parent_id"] < deepest["id"]
        deepest, depth = by_id[deepest["parent_id"]], depth + 1
    assert depth == 9 and deepest["body"] == "Comment Depth 01"
    greek = next(c for c in comments if c["author"]["name"] == "John Γιάννης Doe Κάποιος")
    assert greek["created_at"] == "2012-09-03T17:18:04Z"  # from comment_date_gmt
    assert greek["author"]["url"] == "http://example.org/"
    for comment in comments:
        assert "email" not in comment["author"] and "ip" not in comment
        assert_inert(comment["html"])
    pings = (await thread(client, PINGS))["comments"]
    assert sorted(c["kind"] for c in pings) == ["comment"] + ["pingback"] * 4
    ping = next(c for c in pings if c["kind"] == "pingback")
    assert "&laquo;" not in ping["author"]["name"] and "«" in ping["author"]["name"]
    mod = await login(server)
    async with mod:
        held = [c for c in await everything(mod) if c["status"] == "pending"]
        assert len(held) == 3
        assert {c["author"]["email"] for c in held} >= {"auser@example.com"}


async def test_importing_twice_changes_nothing(server: Running) -> None:
    """The same file imported again adds nothing and sends no new event."""
    url = server.settings.database_url
    imported(url, "wordpress", WXR)
    before = await counts(url)
    report = imported(url, "wordpress", WXR)
    assert "posts: 0 created, 7 matched" in report
    assert "comments added: 0 (none)" in report and "left alone: 33" in report
    assert await counts(url) == before
    imported(url, "disqus", DISQUS)
    before = await counts(url)
    assert "comments added: 0" in imported(url, "disqus", DISQUS)
    assert await counts(url) == before


async def test_disqus_export(server: Running, client: httpx.AsyncClient) -> None:
    """The Disqus fixture: one thread from its link, a reply, an orphan post skipped."""
    report = imported(server.settings.database_url, "disqus", DISQUS)
    assert "posts: 1 created" in report and "comments added: 2 (2 approved)" in report
    assert "1 posts whose thread is not in the file" in report
    hello = await thread(client, "index")
    assert hello["post"]["title"] == "Hello, World!"
    assert hello["post"]["url"] == "http://example.org/"
    first, reply = hello["comments"]
    assert reply["parent_id"] == first["id"] and reply["html"] == "<p>Hello, World.</p>"
    assert first["created_at"] == "2013-10-10T19:20:29Z"
    mod = await login(server)
    async with mod:
        private = {c["id"]: c for c in await everything(mod)}
        assert private[first["id"]]["ip"] == "127.0.0.1"
        assert private[first["id"]]["author"]["email"] == "foo@bar.com"


def disqus_file(path: Path, threads: list[tuple[str, str]], posts: list[str]) -> Path:
    """A Disqus export with these (dsq:id, link) threads and <post> bodies."""
    head = ('<?xml version="1.0" encoding="utf-8"?>\n<disqus xmlns="http://disqus.com"'
            ' xmlns:dsq="http://disqus.com/disqus-internals">\n')
    body = "".join(f'<thread dsq:id="{i}"><link>{link}</link><title>Page {i}</title></thread>\n'
                   for i, link in threads)
    path.write_text(head + body + "".join(posts) + "</disqus>\n")
    return path


def disqus_post(dsq: int, thread: int, parent: int | None = None, *, minute: int = 0,
                spam: bool = False, deleted: bool = False, message: str = "") -> str:
    """One <post> of a Disqus export."""
    link = f'<parent dsq:id="{parent}"/>' if parent else ""
    return (f'<post dsq:id="{dsq}"><message><![CDATA[{message or f"post {dsq}"}]]></message>'
            f"<createdAt>2020-01-01T10:{minute:02d}:00Z</createdAt>"
            f"<isDeleted>{str(deleted).lower()}</isDeleted><isSpam>{str(spam).lower()}</isSpam>"
            f"<author><name>Reader {dsq}</name><email>r{dsq}@example.org</email></author>"
            f'<thread dsq:id="{thread}"/>{link}</post>\n')


async def test_replies_before_parents_orphans_and_shared_links(
        server: Running, client: httpx.AsyncClient, tmp_path: Path) -> None:
    """A reply listed first still gets a higher id; a missing parent means the root, counted;
    two threads with one link are one post; spam and deleted keep their status."""
    posts = [
        disqus_post(13, 2, parent=12, minute=3),  # a reply to a reply, listed first
        disqus_post(12, 1, parent=11, minute=2),  # in the other thread of the same link
        disqus_post(11, 1, minute=1),
        disqus_post(14, 1, parent=999, minute=4),  # its parent is not in the file
        disqus_post(15, 1, minute=5, spam=True),
        disqus_post(16, 1, minute=6, deleted=True),
        disqus_post(17, 1, parent=16, minute=7),  # keeps its deleted parent as a tombstone
    ]
    path = disqus_file(tmp_path / "disqus.xml", [("1", "https://blog.example/a/?utm=x"),
                                                 ("2", "https://blog.example/a/")], posts)
    report = imported(server.settings.database_url, "disqus", path)
    assert "posts: 1 created" in report
    assert "comments added: 7 (5 approved, 1 deleted, 1 spam)" in report
    assert "attached to the thread root: 1" in report
    shown = {c["body"]: c for c in (await thread(client, "a"))["comments"]}
    assert set(shown) == {"post 11", "post 12", "post 13", "post 14", "post 17", ""}
    assert shown["post 13"]["parent_id"] == shown["post 12"]["id"] > shown["post 11"]["id"]
    assert shown["post 12"]["parent_id"] == shown["post 11"]["id"]
    assert shown["post 14"]["parent_id"] is None
    tombstone = shown[""]
    assert tombstone["status"] == "deleted" and shown["post 17"]["parent_id"] == tombstone["id"]
    assert tombstone["id"] < shown["post 17"]["id"]


def wxr_file(path: Path, namespace: str, comments: str, link: str = "https://b.example/p/1/"
             ) -> Path:
    """A minimal WXR file with one item holding these <wp:comment>s."""
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<rss version="2.0" xmlns:wp="{namespace}"><channel><title>B</title>'
        "<link>https://b.example</link><wp:base_blog_url>https://b.example</wp:base_blog_url>"
        f"<item><title>First &amp; last</title><link>{link}</link>{comments}</item>"
        "</channel></rss>\n")
    return path


def wxr_comment(wp_id: int, body: str, *, approved: str = "1", kind: str = "",
                parent: int = 0, ip: str = "") -> str:
    """One <wp:comment>."""
    return (f"<wp:comment><wp:comment_id>{wp_id}</wp:comment_id>"
            f"<wp:comment_author>Author {wp_id}</wp:comment_author>"
            f"<wp:comment_author_email>a{wp_id}@example.org</wp:comment_author_email>"
            f"<wp:comment_author_url>javascript:alert(1)</wp:comment_author_url>"
            f"<wp:comment_author_IP>{ip}</wp:comment_author_IP>"
            "<wp:comment_date>2019-05-01 12:00:00</wp:comment_date>"
            f"<wp:comment_date_gmt>2019-05-01 10:{wp_id % 60:02d}:00</wp:comment_date_gmt>"
            f"<wp:comment_content><![CDATA[{body}]]></wp:comment_content>"
            f"<wp:comment_approved>{approved}</wp:comment_approved>"
            f"<wp:comment_type>{kind}</wp:comment_type>"
            f"<wp:comment_parent>{parent}</wp:comment_parent></wp:comment>")


@pytest.mark.parametrize("namespace", ["http://wordpress.org/export/1.0/",
                                       "https://wordpress.org/export/1.1/",
                                       "http://wordpress.org/export/1.2/"])
async def test_wordpress_versions_statuses_and_hostile_html(
        server: Running, client: httpx.AsyncClient, tmp_path: Path, namespace: str) -> None:
    """Every WXR 1.x namespace, http or https; spam and trash statuses; HTML never trusted."""
    hostile = ('<script>alert(1)</script><img src=x onerror="alert(2)">'
               '<a href="javascript:alert(3)">x</a> <a href="/wp-admin/">rel</a>'
               '<a href="https://ok.example/" onclick="alert(4)">ok</a>\n\nsecond')
    comments = (wxr_comment(1, hostile, ip="203.0.113.9") + wxr_comment(2, "spam", approved="spam")
                + wxr_comment(3, "gone", approved="trash") + wxr_comment(4, "odd", kind="note")
                + wxr_comment(5, "held", approved="0", parent=1))
    path = wxr_file(tmp_path / "wxr.xml", namespace, comments)
    report = imported(server.settings.database_url, "wordpress", path)
    assert "comments added: 4 (1 approved, 1 deleted, 1 pending, 1 spam)" in report
    assert "1 comments of the type 'note'" in report
    page = await thread(client, "p-1")
    assert page["post"]["title"] == "First & last"
    (shown,) = page["comments"]
    assert_inert(shown["html"])
    assert "alert" not in shown["html"] and "<script" not in shown["html"]
    assert '<a href="https://ok.example/"' in shown["html"] and "<p>second</p>" in shown["html"]
    assert shown["author"]["url"] is None  # a javascript: website is dropped
    assert shown["body"].startswith("<script>")  # kept as written; only the HTML is rendered


BAD_FILES = {
    "truncated": lambda: WXR.read_bytes()[:200_000],
    "not XML": lambda: b"name,email\nann,ann@example.org\n",
    "empty": lambda: b"",
    "billion laughs": lambda: (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        b'<rss xmlns:wp="http://wordpress.org/export/1.2/"><channel><item><title>&lol3;</title>'
        b"</item></channel></rss>"),
    "external entity": lambda: (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<rss xmlns:wp="http://wordpress.org/export/1.2/"><channel><title>&x;</title>'
        b"</channel></rss>"),
    "RSS but not WXR": lambda: b'<rss version="2.0"><channel><title>t</title></channel></rss>',
}


@pytest.mark.parametrize(("importer", "kind"), [
    *(("wordpress", kind) for kind in sorted(BAD_FILES)),
    *(("disqus", kind) for kind in ("truncated", "not XML", "billion laughs", "external entity")),
])
async def test_bad_files_import_nothing(clean_db: str, tmp_path: Path, importer: str,
                                        kind: str) -> None:
    """Malformed, truncated, hostile or foreign files: one error line, exit 1, nothing stored."""
    path = tmp_path / "export.xml"
    path.write_bytes(BAD_FILES[kind]())
    result = realtime(clean_db, "import", importer, str(path))
    assert result.returncode == 1, result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert await counts(clean_db) == (0, 0, 0)


async def test_wrong_importer_is_an_unknown_format(clean_db: str) -> None:
    """Each fixture given to the other importer is refused as an unknown format."""
    for importer, path in (("disqus", WXR), ("wordpress", DISQUS), ("jsonl", WXR)):
        result = realtime(clean_db, "import", importer, str(path))
        assert result.returncode == 1 and "unknown format" in result.stderr, result.stderr
    assert await counts(clean_db) == (0, 0, 0)


async def test_a_second_file_adds_only_what_is_new(server: Running, tmp_path: Path) -> None:
    """A later export of the same site adds its new comments, under their imported parents."""
    url = server.settings.database_url
    namespace = "http://wordpress.org/export/1.2/"
    imported(url, "wordpress", wxr_file(tmp_path / "a.xml", namespace, wxr_comment(1, "one")))
    later = wxr_comment(1, "one") + wxr_comment(2, "two", parent=1)
    report = imported(url, "wordpress", wxr_file(tmp_path / "b.xml", namespace, later))
    assert "comments added: 1 (1 approved)" in report and "left alone: 1" in report
    async with httpx.AsyncClient(base_url=server.url) as client:
        one, two = (await thread(client, "p-1"))["comments"]
    assert two["parent_id"] == one["id"]


async def test_one_reset_per_imported_thread_and_no_gap(server: Running,
                                                        mod: httpx.AsyncClient) -> None:
    """A thread with events gets one `post.reset` event (reason imported) at the next seq."""
    url = server.settings.database_url
    created = await mod.put(f"/api/posts/{TEMPLATE}", json={"title": "Template: Comments"})
    assert created.status_code == 201
    for n in range(3):
        posted = await mod.post(f"/api/posts/{TEMPLATE}/comments",
                                json={"body": f"live {n}", "author": {"name": "Live"}})
        assert posted.status_code == 201
    imported(url, "wordpress", WXR)
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT e.seq, e.type, e.data FROM events e JOIN posts p ON p.id = e.post_id"
            " WHERE p.slug = $1 ORDER BY e.seq", TEMPLATE)
        post_seq = await conn.fetchval("SELECT seq FROM posts WHERE slug = $1", TEMPLATE)
    finally:
        await conn.close()
    assert [r["seq"] for r in rows] == [1, 2, 3, 4] and post_seq == 4
    assert [r["type"] for r in rows] == ["comment.created"] * 3 + ["post.reset"]
    assert rows[-1]["data"] == '{"reason":"imported"}'
    page = (await mod.get(f"/api/posts/{TEMPLATE}/comments", params={"limit": 500})).json()
    assert page["seq"] == 4 and page["post"]["comment_count"] == 22


async def test_an_open_reader_gets_one_reset_not_a_flood(server: Running,
                                                         mod: httpx.AsyncClient) -> None:
    """A reader with a thread open gets one message for the 20 comments imported into it: the
    reset with reason imported, and nothing else."""
    created = await mod.put(f"/api/posts/{TEMPLATE}", json={"title": "Template: Comments"})
    assert created.status_code == 201
    live = await Live.connect(server.ws_url)
    try:
        assert (await live.subscribe(f"post:{TEMPLATE}", since=0))["type"] == "subscribed"
        imported(server.settings.database_url, "wordpress", WXR)
        message = await live.next_of("event", "reset", timeout=30)
        assert message == {"type": "reset", "channel": f"post:{TEMPLATE}", "reason": "imported"}
        await live.send({"op": "ping", "id": "after"})
        assert await live.next_of("pong") == {"type": "pong", "id": "after"}
    finally:
        await live.close()

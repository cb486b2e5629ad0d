"""Privacy: keyed avatars, addresses dropped after their retention, an author's export and
erasure, metrics kept to the operator."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from typing import Any

import asyncpg
import httpx

from conftest import Live, Running, comment_body
from test_api import assert_problem

URL = "/api/posts/hello-world/comments"


def old_avatar(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()[:16]


async def test_avatars_are_keyed_per_site_and_old_ones_rekeyed(make_server: Any,
                                                              clean_db: str) -> None:
    """An avatar no longer confirms a guessed e-mail: it is keyed with a secret every node
    shares (kept in the database); avatars stored before the key existed, in comments and
    in replayable events, are recomputed on first start."""
    conn = await asyncpg.connect(clean_db)
    post_id = await conn.fetchval("INSERT INTO posts (slug, title, seq) VALUES"
                                  " ('hello-world', 'Hello', 1) RETURNING id")
    old_id = await conn.fetchval(
        "INSERT INTO comments (post_id, status, author_name, author_email, avatar, body, html)"
        " VALUES ($1, 'approved', 'Old', 'old@example.org', $2, 'old', '<p>old</p>')"
        " RETURNING id", post_id, old_avatar("old@example.org"))
    await conn.execute(
        "INSERT INTO events (post_id, seq, type, data) VALUES ($1, 1, 'comment.created', $2)",
        post_id, json.dumps({"id": old_id, "author": {"name": "Old", "url": None,
                                                      "avatar": old_avatar("old@example.org")}}))
    await conn.close()
    one: Running = await make_server()
    two: Running = await make_server()
    async with httpx.AsyncClient(base_url=one.url) as first, \
            httpx.AsyncClient(base_url=two.url) as second:
        mine = (await first.post(URL, json=comment_body("hi", name="Ann"))).json()["comment"]
        again = (await second.post(URL, json=comment_body("hi again", name="Ann"))).json()
        thread = (await first.get(URL)).json()["comments"]
    avatar = mine["author"]["avatar"]
    assert len(avatar) == 16 and avatar != old_avatar("ann@example.org")
    assert again["comment"]["author"]["avatar"] == avatar
    rekeyed = next(c for c in thread if c["id"] == old_id)["author"]["avatar"]
    assert rekeyed != old_avatar("old@example.org") and len(rekeyed) == 16
    live = await Live.connect(one.ws_url)
    await live.subscribe("post:hello-world", since=0)
    replayed = (await live.events(1))[0]
    assert replayed["data"]["author"]["avatar"] == rekeyed
    await live.close()


async def test_addresses_are_dropped_after_retention(server: Running, mod: httpx.AsyncClient,
                                                     post: dict[str, Any]) -> None:
    """Past REALTIME_IP_RETENTION_DAYS a comment's IP address and user agent, a moderator
    session's, and a report's reader identity are gone; newer ones stay."""
    async with httpx.AsyncClient(base_url=server.url,
                                 headers={"User-Agent": "Reader/1.0"}) as client:
        old = (await client.post(URL, json=comment_body("old", name="O"))).json()["comment"]
        new = (await client.post(URL, json=comment_body("new", name="N"))).json()["comment"]
        await client.post(f"/api/comments/{old['id']}/report", json={"reason": "spam"})
    pool = server.store.pool
    await pool.execute("UPDATE comments SET created_at = now() - interval '31 days'"
                       " WHERE id = $1", old["id"])
    await pool.execute("UPDATE reports SET created_at = now() - interval '31 days'")
    await pool.execute("UPDATE sessions SET created_at = now() - interval '31 days',"
                       " ip = '203.0.113.7', user_agent = 'Console/1.0'")
    await server.app.state.realtime.service.prune()
    assert await pool.fetchval("SELECT count(*) FROM sessions WHERE ip IS NOT NULL"
                               " OR user_agent IS NOT NULL") == 0
    assert await pool.fetchval("SELECT count(*) FROM sessions") == 1
    found = {c["id"]: c for c in (await mod.get("/api/moderation/queue",
                                                params={"status": "all"})).json()["comments"]}
    assert (found[old["id"]]["ip"], found[old["id"]]["user_agent"]) == (None, None)
    assert (found[new["id"]]["ip"], found[new["id"]]["user_agent"]) == (
        "127.0.0.1", "Reader/1.0")
    assert await pool.fetchval("SELECT length(reporter) FROM reports") == 16


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m realtime ARGS` against the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_")}
    return subprocess.run([sys.executable, "-m", "realtime", *args], text=True,
                          capture_output=True, timeout=120,
                          env={**env, "REALTIME_DATABASE_URL": database_url,
                               "REALTIME_LOG_LEVEL": "warning"})


async def test_author_export_and_erase(server: Running, mod: httpx.AsyncClient,
                                       client: httpx.AsyncClient, post: dict[str, Any],
                                       clean_db: str) -> None:
    """`realtime author export` prints everything stored under an e-mail; `erase` makes each
    of the author's comments a tombstone, live on open pages, and blanks the event log."""
    parent = (await client.post(URL, json=comment_body("my words", name="Eve"))).json()
    await client.post(URL, json=comment_body("a reply", name="Bob",
                                             parent_id=parent["comment"]["id"]))
    alone = (await client.post(URL, json=comment_body("more words", name="Eve"))).json()
    await mod.post("/api/moderation/bans", json={"kind": "name", "value": "EVE",
                                                 "shadow": True})
    await client.post(URL, json=comment_body("hidden words", name="Eve"))
    exported = await asyncio.to_thread(cli, clean_db, "author", "export", "EVE@example.org")
    assert exported.returncode == 0, exported.stderr
    found = json.loads(exported.stdout)
    assert [c["body"] for c in found["comments"]] == ["my words", "more words",
                                                     "hidden words"]
    assert {c["ip"] for c in found["comments"]} == {"127.0.0.1"}
    assert [b["value"] for b in found["bans"]] == ["EVE"]

    live = await Live.connect(server.ws_url)
    await live.subscribe("post:hello-world")
    refused = await asyncio.to_thread(cli, clean_db, "author", "erase", "eve@example.org")
    assert refused.returncode != 0
    erased = await asyncio.to_thread(cli, clean_db, "author", "erase", "eve@example.org",
                                     "--yes")
    assert erased.returncode == 0, erased.stderr
    assert "erased 3 comments" in erased.stdout
    events = await live.events(2)
    assert [(e["event"], e["data"]["id"]) for e in events] == [
        ("comment.deleted", parent["comment"]["id"]), ("comment.deleted", alone["comment"]["id"])]
    assert events[0]["data"]["tombstone"]["body"] == "" and events[1]["data"]["tombstone"] is None
    await live.close()
    thread = (await client.get(URL)).json()["comments"]
    assert [(c["body"], c["author"]["name"]) for c in thread] == [("", ""), ("a reply", "Bob")]
    queue = (await mod.get("/api/moderation/queue", params={"status": "all"})).json()
    for comment in queue["comments"]:
        if comment["author"]["name"] != "Bob":
            assert (comment["body"], comment["author"]["email"], comment["ip"],
                    comment["user_agent"], comment["status"]) == ("", None, None, None,
                                                                  "deleted")
    replay = await Live.connect(server.ws_url)
    await replay.subscribe("post:hello-world", since=0)
    for event in await replay.events(4):
        text = json.dumps(event["data"])
        assert "words" not in text and "Eve" not in text, text
    await replay.close()
    again = json.loads((await asyncio.to_thread(cli, clean_db, "author", "export",
                                                "eve@example.org")).stdout)
    assert again["comments"] == []


async def test_metrics_are_for_the_operator(make_server: Any) -> None:
    """/metrics answers loopback clients no proxy relayed, or with REALTIME_METRICS_TOKEN
    set, only a request with that bearer token."""
    local: Running = await make_server()
    guarded: Running = await make_server(metrics_token="s3cret-token")
    async with httpx.AsyncClient(base_url=local.url) as client:
        assert (await client.get("/metrics")).status_code == 200
        relayed = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
        assert_problem(relayed, 403, "forbidden")
    async with httpx.AsyncClient(base_url=guarded.url) as client:
        assert_problem(await client.get("/metrics"), 401, "unauthorized")
        assert_problem(await client.get("/metrics", headers={
            "Authorization": "Bearer wrong"}), 401, "unauthorized")
        ok = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200 and "realtime_ws_connections" in ok.text

"""`realtime export` and `realtime import jsonl`: a whole site out and back, compared row by row."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from realtime import db

from conftest import Running, with_database
from test_import import DISQUS, WXR, imported, realtime

TABLES = {"posts": "id", "comments": "id", "bans": "id", "settings": "name",
          "imported_comments": "source, source_id"}


@pytest.fixture
async def second_db(database_url: str) -> AsyncIterator[str]:
    """Another empty, migrated database on the same server, dropped afterwards."""
    name = f"realtime_restore_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = with_database(database_url, name)
    conn = await asyncpg.connect(url)
    try:
        await db.migrate(conn)
    finally:
        await conn.close()
    yield url
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def rows(url: str) -> dict[str, list[Any]]:
    """Every row of the exported tables, as PostgreSQL's JSON, in key order."""
    conn = await asyncpg.connect(url)
    try:
        return {table: [orjson.loads(r[0]) for r in await conn.fetch(
                    f"SELECT to_jsonb(t)::text FROM {table} t ORDER BY {key}")]
                for table, key in TABLES.items()}
    finally:
        await conn.close()


def export(url: str, path: Path, *args: str) -> list[bytes]:
    """Run `realtime export ARGS > path`; the lines written."""
    result = realtime(url, "export", *args)
    assert result.returncode == 0, result.stderr
    path.write_text(result.stdout)
    return path.read_bytes().splitlines()


async def a_busy_site(server: Running, mod: httpx.AsyncClient) -> None:
    """Imported threads plus what readers and moderators do: a live comment with an edit
    token and client_id, a reply, a report, a spam verdict, a ban and a saved policy."""
    url = server.settings.database_url
    imported(url, "wordpress", WXR)
    imported(url, "disqus", DISQUS)
    posted = await mod.post("/api/posts/index/comments", json={
        "body": "Posted *live*", "author": {"name": "Liv", "email": "liv@example.org"},
        "client_id": str(uuid.uuid4())})
    assert posted.status_code == 201
    first = posted.json()["comment"]["id"]
    reply = await mod.post("/api/posts/index/comments", json={
        "body": "a reply", "author": {"name": "Rex"}, "parent_id": first})
    assert reply.status_code == 201
    async with httpx.AsyncClient(base_url=server.url) as reader:
        assert (await reader.post(f"/api/comments/{first}/report",
                                  json={"reason": "rude"})).status_code == 202
    assert (await mod.post(f"/api/moderation/comments/{reply.json()['comment']['id']}/spam"
                           )).status_code == 200
    assert (await mod.post("/api/moderation/bans", json={
        "kind": "email", "value": "troll@example.org", "shadow": True,
        "reason": "trolling"})).status_code == 201
    assert (await mod.put("/api/moderation/settings", json={
        "hold_words": ["casino"], "max_links": 3})).status_code == 200


async def test_round_trip_into_an_empty_database(server: Running, mod: httpx.AsyncClient,
                                                 second_db: str, tmp_path: Path) -> None:
    """Export, restore elsewhere: every post, comment, ban, setting and source id is equal,
    and the restored database hands out new ids after the old ones."""
    await a_busy_site(server, mod)
    source = server.settings.database_url
    lines = export(source, tmp_path / "site.jsonl")
    assert orjson.loads(lines[0])["realtime_export"]["version"] == 1
    assert any(b'"author_email"' in line for line in lines)  # private fields are in it
    result = realtime(second_db, "import", "jsonl", str(tmp_path / "site.jsonl"))
    assert result.returncode == 0, result.stderr
    before, after = await rows(source), await rows(second_db)
    assert len(before["comments"]) == 37 and before["bans"] and before["settings"]
    assert after == before
    again = export(second_db, tmp_path / "again.jsonl")
    assert again[1:] == lines[1:]
    conn = await asyncpg.connect(second_db)
    try:
        new_id = await conn.fetchval(
            "INSERT INTO comments (post_id, status, author_name, avatar, body, html)"
            " SELECT id, 'approved', 'n', 'a', 'b', 'b' FROM posts LIMIT 1 RETURNING id")
    finally:
        await conn.close()
    assert new_id > max(c["id"] for c in before["comments"])


async def test_restore_refuses_a_database_in_use(server: Running, tmp_path: Path) -> None:
    """Restoring into a database that already has posts is refused and changes nothing."""
    url = server.settings.database_url
    imported(url, "disqus", DISQUS)
    export(url, tmp_path / "site.jsonl")
    before = await rows(url)
    result = realtime(url, "import", "jsonl", str(tmp_path / "site.jsonl"))
    assert result.returncode == 1 and "empty database" in result.stderr, result.stderr
    assert await rows(url) == before


@pytest.mark.parametrize("damage", ["truncated", "bad line", "no header"])
async def test_a_damaged_export_restores_nothing(server: Running, second_db: str,
                                                 tmp_path: Path, damage: str) -> None:
    """A truncated file, a line that is not a row, or a file without its header: one error
    line, and the database stays empty."""
    imported(server.settings.database_url, "wordpress", WXR)
    lines = export(server.settings.database_url, tmp_path / "site.jsonl")
    broken = {"truncated": b"\n".join(lines)[:-40],
              "bad line": b"\n".join([*lines[:-3], b'{"comments": [1, 2]}', *lines[-3:]]) + b"\n",
              "no header": b"\n".join(lines[1:]) + b"\n"}[damage]
    (tmp_path / "broken.jsonl").write_bytes(broken)
    result = realtime(second_db, "import", "jsonl", str(tmp_path / "broken.jsonl"))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("Error:")]) == 1
    left = await rows(second_db)
    # The command's own start gives the database its avatar key; nothing of the file is kept.
    assert [r["name"] for r in left.pop("settings")] in ([], ["avatar_key"])
    assert all(not found for found in left.values()), left


async def test_export_of_one_post(server: Running, second_db: str, tmp_path: Path) -> None:
    """--post exports one thread, which restores on its own; an unknown slug is an error."""
    url = server.settings.database_url
    imported(url, "wordpress", WXR)
    lines = export(url, tmp_path / "one.jsonl", "--post", "2012-01-01-template-pingbacks-an-"
                   "trackbacks")
    tables = [next(iter(orjson.loads(line))) for line in lines[1:]]
    assert tables.count("posts") == 1 and tables.count("comments") == 5
    assert "settings" not in tables and "bans" not in tables
    result = realtime(second_db, "import", "jsonl", str(tmp_path / "one.jsonl"))
    assert result.returncode == 0, result.stderr
    assert len((await rows(second_db))["comments"]) == 5
    missing = realtime(url, "export", "--post", "no-such-post")
    assert missing.returncode == 1 and "no post" in missing.stderr


def test_export_help_warns_about_personal_data(tmp_path: Path) -> None:
    """`realtime export --help` says the file holds e-mail and IP addresses."""
    result = realtime("postgresql://unused@127.0.0.1:1/none", "export", "--help")
    assert result.returncode == 0
    assert "personal data" in result.stdout and "e-mail and IP addresses" in result.stdout

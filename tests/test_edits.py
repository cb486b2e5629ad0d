"""An author's edit is judged like a new comment, and readers see the outcome live."""

from __future__ import annotations

from typing import Any

import httpx

from conftest import Live, Running, comment_body
from test_api import assert_problem

URL = "/api/posts/hello-world/comments"


async def _post(client: httpx.AsyncClient, text: str, name: str,
                **extra: Any) -> tuple[int, dict[str, str]]:
    created = (await client.post(URL, json=comment_body(text, name=name, **extra))).json()
    assert created["comment"]["status"] == "approved", created
    return created["comment"]["id"], {"Authorization": f"Edit {created['edit_token']}"}


async def _statuses(mod: httpx.AsyncClient) -> dict[int, tuple[str, list[Any]]]:
    found = (await mod.get("/api/moderation/queue", params={"status": "all"})).json()
    return {c["id"]: (c["status"], c["reasons"]) for c in found["comments"]}


async def test_edits_face_the_word_lists_and_link_limit(
        server: Running, mod: httpx.AsyncClient, client: httpx.AsyncClient,
        post: dict[str, Any]) -> None:
    """Editing in a block word, a hold word or too many links takes an approved comment out
    of public view live; the author is told what a new comment would have told them."""
    await mod.put("/api/moderation/settings", json={
        "hold_words": ["casino"], "block_words": ["viagra"], "max_links": 2})
    blocked, blocked_auth = await _post(client, "a fine first comment", "A")
    held, held_auth = await _post(client, "another fine comment", "B")
    linked, linked_auth = await _post(client, "a third fine comment", "C")
    parent, parent_auth = await _post(client, "a comment with a reply", "D")
    reply, _ = await _post(client, "the reply", "E", parent_id=parent)
    live = await Live.connect(server.ws_url)
    await live.subscribe("post:hello-world")

    answers = [
        await client.patch(f"/api/comments/{blocked}", json={"body": "cheap viagra"},
                           headers=blocked_auth),
        await client.patch(f"/api/comments/{held}", json={"body": "best casino in town"},
                           headers=held_auth),
        await client.patch(f"/api/comments/{linked}", json={
            "body": "[a](https://a.example) [b](https://b.example) [c](https://c.example)"},
            headers=linked_auth),
        await client.patch(f"/api/comments/{parent}", json={"body": "viagra, again"},
                           headers=parent_auth),
    ]
    assert [a.json()["comment"]["status"] for a in answers] == ["pending"] * 4
    events = await live.events(4)
    assert [(e["event"], e["data"]["id"]) for e in events] == [
        ("comment.deleted", blocked), ("comment.deleted", held), ("comment.deleted", linked),
        ("comment.deleted", parent)]
    assert [e["data"]["tombstone"] is not None for e in events] == [False, False, False, True]
    statuses = await _statuses(mod)
    assert statuses[blocked] == ("spam", [{"rule": "block_word", "word": "viagra"}])
    assert statuses[held] == ("pending", [{"rule": "hold_word", "word": "casino"}])
    assert statuses[linked] == ("pending", [{"rule": "links", "count": 3, "limit": 2}])
    assert statuses[reply][0] == "approved"
    thread = (await client.get(URL)).json()
    assert [(c["id"], c["status"]) for c in thread["comments"]] == [
        (parent, "deleted"), (reply, "approved")]
    assert thread["post"]["comment_count"] == 1

    back = await client.patch(f"/api/comments/{held}", json={"body": "a clean text"},
                              headers=held_auth)
    assert back.json()["comment"]["status"] == "pending"
    assert (await _statuses(mod))[held][0] == "pending"
    fine, fine_auth = await _post(client, "a comment that stays", "F")
    await live.events(1)
    kept = await client.patch(f"/api/comments/{fine}", json={"body": "still *fine*"},
                              headers=fine_auth)
    assert kept.json()["comment"]["status"] == "approved"
    update = (await live.events(1))[0]
    assert update["event"] == "comment.updated" and update["data"]["html"] == (
        "<p>still <em>fine</em></p>")
    await live.close()


async def test_edits_face_bans_and_premoderation(mod: httpx.AsyncClient,
                                                 client: httpx.AsyncClient,
                                                 post: dict[str, Any]) -> None:
    """A banned author cannot edit, a shadow-banned one's edit is hidden from everyone but
    them, and on a pre-moderated thread without trust an edit goes back to the queue; a
    moderator's edit is not judged."""
    shadow, shadow_auth = await _post(client, "before the shadow ban", "Sly")
    banned, banned_auth = await _post(client, "before the ban", "Troll")
    await mod.post("/api/moderation/bans",
                   json={"kind": "email", "value": "sly@example.org", "shadow": True})
    await mod.post("/api/moderation/bans", json={"kind": "name", "value": "troll"})
    hidden = await client.patch(f"/api/comments/{shadow}", json={"body": "edited, hidden"},
                                headers=shadow_auth)
    assert hidden.json()["comment"]["status"] == "approved"
    assert (await _statuses(mod))[shadow] == ("spam", [{"rule": "shadow_ban"}])
    assert_problem(await client.patch(f"/api/comments/{banned}", json={"body": "edited"},
                                      headers=banned_auth), 403, "banned")
    assert (await client.get(f"/api/comments/{banned}")).json()["comment"]["body"] == (
        "before the ban")

    trusted, trusted_auth = await _post(client, "approved before pre-moderation", "Tia")
    await mod.put("/api/posts/hello-world", json={"moderation": "pre"})
    await mod.put("/api/moderation/settings", json={"trusted_authors": False})
    again = await client.patch(f"/api/comments/{trusted}", json={"body": "a new text"},
                               headers=trusted_auth)
    assert again.json()["comment"]["status"] == "pending"
    assert (await _statuses(mod))[trusted] == ("pending", [{"rule": "pre_moderation"}])
    await mod.put("/api/moderation/settings", json={"hold_words": ["casino"]})
    await mod.post(f"/api/moderation/comments/{trusted}/approve")
    moderated = await mod.patch(f"/api/comments/{trusted}", json={"body": "casino, says a mod"})
    assert moderated.json()["comment"]["status"] == "approved"

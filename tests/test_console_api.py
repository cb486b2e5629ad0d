"""The moderation API the console works from: the feed with its context, counts, reports,
reasons kept to moderators, and audit rows that commit or roll back with their change."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx

from realtime import moderation

from conftest import Live, Running, comment_body
from test_api import assert_problem

URL = "/api/posts/hello-world/comments"
FEED = "/api/moderation/comments"


async def add(client: httpx.AsyncClient, text: str, name: str = "Ann", slug: str = "hello-world",
              **extra: Any) -> dict[str, Any]:
    """Post a comment and return the answer's comment."""
    answer = await client.post(f"/api/posts/{slug}/comments", json=comment_body(text, name,
                                                                                   **extra))
    assert answer.status_code == 201, answer.text
    return answer.json()["comment"]  # type: ignore[no-any-return]


async def feed(mod: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    answer = await mod.get(FEED, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def moderation_socket(server: Running, mod: httpx.AsyncClient) -> Live:
    """A WebSocket subscribed to the moderation channel with the moderator's cookie."""
    token = mod.cookies.get("realtime_session")
    live = await Live.connect(server.ws_url, additional_headers={
        "Cookie": f"realtime_session={token}", "Origin": server.url})
    assert (await live.subscribe("moderation"))["type"] == "subscribed"
    return live


async def test_feed_shows_each_comment_in_context(mod: httpx.AsyncClient,
                                                  client: httpx.AsyncClient,
                                                  post: dict[str, Any]) -> None:
    """Newest first, each comment with its post, parent, author history, bans and reports."""
    await mod.put("/api/moderation/settings", json={"hold_words": ["casino"],
                                                    "block_words": ["viagra"]})
    first = await add(client, "Hello there", "Ann")
    reply = await add(client, "I disagree with *you*", "Bob", parent_id=first["id"])
    held = await add(client, "Visit my casino", "Ann")
    spam = await add(client, "viagra", "Ann")
    await mod.post("/api/moderation/bans", json={"kind": "email", "value": "bob@example.org",
                                                 "shadow": True, "reason": "troll"})
    for reason in ("rude", "off topic"):
        answer = await client.post(f"/api/comments/{reply['id']}/report",
                                   json={"reason": reason},
                                   headers={"user-agent": reason})
        assert answer.status_code == 202
    # Reports are counted per reader (address, else user agent); loopback is one reader.
    found = (await feed(mod))["comments"]
    assert [c["id"] for c in found] == [spam["id"], held["id"], reply["id"], first["id"]]
    by_id = {c["id"]: c for c in found}
    context = by_id[reply["id"]]["context"]
    assert context["post"] == {"slug": "hello-world", "title": "Hello, world", "url": None}
    assert context["parent"] == {"id": first["id"], "author": {"name": "Ann"},
                                 "status": "approved", "excerpt": "Hello there"}
    assert [r["reason"] for r in context["reports"]] == ["rude"]
    assert by_id[reply["id"]]["reports"] == 1
    assert context["author"]["by"] == "email"
    assert [(b["kind"], b["value"], b["shadow"]) for b in context["author"]["bans"]] == [
        ("email", "bob@example.org", True)]
    ann = by_id[held["id"]]["context"]["author"]
    assert {k: ann[k] for k in ("approved", "pending", "spam", "rejected", "deleted")} == {
        "approved": 1, "pending": 1, "spam": 1, "rejected": 0, "deleted": 0}
    assert ann["bans"] == []
    assert by_id[held["id"]]["reasons"] == [{"rule": "hold_word", "word": "casino"}]
    assert by_id[spam["id"]]["reasons"] == [{"rule": "block_word", "word": "viagra"}]
    assert by_id[first["id"]]["context"]["parent"] is None
    assert by_id[held["id"]]["author"]["email"] == "ann@example.org"
    assert by_id[held["id"]]["ip"] == "127.0.0.1"


async def test_feed_filters_and_pages(mod: httpx.AsyncClient, client: httpx.AsyncClient,
                                      post: dict[str, Any]) -> None:
    """Each filter holds only what its name says; `before` pages back; `ids` picks."""
    await mod.put("/api/posts/other", json={"title": "Other"})
    await mod.put("/api/moderation/settings", json={"hold_words": ["casino"]})
    approved = [await add(client, f"fine {i}", f"A{i}") for i in range(3)]
    held = await add(client, "casino", "H")
    elsewhere = await add(client, "over there", "O", slug="other")
    await client.post(f"/api/comments/{approved[0]['id']}/report", json={"reason": "spam"})
    await mod.post(f"/api/moderation/comments/{approved[1]['id']}/reject")

    def ids(answer: dict[str, Any]) -> list[int]:
        return [c["id"] for c in answer["comments"]]

    assert ids(await feed(mod, status="pending")) == [held["id"]]
    assert ids(await feed(mod, status="reported")) == [approved[0]["id"]]
    assert ids(await feed(mod, status="rejected")) == [approved[1]["id"]]
    assert ids(await feed(mod, status="approved")) == [elsewhere["id"], approved[2]["id"],
                                                       approved[0]["id"]]
    assert ids(await feed(mod, post="other")) == [elsewhere["id"]]
    assert ids(await feed(mod, post="other", status="pending")) == []
    first = await feed(mod, limit=2)
    assert ids(first) == [elsewhere["id"], held["id"]] and first["next"] == held["id"]
    rest = await feed(mod, limit=2, before=first["next"])
    assert ids(rest) == [approved[2]["id"], approved[1]["id"]]
    last = await feed(mod, limit=2, before=rest["next"])
    assert ids(last) == [approved[0]["id"]] and last["next"] is None
    picked = await feed(mod, ids=f"{held['id']},{approved[0]['id']},999")
    assert ids(picked) == [held["id"], approved[0]["id"]] and picked["next"] is None
    queue = (await mod.get("/api/moderation/queue",
                           params={"status": "approved", "post": "hello-world"})).json()
    assert [c["id"] for c in queue["comments"]] == [approved[0]["id"], approved[2]["id"]]
    reported = (await mod.get("/api/moderation/queue", params={"status": "reported"})).json()
    assert [c["id"] for c in reported["comments"]] == [approved[0]["id"]]

    for params in ({"status": "maybe"}, {"ids": "1,x"}, {"ids": ",".join(["1"] * 101)},
                   {"post": "Not A Slug"}, {"before": "-1"}):
        assert_problem(await mod.get(FEED, params=params), 422, "validation_error")
    assert_problem(await mod.get(FEED, params={"post": "nowhere"}), 404, "not_found")
    assert_problem(await client.get(FEED), 401, "unauthorized")
    assert_problem(await client.get("/api/moderation/counts"), 401, "unauthorized")


async def test_counts_per_filter(mod: httpx.AsyncClient, client: httpx.AsyncClient,
                                 post: dict[str, Any]) -> None:
    """Counts per status, reported and all, over every post or one, follow every change."""
    await mod.put("/api/posts/other", json={"title": "Other", "moderation": "pre"})
    one = await add(client, "one", "A")
    await add(client, "two", "B")
    await add(client, "held", "C", slug="other")
    await client.post(f"/api/comments/{one['id']}/report", json={"reason": "rude"})
    counts = (await mod.get("/api/moderation/counts")).json()["counts"]
    assert counts == {"pending": 1, "reported": 1, "approved": 2, "spam": 0, "rejected": 0,
                      "deleted": 0, "all": 3}
    await mod.post(f"/api/moderation/comments/{one['id']}/spam")
    counts = (await mod.get("/api/moderation/counts")).json()["counts"]
    assert (counts["reported"], counts["approved"], counts["spam"]) == (0, 1, 1)
    other = (await mod.get("/api/moderation/counts", params={"post": "other"})).json()
    assert other["counts"] == {"pending": 1, "reported": 0, "approved": 0, "spam": 0,
                               "rejected": 0, "deleted": 0, "all": 1}


async def test_reports_reach_moderators_live_and_approval_dismisses_them(
        server: Running, mod: httpx.AsyncClient, client: httpx.AsyncClient,
        post: dict[str, Any]) -> None:
    """A report is a moderator-only change, live; approving the comment dismisses its reports."""
    comment = await add(client, "contested")
    public = await Live.connect(server.ws_url)
    await public.subscribe("post:hello-world", since=1)
    live = await moderation_socket(server, mod)
    await client.post(f"/api/comments/{comment['id']}/report", json={"reason": "insulting"})
    event = (await live.events(1))[0]
    assert event["event"] == "comment.updated" and event["data"]["reports"] == 1
    assert event["data"]["version"] == 2
    stale = await mod.post(f"/api/moderation/comments/{comment['id']}/approve",
                           json={"version": 1})
    assert assert_problem(stale, 409, "conflict")["comment"]["reports"] == 1
    kept = await mod.post(f"/api/moderation/comments/{comment['id']}/approve",
                          json={"version": 2})
    assert kept.json()["comment"]["reports"] == 0 and kept.json()["comment"]["version"] == 3
    assert (await live.events(1))[0]["data"]["reports"] == 0
    assert (await feed(mod, status="reported"))["comments"] == []
    assert (await feed(mod))["comments"][0]["context"]["reports"] == []
    # The same reader does not report again what a moderator kept; readers saw no report.
    await client.post(f"/api/comments/{comment['id']}/report", json={"reason": "again"})
    assert (await feed(mod, status="reported"))["comments"] == []
    readers_saw = (await public.events(1))[0]
    assert readers_saw["data"]["version"] == 3 and "reports" not in readers_saw["data"]
    log = (await mod.get("/api/moderation/log")).json()["entries"]
    assert log[0]["action"] == "approve" and log[0]["comment_id"] == comment["id"]
    await live.close()
    await public.close()


async def test_reasons_never_leave_the_moderator_view(server: Running, mod: httpx.AsyncClient,
                                                      client: httpx.AsyncClient,
                                                      post: dict[str, Any]) -> None:
    """Why a comment was held is in moderator answers only: never to its author or readers."""
    await mod.put("/api/moderation/settings", json={"hold_words": ["casino"], "max_links": 0})
    public = await Live.connect(server.ws_url)
    await public.subscribe("post:hello-world", since=0)
    live = await moderation_socket(server, mod)
    sent = comment_body("My casino: [here](https://casino.example)", "Cas",
                        client_id=str(uuid.uuid4()))
    first = await client.post(URL, json=sent)
    retry = await client.post(URL, json=sent)
    cid = first.json()["comment"]["id"]
    reasons = [{"rule": "hold_word", "word": "casino"},
               {"rule": "links", "count": 1, "limit": 0}]
    moderated = (await live.events(1))[0]
    assert moderated["data"]["reasons"] == reasons
    edit = await client.patch(f"/api/comments/{cid}", json={"body": "My casino, again"},
                              headers={"Authorization": f"Edit {first.json()['edit_token']}"})
    approved = await mod.post(f"/api/moderation/comments/{cid}/approve")
    assert approved.json()["comment"]["reasons"] == reasons
    event = (await public.events(1))[0]
    answers = [first.text, retry.text, edit.text, json.dumps(event),
               (await client.get(URL)).text, (await client.get(f"/api/comments/{cid}")).text]
    for text in answers:
        assert '"reasons"' not in text and "hold_word" not in text, text
    assert (await feed(mod))["comments"][0]["reasons"] == reasons
    await live.close()
    await public.close()


async def test_audit_row_rolls_back_with_its_change(server: Running, mod: httpx.AsyncClient,
                                                    client: httpx.AsyncClient,
                                                    post: dict[str, Any]) -> None:
    """When its audit row cannot be written, no moderator change happens: each is one
    transaction with the row that records it."""
    comment = await add(client, "keep me")
    ban = (await mod.post("/api/moderation/bans", json={"kind": "name", "value": "x"})).json()
    policy = (await mod.get("/api/moderation/settings")).json()
    before_log = (await mod.get("/api/moderation/log")).json()["entries"]
    conn = await asyncpg.connect(server.settings.database_url)
    try:
        await conn.execute(
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN RAISE EXCEPTION 'audit refused'; END$$;"
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log"
            " FOR EACH ROW EXECUTE FUNCTION refuse_audit()")
        attempts = [
            mod.post(f"/api/moderation/comments/{comment['id']}/reject"),
            mod.patch(f"/api/comments/{comment['id']}", json={"body": "changed"}),
            mod.delete(f"/api/comments/{comment['id']}"),
            mod.put("/api/moderation/settings", json={"hold_words": ["nope"]}),
            mod.post("/api/moderation/bans", json={"kind": "name", "value": "y"}),
            mod.delete(f"/api/moderation/bans/{ban['id']}"),
            mod.put("/api/posts/hello-world", json={"open": False}),
            mod.put("/api/posts/new-one", json={"title": "New"}),
        ]
        for attempt in attempts:
            assert (await attempt).status_code == 500
    finally:
        await conn.execute("DROP TRIGGER refuse_audit ON audit_log; DROP FUNCTION refuse_audit()")
        await conn.close()
    now = (await client.get(f"/api/comments/{comment['id']}")).json()["comment"]
    assert (now["status"], now["version"], now["body"]) == ("approved", 1, "keep me")
    thread = (await client.get(URL)).json()
    assert thread["seq"] == 1 and thread["post"]["open"] is True
    assert (await mod.get("/api/moderation/settings")).json() == policy
    assert [b["id"] for b in (await mod.get("/api/moderation/bans")).json()["bans"]] == [ban["id"]]
    assert (await client.get("/api/posts/new-one")).status_code == 404
    assert (await mod.get("/api/moderation/log")).json()["entries"] == before_log
    # And a change that fails writes no audit row either.
    await mod.post(f"/api/moderation/comments/{comment['id']}/spam", json={"version": 7})
    assert (await mod.get("/api/moderation/log")).json()["entries"] == before_log


async def test_audit_log_filters_and_details(mod: httpx.AsyncClient, client: httpx.AsyncClient,
                                             post: dict[str, Any]) -> None:
    """The log filters by moderator and action and says what each change was."""
    comment = await add(client, "hello")
    await mod.put("/api/moderation/settings", json={"max_links": 5})
    ban = (await mod.post("/api/moderation/bans", json={
        "kind": "email", "comment_id": comment["id"], "reason": "abuse"})).json()
    await mod.delete(f"/api/moderation/bans/{ban['id']}")
    await mod.post(f"/api/moderation/comments/{comment['id']}/spam")
    log = (await mod.get("/api/moderation/log")).json()
    assert [e["action"] for e in log["entries"]] == ["spam", "unban", "ban", "settings", "post"]
    assert log["moderators"] == ["mod"]
    by_action = {e["action"]: e for e in log["entries"]}
    assert by_action["settings"]["detail"] == {"changes": {"max_links": 5}}
    assert by_action["ban"]["detail"]["ban"]["value"] == "ann@example.org"
    assert by_action["ban"]["comment_id"] == comment["id"] and by_action["ban"]["reason"] == "abuse"
    assert by_action["unban"]["detail"]["ban"]["id"] == ban["id"]
    assert by_action["post"]["detail"] == {"changes": {"title": "Hello, world"}}
    only = (await mod.get("/api/moderation/log", params={"action": "ban"})).json()["entries"]
    assert [e["action"] for e in only] == ["ban"]
    nobody = await mod.get("/api/moderation/log", params={"moderator": "someone-else"})
    assert nobody.json()["entries"] == []
    assert_problem(await mod.get("/api/moderation/log", params={"action": "dance"}),
                   422, "validation_error")


async def test_console_api_is_in_openapi(client: httpx.AsyncClient) -> None:
    """The feed, counts, sessions and log filters are described in /openapi.json."""
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert {"/api/moderation/comments", "/api/moderation/counts", "/api/auth/sessions",
            "/api/auth/sessions/{id}"} <= set(paths)
    assert set(paths["/api/auth/sessions"]) == {"get", "delete"}
    feed_params = {p["name"] for p in paths["/api/moderation/comments"]["get"]["parameters"]}
    assert feed_params == {"status", "post", "before", "limit", "ids"}
    log_params = {p["name"]: p for p in paths["/api/moderation/log"]["get"]["parameters"]}
    assert set(moderation.ACTIONS) <= set(log_params["action"]["schema"]["enum"])
    status = next(p for p in paths["/api/moderation/queue"]["get"]["parameters"]
                  if p["name"] == "status")
    assert "reported" in status["schema"]["enum"]

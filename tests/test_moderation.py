"""The shared moderation policy and bans, through the HTTP API and the live stream."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from conftest import Live, Running, comment_body
from test_api import assert_problem

URL = "/api/posts/hello-world/comments"


async def test_policy_defaults_and_partial_update(mod: httpx.AsyncClient,
                                                  client: httpx.AsyncClient) -> None:
    """The policy starts from the REALTIME_* defaults; PUT changes only the fields sent."""
    policy = (await mod.get("/api/moderation/settings")).json()
    assert policy == {"default_moderation": "post", "hold_words": [], "block_words": [],
                      "max_links": 2, "trusted_authors": True, "edit_window_s": 900,
                      "flood": {"min_interval_s": 0, "max_per_10_min": 0}}
    changed = await mod.put("/api/moderation/settings",
                            json={"hold_words": ["Casino "], "flood": {"min_interval_s": 15}})
    assert changed.status_code == 200
    assert changed.json()["hold_words"] == ["casino"]
    assert changed.json()["flood"] == {"min_interval_s": 15, "max_per_10_min": 0}
    assert (await mod.get("/api/moderation/settings")).json() == changed.json()
    assert_problem(await mod.put("/api/moderation/settings", json={"max_links": -1}),
                   422, "validation_error")
    assert_problem(await mod.put("/api/moderation/settings", json={"colour": "red"}),
                   422, "validation_error")
    assert_problem(await client.get("/api/moderation/settings"), 401, "unauthorized")
    assert (await mod.get("/api/moderation/log")).json()["entries"][0]["action"] == "settings"


async def test_word_lists_and_link_limit(mod: httpx.AsyncClient, client: httpx.AsyncClient,
                                         post: dict[str, Any]) -> None:
    """Hold words queue a comment, block words hide it as spam, too many links queue it."""
    await mod.put("/api/moderation/settings",
                  json={"hold_words": ["casino"], "block_words": ["viagra"], "max_links": 1})
    held = (await client.post(URL, json=comment_body("Best CASINO in town", name="A"))).json()
    assert held["comment"]["status"] == "pending" and held["seq"] is None
    blocked = (await client.post(URL, json=comment_body("cheap viagra!", name="B"))).json()
    assert blocked["comment"]["status"] == "pending"
    linked = (await client.post(URL, json=comment_body(
        "[a](https://a.example) [b](https://b.example)", name="C"))).json()
    assert linked["comment"]["status"] == "pending"
    fine = (await client.post(URL, json=comment_body("casinos are not the word", name="D")))
    assert fine.json()["comment"]["status"] == "approved"
    statuses = {c["author"]["name"]: c["status"] for c in (await mod.get(
        "/api/moderation/queue", params={"status": "all"})).json()["comments"]}
    assert statuses == {"A": "pending", "B": "spam", "C": "pending", "D": "approved"}


async def test_trusted_authors_skip_premoderation(mod: httpx.AsyncClient,
                                                  client: httpx.AsyncClient,
                                                  post: dict[str, Any]) -> None:
    """An e-mail with an approved comment skips the queue of a pre-moderated thread."""
    await client.post(URL, json=comment_body("first, approved", name="Tia"))
    await mod.put("/api/posts/hello-world", json={"moderation": "pre"})
    again = (await client.post(URL, json=comment_body("second", name="Tia"))).json()
    assert again["comment"]["status"] == "approved"
    stranger = (await client.post(URL, json=comment_body("hello", name="New"))).json()
    assert stranger["comment"]["status"] == "pending"
    await mod.put("/api/moderation/settings", json={"trusted_authors": False})
    third = (await client.post(URL, json=comment_body("third", name="Tia"))).json()
    assert third["comment"]["status"] == "pending"


async def test_flood_limits(mod: httpx.AsyncClient, client: httpx.AsyncClient,
                            post: dict[str, Any]) -> None:
    """Too soon or too many comments answer 429 with Retry-After and write nothing."""
    await mod.put("/api/moderation/settings", json={"flood": {"min_interval_s": 60}})
    assert (await client.post(URL, json=comment_body("one", name="F"))).status_code == 201
    soon = await client.post(URL, json=comment_body("two", name="G"))
    assert_problem(soon, 429, "rate_limited")
    assert 0 < int(soon.headers["retry-after"]) <= 60
    await mod.put("/api/moderation/settings",
                  json={"flood": {"min_interval_s": 0, "max_per_10_min": 2}})
    assert (await client.post(URL, json=comment_body("two", name="G"))).status_code == 201
    many = await client.post(URL, json=comment_body("three", name="H"))
    assert_problem(many, 429, "rate_limited")
    assert int(many.headers["retry-after"]) > 500
    assert (await client.get(URL)).json()["post"]["comment_count"] == 2


async def test_edit_window_and_default_moderation_from_policy(
        mod: httpx.AsyncClient, client: httpx.AsyncClient, post: dict[str, Any]) -> None:
    """The policy's edit window and default moderation apply to the next comment and post."""
    await mod.put("/api/moderation/settings",
                  json={"edit_window_s": 0, "default_moderation": "pre"})
    created = (await client.post(URL, json=comment_body())).json()
    assert created["edit_until"] == created["comment"]["created_at"]
    late = await client.patch(f"/api/comments/{created['comment']['id']}", json={"body": "x"},
                              headers={"Authorization": f"Edit {created['edit_token']}"})
    assert_problem(late, 403, "forbidden")
    made = (await mod.put("/api/posts/fresh", json={"title": "Fresh"})).json()
    assert made["moderation"] == "pre"
    kept = (await mod.put("/api/posts/hello-world", json={"open": True})).json()
    assert kept["moderation"] == "post"


async def test_bans_refuse_and_lift(mod: httpx.AsyncClient, client: httpx.AsyncClient,
                                    post: dict[str, Any]) -> None:
    """A ban by e-mail, name or IP refuses with 403 banned; lifting or expiry ends it."""
    by_mail = (await mod.post("/api/moderation/bans", json={
        "kind": "email", "value": "Troll@Example.org", "reason": "abuse"})).json()
    assert by_mail["value"] == "troll@example.org" and by_mail["created_by"] == "mod"
    assert_problem(await client.post(URL, json=comment_body(name="Troll")), 403, "banned")
    await mod.post("/api/moderation/bans", json={"kind": "name", "value": "ANON"})
    assert_problem(await client.post(URL, json={"body": "hi", "author": {"name": "anon"}}),
                   403, "banned")
    assert (await client.get(URL)).json()["comments"] == []
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    await mod.post("/api/moderation/bans", json={"kind": "name", "value": "Old",
                                                 "expires_at": past})
    assert (await client.post(URL, json=comment_body(name="Old"))).status_code == 201
    assert (await mod.delete(f"/api/moderation/bans/{by_mail['id']}")).status_code == 204
    assert (await client.post(URL, json=comment_body(name="Troll"))).status_code == 201
    bans = (await mod.get("/api/moderation/bans")).json()["bans"]
    assert [b["kind"] for b in bans] == ["name", "name"]
    assert_problem(await mod.delete("/api/moderation/bans/999"), 404, "not_found")


async def test_ban_by_comment_uses_the_hidden_address(mod: httpx.AsyncClient,
                                                      client: httpx.AsyncClient,
                                                      post: dict[str, Any]) -> None:
    """Banning a comment's author by IP needs no address from the moderator."""
    cid = (await client.post(URL, json=comment_body())).json()["comment"]["id"]
    ban = (await mod.post("/api/moderation/bans",
                          json={"kind": "ip", "comment_id": cid})).json()
    assert ban["kind"] == "ip" and ban["value"] == "127.0.0.1"
    assert_problem(await client.post(URL, json=comment_body("again", name="Other")),
                   403, "banned")
    for body in ({"kind": "ip"}, {"kind": "ip", "value": "not-an-ip"},
                 {"kind": "email", "value": "a@b.example", "comment_id": cid},
                 {"kind": "planet", "value": "x"}):
        assert_problem(await mod.post("/api/moderation/bans", json=body),
                       422, "validation_error")
    assert_problem(await client.post("/api/moderation/bans",
                                     json={"kind": "name", "value": "x"}), 401, "unauthorized")


async def test_shadow_ban_hides_from_everyone_else(server: Running, mod: httpx.AsyncClient,
                                                   client: httpx.AsyncClient,
                                                   post: dict[str, Any]) -> None:
    """A shadow-banned author gets a normal answer; readers and the stream never see it."""
    live = await Live.connect(server.ws_url)
    await live.subscribe("post:hello-world", since=0)
    await mod.post("/api/moderation/bans",
                   json={"kind": "email", "value": "sly@example.org", "shadow": True})
    answer = await client.post(URL, json=comment_body("you cannot see me", name="Sly"))
    assert answer.status_code == 201
    assert answer.json()["comment"]["status"] == "approved"
    visible = await client.post(URL, json=comment_body("visible", name="Vic"))
    event = (await live.events(1))[0]
    assert event["data"]["id"] == visible.json()["comment"]["id"] and event["seq"] == 1
    assert [c["author"]["name"] for c in (await client.get(URL)).json()["comments"]] == ["Vic"]
    await live.close()


async def test_retry_answers_like_the_first_answer(mod: httpx.AsyncClient,
                                                   client: httpx.AsyncClient,
                                                   post: dict[str, Any]) -> None:
    """A retry of a shadow-banned or blocked comment shows the same status as the first answer."""
    await mod.post("/api/moderation/bans",
                   json={"kind": "email", "value": "sly@example.org", "shadow": True})
    await mod.put("/api/moderation/settings", json={"block_words": ["viagra"]})
    for body, name, shown in (("hidden", "Sly", "approved"), ("cheap viagra", "Spam", "pending")):
        sent = comment_body(body, name=name,
                            client_id=f"5f0e3c1a-8d2b-4c7e-9a41-0b6f2d3e4c{len(body):02d}")
        first = await client.post(URL, json=sent)
        again = await client.post(URL, json=sent)
        assert first.status_code == 201 and again.status_code == 200
        assert first.json()["comment"]["status"] == shown
        assert again.json()["comment"] == first.json()["comment"]
        queued = (await mod.get("/api/moderation/queue?status=spam")).json()["comments"]
        assert any(c["id"] == first.json()["comment"]["id"] for c in queued)


NULLS = [{"max_links": None}, {"edit_window_s": None}, {"flood": None},
         {"flood": {"min_interval_s": None}}, {"flood": {"max_per_10_min": None}},
         {"hold_words": None}, {"block_words": None}, {"hold_words": [None]},
         {"default_moderation": None}, {"trusted_authors": None}]


async def test_policy_refuses_null_anywhere(mod: httpx.AsyncClient, client: httpx.AsyncClient,
                                            post: dict[str, Any]) -> None:
    """A null in any policy field is a 422 that changes nothing; posting keeps working."""
    before = (await mod.get("/api/moderation/settings")).json()
    for body in NULLS:
        problem = assert_problem(await mod.put("/api/moderation/settings", json=body),
                                 422, "validation_error")
        assert problem["errors"][0]["field"].split(".")[0] == next(iter(body)), problem
    assert (await mod.get("/api/moderation/settings")).json() == before
    assert (await client.post(URL, json=comment_body("still fine"))).status_code == 201


async def test_openapi_policy_schema_has_no_null(client: httpx.AsyncClient) -> None:
    """The OpenAPI document shows each policy field with its own type, never null."""
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    for name in ("PolicyFields", "FloodFields"):
        for field, schema in schemas[name]["properties"].items():
            assert "null" not in str(schema) and "default" not in schema, (field, schema)
            assert "type" in schema or "$ref" in schema or "enum" in schema, (field, schema)


UNREADABLE = [
    {"max_links": None, "edit_window_s": "soon", "flood": {"min_interval_s": "x",
                                                          "max_per_10_min": 1e30}},
    {"flood": None, "hold_words": None, "block_words": 7},
    {"flood": {"max_per_10_min": -5, "min_interval_s": 2.5}, "trusted_authors": "yes"},
    {"flood": "often", "default_moderation": "sometimes", "max_links": 99999999999999},
    ["not", "an", "object"],
    "a string",
]


@pytest.mark.parametrize("stored", UNREADABLE)
async def test_unreadable_stored_policy_never_stops_posting(
        server: Running, mod: httpx.AsyncClient, client: httpx.AsyncClient,
        post: dict[str, Any], stored: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A stored policy that cannot be read is logged and its broken fields take their
    defaults: comments, edits and the policy page keep working."""
    await server.store.pool.execute(
        "INSERT INTO settings (name, value) VALUES ('moderation', $1::jsonb)"
        " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value", json.dumps(stored))
    with caplog.at_level(logging.ERROR, logger="realtime.service"):
        created = await client.post(URL, json=comment_body("posting still works"))
        assert created.status_code == 201, created.text
        assert created.json()["comment"]["status"] == "approved"
    assert "cannot be read" in caplog.text
    edited = await client.patch(f"/api/comments/{created.json()['comment']['id']}",
                                json={"body": "and editing"},
                                headers={"Authorization": f"Edit {created.json()['edit_token']}"})
    assert edited.status_code == 200, edited.text
    policy = (await mod.get("/api/moderation/settings")).json()
    assert policy["max_links"] == 2 and policy["flood"]["min_interval_s"] == 0
    saved = await mod.put("/api/moderation/settings", json={"max_links": 3})
    assert saved.status_code == 200 and saved.json()["flood"]["max_per_10_min"] == 0


async def test_rules_see_through_invisible_and_lookalike_characters(
        mod: httpx.AsyncClient, client: httpx.AsyncClient, post: dict[str, Any]) -> None:
    """Zero-width, bidi and compatibility characters dodge no name ban, word or duplicate."""
    await mod.post("/api/moderation/bans", json={"kind": "name", "value": "Alice"})
    await mod.post("/api/moderation/bans", json={"kind": "email", "value": "bad@example.org"})
    for name in ("al\u200bice", "ＡＬＩＣＥ", "ali\u202ece", "a\u2060lice\u200d", "al\ufe0fice"):
        answer = await client.post(URL, json={"body": "hi", "author": {"name": name}})
        assert_problem(answer, 403, "banned")
    assert_problem(await client.post(URL, json={"body": "hi", "author": {
        "name": "Bo", "email": "b\u200bad@example.org"}}), 403, "banned")
    await mod.put("/api/moderation/settings",
                  json={"hold_words": ["casino"], "block_words": ["viagra"]})
    spam = await client.post(URL, json=comment_body("cheap vi\u00adag\u200bra", name="S"))
    held = await client.post(URL, json=comment_body("ｃａｓｉｎｏ night", name="H"))
    assert spam.json()["comment"]["status"] == "pending"
    assert held.json()["comment"]["status"] == "pending"
    statuses = {c["author"]["name"]: (c["status"], c["reasons"]) for c in (await mod.get(
        "/api/moderation/queue", params={"status": "all"})).json()["comments"]}
    assert statuses["S"] == ("spam", [{"rule": "block_word", "word": "viagra"}])
    assert statuses["H"] == ("pending", [{"rule": "hold_word", "word": "casino"}])
    assert (await client.post(URL, json=comment_body("Hello there", name="D"))).status_code == 201
    again = await client.post(URL, json=comment_body("Hello\u200b there\u200f", name="D"))
    assert_problem(again, 409, "duplicate_comment")


async def test_ip_bans_cover_networks(mod: httpx.AsyncClient, client: httpx.AsyncClient,
                                      post: dict[str, Any]) -> None:
    """An IP ban may name a network (CIDR); host bits are dropped, nonsense refused."""
    ban = await mod.post("/api/moderation/bans", json={"kind": "ip", "value": "127.3.2.1/8"})
    assert ban.status_code == 201 and ban.json()["value"] == "127.0.0.0/8"
    assert_problem(await client.post(URL, json=comment_body()), 403, "banned")
    await mod.delete(f"/api/moderation/bans/{ban.json()['id']}")
    other = await mod.post("/api/moderation/bans", json={"kind": "ip", "value": "10.0.0.0/8"})
    assert other.json()["value"] == "10.0.0.0/8"
    assert (await client.post(URL, json=comment_body())).status_code == 201
    six = await mod.post("/api/moderation/bans", json={"kind": "ip", "value": "2001:db8::7"})
    assert six.json()["value"] == "2001:db8::/64"
    exact = await mod.post("/api/moderation/bans",
                           json={"kind": "ip", "value": "2001:db8::7/128"})
    assert exact.json()["value"] == "2001:db8::7"
    for value in ("300.1.1.1/8", "127.0.0.1/33", "example.org", "::/x"):
        assert_problem(await mod.post("/api/moderation/bans", json={"kind": "ip",
                                                                    "value": value}),
                       422, "validation_error")

"""Rendering off the event loop: costly bodies in worker processes, cheap checks first, a
render budget per client."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import httpx
import psutil

from realtime.renderer import Budget, client_key

from conftest import Running, comment_body, login, wait_for
from test_api import assert_problem

URL = "/api/posts/hello-world/comments"
COSTLY = "![" * 5000  # a quarter to a third of a second of markdown-it on a fast machine


def render_workers() -> list[psutil.Process]:
    """The render worker processes this test process started (the server runs in it)."""
    return [p for p in psutil.Process(os.getpid()).children()
            if "realtime.render_worker" in " ".join(p.cmdline())]


async def test_an_ordinary_comment_is_rendered_without_a_worker(
        client: httpx.AsyncClient, post: dict[str, Any]) -> None:
    """A comment of a few paragraphs with some Markdown renders at once on the server's own
    loop: it neither waits for a low-priority worker nor pays the extra read before one."""
    body = ("I was at the meeting last **Tuesday**, and the library's numbers (see"
            " https://town.example/report) say evenings are busy.\n\nOpen until midnight,"
            " please. " * 3)
    created = await client.post(URL, json=comment_body(body))
    assert created.status_code == 201, created.text
    assert "<strong>Tuesday</strong>" in created.json()["comment"]["html"]
    assert not render_workers()


async def test_the_event_loop_answers_while_a_costly_body_renders(make_server: Any) -> None:
    """A costly body is rendered by a worker process: the server answers other requests
    while it renders, and the comment is stored as usual."""
    server: Running = await make_server(render_cpu_limit_s=30.0)
    mod = await login(server)
    await mod.put("/api/posts/hello-world", json={"title": "Hello"})
    await mod.aclose()
    client = httpx.AsyncClient(base_url=server.url, timeout=60)
    posting = asyncio.create_task(client.post(URL, json=comment_body(COSTLY)))
    await wait_for(render_workers, what="a render worker")
    assert (await client.get("/healthz")).status_code == 200
    assert not posting.done(), "the health check waited for the render"
    created = await posting
    assert created.status_code == 201, created.text
    assert created.json()["comment"]["html"].startswith("<p>!")
    await client.aclose()


async def test_refused_comments_are_never_rendered(mod: httpx.AsyncClient,
                                                   client: httpx.AsyncClient,
                                                   post: dict[str, Any]) -> None:
    """An unknown post, a closed thread, a ban, a flood limit and a duplicate refuse a long
    body before it is rendered (no worker starts); an accepted one is rendered by a worker."""
    await mod.put("/api/posts/closed", json={"title": "Closed", "open": False})
    await mod.post("/api/moderation/bans", json={"kind": "name", "value": "troll"})
    assert_problem(await client.post("/api/posts/nowhere/comments",
                                     json=comment_body(COSTLY)), 404, "not_found")
    assert_problem(await client.post("/api/posts/closed/comments",
                                     json=comment_body(COSTLY)), 403, "thread_closed")
    assert_problem(await client.post(URL, json=comment_body(COSTLY, name="Troll")),
                   403, "banned")
    first = await client.post(URL, json=comment_body("short and sweet", name="Flo"))
    await mod.put("/api/moderation/settings", json={"flood": {"min_interval_s": 600}})
    assert_problem(await client.post(URL, json=comment_body(COSTLY, name="Flo")),
                   429, "rate_limited")
    await mod.put("/api/moderation/settings", json={"flood": {"min_interval_s": 0}})
    assert_problem(await client.post(URL, json=comment_body("short and sweet", name="Flo")),
                   409, "duplicate_comment")
    assert first.status_code == 201 and not render_workers()
    assert (await client.post(URL, json=comment_body(COSTLY, name="Ok"))).status_code == 201
    assert render_workers()


async def test_a_body_past_the_cpu_limit_is_refused(make_server: Any) -> None:
    """A body that takes longer than REALTIME_RENDER_CPU_LIMIT_S to render is a 422 that
    writes nothing."""
    server: Running = await make_server(render_cpu_limit_s=0.02)
    mod = await login(server)
    await mod.put("/api/posts/hello-world", json={"title": "Hello"})
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        problem = assert_problem(await client.post(URL, json=comment_body(COSTLY)),
                                 422, "validation_error")
        assert problem["errors"] == [{"field": "body", "message":
                                      "is too complex to render; simplify its Markdown"}]
        assert (await client.get(URL)).json()["comments"] == []
        plain = await client.post(URL, json=comment_body("plain words " * 100))
        assert plain.status_code == 201
    await mod.aclose()


async def test_a_client_out_of_render_budget_gets_429(make_server: Any) -> None:
    """A client whose bodies keep costing worker time is refused with 429 and Retry-After,
    before its next request is read, whatever it sends; other clients go on."""
    server: Running = await make_server(render_cpu_limit_s=0.02,
                                        forwarded_allow_ips="127.0.0.1")
    server.app.state.realtime.service.renderer.budget = Budget(capacity=0.02, refill=0.001)
    mod = await login(server)
    await mod.put("/api/posts/hello-world", json={"title": "Hello"})
    hostile = {"X-Forwarded-For": "198.51.100.66"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30, headers=hostile) as client:
        answers = [await client.post(URL, json=comment_body(COSTLY)) for _ in range(4)]
        short = await client.post(URL, json=comment_body("short", name="H"))
    statuses = [a.status_code for a in answers]
    assert statuses[0] == 422 and statuses[-1] == 429, statuses
    limited = assert_problem(answers[-1], 429, "rate_limited")
    assert int(answers[-1].headers["retry-after"]) >= 1 and "render" in limited["detail"]
    assert_problem(short, 429, "rate_limited")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        other = await client.post(URL, json=comment_body("plain words " * 100, name="O"))
        assert other.status_code == 201, other.text
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff") != client_key("2001:db9::1")
    await mod.aclose()


def test_worker_stops_a_costly_body() -> None:
    """The worker process answers too_complex once a body uses up its processor time, and
    renders the next body as usual."""
    requests = b"".join(len(b).to_bytes(4, "big") + b for b in (COSTLY.encode(), b"*fine*"))
    done = subprocess.run([sys.executable, "-m", "realtime.render_worker", "0.01"],
                          input=requests, capture_output=True, timeout=60, check=True)
    replies, out = [], done.stdout
    while out:
        size = int.from_bytes(out[:4], "big")
        replies.append(json.loads(out[4:4 + size]))
        out = out[4 + size:]
    assert replies[0]["error"] == "too_complex" and replies[0]["cpu"] >= 0.01
    assert replies[1]["html"] == "<p><em>fine</em></p>"


async def test_refusals_slow_down_for_an_address_that_keeps_being_refused(
        make_server: Any) -> None:
    """Past 20 refusals in 10 s an address gets its refusals a second late (so a client at
    full speed gets a few a second); its successes are not held back, and loopback (the
    operator's tools, or an unconfigured proxy's every client) is never slowed."""
    server: Running = await make_server(forwarded_allow_ips="127.0.0.1")
    mod = await login(server)
    await mod.put("/api/posts/hello-world", json={"title": "Hello"})
    noisy = {"X-Forwarded-For": "198.51.100.66"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30, headers=noisy) as client:
        for _ in range(20):
            assert (await client.get("/api/posts/nowhere")).status_code == 404
        started = asyncio.get_running_loop().time()
        assert (await client.get("/api/posts/nowhere")).status_code == 404
        assert asyncio.get_running_loop().time() - started >= 1.0
        assert (await client.get("/api/posts/hello-world")).status_code == 200
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as other:
        for _ in range(25):
            assert (await other.get("/api/posts/nowhere")).status_code == 404
    await mod.aclose()

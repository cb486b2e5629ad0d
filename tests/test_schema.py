"""The HTTP API against its own OpenAPI document, with schemathesis: generated valid and
invalid requests, as an anonymous client and as a moderator, every answer checked.

schemathesis makes blocking requests, so it runs in a worker thread while the server runs
in the test's event loop. Each operation gets a bounded number of examples so the suite
stays quick.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from realtime import auth

from conftest import Running, comment_body, login

EXAMPLES = 12
DEADLINE_S = 120.0
# Checks that cannot hold for one operation, and why.
EXCLUDED = {
    # Creating a post needs a title, updating one does not: the body's schema cannot
    # require it, so a valid body for an unknown slug may be a 422.
    "PUT /api/posts/{slug}": [positive_data_acceptance],
    # A thread created on first view must name a page of an allowed origin: a setting of
    # the server, which the schema cannot know.
    "POST /api/posts": [positive_data_acceptance],
}
# Streams never end on a thread that exists, so only their refusals (an unknown post, a bad
# `since`) are checked here; tests/test_sse.py covers the streams themselves.
STREAMS = {"GET /api/posts/{slug}/events"}


def check_every_operation(url: str, headers: dict[str, str], cookies: dict[str, str],
                          mode: GenerationMode, known: dict[str, Any]) -> list[str]:
    """Run every operation of the server's document, with generated path parameters and
    with those of things that exist (`known`); the failures, one line each."""
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    failures: list[str] = []
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        names = {p.name for p in operation.path_parameters}
        variants = [{}] + ([{k: v for k, v in known.items() if k in names}]
                           if names and operation.label not in STREAMS else [])
        for path_parameters in variants:
            if time.monotonic() - started > DEADLINE_S:
                return [*failures, f"out of time before {operation.label}"]
            # A reply names a visible comment of the post (else 422 on parent_id, by
            # contract): on the post that exists, valid replies answer the comment that does.
            parent = known["id"] if path_parameters.get("slug") else None
            failures += _run(operation, url, headers, cookies, mode, path_parameters, parent)
    return failures


def _run(operation: Any, url: str, headers: dict[str, str], cookies: dict[str, str],
         mode: GenerationMode, path_parameters: dict[str, Any], parent: int | None) -> list[str]:
    excluded = EXCLUDED.get(operation.label, [])

    @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None,
                         derandomize=True, suppress_health_check=list(HealthCheck),
                         phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
    @given(case=operation.as_strategy(generation_mode=mode,
                                      path_parameters=path_parameters or None))
    def run(case: Any) -> None:
        if parent and mode is GenerationMode.POSITIVE and isinstance(case.body, dict) \
                and case.body.get("parent_id") is not None:
            case.body["parent_id"] = parent
        case.call_and_validate(base_url=url, headers=headers, cookies=cookies, timeout=30,
                               excluded_checks=excluded)

    try:
        run()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # nothing in it can be made invalid
    except Exception as exc:  # noqa: BLE001  (collected and reported together below)
        return [f"{operation.label} {path_parameters}: {str(exc).strip()[:1500]}"]
    return []


@pytest.fixture
async def busy_server(server: Running) -> tuple[Running, dict[str, Any]]:
    """A server with a post, comments and a ban, and the path parameters of what exists."""
    mod = await login(server)
    await mod.put("/api/posts/hello-world", json={"title": "Hello"})
    first = (await mod.post("/api/posts/hello-world/comments",
                            json=comment_body("**first**"))).json()
    await mod.post("/api/posts/hello-world/comments", json=comment_body("second", name="B"))
    await mod.post("/api/moderation/bans", json={"kind": "name", "value": "troll"})
    await mod.aclose()
    return server, {"slug": "hello-world", "id": first["comment"]["id"]}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
async def test_anonymous_requests_match_the_schema(
        busy_server: tuple[Running, dict[str, Any]], mode: GenerationMode) -> None:
    """Generated requests without a session get documented answers, never a 5xx."""
    server, known = busy_server
    failures = await asyncio.to_thread(check_every_operation, server.url, {}, {}, mode, known)
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
async def test_moderator_requests_match_the_schema(
        busy_server: tuple[Running, dict[str, Any]], mode: GenerationMode) -> None:
    """Generated requests with a moderator session (and the server's Origin) get
    documented answers, never a 5xx."""
    server, known = busy_server
    mod = await login(server)
    cookies = {auth.SESSION_COOKIE: mod.cookies[auth.SESSION_COOKIE]}
    await mod.aclose()
    failures = await asyncio.to_thread(check_every_operation, server.url,
                                       {"Origin": server.url}, cookies, mode, known)
    assert not failures, "\n\n".join(failures)

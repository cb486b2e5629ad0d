"""Moderator logins: throttled per address and per account at that address, across nodes;
the same answer for an unknown user; passwords checked off the event loop; sessions listed and
ended everywhere."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable

import httpx
import pytest

from realtime import auth, logins

from conftest import MOD_PASSWORD, MOD_USER, Running, login
from test_api import assert_problem

LOGIN = "/api/auth/login"
MakeServer = Callable[..., Awaitable[Running]]


async def add_moderator(running: Running) -> None:
    """The test moderator's account (and a session this module does not use)."""
    await (await login(running)).aclose()


def client_from(running: Running, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """An HTTP client whose connections come from `address` (any of 127.0.0.0/8)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=running.url, transport=transport, timeout=30)


async def test_failed_logins_are_throttled_across_nodes(make_server: MakeServer) -> None:
    """Ten failures for one account from one address, over two nodes, then 429 with
    Retry-After, even for the right password; another address is not locked out."""
    one, two = await make_server(), await make_server()
    await add_moderator(one)
    wrong = {"username": MOD_USER, "password": "guess"}
    async with client_from(one) as a, client_from(two) as b:
        for i in range(10):
            assert_problem(await (a if i % 2 else b).post(LOGIN, json=wrong), 401,
                           "unauthorized")
        for node in (a, b):
            refused = await node.post(LOGIN, json={**wrong, "password": MOD_PASSWORD})
            assert_problem(refused, 429, "rate_limited")
            assert 1 <= int(refused.headers["retry-after"]) <= 900
        # Another username from the same address is not this account's limit.
        assert_problem(await a.post(LOGIN, json={"username": "other", "password": "x"}),
                       401, "unauthorized")
    async with client_from(two, "127.0.0.2") as elsewhere:
        right = await elsewhere.post(LOGIN, json={"username": MOD_USER,
                                                  "password": MOD_PASSWORD})
        assert right.status_code == 200, right.text


async def test_logins_sent_at_once_cannot_slip_under_the_limit(
        make_server: MakeServer) -> None:
    """Twenty wrong passwords sent at once over two nodes: exactly the limit's worth are
    checked (401), the rest refused (429); each attempt is counted before its hash."""
    one, two = (await make_server(login_max_failures=5),
                await make_server(login_max_failures=5))
    await add_moderator(one)
    wrong = {"username": MOD_USER, "password": "guess"}
    async with client_from(one) as a, client_from(two) as b:
        answers = await asyncio.gather(*((a if i % 2 else b).post(LOGIN, json=wrong)
                                         for i in range(20)))
    assert sorted(answer.status_code for answer in answers) == [401] * 5 + [429] * 15


async def test_failed_logins_are_throttled_per_address(make_server: MakeServer) -> None:
    """Guessing many usernames from one address hits the per-address limit; other addresses
    and earlier successes are unaffected."""
    server = await make_server(login_max_failures_per_ip=3)
    await add_moderator(server)
    async with client_from(server) as here:
        ok = await here.post(LOGIN, json={"username": MOD_USER, "password": MOD_PASSWORD})
        assert ok.status_code == 200
        for name in ("a", "b", "c"):
            assert_problem(await here.post(LOGIN, json={"username": name, "password": "x"}),
                           401, "unauthorized")
        assert_problem(await here.post(LOGIN, json={"username": "d", "password": "x"}),
                       429, "rate_limited")
        assert (await here.get("/api/auth/me")).status_code == 200
    async with client_from(server, "127.0.0.3") as there:
        assert_problem(await there.post(LOGIN, json={"username": "d", "password": "x"}),
                       401, "unauthorized")


async def test_success_forgets_the_failures(make_server: MakeServer) -> None:
    """A right password clears that account's failures at that address."""
    server = await make_server(login_max_failures=2)
    await add_moderator(server)
    async with client_from(server) as here:
        await here.post(LOGIN, json={"username": MOD_USER, "password": "no"})
        assert (await here.post(LOGIN, json={"username": MOD_USER,
                                             "password": MOD_PASSWORD})).status_code == 200
        await here.post(LOGIN, json={"username": MOD_USER, "password": "no"})
        again = await here.post(LOGIN, json={"username": MOD_USER, "password": MOD_PASSWORD})
        assert again.status_code == 200, again.text


async def test_unknown_user_is_answered_like_a_wrong_password(server: Running,
                                                              client: httpx.AsyncClient) -> None:
    """Same status, body and headers, and the same password check, known user or not."""
    await add_moderator(server)
    hashing = server.app.state.realtime.service.hashing
    answers = []
    for username in (MOD_USER, "nobody-by-this-name"):
        checked = hashing.checked
        answers.append(await client.post(LOGIN, json={"username": username, "password": "no"}))
        assert hashing.checked == checked + 1
    known, unknown = answers
    assert (known.status_code, known.content) == (unknown.status_code, unknown.content)
    skip = {"date", "content-length"}
    assert ({k: v for k, v in known.headers.items() if k not in skip}
            == {k: v for k, v in unknown.headers.items() if k not in skip})


async def test_passwords_are_checked_off_the_event_loop(server: Running,
                                                        client: httpx.AsyncClient,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 runs on the login threads, never on the thread of the event loop, and at the
    idle scheduling policy."""
    await add_moderator(server)
    threads: list[str] = []
    check = auth.check_password
    policies: list[int] = []

    def watched(password_hash: str | None, password: str) -> bool:
        threads.append(threading.current_thread().name)
        policies.append(os.sched_getscheduler(threading.get_native_id()))
        return check(password_hash, password)

    monkeypatch.setattr(auth, "check_password", watched)
    answer = await client.post(LOGIN, json={"username": MOD_USER, "password": MOD_PASSWORD})
    assert answer.status_code == 200
    assert len(threads) == 1 and threads[0].startswith("argon2")
    assert threads[0] != threading.current_thread().name
    # Linux: only on CPU time nothing else wants (any waking thread preempts it at once).
    assert policies == [os.SCHED_IDLE]


async def test_too_many_waiting_logins_are_shed(server: Running, client: httpx.AsyncClient,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the checks that may wait at once, a login answers 503 with Retry-After at once."""
    monkeypatch.setattr(logins, "MAX_WAITING", 0)
    answer = await client.post(LOGIN, json={"username": MOD_USER, "password": "x"})
    assert_problem(answer, 503, "unavailable")
    assert answer.headers["retry-after"] == "1"


async def test_sessions_are_listed_and_ended(server: Running, client: httpx.AsyncClient) -> None:
    """A moderator sees their sessions, ends one, then logs out everywhere."""
    await add_moderator(server)
    origin = {"Origin": server.url}
    browsers: list[httpx.AsyncClient] = []
    for agent in ("Laptop/1.0", "Phone/2.0"):
        browser = httpx.AsyncClient(base_url=server.url, timeout=30,
                                    headers={"user-agent": agent, **origin})
        answer = await browser.post(LOGIN, json={"username": MOD_USER,
                                                 "password": MOD_PASSWORD})
        assert answer.status_code == 200
        browsers.append(browser)
    laptop, phone = browsers
    listed = (await laptop.get("/api/auth/sessions")).json()["sessions"]
    mine = [s for s in listed if s["user_agent"] in ("Laptop/1.0", "Phone/2.0")]
    assert [(s["user_agent"], s["current"]) for s in mine] == [("Phone/2.0", False),
                                                              ("Laptop/1.0", True)]
    assert mine[0]["ip"] == "127.0.0.1" and mine[0]["expires_at"] > mine[0]["created_at"]
    assert (await laptop.delete(f"/api/auth/sessions/{mine[0]['id']}")).status_code == 204
    assert_problem(await phone.get("/api/auth/me"), 401, "unauthorized")
    assert_problem(await laptop.delete(f"/api/auth/sessions/{mine[0]['id']}"), 404, "not_found")
    assert_problem(await laptop.delete("/api/auth/sessions", headers={"Origin": "http://x.example"}),
                   403, "forbidden")
    everywhere = await laptop.delete("/api/auth/sessions")
    assert everywhere.status_code == 204
    assert "realtime_session=" in everywhere.headers["set-cookie"]
    assert_problem(await laptop.get("/api/auth/me"), 401, "unauthorized")
    for browser in browsers:
        await browser.aclose()
    assert_problem(await client.get("/api/auth/sessions"), 401, "unauthorized")


async def test_ipv6_addresses_are_throttled_by_network() -> None:
    """One IPv6 /64 counts as one address; IPv4 addresses count alone."""
    assert logins.address_key("2001:db8:1:2:aaaa::1") == logins.address_key("2001:db8:1:2::9")
    assert logins.address_key("2001:db8:1:3::1") != logins.address_key("2001:db8:1:2::1")
    assert logins.address_key("192.0.2.1") == "192.0.2.1"
    assert logins.address_key(None) == ""
    assert logins.account_key("Mod") == logins.account_key("mod")


# MOD_PASSWORD hashed by argon2-cffi 25.1's PasswordHasher() with its defaults.
OLD_HASH = ("$argon2id$v=19$m=65536,t=3,p=4$sRXZs+U8kcDoFBzwfu2OaQ"
            "$wIAvZNmlbsqc3cFCnk3nTdTLPwgEc/TLzcuQ0UdjwBA")


async def test_a_hash_made_with_other_parameters_is_redone_at_login(
        make_server: MakeServer) -> None:
    """An account whose hash has other argon2 parameters (argon2-cffi's default, 64 MiB, 3
    passes, 4 lanes, as an older version stored) still logs in, and its hash is redone with
    today's parameters."""
    server = await make_server()
    old = OLD_HASH
    assert auth.needs_rehash(old)
    await server.store.create_moderator(MOD_USER, old)
    async with client_from(server) as http:
        answer = await http.post(LOGIN, json={"username": MOD_USER, "password": MOD_PASSWORD})
        assert answer.status_code == 200, answer.text
    stored = await server.store.pool.fetchval(
        "SELECT password_hash FROM moderators WHERE username = $1", MOD_USER)
    assert stored != old
    assert not auth.needs_rehash(stored) and "m=19456,t=2,p=1" in stored
    assert auth.check_password(stored, MOD_PASSWORD)

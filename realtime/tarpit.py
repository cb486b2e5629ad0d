"""Slow refusals for addresses that keep being refused.

A client at full speed costs the event loop whatever it sends, even when every request is
refused at once (an unknown thread, a render budget used up, a flood limit): thousands of
cheap refusals a second still take the loop's time from every live socket. So once an
address has been refused `LIMIT` times within `WINDOW_S`, each further refusal (a 4xx
answer) is sent only after `DELAY_S`: a client that waits for its answers, as clients do,
then gets a few per second, whatever its speed. Successful answers are never delayed.

Loopback addresses are left alone: they are the operator's own tools, or every client of a
proxy on this machine that is not in REALTIME_FORWARDED_ALLOW_IPS, which one noisy client
must not slow down for all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time

from starlette.types import Message, Scope, Send

from .auth import address_key, ip_or_none

WINDOW_S = 10.0
LIMIT = 20
DELAY_S = 1.0
ENTRIES = 10_000


class Tarpit:
    """Refusals per address over the last window."""

    def __init__(self) -> None:
        self.refused: dict[str, tuple[float, int]] = {}  # key -> (window start, count)

    def delay(self, ip: str | None) -> float:
        """Count one refusal of `ip`; how long to hold its answer."""
        if ip is None or ipaddress.ip_address(ip).is_loopback:
            return 0.0
        now = time.monotonic()
        key = address_key(ip)
        start, count = self.refused.get(key, (now, 0))
        if now - start > WINDOW_S:
            start, count = now, 0
        self.refused[key] = (start, count + 1)
        if len(self.refused) > ENTRIES:
            self.refused = {k: v for k, v in self.refused.items() if now - v[0] <= WINDOW_S}
        return DELAY_S if count + 1 > LIMIT else 0.0

    def slowed(self, scope: Scope, send: Send) -> Send:
        """`send`, holding back a refusal to an address that keeps being refused."""
        client = scope.get("client")

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
                wait = self.delay(ip_or_none(client[0] if client else None))
                if wait:
                    await asyncio.sleep(wait)
            await send(message)

        return sending

"""Lean client-side wire code for the load generators: a raw WebSocket client protocol and a
raw keep-alive HTTP/1.1 client, so that the generator spends its CPU on counting, not framing.

Latency marker: every benchmark comment body starts with `bench <monotonic_ns of the send>`;
CLOCK_MONOTONIC is system-wide on Linux, so the receiving process can subtract it directly.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import struct
import time
import uuid
from array import array
from collections.abc import Callable
from typing import Any

import orjson

MARK = re.compile(rb'"body":"bench (\d+) ')
EVENT = b'"type":"event"'


def mask_frame(payload: bytes, opcode: int = 1) -> bytes:
    """A client frame (clients must mask), FIN set."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    if n:
        mask = (key * (n // 4 + 1))[:n]
        body = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(n, "big")
    else:
        body = b""
    return head + key + body


class Samples:
    """What one load-generator process measured: (send time, latency) pairs and counters."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.sent = array("q")
        self.lat_us = array("q")
        self.events = 0
        self.frames = 0
        self.bytes = 0


class WSClient(asyncio.Protocol):
    """One subscriber connection: handshake, subscribe, then count events and latencies."""

    def __init__(self, host: str, port: int, channel: str, samples: Samples,
                 on_close: Callable[[WSClient], None], since: int | None = None) -> None:
        self.host = host
        self.port = port
        self.channel = channel
        self.samples = samples
        self.on_close = on_close
        self.since = since
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None
        self.frag = bytearray()
        self.last_seq = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  (uvloop's is no subclass)
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET /ws HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode())

    def send_json(self, text: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(mask_frame(text.encode()))

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[:12])
            del buf[:end + 4]
            if b" 101" not in status:
                self._fail()
                return
            self.upgraded = True
            op = {"op": "subscribe", "channel": self.channel}
            if self.since is not None:
                op["since"] = self.since  # type: ignore[assignment]
            self.send_json(json.dumps(op))
        pos = 0
        n = len(buf)
        samples = self.samples
        while n - pos >= 2:
            b0 = buf[pos]
            length = buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if n - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2:pos + 10], "big")
                head = 10
            if n - pos < head + length:
                break
            payload = bytes(buf[pos + head:pos + head + length])
            pos += head + length
            opcode = b0 & 0x0F
            if opcode == 0:
                self.frag += payload
                if not b0 & 0x80:
                    continue
                payload, self.frag = bytes(self.frag), bytearray()
                opcode = 1
            elif not b0 & 0x80:
                self.frag = bytearray(payload)
                continue
            if opcode == 1:
                samples.frames += 1
                samples.bytes += len(payload)
                events = payload.count(EVENT)
                if events:
                    samples.events += events
                    for match in MARK.finditer(payload):
                        sent = int(match.group(1))
                        samples.sent.append(sent)
                        samples.lat_us.append((now - sent) // 1000)
                elif not self.ready.done() and b'"subscribed"' in payload:
                    self.ready.set_result(True)
                elif b'"reset"' in payload or b'"error"' in payload:
                    if not self.ready.done():
                        self.ready.set_result(False)
            elif opcode == 9:  # ping: answer, or uvicorn closes us after its timeout
                if self.transport is not None:
                    self.transport.write(mask_frame(payload, 0xA))
            elif opcode == 8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 \
                    else 1005
                if self.transport is not None:
                    self.transport.write(mask_frame(payload[:2], 0x8))
                    self.transport.close()
                break
        del buf[:pos]

    def _fail(self) -> None:
        if not self.ready.done():
            self.ready.set_result(False)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_result(False)
        self.transport = None
        self.on_close(self)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(mask_frame(struct.pack("!H", 1000), 0x8))
            self.transport.close()


class HTTPClient:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None) -> None:
        self.host = host
        self.port = port
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes | None = None,
                      on_sent: Callable[[], None] | None = None) -> tuple[int, bytes]:
        # uvicorn closes keep-alive connections idle for 5 s: never reuse one it closed, and
        # retry once on a reused one that turns out dead (bench posts carry a client_id, so a
        # retried POST cannot create a second comment).
        for attempt in (0, 1):
            reused = self.writer is not None and not self.writer.is_closing() and \
                self.reader is not None and not self.reader.at_eof()
            if not reused:
                self.close()
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            try:
                return await self._request(method, path, body, on_sent)
            except (asyncio.IncompleteReadError, ConnectionError):
                if not reused or attempt:
                    raise
        raise AssertionError("unreachable")

    async def _request(self, method: str, path: str, body: bytes | None,
                       on_sent: Callable[[], None] | None) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.extra}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        if on_sent is not None:
            on_sent()
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
            status = int(raw[9:12])
            length = 0
            close = False
            for line in raw.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                lname = name.strip().lower()
                if lname == b"content-length":
                    length = int(value)
                elif lname == b"connection" and value.strip().lower() == b"close":
                    close = True
            data = await self.reader.readexactly(length) if length else b""
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close()
            raise
        if close:
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.writer = None
        self.reader = None


def comment_body(seq: int, pad: int = 40) -> tuple[bytes, int]:
    """A comment request body with the send-time marker; returns it and the time it carries."""
    sent = time.monotonic_ns()
    text = f"bench {sent} {seq} " + "x" * pad
    body = orjson.dumps({"body": text, "author": {"name": f"bench{seq % 97}",
                                                  "email": f"b{seq % 97}@bench.example"},
                         "client_id": str(uuid.uuid4())})
    return body, sent


def load_config(arg: str) -> dict[str, Any]:
    """A load generator's config: JSON text, or `@path` of a JSON file (for long lists)."""
    if arg.startswith("@"):
        with open(arg[1:]) as f:
            found: dict[str, Any] = json.load(f)
            return found
    loaded: dict[str, Any] = json.loads(arg)
    return loaded

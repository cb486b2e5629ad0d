"""A render worker process: Markdown in on stdin, sanitized HTML out on stdout.

    python -m realtime.render_worker CPU_LIMIT_S

Each request is a 4-byte big-endian length and the UTF-8 body; each answer is a 4-byte length
and a JSON object: `{"html": ..., "links": n, "cpu": seconds}` (`links`: what the link limit
counts), or `{"error": "too_complex", "cpu": ...}`
when rendering used more than CPU_LIMIT_S of processor time. The worker runs at a lower CPU
priority than the server, so a costly body waits for the CPU rather than the event loop
waiting for it. It exits when its stdin closes (the server went away).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from types import FrameType
from typing import Any, BinaryIO

import orjson

from .render import render_with_links

NICENESS = 10


class TooComplex(Exception):
    """The body used up its processor time."""


def _out_of_time(signum: int, frame: FrameType | None) -> None:
    raise TooComplex


def _read(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


def answer(body: str, cpu_limit: float) -> dict[str, Any]:
    """Render one body within `cpu_limit` seconds of processor time."""
    started = time.process_time()
    reply: dict[str, Any]
    try:
        # ITIMER_PROF counts this process's CPU time, user and system: a body is cut off by
        # the work it costs, not by time spent waiting for a busy processor.
        signal.setitimer(signal.ITIMER_PROF, cpu_limit)
        try:
            html, links = render_with_links(body)
            reply = {"html": html, "links": links}
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
    except TooComplex:
        reply = {"error": "too_complex"}
    reply["cpu"] = time.process_time() - started
    return reply


def serve(cpu_limit: float, requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer requests until the input ends."""
    while (header := _read(requests, 4)) is not None:
        body = _read(requests, int.from_bytes(header, "big"))
        if body is None:
            return
        data = orjson.dumps(answer(body.decode(), cpu_limit))
        answers.write(len(data).to_bytes(4, "big") + data)
        answers.flush()


def main() -> None:
    """The worker's entry point."""
    # Ctrl-C in a terminal reaches the whole process group; the server decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGPROF, _out_of_time)
    os.nice(max(0, NICENESS - os.nice(0)))
    serve(float(sys.argv[1]), sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()

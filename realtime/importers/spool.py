"""Grouping records by key in bounded memory: an external merge sort through temporary files.

Disqus lists every comment of every thread in one flat sequence, in no useful order. To
import thread by thread without holding the whole file, comments are spooled in sorted runs
of a few megabytes, then merged back key by key.
"""

from __future__ import annotations

import heapq
import itertools
import tempfile
from collections.abc import Iterator
from typing import IO

RUN_BYTES = 8 << 20


class Spool:
    """Records added under a key come back grouped by key, keys in sorted order, each group
    in the order its records were added."""

    def __init__(self, run_bytes: int = RUN_BYTES) -> None:
        self._run_bytes = run_bytes
        self._buffer: list[tuple[str, int, bytes]] = []
        self._size = 0
        self._count = 0
        self._runs: list[IO[bytes]] = []

    def add(self, key: str, record: bytes) -> None:
        """Keep a record (one line: it must not contain a newline) under key."""
        self._buffer.append((key, self._count, record))
        self._count += 1
        self._size += len(key) + len(record)
        if self._size >= self._run_bytes:
            self._flush()

    def groups(self) -> Iterator[tuple[str, list[bytes]]]:
        """Every key with its records; the spool is empty afterwards."""
        merged: Iterator[tuple[str, int, bytes]]
        if self._runs:
            self._flush()
            merged = heapq.merge(*(self._read(run) for run in self._runs))
        else:
            merged = iter(sorted(self._buffer))
            self._buffer = []
        try:
            for key, group in itertools.groupby(merged, key=lambda entry: entry[0]):
                yield key, [entry[2] for entry in group]
        finally:
            self.close()

    def close(self) -> None:
        """Delete the temporary files."""
        for run in self._runs:
            run.close()
        self._runs = []

    def _flush(self) -> None:
        run = tempfile.TemporaryFile(prefix="realtime-import-")  # noqa: SIM115
        for key, number, record in sorted(self._buffer):
            run.write(b"%s\t%d\t%s\n" % (key.encode(), number, record))
        run.seek(0)
        self._runs.append(run)
        self._buffer = []
        self._size = 0

    @staticmethod
    def _read(run: IO[bytes]) -> Iterator[tuple[str, int, bytes]]:
        for line in run:
            key, number, record = line.rstrip(b"\n").split(b"\t", 2)
            yield key.decode(), int(number), record

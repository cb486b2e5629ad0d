"""How far an import is: a progress bar on a terminal, plain lines in a log or a pipe."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

PLAIN_EVERY_S = 10.0


class Meter:
    """Bytes read in each pass over a file, shown as a bar or as a line now and then."""

    def __init__(self, total: int, stream: TextIO, bar: Progress | None) -> None:
        self.total = total
        self.stream = stream
        self.bar = bar
        self.task: TaskID | None = None
        self.label = ""
        self.threads = 0
        self._next_line = 0.0

    def phase(self, label: str) -> Callable[[int], None]:
        """Start a pass over the file; the callback takes the bytes read so far."""
        self.label = label
        self._next_line = 0.0
        if self.bar is not None:
            if self.task is not None:
                self.bar.update(self.task, completed=self.total)
            self.task = self.bar.add_task(label, total=self.total)
        return self._update

    def thread_done(self) -> None:
        """Count one more imported thread."""
        self.threads += 1

    def _update(self, done: int) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=done,
                            description=f"{self.label} ({self.threads:,} threads)"
                            if self.threads else self.label)
            return
        now = time.monotonic()
        if now >= self._next_line:
            self._next_line = now + PLAIN_EVERY_S
            print(f"{self.label}: {done * 100 // max(self.total, 1)}%"
                  f" ({done / 1e6:,.1f} of {self.total / 1e6:,.1f} MB),"
                  f" {self.threads:,} threads imported", file=self.stream, flush=True)


@contextmanager
def meter(total: int, stream: TextIO = sys.stderr) -> Iterator[Meter]:
    """A Meter drawing a bar when `stream` is a terminal, else writing a plain line when
    each pass starts and every 10 seconds."""
    if not stream.isatty():
        yield Meter(total, stream, None)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(file=stream), transient=False) as bar:
        yield Meter(total, stream, bar)

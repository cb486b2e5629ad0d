"""Running an import of another system's export: check the file, then each thread in turn."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..store import Store
from .disqus import Disqus
from .progress import Meter
from .source import Report
from .wordpress import WordPress

FORMATS: dict[str, type[WordPress] | type[Disqus]] = {"wordpress": WordPress, "disqus": Disqus}


async def import_file(store: Store, kind: str, path: Path, moderation: str, meter: Meter,
                      avatar: Callable[[str | None, str], str]) -> Report:
    """Import every thread of the file, after a first pass has checked all of it; each thread
    commits on its own, so an interrupted import run again completes the rest. `avatar`
    gives an author's avatar hash (the site's keyed one)."""
    source = FORMATS[kind](path)
    source.scan(meter.phase("checking"))
    report = Report()
    for thread in source.threads(report, meter.phase("importing")):
        result = await store.import_thread(source.source, thread.slug, thread.title,
                                           thread.url, moderation, thread.comments,
                                           [avatar(c.author_email, c.author_name)
                                            for c in thread.comments])
        report.add(result)
        meter.thread_done()
    return report

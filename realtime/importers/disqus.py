"""Disqus's XML export: `<thread>`s (pages) and then `<post>`s (comments) in one flat list.

A post names its thread and parent by `dsq:id`. The first pass reads the threads (and checks
the whole file); the second spools the posts grouped by the page they belong to, so each
page is imported in one go, in bounded memory. Two threads with the same link are one post.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from xml.etree.ElementTree import Element

import orjson

from ..models import ImportedComment
from .source import (
    ImportFailed,
    Report,
    SourceThread,
    build_comment,
    parents_first,
    slug_from_url,
    utc,
)
from .spool import Spool
from .xmlstream import Progress, events, local, text

NAMESPACE = "http://disqus.com"
INTERNALS = "{http://disqus.com/disqus-internals}id"
DATE = "%Y-%m-%dT%H:%M:%SZ"
FIELDS = [f.name for f in dataclasses.fields(ImportedComment)]


class Disqus:
    """A Disqus export: `scan()` reads its threads, then `threads()` its posts by page."""

    name = "Disqus export"
    source = "disqus"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pages: dict[str, str] = {}          # thread dsq:id -> slug
        self.first: dict[str, tuple[str, str]] = {}  # slug -> (link, title) of its first thread

    def scan(self, progress: Progress) -> None:
        """Read the whole file once: it must be a well-formed Disqus export; keep its threads."""
        for element in self._top(progress):
            if local(element.tag) == "thread":
                link = text(element.find(f"{{{NAMESPACE}}}link"))
                if link:
                    slug = slug_from_url(link)
                    self.pages[element.get(INTERNALS, "")] = slug
                    title = html.unescape(text(element.find(f"{{{NAMESPACE}}}title")))
                    self.first.setdefault(slug, (link, title[:500] or link))

    def threads(self, report: Report, progress: Progress) -> Iterator[SourceThread]:
        """Each page's comments, replies after their parents."""
        spool = Spool()
        try:
            for element in self._top(progress):
                if local(element.tag) == "post":
                    comment = self._comment(element, report)
                    if comment is not None:
                        spool.add(comment[0], _dump(comment[1]))
            for slug, records in spool.groups():
                link, title = self.first[slug]
                yield SourceThread(link, title, parents_first([_load(r) for r in records]))
        finally:
            spool.close()

    def _top(self, progress: Progress) -> Iterator[Element]:
        """Each child of the root element as it ends; the root forgets what came before."""
        depth = 0
        root: Element | None = None
        for event, value in events(self.path, progress):
            if event == "start":
                depth += 1
                if depth == 1:
                    if value.tag != f"{{{NAMESPACE}}}disqus":
                        raise ImportFailed(f"unknown format: {self.path.name} is not a Disqus"
                                           f" export (root element <{local(value.tag)}>)")
                    root = value
            elif event == "end":
                depth -= 1
                if depth == 1 and root is not None:
                    yield value
                    root.clear()

    def _comment(self, element: Element, report: Report) -> tuple[str, ImportedComment] | None:
        def field(name: str, parent: Element = element) -> str:
            return text(parent.find(f"{{{NAMESPACE}}}{name}"))

        source_id = element.get(INTERNALS, "")
        thread = element.find(f"{{{NAMESPACE}}}thread")
        slug = self.pages.get("" if thread is None else thread.get(INTERNALS, ""))
        created = utc(field("createdAt"), DATE)
        if not source_id:
            report.skip("posts without a dsq:id")
            return None
        if slug is None:
            report.skip("posts whose thread is not in the file (or has no link)")
            return None
        if created is None:
            report.skip("posts without a valid createdAt")
            return None
        if field("isSpam") == "true":
            status = "spam"
        elif field("isDeleted") == "true":
            status = "deleted"
        elif field("isApproved") == "false":
            status = "pending"
        else:
            status = "approved"
        author = element.find(f"{{{NAMESPACE}}}author")
        name = email = ""
        if author is not None:
            name = field("name", author) or field("username", author)
            email = field("email", author)
        parent = element.find(f"{{{NAMESPACE}}}parent")
        return slug, build_comment(
            source_id=source_id, parent_source_id=None if parent is None else parent.get(INTERNALS),
            kind="comment", status=status, name=name, email=email, url="",
            ip=field("ipAddress"), body=field("message"), created_at=created)


def _dump(comment: ImportedComment) -> bytes:
    return orjson.dumps([getattr(comment, f) for f in FIELDS])


def _load(record: bytes) -> ImportedComment:
    values = orjson.loads(record)
    fields = dict(zip(FIELDS, values, strict=True))
    fields["created_at"] = datetime.fromisoformat(fields["created_at"])
    return ImportedComment(**fields)

"""WordPress's export (WXR: RSS 2.0 with the `wp:` namespace), as Tools → Export writes it.

Every `<item>` (post, page, attachment) carries its own `<wp:comment>`s, so one item is one
thread and the file streams item by item. WordPress writes its namespace as
`http://wordpress.org/export/1.N/` (some tools `https`); every 1.x is accepted.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import Element

from ..models import ImportedComment
from .source import ImportFailed, Report, SourceThread, build_comment, parents_first, utc
from .xmlstream import Progress, events, local, text

NAMESPACE = re.compile(r"^https?://wordpress\.org/export/1\.\d+/$")
STATUSES = {"1": "approved", "approve": "approved", "0": "pending", "hold": "pending",
            "spam": "spam", "trash": "deleted", "post-trashed": "deleted"}
KINDS = {"": "comment", "comment": "comment", "pingback": "pingback", "trackback": "pingback"}
DATE = "%Y-%m-%d %H:%M:%S"


class WordPress:
    """A WXR file: `scan()` checks all of it, then `threads()` reads it item by item."""

    name = "WordPress export (WXR)"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ns = ""
        self.site = ""

    @property
    def source(self) -> str:
        """The key under which this site's comment ids are remembered."""
        return f"wordpress:{self.site}"

    def scan(self, progress: Progress) -> None:
        """Read the whole file once: it must be well-formed WXR. Nothing is kept but the
        site's address."""
        for item in self._items(progress):
            item.clear()
        if not self.site:
            raise ImportFailed(f"{self.path.name} has no <wp:base_blog_url> or channel <link>:"
                               " whose export is it?")

    def threads(self, report: Report, progress: Progress) -> Iterator[SourceThread]:
        """Each item with comments, as a thread, replies after their parents."""
        for item in self._items(progress):
            found = item.findall(f"{{{self.ns}}}comment")
            if found:
                link = text(item.find("link"))
                comments = [c for c in (self._comment(e, report) for e in found) if c]
                if not link:
                    report.skip("comments of an item without a <link>", len(comments))
                elif comments:
                    title = html.unescape(text(item.find("title"))) or link
                    yield SourceThread(link, title[:500], parents_first(comments))
            item.clear()

    def _items(self, progress: Progress) -> Iterator[Element]:
        """Each <item> of the channel as it ends; the channel forgets what came before."""
        depth = 0
        namespaces: list[str] = []
        channel: Element | None = None
        for event, value in events(self.path, progress):
            if event == "start-ns":
                namespaces.append(value[1])
            elif event == "start":
                depth += 1
                if depth == 1:
                    self._check_root(value, namespaces)
                elif depth == 2 and local(value.tag) == "channel":
                    channel = value
            else:
                depth -= 1
                if depth == 2 and channel is not None:
                    self._channel_field(value)
                    if value.tag == "item":
                        yield value
                    channel.clear()

    def _check_root(self, root: Element, namespaces: list[str]) -> None:
        wxr = [uri for uri in namespaces if NAMESPACE.match(uri)]
        if root.tag != "rss" or not wxr:
            what = f"root element <{local(root.tag)}>" if root.tag != "rss" else \
                "no wordpress.org/export/1.x namespace"
            raise ImportFailed(f"unknown format: {self.path.name} is not a WordPress export"
                               f" ({what})")
        self.ns = wxr[0]

    def _channel_field(self, element: Element) -> None:
        if element.tag == f"{{{self.ns}}}base_blog_url" or (
                element.tag == "link" and not self.site):
            self.site = text(element).rstrip("/")

    def _comment(self, element: Element, report: Report) -> ImportedComment | None:
        def field(name: str) -> str:
            return text(element.find(f"{{{self.ns}}}{name}"))

        source_id = field("comment_id")
        status = STATUSES.get(field("comment_approved").lower())
        kind = KINDS.get(field("comment_type").lower())
        created = utc(field("comment_date_gmt"), DATE) or utc(field("comment_date"), DATE)
        if not source_id:
            report.skip("comments without a <wp:comment_id>")
        elif status is None:
            report.skip(f"comments with the status {field('comment_approved')[:30]!r}")
        elif kind is None:
            report.skip(f"comments of the type {field('comment_type')[:30]!r}")
        elif created is None:
            report.skip("comments without a valid date")
        else:
            parent = field("comment_parent")
            return build_comment(
                source_id=source_id, parent_source_id=None if parent in ("", "0") else parent,
                kind=kind, status=status, name=field("comment_author"),
                email=field("comment_author_email"), url=field("comment_author_url"),
                ip=field("comment_author_IP"), body=field("comment_content"), created_at=created)
        return None

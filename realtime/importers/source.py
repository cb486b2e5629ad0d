"""What every importer shares, all pure: the thread read from a file, the report, and the rules
for turning another system's fields into ours (slugs, authors, addresses, reply order)."""

from __future__ import annotations

import heapq
import html
import ipaddress
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from ..models import SLUG, ImportedComment, ImportedThread
from .safe_html import to_safe_html

ANONYMOUS = "Anonymous"
# A thread at a site's root ("https://blog.example/") has an empty path.
ROOT_SLUG = "index"
NAME_MAX = 100


class ImportFailed(Exception):
    """The file cannot be imported; str() is one line saying why."""


@dataclass
class SourceThread:
    """One thread read from an export: the page it belongs to and its comments."""

    url: str
    title: str
    comments: list[ImportedComment]

    @property
    def slug(self) -> str:
        """The post's slug, from the page's URL."""
        return slug_from_url(self.url)


@dataclass
class Report:
    """What an import did, as the final report shows it."""

    posts_created: int = 0
    posts_matched: int = 0
    added: Counter[str] = field(default_factory=Counter)
    already: int = 0
    orphans: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str, count: int = 1) -> None:
        """Count an item left out, by reason."""
        self.skipped[reason] += count

    def add(self, result: ImportedThread) -> None:
        """Count what one thread's import changed."""
        if result.post_created:
            self.posts_created += 1
        else:
            self.posts_matched += 1
        self.added.update(result.added)
        self.already += result.already
        self.orphans += result.orphans

    def lines(self) -> list[str]:
        """The report, one fact per line."""
        statuses = ", ".join(f"{n:,} {s}" for s, n in sorted(self.added.items())) or "none"
        out = [f"posts: {self.posts_created:,} created, {self.posts_matched:,} matched",
               f"comments added: {sum(self.added.values()):,} ({statuses})",
               f"comments imported before, left alone: {self.already:,}",
               f"replies whose parent is missing, attached to the thread root: {self.orphans:,}"]
        skipped = sum(self.skipped.values())
        out.append(f"skipped: {skipped:,}")
        out += [f"  {n:,} {reason}" for reason, n in sorted(self.skipped.items())]
        return out


def slug_from_url(url: str) -> str:
    """The slug the embed derives from a page's URL (static/api.js `slugFromUrl`): its path
    lowercased, each run of other characters than a-z 0-9 . _ - made one '-', trimmed of '-',
    at most 200 characters.

    A page known only by its query (WordPress without pretty links: `/?p=123`) takes the
    query instead, and the site's root page is `index`.
    """
    parts = urlsplit(url.strip())
    for text in (parts.path, parts.query):
        slug = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-")[:200]
        if SLUG.match(slug):
            return slug
    return ROOT_SLUG


def parents_first(comments: list[ImportedComment]) -> list[ImportedComment]:
    """The thread's comments, each after its parent, otherwise oldest first.

    Exports may list a reply before its parent; ids are handed out in this order, so a reply
    always gets a higher id than its parent. Comments caught in a parent cycle come last,
    where the store treats them as orphans.
    """
    ids = {c.source_id for c in comments}
    children: defaultdict[str, list[int]] = defaultdict(list)
    ready: list[tuple[datetime, int]] = []
    for index, comment in enumerate(comments):
        parent = comment.parent_source_id
        if parent and parent in ids and parent != comment.source_id:
            children[parent].append(index)
        else:
            ready.append((comment.created_at, index))
    heapq.heapify(ready)
    ordered: list[ImportedComment] = []
    placed: set[int] = set()
    while ready:
        _, index = heapq.heappop(ready)
        placed.add(index)
        ordered.append(comments[index])
        for child in children.pop(comments[index].source_id, []):
            heapq.heappush(ready, (comments[child].created_at, child))
    ordered += [c for i, c in enumerate(comments) if i not in placed]
    return ordered


def build_comment(*, source_id: str, parent_source_id: str | None, kind: str, status: str,
                  name: str, email: str, url: str, ip: str, body: str,
                  created_at: datetime) -> ImportedComment:
    """An imported comment with its fields cleaned: name unescaped and bounded, e-mail,
    website and IP kept only when valid, the body rendered to safe HTML."""
    author = " ".join(html.unescape(name).split())[:NAME_MAX] or ANONYMOUS
    address = email.strip().lower() or None
    if address and ("@" not in address or len(address) > 254):
        address = None
    return ImportedComment(
        source_id=source_id, parent_source_id=parent_source_id or None, kind=kind,
        status=status, author_name=author, author_email=address, author_url=web_url(url),
        ip=ip_or_none(ip), body=body.strip(),
        html=to_safe_html(body), created_at=created_at)


def web_url(text: str) -> str | None:
    """An http(s) URL, or None for anything else."""
    url = text.strip()
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc and len(url) <= 2000 \
        else None


def ip_or_none(text: str) -> str | None:
    """A valid IPv4 or IPv6 address, normalised, or None."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def utc(text: str, pattern: str) -> datetime | None:
    """A UTC time parsed with `pattern`, or None when it does not parse (or is WordPress's
    zero date)."""
    try:
        return datetime.strptime(text.strip(), pattern).replace(tzinfo=UTC)
    except ValueError:
        return None

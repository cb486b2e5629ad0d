"""The importers' pure parts: slugs from URLs, reply order, the spool, imported HTML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from realtime.importers.safe_html import to_safe_html
from realtime.importers.source import build_comment, parents_first, slug_from_url
from realtime.importers.spool import Spool
from realtime.models import ImportedComment


@pytest.mark.parametrize(("url", "slug"), [
    ("https://blog.example/2012/01/03/Template-Comments/", "2012-01-03-template-comments"),
    ("https://blog.example/about/page-with-comments/", "about-page-with-comments"),
    ("https://blog.example/?p=123", "p-123"),
    ("http://example.org/", "index"),
    ("https://blog.example/caf%C3%A9/", "caf-c3-a9"),
    ("https://blog.example/" + "x" * 300, "x" * 200),
])
def test_slug_from_url(url: str, slug: str) -> None:
    """The slug is the URL's path as the embed derives it; a query, then `index`, otherwise."""
    assert slug_from_url(url) == slug


def comment(source_id: str, parent: str | None, minute: int) -> ImportedComment:
    return build_comment(source_id=source_id, parent_source_id=parent, kind="comment",
                         status="approved", name="A", email="", url="", ip="", body="b",
                         created_at=datetime(2020, 1, 1, tzinfo=UTC) + timedelta(minutes=minute))


def test_parents_first_keeps_time_order_otherwise() -> None:
    """Each reply comes after its parent even when it is older or listed first; the rest
    keep time order; a parent cycle ends up last, where the store makes it orphans."""
    listed = [comment("c", "b", 1), comment("b", "a", 5), comment("a", None, 3),
              comment("d", None, 2), comment("x", "y", 0), comment("y", "x", 0),
              comment("e", "missing", 4)]
    assert [c.source_id for c in parents_first(listed)] == ["d", "a", "e", "b", "c", "x", "y"]


def test_spool_groups_by_key_across_runs() -> None:
    """Records come back grouped by key, keys sorted, in the order added, also when they
    went through several sorted temporary files."""
    spool = Spool(run_bytes=64)
    expected: dict[str, list[bytes]] = {}
    for n in range(300):
        key = f"slug-{n % 7}"
        record = b'{"n": %d}' % n
        spool.add(key, record)
        expected.setdefault(key, []).append(record)
    assert list(spool.groups()) == sorted(expected.items())


def test_imported_html_is_sanitized_and_paragraphed() -> None:
    """WordPress text gets paragraphs and line breaks; scripts, handlers, images and relative
    or script links go; safe links get rel."""
    html = to_safe_html('Hi <b>there</b>\nline two\n\n<script>x()</script>'
                        '<a href="/wp-admin/" onclick="y()">rel</a> <img src=x onerror=z()>'
                        '<a href="https://ok.example/">ok</a>')
    assert html.startswith("<p>Hi there<br>\nline two</p>")
    assert "script" not in html and "onclick" not in html and "<img" not in html
    assert '<a rel="nofollow ugc noopener">rel</a>' in html
    assert '<a href="https://ok.example/" rel="nofollow ugc noopener">ok</a>' in html

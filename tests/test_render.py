"""Markdown rendering, sanitizing and the pure moderation rules."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from realtime import moderation, render

from test_api import assert_inert


def test_markdown_renders_commonmark() -> None:
    """Emphasis, code, lists and quotes render; raw HTML is shown as text."""
    assert render.render_markdown("*a* **b** `c`") == (
        "<p><em>a</em> <strong>b</strong> <code>c</code></p>")
    assert render.render_markdown("> q") == "<blockquote>\n<p>q</p>\n</blockquote>"
    assert render.render_markdown("<b>x</b>") == "<p>&lt;b&gt;x&lt;/b&gt;</p>"


def test_images_become_links() -> None:
    """An image renders as a link to it, so no reader loads third-party content."""
    assert render.render_markdown("![cat](https://e.example/cat.png)") == (
        '<p><a href="https://e.example/cat.png" rel="nofollow ugc noopener">cat</a></p>')


@given(st.text(max_size=300))
def test_any_markdown_renders_inert(body: str) -> None:
    """Whatever the input, the output has only safe tags, no handlers and no script URLs."""
    assert_inert(render.render_markdown(body))


def test_avatar_hash_is_stable_and_private() -> None:
    """The avatar is a short hash of the e-mail (else the name), never the e-mail itself."""
    one = render.avatar_hash("Ann@Example.org", "Ann")
    assert one == render.avatar_hash("ann@example.org ", "Someone")
    assert len(one) == 16 and "ann" not in one
    assert render.avatar_hash(None, "Ann") != one


def test_verdicts() -> None:
    """Pre-moderated threads and too many links hold a comment; others are approved."""
    assert moderation.verdict(0, moderation.Rules("post", 2)) == "approved"
    assert moderation.verdict(3, moderation.Rules("post", 2)) == "pending"
    assert moderation.verdict(0, moderation.Rules("pre", 2)) == "pending"


def test_action_statuses() -> None:
    """Restore only undoes removals; the other actions set their status."""
    assert moderation.action_status("restore", "spam") == "approved"
    assert moderation.action_status("restore", "pending") == "pending"
    assert moderation.action_status("reject", "approved") == "rejected"

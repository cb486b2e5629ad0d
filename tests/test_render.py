"""Markdown rendering, sanitizing and the pure moderation rules."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtime import moderation, render
from realtime.config import Settings
from realtime.errors import Banned, RateLimited
from realtime.schemas import readable_policy

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


LINK_TARGETS = st.sampled_from([
    "//evil.example", "/api/auth/logout", "http:evil", "https:/x", "#top", "?q=1", "x.html",
    "javascript:alert(1)", "JaVaScRiPt:x", "data:text/html,x", "vbscript:x", "mailto:",
    "https://ok.example/a", "HTTP://OK.example", "mailto:a@b.example", "  https://e.example",
    "https:\\\\evil.example", "\\\\evil.example", "ftp://files.example",
])


@given(st.lists(st.tuples(st.text(max_size=8), LINK_TARGETS), max_size=4),
       st.booleans())
def test_only_absolute_links_survive(links: list[tuple[str, str]], as_images: bool) -> None:
    """Links and images keep an href only when it is an absolute http, https or mailto URL."""
    bang = "!" if as_images else ""
    body = " ".join(f"{bang}[{text}](<{target}>)" for text, target in links)
    assert_inert(render.render_markdown(body))


@pytest.mark.parametrize("target", ["//evil.example", "/api/auth/logout", "http:evil", "#x"])
def test_relative_links_lose_their_target(target: str) -> None:
    """A relative or protocol-relative link stays as text with no href."""
    assert render.render_markdown(f"[x]({target})") == (
        '<p><a rel="nofollow ugc noopener">x</a></p>')


@pytest.mark.parametrize(("body", "inline"), [
    ("![" * 30, True),  # short: anything goes
    ("An ordinary comment, with a (parenthesis), a *word* and a link: https://a.example/x.\n\n"
     + "A second paragraph, plain words only. " * 20, True),
    ("plain words " * 166, True),  # 1,992 characters, no markup
    ("plain words " * 167, False),  # past 2,000 characters
    ("![" * 5000, False),
    ("$" * 2000, False),
    ("a\n\n" * 600, False),  # 1,200 line breaks: 600 paragraphs
    ("plain words " * 10 + "[" * 33, False),
])
def test_only_bodies_that_cannot_be_slow_render_on_the_event_loop(body: str,
                                                                  inline: bool) -> None:
    """Short bodies, and bodies of ordinary length with little markup, render on the loop;
    long ones and those with many line breaks or Markdown characters go to the workers."""
    assert render.renders_inline(body) is inline


def test_avatar_hash_is_stable_and_private() -> None:
    """The avatar is a short keyed hash of the e-mail (else the name), never the e-mail
    itself, and without the site's key nobody can compute it from a guessed address."""
    key = bytes(range(32))
    one = render.avatar_hash(key, "Ann@Example.org", "Ann")
    assert one == render.avatar_hash(key, "ann@example.org ", "Someone")
    assert len(one) == 16 and "ann" not in one
    assert render.avatar_hash(key, None, "Ann") != one
    assert render.avatar_hash(bytes(32), "ann@example.org", "Ann") != one
    assert one != hashlib.sha256(b"ann@example.org").hexdigest()[:16]


def test_verdicts() -> None:
    """Shadow bans and block words give spam; hold words, links and pre-moderation hold."""
    policy = moderation.Policy.defaults(Settings()).merged(
        {"hold_words": ["casino"], "block_words": ["viagra"], "max_links": 2})
    nobody = moderation.Author()

    def status(body: str, links: int = 0, thread: str = "post",
               author: moderation.Author = nobody) -> str:
        return moderation.verdict(body, links, thread, policy, author).status

    assert status("hello") == "approved"
    assert status("Viagra!") == "spam"
    assert status("a casino") == "pending"
    assert status("casinos") == "approved"
    assert status("x", links=3) == "pending"
    assert status("x", thread="pre") == "pending"
    assert status("x", thread="pre", author=moderation.Author(trusted=True)) == "approved"
    assert status("x", author=moderation.Author(ban="shadow")) == "spam"


def test_verdict_names_every_rule_that_decided() -> None:
    """The reasons name the rule and what matched: the word, the link count and limit."""
    policy = moderation.Policy.defaults(Settings()).merged(
        {"hold_words": ["casino"], "block_words": ["viagra"], "max_links": 2})
    held = moderation.verdict("casino, casino", 5, "pre", policy, moderation.Author())
    assert held.status == "pending"
    assert held.reasons == ({"rule": "hold_word", "word": "casino"},
                            {"rule": "links", "count": 5, "limit": 2},
                            {"rule": "pre_moderation"})
    spam = moderation.verdict("viagra", 0, "post", policy, moderation.Author(ban="shadow"))
    assert spam.status == "spam" and spam.shadow
    assert spam.reasons == ({"rule": "shadow_ban"}, {"rule": "block_word", "word": "viagra"})
    assert moderation.verdict("fine", 0, "post", policy, moderation.Author()).reasons == ()


def test_stored_policy_with_unknown_fields_still_loads() -> None:
    """A policy saved by a newer version (extra fields) is read, its extras ignored."""
    policy = moderation.Policy.defaults(Settings()).merged(
        {"max_links": 5, "emoji_limit": 3, "flood": {"min_interval_s": 2, "burst": 9}})
    assert policy.max_links == 5 and policy.flood.min_interval_s == 2


def test_author_checks() -> None:
    """Bans refuse; flood limits refuse with the wait in Retry-After."""
    policy = moderation.Policy.defaults(Settings(flood_min_interval_s=10,
                                                 flood_max_per_10_min=3))
    moderation.check_author(policy, moderation.Author(last_age_s=11, recent=2))
    with pytest.raises(Banned):
        moderation.check_author(policy, moderation.Author(ban="ban"))
    with pytest.raises(RateLimited) as soon:
        moderation.check_author(policy, moderation.Author(last_age_s=2.5, recent=1))
    assert soon.value.retry_after == 8
    with pytest.raises(RateLimited) as many:
        moderation.check_author(policy, moderation.Author(last_age_s=30, recent=3,
                                                          oldest_recent_age_s=500))
    assert many.value.retry_after == 100


def test_action_statuses() -> None:
    """Restore only undoes removals; the other actions set their status."""
    assert moderation.action_status("restore", "spam") == "approved"
    assert moderation.action_status("restore", "pending") == "pending"
    assert moderation.action_status("reject", "approved") == "rejected"


def test_canonical_text_drops_invisible_and_folds_lookalikes() -> None:
    """NFKC folds fullwidth letters and ligatures; format and other default-ignorable
    characters vanish; folding also ignores case."""
    assert moderation.canonical("al\u200bi\u00adce\u2066") == "alice"
    assert moderation.canonical("ｆｉｎｅ ﬁle") == "fine file"
    assert moderation.folded("ÅLICE\u034f\ufe0f\U000e0041") == "ålice"
    assert moderation.folded("Straße") == "strasse"


def test_ban_values() -> None:
    """IP bans are networks (an IPv6 address its /64, a mapped IPv4 address itself);
    names and e-mails are folded."""
    assert moderation.ban_value("ip", "203.0.113.9") == "203.0.113.9"
    assert moderation.ban_value("ip", "203.0.113.9/24") == "203.0.113.0/24"
    assert moderation.ban_value("ip", "2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert moderation.ban_value("ip", "2001:db8::6/128") == "2001:db8::6"
    assert moderation.ban_value("ip", "::ffff:203.0.113.9") == "203.0.113.9"
    assert moderation.ban_value("name", " Al\u200bICE ") == "alice"
    with pytest.raises(ValueError):
        moderation.ban_value("ip", "203.0.113.0/33")


def test_edits_only_tighten_the_status() -> None:
    """An edit moves a comment to the stricter of its status and the verdict, and never
    touches a rejected or deleted one."""
    assert moderation.edited_status("approved", "pending") == "pending"
    assert moderation.edited_status("approved", "spam") == "spam"
    assert moderation.edited_status("pending", "approved") == "pending"
    assert moderation.edited_status("spam", "approved") == "spam"
    assert moderation.edited_status("rejected", "approved") == "rejected"
    assert moderation.edited_status("deleted", "spam") == "deleted"


def test_readable_policy_keeps_the_good_fields() -> None:
    """Each unreadable field of a stored policy is named and left out; unknown ones are
    ignored; a stored value that is no object is unreadable as a whole."""
    good, bad = readable_policy({"max_links": "3", "hold_words": ["a"], "future": 1,
                                 "flood": {"min_interval_s": 5, "max_per_10_min": None}})
    assert good == {"hold_words": ["a"], "flood": {"min_interval_s": 5}}
    assert bad == ["max_links", "flood.max_per_10_min"]
    assert readable_policy(None) == ({}, ["policy"])


@given(st.text(max_size=200) | st.lists(st.sampled_from(
    ["https://a.example ", "[x](https://b.example) ", "`https://c.example` ", "![i](https://i.ex) ",
     "[r]: https://r.example\n\n[y][r] ", "<https://d.example> ", "**b** ", "\n\n"]),
    max_size=8).map("".join))
def test_one_parse_renders_and_counts_like_two(body: str) -> None:
    """Rendering and counting links from one parse gives what separate calls give."""
    assert render.render_with_links(body) == (render.render_markdown(body),
                                              render.count_links(body))

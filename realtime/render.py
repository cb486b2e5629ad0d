"""Markdown to sanitized HTML, and avatar hashes.

Rendering happens once, at write time; the stored HTML is what every reader receives.
markdown-it runs in CommonMark mode with raw HTML off, and nh3 (ammonia) then allows only a
short list of tags and absolute `http`, `https` and `mailto` links, so neither the Markdown nor
a renderer bug can smuggle a script, an event handler or a `javascript:` URL through. Relative
links (`/api/auth/logout`, `//evil.example`, `http:evil`) would point into whatever page
embeds the thread, so they lose their `href`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml as escape_html
from markdown_it.token import Token


def _linkify_web_only(md: MarkdownIt) -> MarkdownIt:
    """Bare http and https URLs become links; nothing else does (no `www.` guesses, e-mail
    addresses, `ftp:` or protocol-relative `//host`), so a link is always a URL as typed."""
    md.enable("linkify")
    linkify = md.linkify
    assert linkify is not None, "markdown-it-py needs linkify-it-py for linkify"
    linkify.set({"fuzzy_link": False, "fuzzy_email": False, "fuzzy_ip": False})
    for schema in ("ftp:", "//", "mailto:"):
        linkify.add(schema, None)
    return md


_md = _linkify_web_only(
    MarkdownIt("commonmark", {"html": False, "linkify": True, "typographer": False}))


def _image_as_link(self: object, tokens: list[Token], idx: int, options: object,
                   env: object) -> str:
    """Images would let a commenter load third-party content into every reader's page."""
    token = tokens[idx]
    src = escape_html(str(token.attrGet("src") or ""))
    alt = escape_html(token.content or str(token.attrGet("src") or ""))
    return f'<a href="{src}">{alt}</a>'


_md.add_render_rule("image", _image_as_link)

TAGS = {"p", "br", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "a",
        "h1", "h2", "h3", "h4", "h5", "h6", "hr"}
ATTRIBUTES = {"a": {"href"}, "ol": {"start"}}
LINK_REL = "nofollow ugc noopener"
# Bodies the event loop renders itself (`renders_inline`): up to INLINE_MAX characters,
# whatever they hold, and up to INLINE_PLAIN_MAX characters of which at most INLINE_MARKS_MAX
# are line breaks or the punctuation markdown-it stops at (`MARKS`). Its cost outgrows the
# length only through those: 2,000 characters of plain prose take about 1 ms here, and the
# costliest of 4,000 generated bodies within the bounds about 1.5 ms, where 2,000 `$` take 9
# ms and 10,000 characters of `![` a third of a second. Everything else goes to
# realtime.renderer's workers.
INLINE_MAX = 64
INLINE_PLAIN_MAX = 2_000
INLINE_MARKS_MAX = 32
MARKS = re.compile(r"[\n!#$%&*+\-:<=>@\[\\\]^_`{}~()\"|]")
# A scheme alone is not enough: `http:evil` is a relative link on an http page.
ABSOLUTE_LINK = re.compile(r"(?:https?://[^/\\\s?#]|mailto:\S)", re.IGNORECASE)


def _absolute_links_only(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "href" and not ABSOLUTE_LINK.match(value):
        return None
    return value


def renders_inline(body: str) -> bool:
    """Whether a body is cheap to render whatever it holds (see INLINE_PLAIN_MAX)."""
    if len(body) <= INLINE_MAX:
        return True
    return len(body) <= INLINE_PLAIN_MAX and len(MARKS.findall(body)) <= INLINE_MARKS_MAX


def render_markdown(body: str) -> str:
    """Safe HTML for a comment body."""
    return sanitize(_md.render(body))


def render_with_links(body: str) -> tuple[str, int]:
    """Safe HTML for a comment body and the links the link limit counts in it (see
    `count_links`), from one parse of the Markdown: the parse is most of the cost."""
    env: dict[str, Any] = {}
    tokens = _md.parse(body, env)
    return sanitize(_md.renderer.render(tokens, _md.options, env)), _count_urls(tokens)


def sanitize(raw: str) -> str:
    """HTML from anywhere (our rendered Markdown, an imported comment) down to the allowed
    tags and attributes, with only absolute http(s) and mailto links."""
    return nh3.clean(raw, tags=TAGS, attributes=ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                     attribute_filter=_absolute_links_only, link_rel=LINK_REL).strip()


def avatar_hash(key: bytes, email: str | None, name: str) -> str:
    """A short, stable hash for an identicon: from the e-mail, else the name, keyed with the
    site's secret so that nobody can confirm a guessed address by hashing it."""
    source = (email or name).strip().lower()
    return hmac.new(key, source.encode(), hashlib.sha256).hexdigest()[:16]


WEB_URL = re.compile(r"https?://[^\s<>]+", re.IGNORECASE)


def count_links(body: str) -> int:
    """Every http(s) URL in a comment body, linked or not: a link's target counts once (its
    text is not counted again), and so does each URL left as text, in code for instance."""
    return _count_urls(_md.parse(body))


def _count_urls(tokens: Iterable[Token]) -> int:
    found = 0
    inside_link = 0
    for token in tokens:
        if token.type in ("link_open", "image"):
            target = str(token.attrGet("href") or token.attrGet("src") or "")
            found += bool(WEB_URL.match(target))
            inside_link += token.type == "link_open"
        elif token.type == "link_close":
            inside_link -= 1
        elif token.children:
            found += _count_urls(token.children)
        elif not inside_link and token.type in ("text", "code_inline", "code_block", "fence"):
            found += len(WEB_URL.findall(token.content))
    return found

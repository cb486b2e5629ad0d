"""Markdown to sanitized HTML, and avatar hashes.

Rendering happens once, at write time; the stored HTML is what every reader receives.
markdown-it runs in CommonMark mode with raw HTML off, and nh3 (ammonia) then allows only a
short list of tags and `http`, `https` and `mailto` links, so neither the Markdown nor a
renderer bug can smuggle a script, an event handler or a `javascript:` URL through.
"""

from __future__ import annotations

import hashlib

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml as escape_html
from markdown_it.token import Token

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


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


def render_markdown(body: str) -> str:
    """Safe HTML for a comment body."""
    raw = _md.render(body)
    return nh3.clean(raw, tags=TAGS, attributes=ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                     link_rel=LINK_REL).strip()


def avatar_hash(email: str | None, name: str) -> str:
    """A short, stable hash for an identicon: from the e-mail, else the name."""
    source = (email or name).strip().lower()
    return hashlib.sha256(source.encode()).hexdigest()[:16]

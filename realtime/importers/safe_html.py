"""Imported comment bodies to safe HTML.

WordPress and Disqus store comments as HTML written by anyone. WordPress shows them through
`wpautop` (blank lines make paragraphs, single newlines line breaks); Disqus stores finished
paragraphs. Either way the markup is untrusted: it goes through the same allow-list as our
own rendered Markdown (`render.TAGS`, `render.ATTRIBUTES`, `render.LINK_REL`), with only
absolute http, https and mailto links kept.
"""

from __future__ import annotations

import re

from .. import render

# A paragraph that already holds block elements is left as written.
_BLOCK = re.compile(r"<(?:p|div|blockquote|pre|ul|ol|li|h[1-6]|table|hr)\b", re.IGNORECASE)
_PARAGRAPHS = re.compile(r"\n\s*\n")


def to_safe_html(text: str) -> str:
    """Sanitized HTML for an imported body: paragraphs made as WordPress shows them."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    parts = []
    for paragraph in _PARAGRAPHS.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if _BLOCK.search(paragraph):
            parts.append(paragraph)
        else:
            parts.append("<p>" + paragraph.replace("\n", "<br>\n") + "</p>")
    return render.sanitize("\n".join(parts))

"""Security headers: a strict CSP on the server's pages, the console never framed, nosniff."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from conftest import OpenPage, Running, comment_body

UNSAFE = ("'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:")


class _Inline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script" and not names.get("src"):
            self.found.append("inline <script>")
        self.found += [f"{tag} {name}" for name in names if name.startswith("on")]
        self.found += [f"{tag} {name}" for name, value in attrs
                       if (value or "").strip().lower().startswith("javascript:")]


def inline_code(html: str) -> list[str]:
    """Inline scripts, event handler attributes and javascript: URLs in a page."""
    parser = _Inline()
    parser.feed(html)
    return parser.found


def directives(policy: str) -> dict[str, list[str]]:
    """A Content-Security-Policy as {directive: sources}."""
    found = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            found[words[0]] = words[1:]
    return found


async def test_pages_get_a_strict_policy_and_stay_framable(client: httpx.AsyncClient,
                                                           post: dict[str, Any]) -> None:
    """The index and demo pages allow scripts from this server's files only, load nothing
    from elsewhere, and may be framed like any page that embeds a thread."""
    for path in ("/", "/p/hello-world"):
        answer = await client.get(path)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(
            "text/html")
        policy = directives(answer.headers["content-security-policy"])
        assert policy["script-src"] == ["'self'"]
        assert not set(policy["default-src"]) & set(UNSAFE)
        assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]
        assert "frame-ancestors" not in policy and "x-frame-options" not in answer.headers
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert not inline_code(answer.text), inline_code(answer.text)


async def test_console_is_never_framed(client: httpx.AsyncClient) -> None:
    """The moderator console forbids every frame ancestor and sends no referrer elsewhere."""
    for path in ("/moderate", "/static/moderate.html"):
        answer = await client.get(path)
        policy = directives(answer.headers["content-security-policy"])
        assert policy["frame-ancestors"] == ["'none'"] and policy["script-src"] == ["'self'"]
        assert not set(policy["default-src"]) & set(UNSAFE)
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] in ("no-referrer", "same-origin")


async def test_other_answers_allow_nothing(client: httpx.AsyncClient,
                                           post: dict[str, Any]) -> None:
    """JSON, problems, scripts and errors carry nosniff and a policy that allows nothing."""
    answers = [await client.get("/api/posts"), await client.get("/api/posts/nope"),
               await client.get("/static/embed.js"), await client.delete("/api/posts"),
               await client.post("/api/posts/hello-world/comments", content=b"{",
                                 headers={"Content-Type": "application/json"}),
               await client.post("/api/posts/hello-world/comments",
                                 json=comment_body("fine"))]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff", answer
        policy = directives(answer.headers["content-security-policy"])
        assert policy["default-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]


WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""
INJECT = """() => {
  const s = document.createElement('script');
  s.textContent = 'window.__ran = true';
  document.body.append(s);
  const a = document.createElement('div');
  a.innerHTML = '<img src=x onerror="window.__ran = true">';
  document.body.append(a);
  return new Promise((r) => setTimeout(r, 200));
}"""


@pytest.mark.browser
async def test_browser_enforces_the_policy(open_page: OpenPage,
                                           server: Running, post: dict[str, Any],
                                           client: httpx.AsyncClient) -> None:
    """In Chromium the demo thread and the console work with no policy violation, and an
    injected inline script or event handler does not run."""
    async def watch(page: Any) -> None:
        await page.add_init_script(WATCH)

    page = await open_page("/p/hello-world", watch)
    await client.post("/api/posts/hello-world/comments", json=comment_body("live under CSP"))
    await page.get_by_text("live under CSP").wait_for(timeout=10_000)
    console = await open_page("/static/moderate.html", watch)
    await console.wait_for_load_state("networkidle")
    for each in (page, console):
        assert await each.evaluate("window.__violations") == []
        await each.evaluate(INJECT)
        assert await each.evaluate("window.__ran") is None
        assert any(v.startswith("script-src") for v in await each.evaluate(
            "window.__violations"))

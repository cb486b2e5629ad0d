"""The widget's message catalogs: one JSON file per language in static/i18n/, and the route that
picks the reader's language among them in one request.

Adding a language is adding `static/i18n/<tag>.json`; keys it lacks fall back to English.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

DEFAULT = "en"
TAG = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{1,8})*$")
MOST_ASKED = 10


@functools.cache
def _catalogs(folder: Path) -> dict[str, dict[str, Any]]:
    found = {f.stem.lower(): orjson.loads(f.read_bytes()) for f in folder.glob("*.json")}
    english = found.get(DEFAULT, {})
    return {tag: {**english, **messages} for tag, messages in found.items()}


def pick(wanted: list[str], have: set[str]) -> str:
    """The first wanted language there is a catalog for: the tag itself, else its language."""
    for tag in wanted:
        tag = tag.strip().lower().replace("_", "-")
        if not TAG.match(tag):
            continue
        for candidate in (tag, tag.split("-", 1)[0]):
            if candidate in have:
                return candidate
    return DEFAULT


def routes(folder: Path) -> list[Route]:
    """`GET /i18n?lang=de-AT,de,en-US`: the best catalog, public like the static files."""

    async def catalog(request: Request) -> Response:
        catalogs = _catalogs(folder)
        wanted = request.query_params.get("lang", "").split(",")[:MOST_ASKED]
        chosen = pick(wanted, set(catalogs))
        body = orjson.dumps({"lang": chosen, "messages": catalogs.get(chosen, {})})
        return Response(body, media_type="application/json", headers={
            "Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=300"})

    return [Route("/i18n", catalog, methods=["GET"])]

"""Request bodies as pydantic models: strict types, no unknown fields, the contract's limits."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from .models import MAX_ID, SLUG

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not re.match(r"^https?://[^\s/?#]+[^\s]*$", value, re.IGNORECASE):
        raise ValueError("must be an http or https URL")
    return value


def _email(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not EMAIL.match(value):
        raise ValueError("must be an e-mail address")
    return value.lower()


def _rfc3339(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise ValueError("must carry a time zone")
    return moment.astimezone(UTC).isoformat()


def _uuid(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(UUID(value))
    except ValueError:
        raise ValueError("must be a UUID") from None


Trimmed = StringConstraints(strip_whitespace=True)
Body = Annotated[str, Trimmed, Field(min_length=1, max_length=10_000)]
Url = Annotated[str | None, Field(max_length=2000), AfterValidator(_http_url)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Author(Strict):
    name: Annotated[str, Trimmed, Field(min_length=1, max_length=100)]
    email: Annotated[str | None, Trimmed, Field(max_length=320), AfterValidator(_email)] = None
    url: Url = None


class NewComment(Strict):
    body: Body
    author: Author
    parent_id: Annotated[int, Field(gt=0, le=MAX_ID)] | None = None
    client_id: Annotated[str | None, AfterValidator(_uuid)] = None


class CommentEdit(Strict):
    body: Body


class PostFields(Strict):
    title: Annotated[str, Trimmed, Field(min_length=1, max_length=300)] | None = None
    url: Url = None
    moderation: Literal["post", "pre"] | None = None
    open: bool | None = None


class Login(Strict):
    username: Annotated[str, Field(min_length=1, max_length=100)]
    password: Annotated[str, Field(min_length=1, max_length=1000)]


class ModeratorAction(Strict):
    version: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    reason: Annotated[str, Field(max_length=1000)] | None = None


Word = Annotated[str, Trimmed, Field(min_length=1, max_length=100)]
Seconds = Annotated[int, Field(ge=0, le=86_400 * 365)]


class FloodFields(Strict):
    min_interval_s: Seconds | None = None
    max_per_10_min: Annotated[int, Field(ge=0, le=100_000)] | None = None


class PolicyFields(Strict):
    default_moderation: Literal["post", "pre"] | None = None
    hold_words: Annotated[list[Word], Field(max_length=1000)] | None = None
    block_words: Annotated[list[Word], Field(max_length=1000)] | None = None
    max_links: Annotated[int, Field(ge=0, le=1000)] | None = None
    trusted_authors: bool | None = None
    edit_window_s: Seconds | None = None
    flood: FloodFields | None = None


class NewBan(Strict):
    kind: Literal["ip", "email", "name"]
    value: Annotated[str, Trimmed, Field(min_length=1, max_length=320)] | None = None
    comment_id: Annotated[int, Field(gt=0, le=MAX_ID)] | None = None
    shadow: bool = False
    reason: Annotated[str, Field(max_length=1000)] | None = None
    expires_at: Annotated[str, AfterValidator(_rfc3339)] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> NewBan:
        if (self.value is None) == (self.comment_id is None):
            raise ValueError("give either value or comment_id")
        return self


class NewThread(Strict):
    slug: Annotated[str, Field(pattern=SLUG.pattern)]
    title: Annotated[str, Trimmed, Field(min_length=1, max_length=300)]
    url: Annotated[str, Field(max_length=2000), AfterValidator(_http_url)]


class Report(Strict):
    reason: Annotated[str, Trimmed, Field(min_length=1, max_length=1000)]


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """pydantic's errors as the contract's `errors` list."""
    found = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or "body"
        message = str(error["msg"])
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        found.append({"field": field, "message": message})
    return found

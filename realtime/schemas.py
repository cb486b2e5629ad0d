"""Request bodies as pydantic models: strict types, no unknown fields, the contract's limits."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from .models import MAX_FLOOD_COUNT, MAX_SECONDS

SLUG = re.compile(r"^[a-z0-9._-]{1,200}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
BIGINT = 2**63 - 1


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
    parent_id: Annotated[int, Field(gt=0, le=BIGINT)] | None = None
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
    version: Annotated[int, Field(ge=1, le=BIGINT)] | None = None
    reason: Annotated[str, Field(max_length=1000)] | None = None


def _not_nullable(schema: dict[str, Any]) -> None:
    """The schema of a Partial: each field's own type, without the null Python's default
    needs and the validator refuses."""
    for name, prop in schema.get("properties", {}).items():
        types = [t for t in prop.pop("anyOf", [prop]) if t.get("type") != "null"]
        kept = {k: v for k, v in prop.items() if k not in ("anyOf", "default")}
        schema["properties"][name] = {**types[0], **kept} if len(types) == 1 else \
            {**kept, "anyOf": types}


class Partial(Strict):
    """A body whose fields may each be left out, but none may be null (a left-out field is
    None for Python, and not "set")."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True,
                              json_schema_extra=_not_nullable)

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null; leave the field out instead")
        return value


Word = Annotated[str, Trimmed, Field(min_length=1, max_length=100)]
Seconds = Annotated[int, Field(ge=0, le=MAX_SECONDS)]
Words = Annotated[list[Word], Field(max_length=1000)]


class FloodFields(Partial):
    min_interval_s: Seconds | None = None
    max_per_10_min: Annotated[int, Field(ge=0, le=MAX_FLOOD_COUNT)] | None = None


class PolicyFields(Partial):
    default_moderation: Literal["post", "pre"] | None = None
    hold_words: Words | None = None
    block_words: Words | None = None
    max_links: Annotated[int, Field(ge=0, le=1000)] | None = None
    trusted_authors: bool | None = None
    edit_window_s: Seconds | None = None
    flood: FloodFields | None = None


def readable_policy(stored: Any) -> tuple[dict[str, Any], list[str]]:
    """The valid fields of a stored policy, as PolicyFields gives them, and the names of the
    fields that are not valid (each falls back to its default). Unknown fields (saved by a
    newer version) are ignored."""
    data = stored if isinstance(stored, dict) else {}
    good: dict[str, Any] = {}
    bad: list[str] = [] if isinstance(stored, dict) else ["policy"]
    for name in PolicyFields.model_fields:
        if name not in data:
            continue
        value = data[name]
        if name == "flood" and isinstance(value, dict):
            parts = {k: v for k, v in value.items() if k in FloodFields.model_fields}
            value, broken = _valid_parts(FloodFields, parts)
            bad += [f"flood.{k}" for k in broken]
        try:
            good.update(PolicyFields.model_validate({name: value})
                        .model_dump(exclude_unset=True))
        except ValidationError:
            bad.append(name)
    return good, bad


def _valid_parts(model: type[BaseModel], data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    good, bad = {}, []
    for name, value in data.items():
        try:
            model.model_validate({name: value})
            good[name] = value
        except ValidationError:
            bad.append(name)
    return good, bad


class NewBan(Strict):
    kind: Literal["ip", "email", "name"]
    value: Annotated[str, Trimmed, Field(min_length=1, max_length=320)] | None = None
    comment_id: Annotated[int, Field(gt=0, le=BIGINT)] | None = None
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

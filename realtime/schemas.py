"""Request bodies as pydantic models: strict types, no unknown fields, the contract's limits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .models import MAX_FLOOD_COUNT, MAX_ID, MAX_SECONDS, SLUG

# Text fields are trimmed of ASCII whitespace and may hold no NUL (PostgreSQL text cannot).
# The patterns spell whitespace out, so that the server (Rust's regex), the OpenAPI
# document's readers (ECMA-262) and Python agree on every character.
WHITE = " \t\n\r\f\v"
_WHITE = r" \t\n\r\f\v"
NO_NUL = r"^[^\u0000]*$"
NOT_BLANK = rf"^[^\u0000]*[^\u0000{_WHITE}][^\u0000]*$"
_WORD = rf"[^@\u0000{_WHITE}]"
EMAIL = rf"^[{_WHITE}]*({_WORD}{{1,64}}@{_WORD}{{1,255}})?[{_WHITE}]*$"
HTTP_URL = rf"^[hH][tT][tT][pP][sS]?://[^\u0000{_WHITE}/?#]+[^\u0000{_WHITE}]*$"
UUID_TEXT = (r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}"
             r"-[0-9a-fA-F]{12}$")
RFC3339 = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
           r"([Zz]|[+-][0-9]{2}:[0-9]{2})$")


PATTERN_MESSAGES = {NOT_BLANK: "must not be blank (nor hold NUL characters)",
                    NO_NUL: "must not hold NUL characters",
                    EMAIL: "must be an e-mail address", HTTP_URL: "must be an http or https URL",
                    UUID_TEXT: "must be a UUID", RFC3339: "must be an RFC 3339 time with a zone"}


def _whole(value: Any) -> Any:
    # JSON has one kind of number: 3.0 is the integer 3 (JSON Schema agrees).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WHOLE = BeforeValidator(_whole)


def _trimmed(value: str) -> str:
    return value.strip(WHITE)


def _email(value: str) -> str | None:
    return value.strip(WHITE).lower() or None


def _rfc3339(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be an RFC 3339 time") from None
    return moment.astimezone(UTC).isoformat()


def _uuid(value: str) -> str:
    return str(UUID(value))


# Text fields: at most so many characters, not blank, trimmed.
Name = Annotated[str, Field(max_length=100, pattern=NOT_BLANK), AfterValidator(_trimmed)]
Title = Annotated[str, Field(max_length=300, pattern=NOT_BLANK), AfterValidator(_trimmed)]
BanValue = Annotated[str, Field(max_length=320, pattern=NOT_BLANK), AfterValidator(_trimmed)]
Reason = Annotated[str, Field(max_length=1000, pattern=NOT_BLANK), AfterValidator(_trimmed)]
Body = Annotated[str, Field(max_length=10_000, pattern=NOT_BLANK), AfterValidator(_trimmed)]
Url = Annotated[str, Field(max_length=2000, pattern=HTTP_URL)] | None
Plain = Annotated[str, Field(pattern=NO_NUL)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Author(Strict):
    name: Name
    email: Annotated[str, Field(max_length=320, pattern=EMAIL),
                     AfterValidator(_email)] | None = None
    url: Url = None


class NewComment(Strict):
    body: Body
    author: Author
    parent_id: Annotated[int, Field(gt=0, le=MAX_ID), WHOLE] | None = None
    client_id: Annotated[str, Field(pattern=UUID_TEXT), AfterValidator(_uuid)] | None = None


class CommentEdit(Strict):
    body: Body


class PostFields(Strict):
    title: Title | None = None
    url: Url = None
    moderation: Literal["post", "pre"] | None = None
    open: bool | None = None


class Login(Strict):
    username: Annotated[Plain, Field(min_length=1, max_length=100)]
    password: Annotated[Plain, Field(min_length=1, max_length=1000)]


class ModeratorAction(Strict):
    version: Annotated[int, Field(ge=1, le=MAX_ID), WHOLE] | None = None
    reason: Annotated[Plain, Field(max_length=1000)] | None = None


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


Word = Name
Seconds = Annotated[int, Field(ge=0, le=MAX_SECONDS), WHOLE]
Words = Annotated[list[Word], Field(max_length=1000)]


class FloodFields(Partial):
    min_interval_s: Seconds | None = None
    max_per_10_min: Annotated[int, Field(ge=0, le=MAX_FLOOD_COUNT), WHOLE] | None = None


class PolicyFields(Partial):
    default_moderation: Literal["post", "pre"] | None = None
    hold_words: Words | None = None
    block_words: Words | None = None
    max_links: Annotated[int, Field(ge=0, le=1000), WHOLE] | None = None
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
    value: BanValue | None = None
    comment_id: Annotated[int, Field(gt=0, le=MAX_ID), WHOLE] | None = None
    shadow: bool = False
    reason: Annotated[Plain, Field(max_length=1000)] | None = None
    expires_at: Annotated[str, Field(pattern=RFC3339), AfterValidator(_rfc3339)] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> NewBan:
        if (self.value is None) == (self.comment_id is None):
            raise ValueError("give either value or comment_id")
        return self


class NewThread(Strict):
    slug: Annotated[str, Field(pattern=SLUG.pattern)]
    title: Title
    url: Annotated[str, Field(max_length=2000, pattern=HTTP_URL)]


class Report(Strict):
    reason: Reason


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """pydantic's errors as the contract's `errors` list."""
    found = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or "body"
        message = str(error["msg"])
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "string_pattern_mismatch":
            message = PATTERN_MESSAGES.get(str(error.get("ctx", {}).get("pattern")), message)
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        found.append({"field": field, "message": message})
    return found

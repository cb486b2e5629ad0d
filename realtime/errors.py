"""The error hierarchy: each error knows its HTTP status and problem+json code.

    RealtimeError                      500 internal_error
    ├── ValidationFailed               422 validation_error
    ├── NotFound                       404 not_found
    ├── ThreadClosed                   403 thread_closed
    ├── Forbidden                      403 forbidden
    ├── Banned                         403 banned
    ├── Unauthorized                   401 unauthorized
    ├── DuplicateComment               409 duplicate_comment
    ├── Conflict                       409 conflict        (carries the current comment)
    ├── RateLimited                    429 rate_limited    (Retry-After)
    ├── PayloadTooLarge                413 payload_too_large
    ├── UnsupportedMediaType           415 unsupported_media_type
    └── Unavailable                    503 unavailable     (Retry-After)

The close codes of the WebSocket stream are `realtime.protocol.Close`.
"""

from __future__ import annotations

from typing import Any, ClassVar


class RealtimeError(Exception):
    """Base of every error the server reports to a client."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str = "", *, errors: list[dict[str, str]] | None = None,
                 retry_after: int | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.retry_after = retry_after
        self.extra = extra or {}

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 problem document."""
        body: dict[str, Any] = {"type": "about:blank", "title": self.title, "status": self.status,
                                "code": self.code, "detail": self.detail}
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class ValidationFailed(RealtimeError):
    status, code, title = 422, "validation_error", "Validation failed"

    @classmethod
    def field(cls, field: str, message: str) -> ValidationFailed:
        """A failure on one field."""
        return cls(f"{field}: {message}", errors=[{"field": field, "message": message}])


class NotFound(RealtimeError):
    status, code, title = 404, "not_found", "Not found"


class ThreadClosed(RealtimeError):
    status, code, title = 403, "thread_closed", "Thread closed"


class Forbidden(RealtimeError):
    status, code, title = 403, "forbidden", "Forbidden"


class Banned(RealtimeError):
    status, code, title = 403, "banned", "Banned"


class Unauthorized(RealtimeError):
    status, code, title = 401, "unauthorized", "Unauthorized"


class DuplicateComment(RealtimeError):
    status, code, title = 409, "duplicate_comment", "Duplicate comment"


class Conflict(RealtimeError):
    status, code, title = 409, "conflict", "Conflict"


class RateLimited(RealtimeError):
    status, code, title = 429, "rate_limited", "Too many requests"


class PayloadTooLarge(RealtimeError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class UnsupportedMediaType(RealtimeError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class Unavailable(RealtimeError):
    status, code, title = 503, "unavailable", "Service unavailable"

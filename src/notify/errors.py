"""One error hierarchy; the API renders every member as the v2 error body (DESIGN §4)."""

from __future__ import annotations

from typing import Any


class NotifyError(Exception):
    """Base of every expected error: a message, an HTTP status code and the v2 error class name."""

    status_code = 400
    error = "BadRequestError"

    def __init__(self, message: str, *, status_code: int | None = None, error: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        if error is not None:
            self.error = error
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, Any]:
        """Return the v2 error body."""
        return error_body(self.status_code, [(self.error, self.message)])


class BadRequestError(NotifyError):
    """400: the request cannot be processed as given."""


class ValidationError(NotifyError):
    """400: the body or query failed schema validation; carries one message per field."""

    error = "ValidationError"

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages

    def body(self) -> dict[str, Any]:
        """Return the v2 error body with one entry per message."""
        return error_body(self.status_code, [(self.error, message) for message in self.messages])


class AuthError(NotifyError):
    """401 (no credentials) or 403 (bad, expired or revoked credentials)."""

    status_code = 403
    error = "AuthError"


class NotFoundError(NotifyError):
    """404: nothing with that id for this service."""

    status_code = 404
    error = "NoResultFound"


class RateLimitError(NotifyError):
    """429: a rate or daily limit was reached."""

    status_code = 429
    error = "RateLimitError"


class ServiceUnavailableError(NotifyError):
    """503: a backing server (Redis) is unreachable; the request was not accepted."""

    status_code = 503
    error = "ServiceUnavailableError"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.headers["Retry-After"] = str(retry_after_s)


def error_body(status_code: int, errors: list[tuple[str, str]]) -> dict[str, Any]:
    """Build `{"status_code": N, "errors": [{"error": ..., "message": ...}]}`."""
    return {"status_code": status_code, "errors": [{"error": error, "message": message} for error, message in errors]}

"""Errors of the Idempotency-Key handling."""

from __future__ import annotations

from notify.errors import NotifyError


class IdempotencyConflictError(NotifyError):
    """409: a request with the same Idempotency-Key is still being processed."""

    status_code = 409
    error = "ConflictError"

    def __init__(self, retry_after_s: int = 1) -> None:
        super().__init__("A request with this Idempotency-Key is still being processed: retry shortly")
        self.headers["Retry-After"] = str(retry_after_s)


class IdempotencyMismatchError(NotifyError):
    """422: the Idempotency-Key was first used for a different request."""

    status_code = 422
    error = "BadRequestError"

"""The 429 errors of the limits (GC Notify's wording and class names)."""

from __future__ import annotations

from notify.errors import RateLimitError

KEY_TYPE_LABELS = {"normal": "LIVE", "team": "TEAM", "test": "TEST"}


class RequestRateLimitError(RateLimitError):
    """429 `RateLimitError`: too many requests for one key type in the sliding window."""

    def __init__(self, key_type: str, limit: int, interval_s: int, retry_after_s: int) -> None:
        label = KEY_TYPE_LABELS.get(key_type, key_type.upper())
        super().__init__(f"Exceeded rate limit for key type {label} of {limit} requests per {interval_s} seconds")
        self.headers["Retry-After"] = str(retry_after_s)


class TooManyRequestsError(RateLimitError):
    """429: the service's daily email or SMS limit is reached (error `Live|TrialServiceTooMany…RequestsError`)."""

    def __init__(self, notification_type: str, limit: int, *, restricted: bool, retry_after_s: int) -> None:
        prefix = "TrialService" if restricted else "LiveService"
        if notification_type == "email":
            error, message = "TooManyEmailRequestsError", f"Exceeded email daily sending limit of {limit} messages"
        else:
            error, message = "TooManySMSRequestsError", f"Exceeded SMS daily sending limit of {limit} fragments"
        super().__init__(message, error=prefix + error)
        self.headers["Retry-After"] = str(retry_after_s)

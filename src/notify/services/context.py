"""What the hot path needs to know about a service and its keys, loaded once and cached."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KeyContext:
    """An active API key with its decrypted secret (kept only in process memory)."""

    id: uuid.UUID
    name: str
    key_type: str
    secret: str


@dataclass(frozen=True, slots=True)
class ServiceContext:
    """A service as the API sees it on every request."""

    id: uuid.UUID
    name: str
    active: bool
    restricted: bool
    email_from: str
    sending_domain: str | None
    sms_sender: str | None
    rate_limit: int
    email_daily_limit: int
    sms_daily_limit: int
    keys: tuple[KeyContext, ...]
    # Normalised addresses and E.164 numbers that team keys, and every key of a trial service, may send to.
    safelist: frozenset[str] = frozenset()

    def from_email(self, default_domain: str) -> str:
        """Return the address emails are sent from."""
        return f"{self.email_from}@{self.sending_domain or default_domain}"

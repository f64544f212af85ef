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
class SenderContext:
    """A reply-to address or an SMS sender of a service, chosen by id in a request or used by default."""

    id: uuid.UUID
    value: str
    is_default: bool


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
    # Reply-to addresses (not archived) and SMS senders.
    reply_tos: tuple[SenderContext, ...] = ()
    sms_senders: tuple[SenderContext, ...] = ()

    def from_email(self, default_domain: str) -> str:
        """Return the address emails are sent from."""
        return f"{self.email_from}@{self.sending_domain or default_domain}"

    def reply_to_address(self, reply_to_id: uuid.UUID) -> str | None:
        """Return the reply-to address with this id, or None when the service has no such address."""
        return _find(self.reply_tos, reply_to_id)

    def default_reply_to(self) -> str | None:
        """Return the service's default reply-to address, if it has one."""
        return _default(self.reply_tos)

    def sms_sender_text(self, sender_id: uuid.UUID) -> str | None:
        """Return the SMS sender with this id, or None when the service has no such sender."""
        return _find(self.sms_senders, sender_id)

    def default_sms_sender(self) -> str | None:
        """Return the service's default SMS sender, if it has one."""
        return _default(self.sms_senders)


def _find(senders: tuple[SenderContext, ...], sender_id: uuid.UUID) -> str | None:
    return next((sender.value for sender in senders if sender.id == sender_id), None)


def _default(senders: tuple[SenderContext, ...]) -> str | None:
    return next((sender.value for sender in senders if sender.is_default), None)

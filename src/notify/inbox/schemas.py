"""The inbox stream entry: an accepted notification before it is saved (DESIGN §2.1, §5)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

NotificationType = Literal["email", "sms"]
Lane = Literal["priority", "normal", "bulk"]
KeyType = Literal["normal", "team", "test"]

TYPES: tuple[NotificationType, ...] = ("email", "sms")
LANES: tuple[Lane, ...] = ("priority", "normal", "bulk")


class InboxEntry(BaseModel):
    """Everything needed to save an accepted notification: the row, minus what the database fills in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: uuid.UUID
    service_id: uuid.UUID
    template_id: uuid.UUID
    template_version: int
    api_key_id: uuid.UUID | None
    key_type: KeyType
    notification_type: NotificationType
    lane: Lane
    to: str
    normalised_to: str
    personalisation: dict[str, Any] | None = None
    subject: str | None = None
    body: str
    client_reference: str | None = None
    sender: str | None = None
    reply_to: str | None = None
    created_at: datetime
    scheduled_for: datetime | None = None
    job_id: uuid.UUID | None = None
    job_row_number: int | None = None

    def to_bytes(self) -> bytes:
        """Serialise for XADD."""
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))

    @classmethod
    def from_bytes(cls, data: bytes) -> InboxEntry:
        """Parse an entry read from the stream; raises pydantic.ValidationError or orjson.JSONDecodeError."""
        return cls.model_validate_json(data)

"""The `api_keys` table. Secrets are stored encrypted, never in plaintext."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from notify.db import Base, TimestampedMixin, new_id

KEY_TYPES = ("normal", "team", "test")


class ApiKey(TimestampedMixin, Base):
    """An API key of a service."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint(f"key_type IN {KEY_TYPES!r}", name="key_type"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    key_type: Mapped[str] = mapped_column(String(8))
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

"""The `service_callbacks` table: where and how to tell a service about its notifications."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from notify.db import Base, TimestampedMixin, new_id

CALLBACK_TYPES = ("delivery_status", "complaint")


class ServiceCallback(TimestampedMixin, Base):
    """One callback URL of a service per callback type; the bearer token is stored encrypted."""

    __tablename__ = "service_callbacks"
    __table_args__ = (
        UniqueConstraint("service_id", "callback_type"),
        CheckConstraint(f"callback_type IN {CALLBACK_TYPES!r}", name="callback_type"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    callback_type: Mapped[str] = mapped_column(String(20))
    url: Mapped[str] = mapped_column(Text)
    bearer_token: Mapped[bytes] = mapped_column(LargeBinary)
    failures: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    suspended_at: Mapped[datetime | None]

"""The `notifications` table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from notify.auth.models import KEY_TYPES
from notify.db import Base
from notify.notifications import statuses
from notify.templates.models import PROCESS_TYPES, TEMPLATE_TYPES


class Notification(Base):
    """One email or SMS, from the moment its inbox entry is saved."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(f"status IN {statuses.ALL!r}", name="status"),
        CheckConstraint(f"notification_type IN {TEMPLATE_TYPES!r}", name="notification_type"),
        CheckConstraint(f"key_type IN {KEY_TYPES!r}", name="key_type"),
        CheckConstraint(f"lane IN {PROCESS_TYPES!r}", name="lane"),
        # Partial: NULLs (no provider answer yet; not a job's row) are never looked up (migration 0007).
        Index(
            "uq_notifications_job_id_job_row_number",
            "job_id",
            "job_row_number",
            unique=True,
            postgresql_where=text("job_id IS NOT NULL"),
        ),
        Index("ix_notifications_reference", "reference", postgresql_where=text("reference IS NOT NULL")),
        Index("ix_notifications_service_id_created_at", "service_id", "created_at"),
        Index("ix_notifications_status_created_at", "status", "created_at"),
        Index(
            "ix_notifications_scheduled_due",
            "scheduled_for",
            postgresql_where=text("status = 'created' AND scheduled_for IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    template_id: Mapped[uuid.UUID]
    template_version: Mapped[int] = mapped_column(Integer)
    api_key_id: Mapped[uuid.UUID | None]
    key_type: Mapped[str] = mapped_column(String(8))
    notification_type: Mapped[str] = mapped_column(String(5))
    lane: Mapped[str] = mapped_column(String(8))
    to: Mapped[str] = mapped_column(Text)
    normalised_to: Mapped[str] = mapped_column(Text)
    personalisation: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    client_reference: Mapped[str | None] = mapped_column(Text)
    sender: Mapped[str | None] = mapped_column(Text)
    reply_to: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), server_default=text("'created'"))
    reference: Mapped[str | None] = mapped_column(String(255))
    sent_by: Mapped[str | None] = mapped_column(String(20))
    provider_response: Mapped[str | None] = mapped_column(Text)
    feedback_type: Mapped[str | None] = mapped_column(String(50))
    feedback_subtype: Mapped[str | None] = mapped_column(String(50))
    feedback_id: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None]
    job_id: Mapped[uuid.UUID | None]
    job_row_number: Mapped[int | None] = mapped_column(Integer)
    scheduled_for: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sending_started_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

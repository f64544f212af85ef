"""The `jobs` table (one bulk send) and its `job_rows` (the validated recipients, DESIGN §2.4)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from notify.auth.models import KEY_TYPES
from notify.db import Base, TimestampedMixin, new_id
from notify.templates.models import TEMPLATE_TYPES

PENDING = "pending"
SCHEDULED = "scheduled"
IN_PROGRESS = "in progress"
FINISHED = "finished"
CANCELLED = "cancelled"
ERROR = "error"
JOB_STATUSES = (PENDING, SCHEDULED, IN_PROGRESS, FINISHED, CANCELLED, ERROR)


class Job(TimestampedMixin, Base):
    """A bulk send: one template, many rows, processed in chunks by `process_job`."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(f"status IN {JOB_STATUSES!r}", name="status"),
        CheckConstraint(f"notification_type IN {TEMPLATE_TYPES!r}", name="notification_type"),
        CheckConstraint(f"key_type IN {KEY_TYPES!r}", name="key_type"),
        Index("ix_jobs_status_scheduled_for", "status", "scheduled_for"),
        Index("ix_jobs_service_id_created_at", "service_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    template_id: Mapped[uuid.UUID]
    template_version: Mapped[int] = mapped_column(Integer)
    api_key_id: Mapped[uuid.UUID | None]
    key_type: Mapped[str] = mapped_column(String(8))
    original_file_name: Mapped[str] = mapped_column(Text)
    notification_type: Mapped[str] = mapped_column(String(5))
    status: Mapped[str] = mapped_column(String(20), server_default=text("'pending'"))
    notification_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    rows_saved: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    reference: Mapped[str | None] = mapped_column(Text)
    reply_to_id: Mapped[uuid.UUID | None]
    sender: Mapped[str | None] = mapped_column(Text)
    scheduled_for: Mapped[datetime | None]
    processing_started: Mapped[datetime | None]
    processing_finished: Mapped[datetime | None]


class JobRow(Base):
    """One validated row of a job; its notification id is derived from (job id, row number)."""

    __tablename__ = "job_rows"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    row_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient: Mapped[str] = mapped_column(Text)
    personalisation: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    client_reference: Mapped[str | None] = mapped_column(Text)

"""The `complaints` table: recipients who marked an email as spam (status of the notification unchanged)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from notify.db import Base, new_id


class Complaint(Base):
    """One complaint event from SES; `feedback_id` makes a repeated event a no-op."""

    __tablename__ = "complaints"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    notification_id: Mapped[uuid.UUID] = mapped_column(index=True)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    feedback_id: Mapped[str] = mapped_column(String(255), unique=True)
    complaint_type: Mapped[str | None] = mapped_column(String(50))
    complaint_date: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

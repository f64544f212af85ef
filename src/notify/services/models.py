"""The `services` table: one sending organisation or team."""

from __future__ import annotations

import uuid

from sqlalchemy import Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from notify.db import Base, TimestampedMixin, new_id


class Service(TimestampedMixin, Base):
    """A service: owns keys, templates and notifications."""

    __tablename__ = "services"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    active: Mapped[bool] = mapped_column(server_default=text("true"))
    restricted: Mapped[bool] = mapped_column(server_default=text("false"))
    email_from: Mapped[str] = mapped_column(String(255))
    sending_domain: Mapped[str | None] = mapped_column(String(255))
    sms_sender: Mapped[str | None] = mapped_column(String(11))
    rate_limit: Mapped[int] = mapped_column(Integer, server_default=text("1000"))
    email_daily_limit: Mapped[int] = mapped_column(Integer, server_default=text("250000"))
    sms_daily_limit: Mapped[int] = mapped_column(Integer, server_default=text("250000"))
    retention_days: Mapped[int] = mapped_column(Integer, server_default=text("7"))

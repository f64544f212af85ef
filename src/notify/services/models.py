"""The `services` table: one sending organisation or team."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, func, text
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


class ServiceSafelist(Base):
    """A recipient a team key (or any key of a trial service) may send to, stored normalised."""

    __tablename__ = "service_safelist"
    __table_args__ = (
        UniqueConstraint("service_id", "recipient_type", "recipient"),
        CheckConstraint("recipient_type IN ('email', 'mobile')", name="recipient_type"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    recipient_type: Mapped[str] = mapped_column(String(6))
    recipient: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ServiceEmailReplyTo(TimestampedMixin, Base):
    """A Reply-To address a service's emails may carry; one (not archived) is the default."""

    __tablename__ = "service_email_reply_to"
    __table_args__ = (
        Index(
            "uq_service_email_reply_to_default",
            "service_id",
            unique=True,
            postgresql_where=text("is_default AND NOT archived"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    email_address: Mapped[str] = mapped_column(String(255))
    is_default: Mapped[bool] = mapped_column(server_default=text("false"))
    archived: Mapped[bool] = mapped_column(server_default=text("false"))


class ServiceSmsSender(TimestampedMixin, Base):
    """A sender id (up to 11 letters and digits) or a phone number a service's text messages may come from."""

    __tablename__ = "service_sms_senders"
    __table_args__ = (
        Index("uq_service_sms_senders_default", "service_id", unique=True, postgresql_where=text("is_default")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    sms_sender: Mapped[str] = mapped_column(String(16))
    is_default: Mapped[bool] = mapped_column(server_default=text("false"))

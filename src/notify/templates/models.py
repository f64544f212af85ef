"""The `templates` table and its immutable `template_versions`."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, ForeignKeyConstraint, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from notify.db import Base, TimestampedMixin, new_id

TEMPLATE_TYPES = ("email", "sms")
PROCESS_TYPES = ("priority", "normal", "bulk")


class Template(TimestampedMixin, Base):
    """The current version of a template; every change also writes a `TemplateVersion`."""

    __tablename__ = "templates"
    __table_args__ = (
        CheckConstraint(f"template_type IN {TEMPLATE_TYPES!r}", name="template_type"),
        CheckConstraint(f"process_type IN {PROCESS_TYPES!r}", name="process_type"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    template_type: Mapped[str] = mapped_column(String(5))
    name: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    process_type: Mapped[str] = mapped_column(String(8), server_default=text("'normal'"))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    archived: Mapped[bool] = mapped_column(server_default=text("false"))


class TemplateVersion(Base):
    """One immutable version of a template, as notifications reference it."""

    __tablename__ = "template_versions"
    __table_args__ = (ForeignKeyConstraint(["template_id"], ["templates.id"], ondelete="CASCADE"),)

    template_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    template_type: Mapped[str] = mapped_column(String(5))
    name: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    process_type: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

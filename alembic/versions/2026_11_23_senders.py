"""senders: a service's reply-to addresses and SMS senders

Revision ID: 0005_senders
Revises: 0004_jobs
Create Date: 2026-11-23 21:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005_senders"
down_revision: str | None = "0004_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _common(table: str) -> list[Any]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name=op.f(f"fk_{table}_service_id_services"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def upgrade() -> None:
    op.create_table(
        "service_email_reply_to",
        *_common("service_email_reply_to"),
        sa.Column("email_address", sa.String(length=255), nullable=False),
        sa.Column("archived", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.create_index(
        op.f("ix_service_email_reply_to_service_id"), "service_email_reply_to", ["service_id"], unique=False
    )
    op.create_index(
        "uq_service_email_reply_to_default",
        "service_email_reply_to",
        ["service_id"],
        unique=True,
        postgresql_where=sa.text("is_default AND NOT archived"),
    )
    op.create_table(
        "service_sms_senders",
        *_common("service_sms_senders"),
        sa.Column("sms_sender", sa.String(length=16), nullable=False),
    )
    op.create_index(op.f("ix_service_sms_senders_service_id"), "service_sms_senders", ["service_id"], unique=False)
    op.create_index(
        "uq_service_sms_senders_default",
        "service_sms_senders",
        ["service_id"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )


def downgrade() -> None:
    op.drop_index("uq_service_sms_senders_default", table_name="service_sms_senders")
    op.drop_index(op.f("ix_service_sms_senders_service_id"), table_name="service_sms_senders")
    op.drop_table("service_sms_senders")
    op.drop_index("uq_service_email_reply_to_default", table_name="service_email_reply_to")
    op.drop_index(op.f("ix_service_email_reply_to_service_id"), table_name="service_email_reply_to")
    op.drop_table("service_email_reply_to")

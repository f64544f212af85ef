"""complaints and service callbacks

Revision ID: 0002_receipts
Revises: 92bbb893e57b
Create Date: 2026-11-23 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_receipts"
down_revision: str | None = "92bbb893e57b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "complaints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("feedback_id", sa.String(length=255), nullable=False),
        sa.Column("complaint_type", sa.String(length=50), nullable=True),
        sa.Column("complaint_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name=op.f("fk_complaints_service_id_services"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaints")),
        sa.UniqueConstraint("feedback_id", name=op.f("uq_complaints_feedback_id")),
    )
    op.create_index(op.f("ix_complaints_notification_id"), "complaints", ["notification_id"])
    op.create_index(op.f("ix_complaints_service_id"), "complaints", ["service_id"])
    op.create_table(
        "service_callbacks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("callback_type", sa.String(length=20), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("bearer_token", sa.LargeBinary(), nullable=False),
        sa.Column("failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "callback_type IN ('delivery_status', 'complaint')", name=op.f("ck_service_callbacks_callback_type")
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_service_callbacks_service_id_services"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_callbacks")),
        sa.UniqueConstraint("service_id", "callback_type", name=op.f("uq_service_callbacks_service_id_callback_type")),
    )


def downgrade() -> None:
    op.drop_table("service_callbacks")
    op.drop_index(op.f("ix_complaints_service_id"), table_name="complaints")
    op.drop_index(op.f("ix_complaints_notification_id"), table_name="complaints")
    op.drop_table("complaints")

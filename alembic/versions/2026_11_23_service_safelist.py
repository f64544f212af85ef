"""service safelist: the recipients team keys and trial services may send to

Revision ID: 0003_service_safelist
Revises: 92bbb893e57b
Create Date: 2026-11-23 18:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_service_safelist"
down_revision: str | None = "0002_receipts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "service_safelist",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("recipient_type", sa.String(length=6), nullable=False),
        sa.Column("recipient", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("recipient_type IN ('email', 'mobile')", name=op.f("ck_service_safelist_recipient_type")),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name=op.f("fk_service_safelist_service_id_services"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_safelist")),
        sa.UniqueConstraint(
            "service_id",
            "recipient_type",
            "recipient",
            name=op.f("uq_service_safelist_service_id_recipient_type_recipient"),
        ),
    )
    op.create_index(op.f("ix_service_safelist_service_id"), "service_safelist", ["service_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_service_safelist_service_id"), table_name="service_safelist")
    op.drop_table("service_safelist")

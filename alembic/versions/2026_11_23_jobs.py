"""bulk jobs, their rows, cancelled notifications and the due-scheduled index

Revision ID: 0004_jobs
Revises: 92bbb893e57b
Create Date: 2026-11-23 18:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_jobs"
down_revision: str | None = "0003_service_safelist"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES = "'created', 'sending', 'sent', 'delivered', 'permanent-failure', 'temporary-failure', 'technical-failure'"


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column("template_version", sa.Integer(), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), nullable=True),
        sa.Column("key_type", sa.String(length=8), nullable=False),
        sa.Column("original_file_name", sa.Text(), nullable=False),
        sa.Column("notification_type", sa.String(length=5), nullable=False),
        sa.Column("status", sa.String(length=20), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("notification_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("rows_saved", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("reply_to_id", sa.Uuid(), nullable=True),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processing_started", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processing_finished", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("key_type IN ('normal', 'team', 'test')", name=op.f("ck_jobs_key_type")),
        sa.CheckConstraint("notification_type IN ('email', 'sms')", name=op.f("ck_jobs_notification_type")),
        sa.CheckConstraint(
            "status IN ('pending', 'scheduled', 'in progress', 'finished', 'cancelled', 'error')",
            name=op.f("ck_jobs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name=op.f("fk_jobs_service_id_services"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_status_scheduled_for", "jobs", ["status", "scheduled_for"], unique=False)
    op.create_index("ix_jobs_service_id_created_at", "jobs", ["service_id", "created_at"], unique=False)
    op.create_table(
        "job_rows",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("personalisation", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("client_reference", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_job_rows_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "row_number", name=op.f("pk_job_rows")),
    )
    op.drop_constraint(op.f("ck_notifications_status"), "notifications", type_="check")
    op.create_check_constraint(
        op.f("ck_notifications_status"), "notifications", f"status IN ({_STATUSES}, 'cancelled')"
    )
    # send-scheduled-notifications looks only at rows that wait for their time: a small partial index.
    op.create_index(
        "ix_notifications_scheduled_due",
        "notifications",
        ["scheduled_for"],
        unique=False,
        postgresql_where=sa.text("status = 'created' AND scheduled_for IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_scheduled_due", table_name="notifications")
    op.execute("UPDATE notifications SET status = 'technical-failure' WHERE status = 'cancelled'")
    op.drop_constraint(op.f("ck_notifications_status"), "notifications", type_="check")
    op.create_check_constraint(op.f("ck_notifications_status"), "notifications", f"status IN ({_STATUSES})")
    op.drop_table("job_rows")
    op.drop_index("ix_jobs_service_id_created_at", table_name="jobs")
    op.drop_index("ix_jobs_status_scheduled_for", table_name="jobs")
    op.drop_table("jobs")

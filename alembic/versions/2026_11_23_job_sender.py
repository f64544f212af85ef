"""job sender: the reply-to address or SMS sender a bulk job's notifications use

Revision ID: 0006_job_sender
Revises: 0005_senders
Create Date: 2026-11-23 20:22:35.627616
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_job_sender"
down_revision: str | None = "0005_senders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("sender", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "sender")

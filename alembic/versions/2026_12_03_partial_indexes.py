"""partial indexes for notifications.reference and the job-row key: rows without a value are not indexed

Revision ID: 0007_partial_indexes
Revises: 0006_job_sender
Create Date: 2026-12-03 12:30:00

A notification's row is written three times on its way out (saved, claimed, sent), and each version enters every
index. `reference` is NULL until the provider answers, and `job_id` is NULL for every notification sent through
the API: two of the five indexes took entries no query looks up. Both become partial (`… IS NOT NULL`);
PostgreSQL still uses them for `reference = ANY(…)` and `job_id = …`, and the job-row index still makes a row
saved twice a no-op (`ON CONFLICT DO NOTHING`).

The indexes are built with CREATE INDEX CONCURRENTLY, outside a transaction, so a large table keeps taking writes
while they build; the old ones are dropped only once the new ones are valid. A build that was interrupted leaves
an invalid index under the new name: running the migration again drops it and builds it afresh.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007_partial_indexes"
down_revision: str | None = "0006_job_sender"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFERENCE = "ix_notifications_reference"
JOB_ROW = "uq_notifications_job_id_job_row_number"
_RENAME = "ALTER INDEX {building} RENAME TO {name}"


def _swap_index(name: str, create: str, drop_old: str, adopt: str = _RENAME) -> None:
    """Build `create` concurrently as `name`_building, run `drop_old`, then `adopt` it as `name`.

    `create` and `adopt` are formatted with `building` and `name`. A half-built index left by an interrupted run is
    dropped first.
    """
    building = f"{name}_building"
    op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {building}")
    op.execute(create.format(building=building, name=name))
    op.execute(drop_old)
    op.execute(adopt.format(building=building, name=name))


def upgrade() -> None:
    with op.get_context().autocommit_block():
        _swap_index(
            REFERENCE,
            "CREATE INDEX CONCURRENTLY {building} ON notifications (reference) WHERE reference IS NOT NULL",
            f"DROP INDEX CONCURRENTLY IF EXISTS {REFERENCE}",
        )
        _swap_index(
            JOB_ROW,
            "CREATE UNIQUE INDEX CONCURRENTLY {building} ON notifications (job_id, job_row_number)"
            " WHERE job_id IS NOT NULL",
            f"ALTER TABLE notifications DROP CONSTRAINT IF EXISTS {JOB_ROW}",
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        _swap_index(
            REFERENCE,
            "CREATE INDEX CONCURRENTLY {building} ON notifications (reference)",
            f"DROP INDEX CONCURRENTLY IF EXISTS {REFERENCE}",
        )
        _swap_index(
            JOB_ROW,
            "CREATE UNIQUE INDEX CONCURRENTLY {building} ON notifications (job_id, job_row_number)",
            f"DROP INDEX CONCURRENTLY IF EXISTS {JOB_ROW}",
            # The constraint takes the index over and renames it.
            adopt="ALTER TABLE notifications ADD CONSTRAINT {name} UNIQUE USING INDEX {building}",
        )

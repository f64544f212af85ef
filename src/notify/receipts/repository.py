"""Set-based SQL for receipts, complaints and retention."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from notify.db import batch_join
from notify.receipts.schemas import Applied, ComplaintReceipt, StatusReceipt

_KNOWN = text("SELECT DISTINCT reference FROM notifications WHERE reference = ANY(CAST(:references AS text[]))")

# The guards make events order- and repeat-proof: a delivery only moves a row that is still in flight, so a late
# delivery never overwrites a failure; a failure may replace `delivered` (SES can report a bounce after delivery)
# and a permanent failure may replace a temporary one; a row already in the target status is left alone. The rows
# are found by `reference`, and the guards keep the planner off the status index (see notify.delivery.repository).
_APPLY = batch_join(
    """
    UPDATE notifications AS n
    SET status = u.status, feedback_type = u.feedback_type, feedback_subtype = u.feedback_subtype,
        feedback_id = u.feedback_id, completed_at = now(), updated_at = now()
    FROM unnest(CAST(:references AS text[]), CAST(:statuses AS text[]), CAST(:feedback_types AS text[]),
                CAST(:feedback_subtypes AS text[]), CAST(:feedback_ids AS text[]))
         AS u(reference, status, feedback_type, feedback_subtype, feedback_id)
    WHERE n.reference = ANY(CAST(:references AS text[])) AND n.reference = u.reference AND n.status <> u.status
      AND (
        n.status || '' IN ('sending', 'sent')
        OR (u.status IN ('permanent-failure', 'temporary-failure') AND n.status || '' = 'delivered')
        OR (u.status = 'permanent-failure' AND n.status || '' = 'temporary-failure')
      )
    RETURNING n.id, n.status, n.notification_type, n.created_at, n.sent_at
    """
)

_INSERT_COMPLAINTS = text(
    """
    INSERT INTO complaints (id, notification_id, service_id, feedback_id, complaint_type, complaint_date)
    SELECT gen_random_uuid(), n.id, n.service_id, u.feedback_id, u.complaint_type, u.complaint_date
    FROM unnest(CAST(:references AS text[]), CAST(:feedback_ids AS text[]), CAST(:complaint_types AS text[]),
                CAST(:complaint_dates AS timestamptz[])) AS u(reference, feedback_id, complaint_type, complaint_date)
    JOIN notifications AS n ON n.reference = u.reference
    ON CONFLICT (feedback_id) DO NOTHING
    RETURNING id
    """
)

# Bounded batches: one statement never holds locks on more than `:limit` rows, so the API keeps writing meanwhile.
_DELETE_EXPIRED = text(
    """
    DELETE FROM notifications
    WHERE id IN (
        SELECT n.id FROM notifications AS n JOIN services AS s ON s.id = n.service_id
        WHERE n.created_at < now() - make_interval(days => s.retention_days)
        LIMIT :limit
    )
    """
)


async def known_references(session: AsyncSession, references: Sequence[str]) -> set[str]:
    """Return which of `references` belong to a saved notification."""
    if not references:
        return set()
    result = await session.execute(_KNOWN, {"references": list(set(references))})
    return {row[0] for row in result}


async def apply_statuses(session: AsyncSession, receipts: Sequence[StatusReceipt]) -> list[Applied]:
    """Apply every receipt in one statement; return the notifications whose status changed."""
    if not receipts:
        return []
    result = await _APPLY.execute(
        session,
        {
            "references": [r.reference for r in receipts],
            "statuses": [r.status for r in receipts],
            "feedback_types": [r.feedback_type for r in receipts],
            "feedback_subtypes": [r.feedback_subtype for r in receipts],
            "feedback_ids": [r.feedback_id for r in receipts],
        },
    )
    return [Applied(row.id, row.status, row.notification_type, row.created_at, row.sent_at) for row in result]


async def insert_complaints(session: AsyncSession, complaints: Sequence[ComplaintReceipt]) -> list[uuid.UUID]:
    """Record complaints (a repeated feedback id is ignored); return the ids of the new rows."""
    if not complaints:
        return []
    result = await session.execute(
        _INSERT_COMPLAINTS,
        {
            "references": [c.reference for c in complaints],
            "feedback_ids": [c.feedback_id for c in complaints],
            "complaint_types": [c.complaint_type for c in complaints],
            "complaint_dates": [c.complaint_date for c in complaints],
        },
    )
    return list(result.scalars())


async def delete_expired(session: AsyncSession, limit: int) -> int:
    """Delete up to `limit` notifications older than their service's retention; return how many."""
    result = await session.execute(_DELETE_EXPIRED, {"limit": limit})
    return int(getattr(result, "rowcount", 0) or 0)

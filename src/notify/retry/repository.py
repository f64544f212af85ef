"""Set-based SQL of `notify retry`: find failed notifications, and put them back to `created`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from notify.notifications import statuses

_FAILED = list(statuses.FAILED)

_BY_IDS = text(
    """
    SELECT id, notification_type, status, feedback_subtype, created_at
    FROM notifications
    WHERE id = ANY(CAST(:ids AS uuid[])) AND status || '' = ANY(CAST(:failed AS text[]))
    ORDER BY id
    """
)

# Keyset pagination on id: a row reset earlier in the run no longer matches, and no page is read twice.
_BY_FILTER = text(
    """
    SELECT id, notification_type, status, feedback_subtype, created_at
    FROM notifications
    WHERE service_id = :service_id AND status = :status
      AND created_at >= :since AND created_at < :until
      AND (CAST(:after AS uuid) IS NULL OR id > CAST(:after AS uuid))
    ORDER BY id
    LIMIT :limit
    """
)

_COUNT_FILTER = text(
    """
    SELECT count(*) FROM notifications
    WHERE service_id = :service_id AND status = :status AND created_at >= :since AND created_at < :until
    """
)

# The status guard makes a retry of a row that was delivered (or already reset, or is sending) a no-op. It is an
# expression so the rows are found by primary key, never through the status index (see notify.delivery.repository).
_RESET = text(
    """
    UPDATE notifications
    SET status = 'created', reference = NULL, sent_at = NULL, sent_by = NULL, completed_at = NULL,
        sending_started_at = NULL, provider_response = NULL, feedback_type = NULL, feedback_subtype = NULL,
        feedback_id = NULL, attempts = 0, next_attempt_at = NULL, updated_at = now()
    WHERE id = ANY(CAST(:ids AS uuid[])) AND status || '' = ANY(CAST(:failed AS text[]))
    RETURNING id, notification_type
    """
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A failed notification that may be sent again."""

    id: uuid.UUID
    notification_type: str
    status: str
    feedback_subtype: str | None
    created_at: datetime


async def failed_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Candidate]:
    """Return which of `ids` are in a failure status."""
    if not ids:
        return []
    result = await session.execute(_BY_IDS, {"ids": list(ids), "failed": _FAILED})
    return [Candidate(**row._mapping) for row in result]


async def failed_by_filter(
    session: AsyncSession,
    *,
    service_id: uuid.UUID,
    status: str,
    since: datetime,
    until: datetime,
    after: uuid.UUID | None,
    limit: int,
) -> list[Candidate]:
    """Return the next page (ids after `after`) of a service's notifications in `status` created in [since, until)."""
    params = {
        "service_id": service_id,
        "status": status,
        "since": since,
        "until": until,
        "after": after,
        "limit": limit,
    }
    return [Candidate(**row._mapping) for row in await session.execute(_BY_FILTER, params)]


async def count_by_filter(
    session: AsyncSession, *, service_id: uuid.UUID, status: str, since: datetime, until: datetime
) -> int:
    """Count a service's notifications in `status` created in [since, until)."""
    params = {"service_id": service_id, "status": status, "since": since, "until": until}
    return int((await session.execute(_COUNT_FILTER, params)).scalar_one())


async def reset(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[tuple[uuid.UUID, str]]:
    """Put the failed ones of `ids` back to `created` as if never sent; return `(id, type)` of those reset."""
    if not ids:
        return []
    result = await session.execute(_RESET, {"ids": list(ids), "failed": _FAILED})
    return [(row.id, row.notification_type) for row in result]

"""Set-based SQL of the recovery jobs: stale leases, rows waiting too long, rows past their lifetime."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# The worker that claimed these rows died before the provider answered (no reference): give them back.
_RELEASE_EXPIRED_LEASES = text(
    """
    UPDATE notifications
    SET status = 'created', sending_started_at = NULL, updated_at = now()
    WHERE status = 'sending' AND reference IS NULL
      AND sending_started_at < now() - make_interval(secs => :lease_s)
    RETURNING id, notification_type
    """
)

_WAITING = text(
    """
    SELECT id, notification_type
    FROM notifications
    WHERE status = 'created' AND created_at < now() - make_interval(secs => :after_s)
      AND (scheduled_for IS NULL OR scheduled_for <= now())
      AND (next_attempt_at IS NULL OR next_attempt_at <= now())
    ORDER BY created_at
    LIMIT :limit
    """
)

# Chunked with SKIP LOCKED so a nightly run over a large backlog never holds long locks on the hot table.
_TIME_OUT = text(
    """
    UPDATE notifications AS n
    SET status = :new_status, completed_at = now(), updated_at = now(),
        provider_response = coalesce(n.provider_response, :reason)
    WHERE n.id IN (
        SELECT id FROM notifications
        WHERE status = :old_status AND created_at < now() - make_interval(secs => :after_s)
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING n.id
    """
)


async def release_expired_leases(session: AsyncSession, lease_s: int) -> list[tuple[uuid.UUID, str]]:
    """Move rows stuck in `sending` without a reference for longer than the lease back to `created`."""
    result = await session.execute(_RELEASE_EXPIRED_LEASES, {"lease_s": float(lease_s)})
    return [(row.id, row.notification_type) for row in result]


async def waiting_rows(session: AsyncSession, after_s: int, limit: int) -> list[tuple[uuid.UUID, str]]:
    """Return `(id, type)` of due rows still `created` after `after_s` seconds, oldest first."""
    result = await session.execute(_WAITING, {"after_s": float(after_s), "limit": limit})
    return [(row.id, row.notification_type) for row in result]


async def time_out(
    session: AsyncSession, old_status: str, new_status: str, after_s: int, reason: str, limit: int
) -> list[uuid.UUID]:
    """Move up to `limit` rows in `old_status` created more than `after_s` seconds ago to `new_status`."""
    result = await session.execute(
        _TIME_OUT,
        {
            "old_status": old_status,
            "new_status": new_status,
            "after_s": float(after_s),
            "reason": reason,
            "limit": limit,
        },
    )
    return list(result.scalars())

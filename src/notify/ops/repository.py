"""SQL for the operator views."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_COUNTS_SINCE = text(
    """
    SELECT notification_type, status, count(*) AS n
    FROM notifications
    WHERE created_at >= :since
    GROUP BY notification_type, status
    ORDER BY notification_type, status
    """
)


async def counts_by_status(session: AsyncSession, since: datetime) -> list[tuple[str, str, int]]:
    """Count notifications created since `since`, by type and status, in one query."""
    result = await session.execute(_COUNTS_SINCE, {"since": since})
    return [(row.notification_type, row.status, int(row.n)) for row in result]

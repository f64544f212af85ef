"""SQL for attachments: find the S3 keys kept in notifications' personalisation."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Attachment metadata is a personalisation value that is an object with an `s3_key` (notify.attachments.schemas).
_KEYS = text(
    """
    SELECT p.value ->> 's3_key' AS s3_key
    FROM notifications AS n, jsonb_each(n.personalisation) AS p
    WHERE n.id = ANY(CAST(:ids AS uuid[]))
      AND jsonb_typeof(n.personalisation) = 'object'
      AND jsonb_typeof(p.value) = 'object' AND p.value ? 's3_key'
    """
)


async def attachment_keys(session: AsyncSession, notification_ids: Sequence[uuid.UUID]) -> list[str]:
    """Return the S3 keys of the files attached to these notifications (call before deleting the rows)."""
    if not notification_ids:
        return []
    result = await session.execute(_KEYS, {"ids": list(notification_ids)})
    keys: list[str | None] = list(result.scalars())
    return [key for key in keys if key]

"""SQL for service callbacks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_WITH_CALLBACK = text(
    """
    SELECT n.id FROM notifications AS n
    JOIN service_callbacks AS c
      ON c.service_id = n.service_id AND c.callback_type = 'delivery_status' AND c.suspended_at IS NULL
    WHERE n.id = ANY(CAST(:ids AS uuid[]))
    """
)

_COMPLAINTS_WITH_CALLBACK = text(
    """
    SELECT k.id FROM complaints AS k
    JOIN service_callbacks AS c
      ON c.service_id = k.service_id AND c.callback_type = 'complaint' AND c.suspended_at IS NULL
    WHERE k.id = ANY(CAST(:ids AS uuid[]))
    """
)

# LEFT JOIN: a complaint may arrive after retention deleted its notification; the service still hears of it.
_COMPLAINT = text(
    """
    SELECT k.id AS complaint_id, k.notification_id, n.client_reference, n."to",
           coalesce(k.complaint_date, k.created_at) AS complaint_date,
           c.id AS callback_id, c.url, c.bearer_token, c.suspended_at
    FROM complaints AS k
    LEFT JOIN notifications AS n ON n.id = k.notification_id
    JOIN service_callbacks AS c ON c.service_id = k.service_id AND c.callback_type = 'complaint'
    WHERE k.id = :id
    """
)

_DELIVERY = text(
    """
    SELECT n.id, n.client_reference, n."to", n.notification_type, n.provider_response,
           n.created_at, n.completed_at, n.sent_at,
           c.id AS callback_id, c.url, c.bearer_token, c.suspended_at
    FROM notifications AS n
    JOIN service_callbacks AS c ON c.service_id = n.service_id AND c.callback_type = 'delivery_status'
    WHERE n.id = :id
    """
)

_UPSERT = text(
    """
    INSERT INTO service_callbacks (id, service_id, callback_type, url, bearer_token)
    VALUES (:id, :service_id, :callback_type, :url, :bearer_token)
    ON CONFLICT (service_id, callback_type)
    DO UPDATE SET url = EXCLUDED.url, bearer_token = EXCLUDED.bearer_token, failures = 0, suspended_at = NULL,
                  updated_at = now()
    RETURNING id
    """
)

_SUCCEEDED = text("UPDATE service_callbacks SET failures = 0 WHERE id = :id AND failures <> 0")

_FAILED = text(
    """
    UPDATE service_callbacks
    SET failures = failures + 1,
        suspended_at = CASE WHEN failures + 1 >= :suspend_after THEN coalesce(suspended_at, now())
                            ELSE suspended_at END,
        updated_at = now()
    WHERE id = :id
    RETURNING failures, suspended_at
    """
)


@dataclass(frozen=True, slots=True)
class DeliveryTarget:
    """A notification joined with its service's delivery-status callback."""

    id: uuid.UUID
    client_reference: str | None
    to: str
    notification_type: str
    provider_response: str | None
    created_at: datetime
    completed_at: datetime | None
    sent_at: datetime | None
    callback_id: uuid.UUID
    url: str
    bearer_token: bytes
    suspended_at: datetime | None


@dataclass(frozen=True, slots=True)
class ComplaintTarget:
    """A complaint joined with its notification (if still kept) and its service's complaint callback."""

    complaint_id: uuid.UUID
    notification_id: uuid.UUID
    client_reference: str | None
    to: str | None
    complaint_date: datetime
    callback_id: uuid.UUID
    url: str
    bearer_token: bytes
    suspended_at: datetime | None


async def with_callback(session: AsyncSession, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Return which notifications belong to a service with an active delivery-status callback."""
    if not ids:
        return set()
    result = await session.execute(_WITH_CALLBACK, {"ids": list(ids)})
    return {row[0] for row in result}


async def delivery_target(session: AsyncSession, notification_id: uuid.UUID) -> DeliveryTarget | None:
    """Return the notification and its callback, or None when either is gone."""
    row = (await session.execute(_DELIVERY, {"id": notification_id})).first()
    return DeliveryTarget(**row._mapping) if row else None


async def complaints_with_callback(session: AsyncSession, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Return which complaints belong to a service with an active complaint callback."""
    if not ids:
        return set()
    result = await session.execute(_COMPLAINTS_WITH_CALLBACK, {"ids": list(ids)})
    return {row[0] for row in result}


async def complaint_target(session: AsyncSession, complaint_id: uuid.UUID) -> ComplaintTarget | None:
    """Return the complaint and its callback, or None when either is gone."""
    row = (await session.execute(_COMPLAINT, {"id": complaint_id})).first()
    return ComplaintTarget(**row._mapping) if row else None


async def upsert(
    session: AsyncSession, service_id: uuid.UUID, callback_type: str, url: str, bearer_token: bytes
) -> uuid.UUID:
    """Create or replace the service's callback of this type (and lift a suspension)."""
    params = {
        "id": uuid.uuid4(),
        "service_id": service_id,
        "callback_type": callback_type,
        "url": url,
        "bearer_token": bearer_token,
    }
    return uuid.UUID(str((await session.execute(_UPSERT, params)).scalar_one()))


async def record_success(session: AsyncSession, callback_id: uuid.UUID) -> None:
    """Reset the consecutive-failure counter."""
    await session.execute(_SUCCEEDED, {"id": callback_id})


async def record_failure(session: AsyncSession, callback_id: uuid.UUID, suspend_after: int) -> bool:
    """Count a failed attempt; return True when the callback is (now) suspended."""
    row = (await session.execute(_FAILED, {"id": callback_id, "suspend_after": suspend_after})).first()
    return bool(row and row.suspended_at is not None)

"""SQL for reading notifications, always scoped to one service."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import and_, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from notify.notifications.models import Notification


async def get(session: AsyncSession, service_id: uuid.UUID, notification_id: uuid.UUID) -> Notification | None:
    """Return the service's notification, or None (another service's id is simply not found)."""
    return await session.scalar(
        select(Notification).where(Notification.id == notification_id, Notification.service_id == service_id)
    )


async def page(
    session: AsyncSession,
    service_id: uuid.UUID,
    *,
    key_type: str,
    limit: int,
    statuses: Sequence[str] = (),
    template_type: Sequence[str] = (),
    reference: str | None = None,
    older_than: uuid.UUID | None = None,
    include_jobs: bool = False,
) -> Sequence[Notification]:
    """Return one page of the service's notifications made with `key_type`, newest first."""
    query = select(Notification).where(Notification.service_id == service_id, Notification.key_type == key_type)
    if statuses:
        query = query.where(Notification.status.in_(statuses))
    if template_type:
        query = query.where(Notification.notification_type.in_(template_type))
    if reference is not None:
        query = query.where(Notification.client_reference == reference)
    if not include_jobs:
        query = query.where(Notification.job_id.is_(None))
    if older_than is not None:
        anchor = await get(session, service_id, older_than)
        if anchor is None:
            return []
        query = query.where(
            or_(
                Notification.created_at < anchor.created_at,
                and_(Notification.created_at == anchor.created_at, Notification.id < anchor.id),
            )
        )
    query = query.order_by(tuple_(Notification.created_at, Notification.id).desc()).limit(limit)
    return (await session.scalars(query)).all()

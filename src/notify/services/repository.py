"""SQL for services."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notify.auth.models import ApiKey
from notify.services.models import Service


async def get(session: AsyncSession, service_id: uuid.UUID) -> Service | None:
    """Return the service, or None."""
    return await session.get(Service, service_id)


async def get_with_active_keys(session: AsyncSession, service_id: uuid.UUID) -> tuple[Service, Sequence[ApiKey]] | None:
    """Return the service and its keys that are not revoked, or None when there is no such service."""
    service = await session.get(Service, service_id)
    if service is None:
        return None
    keys = (
        await session.scalars(select(ApiKey).where(ApiKey.service_id == service_id, ApiKey.revoked_at.is_(None)))
    ).all()
    return service, keys


async def list_all(session: AsyncSession) -> Sequence[Service]:
    """Return every service, by name."""
    return (await session.scalars(select(Service).order_by(Service.name))).all()


async def get_by_name(session: AsyncSession, name: str) -> Service | None:
    """Return the service with this name, or None."""
    return await session.scalar(select(Service).where(Service.name == name))

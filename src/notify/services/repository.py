"""SQL for services."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notify.auth.models import ApiKey
from notify.services.models import Service, ServiceSafelist


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


async def get_safelist(session: AsyncSession, service_id: uuid.UUID) -> Sequence[str]:
    """Return the normalised recipients on the service's safelist."""
    return (
        await session.scalars(select(ServiceSafelist.recipient).where(ServiceSafelist.service_id == service_id))
    ).all()


async def add_safelist_entry(session: AsyncSession, service_id: uuid.UUID, recipient_type: str, recipient: str) -> None:
    """Add a normalised recipient to the service's safelist (a no-op when it is there already)."""
    await session.execute(
        insert(ServiceSafelist)
        .values(service_id=service_id, recipient_type=recipient_type, recipient=recipient)
        .on_conflict_do_nothing()
    )


async def remove_safelist_entry(session: AsyncSession, service_id: uuid.UUID, recipient: str) -> bool:
    """Remove a normalised recipient from the service's safelist; return whether it was there."""
    result = await session.execute(
        delete(ServiceSafelist).where(ServiceSafelist.service_id == service_id, ServiceSafelist.recipient == recipient)
    )
    return bool(getattr(result, "rowcount", 0))

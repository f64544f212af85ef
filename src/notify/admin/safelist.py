"""Administration of a service's safelist: the recipients its team keys (and trial mode) may send to."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from notify.cache import invalidate_after_commit
from notify.errors import NotFoundError, ValidationError
from notify.notifications import validation
from notify.services import repository as service_repository


def normalise(recipient: str) -> tuple[str, str]:
    """Return `(recipient_type, normalised recipient)` for an email address or a phone number."""
    if "@" in recipient:
        return "email", validation.check_email(recipient)
    try:
        return "mobile", validation.check_phone(recipient)
    except ValidationError as exc:
        raise ValidationError([f"{recipient!r} is neither an email address nor an international phone number"]) from exc


async def add(session: AsyncSession, redis: Redis | None, service_id: uuid.UUID, recipient: str) -> str:
    """Put a recipient on the service's safelist; return it normalised."""
    if await service_repository.get(session, service_id) is None:
        raise NotFoundError(f"No service {service_id}")
    recipient_type, normalised = normalise(recipient)
    await service_repository.add_safelist_entry(session, service_id, recipient_type, normalised)
    invalidate_after_commit(session, redis, service_id)
    return normalised


async def remove(session: AsyncSession, redis: Redis | None, service_id: uuid.UUID, recipient: str) -> bool:
    """Take a recipient off the service's safelist; return whether it was on it."""
    removed = await service_repository.remove_safelist_entry(session, service_id, normalise(recipient)[1])
    invalidate_after_commit(session, redis, service_id)
    return removed


async def list_entries(session: AsyncSession, service_id: uuid.UUID) -> Sequence[str]:
    """Return the service's safelist."""
    return sorted(await service_repository.get_safelist(session, service_id))

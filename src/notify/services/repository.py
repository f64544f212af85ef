"""SQL for services."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Row, delete, literal, select, union_all, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notify.auth.models import ApiKey
from notify.services.models import Service, ServiceEmailReplyTo, ServiceSafelist, ServiceSmsSender


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


async def get_senders(session: AsyncSession, service_id: uuid.UUID) -> Sequence[Row[tuple[str, uuid.UUID, str, bool]]]:
    """Return `(kind, id, value, is_default)` for the service's live reply-to addresses and SMS senders, in one query.

    `kind` is "email" or "sms"; rows come oldest first.
    """
    reply_tos = select(
        literal("email").label("kind"),
        ServiceEmailReplyTo.id,
        ServiceEmailReplyTo.email_address.label("value"),
        ServiceEmailReplyTo.is_default,
        ServiceEmailReplyTo.created_at,
    ).where(ServiceEmailReplyTo.service_id == service_id, ServiceEmailReplyTo.archived.is_(False))
    sms_senders = select(
        literal("sms").label("kind"),
        ServiceSmsSender.id,
        ServiceSmsSender.sms_sender.label("value"),
        ServiceSmsSender.is_default,
        ServiceSmsSender.created_at,
    ).where(ServiceSmsSender.service_id == service_id)
    both = union_all(reply_tos, sms_senders).subquery()
    rows = await session.execute(
        select(both.c.kind, both.c.id, both.c.value, both.c.is_default).order_by(both.c.created_at, both.c.id)
    )
    return rows.all()


async def list_reply_tos(session: AsyncSession, service_id: uuid.UUID) -> Sequence[ServiceEmailReplyTo]:
    """Return the service's reply-to addresses that are not archived, oldest first."""
    return (
        await session.scalars(
            select(ServiceEmailReplyTo)
            .where(ServiceEmailReplyTo.service_id == service_id, ServiceEmailReplyTo.archived.is_(False))
            .order_by(ServiceEmailReplyTo.created_at, ServiceEmailReplyTo.id)
        )
    ).all()


async def list_sms_senders(session: AsyncSession, service_id: uuid.UUID) -> Sequence[ServiceSmsSender]:
    """Return the service's SMS senders, oldest first."""
    return (
        await session.scalars(
            select(ServiceSmsSender)
            .where(ServiceSmsSender.service_id == service_id)
            .order_by(ServiceSmsSender.created_at, ServiceSmsSender.id)
        )
    ).all()


async def clear_default_reply_to(session: AsyncSession, service_id: uuid.UUID) -> None:
    """Make none of the service's reply-to addresses the default."""
    await session.execute(
        update(ServiceEmailReplyTo)
        .where(ServiceEmailReplyTo.service_id == service_id, ServiceEmailReplyTo.is_default.is_(True))
        .values(is_default=False)
    )


async def clear_default_sms_sender(session: AsyncSession, service_id: uuid.UUID) -> None:
    """Make none of the service's SMS senders the default."""
    await session.execute(
        update(ServiceSmsSender)
        .where(ServiceSmsSender.service_id == service_id, ServiceSmsSender.is_default.is_(True))
        .values(is_default=False)
    )

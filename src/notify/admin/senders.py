"""Administration of a service's reply-to addresses and SMS senders (picked by `email_reply_to_id`, `sms_sender_id`)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from notify.cache import invalidate_after_commit
from notify.errors import BadRequestError, NotFoundError, ValidationError
from notify.notifications import validation
from notify.services import repository as service_repository
from notify.services.models import ServiceEmailReplyTo, ServiceSmsSender

# An alphanumeric sender id, as SNS and carriers accept it: 1 to 11 letters and digits, at least one letter.
_SENDER_ID = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9]{1,11}$")


def check_sms_sender(sender: str) -> str:
    """Return the sender as stored: an alphanumeric sender id as given, or a phone number in E.164."""
    cleaned = sender.strip()
    if _SENDER_ID.match(cleaned):
        return cleaned
    if cleaned and not any(c.isalpha() for c in cleaned):
        try:
            return validation.check_phone(cleaned)
        except ValidationError:
            pass
    raise BadRequestError(
        "sms_sender must be 1 to 11 letters and digits (with at least one letter) or an international phone number"
    )


async def add_reply_to(
    session: AsyncSession, redis: Redis | None, service_id: uuid.UUID, email_address: str, *, is_default: bool = False
) -> ServiceEmailReplyTo:
    """Add a reply-to address; the first one, or one added with `is_default`, becomes the default."""
    await _check_service(session, service_id)
    try:
        validation.check_email(email_address)
    except ValidationError as exc:
        raise BadRequestError(f"{email_address!r} is not a valid email address") from exc
    existing = await service_repository.list_reply_tos(session, service_id)
    is_default = is_default or not existing
    if is_default:
        await service_repository.clear_default_reply_to(session, service_id)
    reply_to = ServiceEmailReplyTo(service_id=service_id, email_address=email_address.strip(), is_default=is_default)
    session.add(reply_to)
    await session.flush()
    await session.refresh(reply_to)
    invalidate_after_commit(session, redis, service_id)
    return reply_to


async def list_reply_tos(session: AsyncSession, service_id: uuid.UUID) -> Sequence[ServiceEmailReplyTo]:
    """Return the service's reply-to addresses (not archived), oldest first."""
    await _check_service(session, service_id)
    return await service_repository.list_reply_tos(session, service_id)


async def add_sms_sender(
    session: AsyncSession, redis: Redis | None, service_id: uuid.UUID, sms_sender: str, *, is_default: bool = False
) -> ServiceSmsSender:
    """Add an SMS sender; the first one, or one added with `is_default`, becomes the default."""
    await _check_service(session, service_id)
    value = check_sms_sender(sms_sender)
    existing = await service_repository.list_sms_senders(session, service_id)
    is_default = is_default or not existing
    if is_default:
        await service_repository.clear_default_sms_sender(session, service_id)
    sender = ServiceSmsSender(service_id=service_id, sms_sender=value, is_default=is_default)
    session.add(sender)
    await session.flush()
    await session.refresh(sender)
    invalidate_after_commit(session, redis, service_id)
    return sender


async def list_sms_senders(session: AsyncSession, service_id: uuid.UUID) -> Sequence[ServiceSmsSender]:
    """Return the service's SMS senders, oldest first."""
    await _check_service(session, service_id)
    return await service_repository.list_sms_senders(session, service_id)


async def _check_service(session: AsyncSession, service_id: uuid.UUID) -> None:
    if await service_repository.get(session, service_id) is None:
        raise NotFoundError(f"No service {service_id}")

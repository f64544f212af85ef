"""Administration of services, API keys and templates (used by `notify admin` and, later, the admin API)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from notify.auth.keys import SecretBox, format_key, new_secret
from notify.auth.models import KEY_TYPES, ApiKey
from notify.cache import invalidate_after_commit
from notify.callbacks import service as callback_service
from notify.errors import BadRequestError, NotFoundError
from notify.services import repository as service_repository
from notify.services.models import Service
from notify.templates import repository as template_repository
from notify.templates.models import PROCESS_TYPES, TEMPLATE_TYPES, Template


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly created key: the only time its full string exists outside the client."""

    id: uuid.UUID
    name: str
    key_type: str
    key: str


async def create_service(
    session: AsyncSession,
    *,
    name: str,
    email_from: str | None = None,
    restricted: bool = False,
    rate_limit: int | None = None,
    email_daily_limit: int | None = None,
    sms_daily_limit: int | None = None,
) -> Service:
    """Create a service; names are unique."""
    if await service_repository.get_by_name(session, name) is not None:
        raise BadRequestError(f"A service named {name!r} already exists")
    service = Service(
        name=name,
        email_from=email_from or _email_local_part(name),
        restricted=restricted,
    )
    _apply_limits(service, rate_limit, email_daily_limit, sms_daily_limit)
    session.add(service)
    await session.flush()
    await session.refresh(service)
    return service


async def update_service(
    session: AsyncSession,
    redis: Redis | None,
    service_id: uuid.UUID,
    *,
    rate_limit: int | None = None,
    email_daily_limit: int | None = None,
    sms_daily_limit: int | None = None,
    active: bool | None = None,
) -> Service:
    """Change a service's limits or suspend/resume it."""
    service = await _service(session, service_id)
    _apply_limits(service, rate_limit, email_daily_limit, sms_daily_limit)
    if active is not None:
        service.active = active
    await session.flush()
    invalidate_after_commit(session, redis, service_id)
    return service


async def list_services(session: AsyncSession) -> Sequence[Service]:
    """Return every service."""
    return await service_repository.list_all(session)


async def create_key(
    session: AsyncSession, secret_box: SecretBox, service_id: uuid.UUID, *, name: str, key_type: str = "normal"
) -> NewKey:
    """Create an API key; the returned key string is shown once and never stored in plaintext."""
    if key_type not in KEY_TYPES:
        raise BadRequestError(f"key_type must be one of {', '.join(KEY_TYPES)}")
    service = await _service(session, service_id)
    if service.restricted and key_type == "normal":
        raise BadRequestError("Trial (restricted) services can only create team or test keys")
    secret = new_secret()
    key = ApiKey(service_id=service_id, name=name, key_type=key_type, secret_encrypted=secret_box.encrypt(secret))
    session.add(key)
    await session.flush()
    return NewKey(id=key.id, name=name, key_type=key_type, key=format_key(name, service_id, secret))


async def revoke_key(session: AsyncSession, redis: Redis | None, key_id: uuid.UUID) -> ApiKey:
    """Revoke a key; every process forgets it at once through the cache invalidation channel."""
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise NotFoundError(f"No API key {key_id}")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        await session.flush()
    invalidate_after_commit(session, redis, key.service_id)
    return key


async def create_template(
    session: AsyncSession,
    service_id: uuid.UUID,
    *,
    template_type: str,
    name: str,
    content: str,
    subject: str | None = None,
    process_type: str = "normal",
) -> Template:
    """Create a template at version 1."""
    await _service(session, service_id)
    _check_template(template_type, subject, process_type)
    template = Template(
        service_id=service_id,
        template_type=template_type,
        name=name,
        subject=subject,
        content=content,
        process_type=process_type,
        version=1,
    )
    session.add(template)
    await session.flush()
    template_repository.add_version(session, template)
    await session.flush()
    return template


async def update_template(
    session: AsyncSession,
    redis: Redis | None,
    template_id: uuid.UUID,
    *,
    name: str | None = None,
    content: str | None = None,
    subject: str | None = None,
    process_type: str | None = None,
    archived: bool | None = None,
) -> Template:
    """Change a template; every change makes a new version."""
    template = await session.get(Template, template_id)
    if template is None:
        raise NotFoundError(f"No template {template_id}")
    if name is not None:
        template.name = name
    if content is not None:
        template.content = content
    if subject is not None:
        template.subject = subject
    if process_type is not None:
        template.process_type = process_type
    if archived is not None:
        template.archived = archived
    _check_template(template.template_type, template.subject, template.process_type)
    template.version += 1
    await session.flush()
    template_repository.add_version(session, template)
    await session.flush()
    invalidate_after_commit(session, redis, template.service_id)
    return template


async def list_templates(session: AsyncSession, service_id: uuid.UUID) -> Sequence[Template]:
    """Return a service's templates (archived ones too), by name."""
    await _service(session, service_id)
    return await template_repository.list_for_service(session, service_id)


async def _service(session: AsyncSession, service_id: uuid.UUID) -> Service:
    service = await service_repository.get(session, service_id)
    if service is None:
        raise NotFoundError(f"No service {service_id}")
    return service


def _apply_limits(service: Service, rate_limit: int | None, email_daily: int | None, sms_daily: int | None) -> None:
    if rate_limit is not None:
        service.rate_limit = rate_limit
    if email_daily is not None:
        service.email_daily_limit = email_daily
    if sms_daily is not None:
        service.sms_daily_limit = sms_daily


async def set_callback(
    session: AsyncSession,
    box: SecretBox,
    service_id: uuid.UUID,
    *,
    url: str,
    bearer_token: str,
    callback_type: str = "delivery_status",
) -> uuid.UUID:
    """Create or replace a service's callback (https only; the token is stored encrypted)."""
    if await service_repository.get(session, service_id) is None:
        raise NotFoundError("Service not found")
    return await callback_service.set_callback(
        session, box, service_id, url=url, bearer_token=bearer_token, callback_type=callback_type
    )


def _check_template(template_type: str, subject: str | None, process_type: str) -> None:
    if template_type not in TEMPLATE_TYPES:
        raise BadRequestError(f"template type must be one of {', '.join(TEMPLATE_TYPES)}")
    if process_type not in PROCESS_TYPES:
        raise BadRequestError(f"process type must be one of {', '.join(PROCESS_TYPES)}")
    if template_type == "email" and not subject:
        raise BadRequestError("An email template needs a subject")


def _email_local_part(name: str) -> str:
    slug = "".join(c if c.isalnum() else "." for c in name.lower()).strip(".")
    return ".".join(part for part in slug.split(".") if part) or "notify"

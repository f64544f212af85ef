"""Small async factories for test data, through the same admin functions operators use."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.admin import service as admin
from notify.auth.keys import SecretBox
from notify.db import transaction
from notify.settings import Settings


@dataclass(frozen=True)
class Sample:
    """A service with a key and one email and one SMS template."""

    service_id: uuid.UUID
    key: str
    key_id: uuid.UUID
    email_template_id: uuid.UUID
    sms_template_id: uuid.UUID


async def create_sample(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    name: str = "Sample service",
    key_type: str = "normal",
    email_content: str = "Hello ((name)), your code is ((code)).",
    email_subject: str = "Code for ((name))",
    sms_content: str = "Your code is ((code))",
) -> Sample:
    """Create a service, a key and two templates; return their ids and the key string."""
    box = SecretBox(settings.api.secret_key.get_secret_value())
    async with transaction(sessionmaker) as session:
        service = await admin.create_service(session, name=name, email_from="sample")
        key = await admin.create_key(session, box, service.id, name="test key", key_type=key_type)
        email = await admin.create_template(
            session, service.id, template_type="email", name="email", subject=email_subject, content=email_content
        )
        sms = await admin.create_template(session, service.id, template_type="sms", name="sms", content=sms_content)
    return Sample(service.id, key.key, key.id, email.id, sms.id)

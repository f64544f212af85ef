"""SQL for templates."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notify.templates.models import Template, TemplateVersion


async def get(session: AsyncSession, service_id: uuid.UUID, template_id: uuid.UUID) -> Template | None:
    """Return the service's template, or None."""
    return await session.scalar(select(Template).where(Template.id == template_id, Template.service_id == service_id))


async def get_version(
    session: AsyncSession, service_id: uuid.UUID, template_id: uuid.UUID, version: int
) -> TemplateVersion | None:
    """Return one version of the service's template, or None."""
    return await session.scalar(
        select(TemplateVersion).where(
            TemplateVersion.template_id == template_id,
            TemplateVersion.service_id == service_id,
            TemplateVersion.version == version,
        )
    )


async def list_for_service(session: AsyncSession, service_id: uuid.UUID) -> Sequence[Template]:
    """Return the service's templates, by name."""
    return (
        await session.scalars(select(Template).where(Template.service_id == service_id).order_by(Template.name))
    ).all()


def add_version(session: AsyncSession, template: Template) -> None:
    """Record the template's current content as an immutable version."""
    session.add(
        TemplateVersion(
            template_id=template.id,
            version=template.version,
            service_id=template.service_id,
            template_type=template.template_type,
            name=template.name,
            subject=template.subject,
            content=template.content,
            process_type=template.process_type,
        )
    )

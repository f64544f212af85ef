"""Template lookups for the hot path: cached in process, loaded from PostgreSQL on a miss."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.cache import TtlCache
from notify.errors import BadRequestError
from notify.notifications import validation
from notify.templates import repository


@dataclass(frozen=True, slots=True)
class TemplateSnapshot:
    """The current version of a template, as the API renders it."""

    id: uuid.UUID
    service_id: uuid.UUID
    template_type: str
    version: int
    name: str
    subject: str | None
    content: str
    process_type: str
    archived: bool


class TemplateDirectory:
    """Answers "what does this template say now" without touching the database when warm."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], ttl_s: float) -> None:
        self._sessionmaker = sessionmaker
        self._cache: TtlCache[tuple[uuid.UUID, uuid.UUID], TemplateSnapshot] = TtlCache(ttl_s)

    async def get(self, service_id: uuid.UUID, template_id: uuid.UUID) -> TemplateSnapshot | None:
        """Return the service's template, or None when it has no such template."""
        return await self._cache.get_or_load((service_id, template_id), lambda: self._load(service_id, template_id))

    async def _load(self, service_id: uuid.UUID, template_id: uuid.UUID) -> TemplateSnapshot | None:
        async with self._sessionmaker() as session:
            template = await repository.get(session, service_id, template_id)
        if template is None:
            return None
        snapshot = TemplateSnapshot(
            id=template.id,
            service_id=template.service_id,
            template_type=template.template_type,
            version=template.version,
            name=template.name,
            subject=template.subject,
            content=template.content,
            process_type=template.process_type,
            archived=template.archived,
        )
        return snapshot

    async def usable(self, service_id: uuid.UUID, raw_template_id: str) -> TemplateSnapshot:
        """Return the template a notification or job may be sent with, or raise the v2 400 that says why not."""
        template = await self.get(service_id, validation.check_uuid("template_id", raw_template_id))
        if template is None:
            raise BadRequestError("Template not found")
        if template.archived:
            raise BadRequestError(f"Template {template.id} has been deleted")
        return template

    def invalidate(self, service_id: uuid.UUID | None) -> None:
        """Forget one service's templates, or everything when `service_id` is None."""
        if service_id is None:
            self._cache.clear()
        else:
            self._cache.discard(lambda key: key[0] == service_id)


class TemplateVersions:
    """Immutable template versions, cached for the life of the worker process."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._cache: dict[tuple[uuid.UUID, int], TemplateSnapshot] = {}
        self._max_entries = max_entries

    async def get(
        self, session: AsyncSession, service_id: uuid.UUID, template_id: uuid.UUID, version: int
    ) -> TemplateSnapshot | None:
        """Return that version of the template, or None."""
        key = (template_id, version)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        found = await repository.get_version(session, service_id, template_id, version)
        if found is None:
            return None
        snapshot = TemplateSnapshot(
            id=found.template_id,
            service_id=found.service_id,
            template_type=found.template_type,
            version=found.version,
            name=found.name,
            subject=found.subject,
            content=found.content,
            process_type=found.process_type,
            archived=False,
        )
        if len(self._cache) >= self._max_entries:
            self._cache.clear()
        self._cache[key] = snapshot
        return snapshot

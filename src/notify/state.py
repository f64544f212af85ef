"""What every API request can reach: the process's pools, caches and settings, built once in the lifespan."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from notify.attachments.storage import AttachmentStorage
from notify.redis import Commands
from notify.services.service import ServiceDirectory
from notify.settings import Settings
from notify.templates.service import TemplateDirectory


@dataclass
class ApiState:
    """Shared resources of one API process."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    commands: Commands  # the hot path's limits and XADD: `redis` itself, or a CommandBatcher over it
    services: ServiceDirectory
    templates: TemplateDirectory
    s3: AttachmentStorage | None = None  # attachments bucket; its client opens on the first file

    def invalidate(self, service_id: uuid.UUID | None) -> None:
        """Forget cached service and template data (None: everything)."""
        self.services.invalidate(service_id)
        self.templates.invalidate(service_id)

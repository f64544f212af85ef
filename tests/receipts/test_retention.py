"""delete-expired-notifications removes exactly what is past each service's retention (DESIGN §2.3)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.context import WorkerContext
from notify.notifications.models import Notification
from notify.receipts import service
from notify.services.models import Service
from notify.settings import Settings
from tests.factories import create_sample
from tests.receipts.conftest import create_notification


async def test_retention_deletes_only_expired_notifications_in_batches(
    settings: Settings, worker_ctx: WorkerContext, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    default = await create_sample(sessionmaker, settings, name="Seven days")
    short = await create_sample(sessionmaker, settings, name="Three days")
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Service).where(Service.id == short.service_id).values(retention_days=3))
    keep: set[uuid.UUID] = set()
    expired: set[uuid.UUID] = set()
    for sample, age_days, is_expired in (
        (default, 8, True),
        (default, 8, True),
        (default, 8, True),
        (default, 6, False),
        (short, 4, True),
        (short, 2, False),
    ):
        notification_id = await create_notification(
            sessionmaker, sample.service_id, sample.email_template_id, reference=None, age=timedelta(days=age_days)
        )
        (expired if is_expired else keep).add(notification_id)
    worker_ctx.settings.worker.retention_batch_size = 2

    deleted = await service.delete_expired_notifications(worker_ctx)

    async with sessionmaker() as session:
        remaining = set((await session.scalars(select(Notification.id))).all())
    assert deleted == len(expired) == 4
    assert remaining == keep

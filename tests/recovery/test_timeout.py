"""timeout-notifications: rows that never left, or never got a receipt, fail after three days."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.context import WorkerContext
from notify.notifications.models import Notification
from notify.recovery import service as recovery
from notify.settings import Settings
from tests.factories import create_sample
from tests.recovery.conftest import save_without_delivery


async def test_created_and_sending_rows_older_than_three_days_fail_and_the_rest_stay(
    recovery_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    recovery_ctx: WorkerContext,
) -> None:
    sample = await create_sample(sessionmaker, recovery_settings)
    never_sent, no_receipt, delivered, young = await save_without_delivery(client, sample, recovery_ctx, 4)
    four_days_ago = datetime.now(UTC) - timedelta(days=4)
    changes: dict[str, dict[str, object]] = {
        never_sent: {"created_at": four_days_ago},
        no_receipt: {"created_at": four_days_ago, "status": "sending", "reference": "ses-1"},
        delivered: {"created_at": four_days_ago, "status": "delivered", "reference": "ses-2"},
        young: {"created_at": datetime.now(UTC) - timedelta(days=2)},
    }
    async with sessionmaker() as session, session.begin():
        for notification_id, values in changes.items():
            await session.execute(
                update(Notification).where(Notification.id == uuid.UUID(notification_id)).values(**values)
            )

    counts = await recovery.timeout_notifications(recovery_ctx)

    assert counts == {"technical-failure": 1, "temporary-failure": 1}
    async with sessionmaker() as session:
        rows = {str(row.id): row for row in (await session.scalars(select(Notification))).all()}
    assert rows[never_sent].status == "technical-failure"
    assert rows[never_sent].provider_response == "Not sent within 3 days"
    assert rows[never_sent].completed_at is not None
    assert rows[no_receipt].status == "temporary-failure"
    assert rows[delivered].status == "delivered"
    assert rows[young].status == "created"
    assert await recovery.timeout_notifications(recovery_ctx) == {"technical-failure": 0, "temporary-failure": 0}

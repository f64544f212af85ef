"""Test keys never reach AWS, yet get their final status through the receipt path (DESIGN §4.6)."""

from __future__ import annotations

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.context import WorkerContext
from notify.notifications.models import Notification
from notify.settings import Settings
from tests.factories import create_sample
from tests.test_walking_skeleton import run_worker


async def test_test_key_recipients_get_simulated_receipts(
    settings: Settings,
    client: AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    worker_ctx: WorkerContext,
) -> None:
    sample = await create_sample(sessionmaker, settings, key_type="test")
    headers = {"Authorization": f"ApiKey-v1 {sample.key}"}
    personalisation = {"name": "Ada", "code": "1"}
    for address in ("ada@example.com", "perm-fail@simulator.notify", "temp-fail@simulator.notify"):
        response = await client.post(
            "/v2/notifications/email",
            headers=headers,
            json={
                "email_address": address,
                "template_id": str(sample.email_template_id),
                "personalisation": personalisation,
            },
        )
        assert response.status_code == 201, response.text
    for number in ("+15145550100", "+15149301632", "+15149301633"):
        response = await client.post(
            "/v2/notifications/sms",
            headers=headers,
            json={
                "phone_number": number,
                "template_id": str(sample.sms_template_id),
                "personalisation": personalisation,
            },
        )
        assert response.status_code == 201, response.text

    await run_worker(worker_ctx, settings)

    async with sessionmaker() as session:
        rows = (await session.execute(select(Notification.to, Notification.status, Notification.sent_by))).all()
    assert {row.to: row.status for row in rows} == {
        "ada@example.com": "delivered",
        "perm-fail@simulator.notify": "permanent-failure",
        "temp-fail@simulator.notify": "temporary-failure",
        "+15145550100": "delivered",
        "+15149301632": "permanent-failure",
        "+15149301633": "temporary-failure",
    }
    assert {row.sent_by for row in rows} == {"test"}

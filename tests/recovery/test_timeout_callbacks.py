"""timeout-notifications tells services about the rows it fails, through their delivery-status callbacks."""

from __future__ import annotations

from datetime import timedelta

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.auth.keys import SecretBox
from notify.callbacks import service as callback_service
from notify.context import WorkerContext
from notify.db import transaction
from notify.recovery import service as recovery
from notify.settings import Settings
from tests.factories import create_sample
from tests.receipts.conftest import create_notification


async def test_timed_out_rows_get_delivery_status_callbacks(
    recovery_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    recovery_ctx: WorkerContext,
    queue: ArqRedis,
) -> None:
    with_callback = await create_sample(sessionmaker, recovery_settings, name="With callback")
    without_callback = await create_sample(sessionmaker, recovery_settings, name="Without callback")
    box = SecretBox(recovery_settings.api.secret_key.get_secret_value())
    async with transaction(sessionmaker) as session:
        await callback_service.set_callback(
            session, box, with_callback.service_id, url="https://example.com/cb", bearer_token="token-1234567"
        )
    old = timedelta(days=4)
    never_sent = await create_notification(
        sessionmaker,
        with_callback.service_id,
        with_callback.email_template_id,
        reference=None,
        status="created",
        age=old,
    )
    no_receipt = await create_notification(
        sessionmaker, with_callback.service_id, with_callback.email_template_id, reference="ses-1", age=old
    )
    await create_notification(
        sessionmaker,
        with_callback.service_id,
        with_callback.email_template_id,
        reference="ses-2",
        age=timedelta(days=1),
    )
    await create_notification(
        sessionmaker, without_callback.service_id, without_callback.email_template_id, reference="ses-3", age=old
    )

    counts = await recovery.timeout_notifications(recovery_ctx)

    assert counts == {"technical-failure": 1, "temporary-failure": 2}
    jobs = await queue.queued_jobs()
    assert sorted((job.function, job.args) for job in jobs) == sorted(
        [
            ("send_delivery_status", (str(never_sent), "technical-failure")),
            ("send_delivery_status", (str(no_receipt), "temporary-failure")),
        ]
    )

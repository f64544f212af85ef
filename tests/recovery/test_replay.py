"""replay-created-notifications: rows whose delivery job was lost, or whose sender died mid-send, are sent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from arq.connections import ArqRedis
from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.notifications.models import Notification
from notify.recovery import service as recovery
from notify.settings import Settings
from notify.testing.fake_aws import FakeAwsServer
from notify.worker import worker_resources
from tests.factories import create_sample
from tests.recovery.conftest import fake_aws_settings, run_jobs, save_without_delivery
from tests.servers import Servers


async def _set(sessionmaker: async_sessionmaker[AsyncSession], notification_id: str, **values: Any) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Notification).where(Notification.id == uuid.UUID(notification_id)).values(**values)
        )


async def _statuses(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, tuple[str, str | None]]:
    async with sessionmaker() as session:
        rows = (await session.scalars(select(Notification))).all()
    return {str(row.id): (row.status, row.reference) for row in rows}


async def test_due_rows_still_created_after_replay_after_are_sent_and_others_wait(
    servers: Servers,
    clean: None,
    fake_aws: FakeAwsServer,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    queue: ArqRedis,
) -> None:
    settings = fake_aws_settings(servers, fake_aws, replay_after_s=600)
    sample = await create_sample(sessionmaker, settings)
    async with worker_resources(settings, queue) as context:
        lost, backing_off, scheduled, recent = await save_without_delivery(client, sample, context, 4)
        long_ago = datetime.now(UTC) - timedelta(minutes=15)
        later = datetime.now(UTC) + timedelta(minutes=5)
        await _set(sessionmaker, lost, created_at=long_ago)
        await _set(sessionmaker, backing_off, created_at=long_ago, next_attempt_at=later)
        await _set(sessionmaker, scheduled, created_at=long_ago, scheduled_for=later)

        assert await recovery.replay_created_notifications(context) == 1
        await run_jobs(settings)

    statuses = await _statuses(sessionmaker)
    assert statuses[lost][0] == "sending"
    assert {statuses[i][0] for i in (backing_off, scheduled, recent)} == {"created"}
    assert [email["message_id"] for email in fake_aws.fake.recorded_emails()] == [statuses[lost][1]]


async def test_rows_stuck_in_sending_without_a_reference_after_the_lease_are_released_and_sent(
    servers: Servers,
    clean: None,
    fake_aws: FakeAwsServer,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    queue: ArqRedis,
) -> None:
    settings = fake_aws_settings(servers, fake_aws, replay_after_s=600, send_lease_s=600)
    sample = await create_sample(sessionmaker, settings)
    async with worker_resources(settings, queue) as context:
        died, awaiting_receipt, in_progress = await save_without_delivery(client, sample, context, 3)
        long_ago = datetime.now(UTC) - timedelta(minutes=20)
        recently = datetime.now(UTC) - timedelta(minutes=1)
        await _set(sessionmaker, died, status="sending", sending_started_at=long_ago, created_at=long_ago)
        await _set(
            sessionmaker, awaiting_receipt, status="sending", sending_started_at=long_ago, reference="ses-message-1"
        )
        await _set(sessionmaker, in_progress, status="sending", sending_started_at=recently, created_at=long_ago)

        assert await recovery.replay_created_notifications(context) == 1
        await run_jobs(settings)

    statuses = await _statuses(sessionmaker)
    assert statuses[died][0] == "sending"
    assert statuses[died][1] is not None
    assert statuses[awaiting_receipt] == ("sending", "ses-message-1")
    assert statuses[in_progress] == ("sending", None)
    assert fake_aws.fake.counters.sent_emails == 1


async def test_replay_enqueues_each_chunk_once_per_window_and_sends_each_row_once(
    servers: Servers,
    clean: None,
    fake_aws: FakeAwsServer,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    queue: ArqRedis,
) -> None:
    settings: Settings = fake_aws_settings(servers, fake_aws, replay_after_s=60, replay_chunk_size=2)
    sample = await create_sample(sessionmaker, settings)
    async with worker_resources(settings, queue) as context:
        ids = await save_without_delivery(client, sample, context, 5)
        for notification_id in ids:
            await _set(sessionmaker, notification_id, created_at=datetime.now(UTC) - timedelta(minutes=5))
        now = datetime.now(UTC)

        assert await recovery.replay_created_notifications(context, now) == 5
        assert len(await queue.queued_jobs()) == 3
        await recovery.replay_created_notifications(context, now)
        assert len(await queue.queued_jobs()) == 3, "the same window enqueues the same job ids"
        await run_jobs(settings)

    assert {status for status, _ in (await _statuses(sessionmaker)).values()} == {"sending"}
    assert fake_aws.fake.counters.sent_emails == 5

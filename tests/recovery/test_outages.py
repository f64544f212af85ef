"""Outages: Redis down → 503 with Retry-After; PostgreSQL down → accepted from warm caches, saved once it is back."""

from __future__ import annotations

import asyncio

import pytest
from arq.connections import ArqRedis
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from notify.cache import INVALIDATION_CHANNEL
from notify.inbox import service as inbox_service
from notify.inbox.streams import GROUP, Stream
from notify.notifications.models import Notification
from notify.recovery import service as recovery
from notify.settings import Settings
from notify.testing.fake_aws import FakeAwsServer
from notify.worker import worker_resources
from tests.factories import Sample, create_sample
from tests.recovery.conftest import post_emails, run_jobs
from tests.servers import Servers


async def _post(client: AsyncClient, sample: Sample) -> tuple[int, dict[str, str], object]:
    response = await client.post(
        "/v2/notifications/email",
        headers={"Authorization": f"ApiKey-v1 {sample.key}"},
        json={
            "email_address": "ada@example.com",
            "template_id": str(sample.email_template_id),
            "personalisation": {"name": "Ada", "code": "1"},
        },
    )
    return response.status_code, dict(response.headers), response.json()


async def test_redis_down_answers_503_with_retry_after_and_accepts_again_when_it_is_back(
    servers: Servers, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], client: AsyncClient
) -> None:
    if servers.redis is None:
        pytest.skip("needs the embedded Redis to stop it")
    sample = await create_sample(sessionmaker, settings)
    servers.redis.stop()
    try:
        status, headers, body = await _post(client, sample)
    finally:
        servers.redis.start()

    assert status == 503
    assert headers["retry-after"] == str(settings.redis.retry_after_s)
    assert body == {
        "status_code": 503,
        "errors": [
            {
                "error": "ServiceUnavailableError",
                "message": "Service temporarily unavailable, the notification was not accepted: try again",
            }
        ],
    }
    status, _, _ = await _post(client, sample)
    assert status == 201


async def test_postgres_down_the_api_keeps_accepting_and_the_worker_saves_everything_once_it_is_back(
    servers: Servers,
    recovery_settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    client: AsyncClient,
    queue: ArqRedis,
    fake_aws: FakeAwsServer,
) -> None:
    if servers.postgres is None:
        pytest.skip("needs the embedded PostgreSQL to stop it")
    sample = await create_sample(sessionmaker, recovery_settings)
    # The cache listener clears every cache when it subscribes: warm the caches only after that.
    for _ in range(100):
        if dict(await redis.pubsub_numsub(INVALIDATION_CHANNEL)).get(INVALIDATION_CHANNEL.encode(), 0) > 0:
            break
        await asyncio.sleep(0.02)
    accepted = await post_emails(client, sample, 1)
    async with worker_resources(recovery_settings, queue) as context:
        servers.postgres.stop()
        try:
            accepted += await post_emails(client, sample, 3, start=1)
            with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the driver raises, the save fails
                await inbox_service.drain(context)
        finally:
            servers.postgres.start()
            await engine.dispose()
        assert (await redis.xpending(Stream("email", "normal").inbox, GROUP))["pending"] > 0, "kept in flight"

        report = await recovery.move_in_flight_to_inbox(context)
        await inbox_service.drain(context)
        await run_jobs(recovery_settings)

    assert report.saved > 0
    async with sessionmaker() as session:
        rows = (await session.scalars(select(Notification))).all()
    assert sorted(str(row.id) for row in rows) == sorted(accepted)
    assert {row.status for row in rows} == {"sending"}
    assert fake_aws.fake.counters.sent_emails == 4
    assert await redis.xlen(Stream("email", "normal").inbox) == 0

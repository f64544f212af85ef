"""Redis restarted (and crashed) with AOF on: accepted entries are still in the inbox and get saved and sent."""

from __future__ import annotations

import asyncio

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify import metrics
from notify.context import WorkerContext
from notify.notifications.models import Notification
from notify.recovery import service as recovery
from notify.settings import Settings
from notify.testing.fake_aws import FakeAwsServer
from tests.factories import create_sample
from tests.recovery.conftest import post_emails, run_worker
from tests.servers import Servers

INBOX = "inbox:email:normal"


async def _sent(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(Notification).where(Notification.reference.is_not(None))
        )
    return int(count or 0)


@pytest.mark.parametrize("how", ["restart", "crash after the fsync second"])
async def test_accepted_entries_survive_a_redis_restart(
    how: str,
    servers: Servers,
    recovery_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    recovery_ctx: WorkerContext,
    fake_aws: FakeAwsServer,
) -> None:
    assert servers.redis is not None, "needs the embedded Redis (TEST_REDIS_URL points elsewhere)"
    sample = await create_sample(sessionmaker, recovery_settings)
    ids = await post_emails(client, sample, 40)
    assert await recovery_ctx.redis.xlen(INBOX) == 40
    if how == "restart":
        await asyncio.to_thread(servers.redis.restart)
    else:
        await asyncio.sleep(1.5)  # appendfsync everysec: what was accepted a second ago is on disk
        await asyncio.to_thread(servers.redis.kill)
        await asyncio.to_thread(servers.redis.start)

    assert await recovery_ctx.redis.xlen(INBOX) == 40, "every accepted entry is still in the inbox"
    await run_worker(recovery_ctx, recovery_settings)
    assert await _sent(sessionmaker) == len(ids)
    assert fake_aws.fake.counters.sent_emails == len(ids)


async def test_recovery_actions_are_counted(
    recovery_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    recovery_ctx: WorkerContext,
    fake_aws: FakeAwsServer,
) -> None:
    def counted(action: str) -> float:
        return metrics.REGISTRY.get_sample_value("notify_recovery_actions_total", {"action": action}) or 0.0

    before = counted("in_flight_saved")
    sample = await create_sample(sessionmaker, recovery_settings)
    await post_emails(client, sample, 3)
    # A worker reads the entries and dies before saving them.
    await recovery_ctx.redis.xreadgroup("savers", "crashed-worker", {INBOX: ">"}, count=10)
    report = await recovery.move_in_flight_to_inbox(recovery_ctx)
    assert report.saved == 3
    assert counted("in_flight_saved") - before == 3


async def test_a_lost_inbox_group_is_created_again_and_nothing_accepted_since_is_missed(
    recovery_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    recovery_ctx: WorkerContext,
    fake_aws: FakeAwsServer,
) -> None:
    # Redis came back without its data (or someone deleted the stream): the API's XADD makes a stream with no group.
    await recovery_ctx.redis.delete(INBOX)
    sample = await create_sample(sessionmaker, recovery_settings)
    ids = await post_emails(client, sample, 5)
    assert await recovery_ctx.redis.xinfo_groups(INBOX) == []

    await run_worker(recovery_ctx, recovery_settings)

    assert [group["name"] for group in await recovery_ctx.redis.xinfo_groups(INBOX)] == [b"savers"]
    assert await _sent(sessionmaker) == len(ids)

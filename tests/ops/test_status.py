"""`notify status`: each lane's backlog in Redis and the last hour's notifications by status."""

from __future__ import annotations

import asyncio
import re

import pytest
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from notify.cli import app as cli
from notify.context import WorkerContext
from notify.inbox import service as inbox_service
from notify.inbox import streams
from notify.inbox.streams import Stream
from notify.ops import status
from notify.settings import Settings
from tests.factories import create_sample
from tests.ops.test_metrics import post_email
from tests.servers import Servers

EMAIL_NORMAL = Stream("email", "normal")


async def fill_lanes(
    client: AsyncClient,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    worker_ctx: WorkerContext,
    redis: Redis,
) -> None:
    """Leave one saved notification, one in flight, two waiting and one dead letter."""
    sample = await create_sample(sessionmaker, settings)
    await post_email(client, sample)
    await inbox_service.drain(worker_ctx)  # saved: a `created` row
    for _ in range(3):
        await post_email(client, sample)
    assert len(await streams.read(redis, EMAIL_NORMAL, "status-test", 1, None)) == 1  # in flight, never saved
    await redis.xadd("dead:sms:bulk", {"n": b"{}", "reason": b"unparseable"})


async def test_lane_stats_report_depth_in_flight_dead_and_age(
    client: AsyncClient,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    worker_ctx: WorkerContext,
    redis: Redis,
) -> None:
    await fill_lanes(client, settings, sessionmaker, worker_ctx, redis)
    await asyncio.sleep(0.05)

    lanes = {lane.stream: lane for lane in await status.lane_stats(redis)}
    snap = await status.snapshot(redis, sessionmaker)

    email = lanes["inbox:email:normal"]
    assert (email.depth, email.in_flight, email.dead) == (3, 1, 0)
    assert email.oldest_pending_age_s is not None
    assert 0.05 <= email.oldest_pending_age_s < 30
    assert email.oldest_entry_age_s is not None
    assert email.oldest_entry_age_s >= email.oldest_pending_age_s
    assert lanes["inbox:sms:bulk"].dead == 1
    assert lanes["inbox:sms:priority"] == status.LaneStats("inbox:sms:priority", 0, 0, 0, None, None)
    assert snap.counts == [("email", "created", 1)]


@pytest.fixture
def env(servers: Servers, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", servers.database_url)
    monkeypatch.setenv("REDIS_URL", servers.redis_url)
    monkeypatch.setenv("COLUMNS", "160")
    for name in ("NOTIFY_DB__URL", "NOTIFY_REDIS__URL"):
        monkeypatch.delenv(name, raising=False)


async def test_status_command_prints_lanes_and_statuses(
    env: None,
    client: AsyncClient,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    worker_ctx: WorkerContext,
    redis: Redis,
) -> None:
    await fill_lanes(client, settings, sessionmaker, worker_ctx, redis)

    result = await asyncio.to_thread(CliRunner().invoke, cli, ["status"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    email_row = next(line for line in lines if "inbox:email:normal" in line)
    assert re.findall(r"\d+", email_row.split("inbox:email:normal")[1])[:3] == ["3", "1", "0"]
    dead_row = next(line for line in lines if "inbox:sms:bulk" in line)
    assert re.findall(r"\d+", dead_row.split("inbox:sms:bulk")[1])[:3] == ["0", "0", "1"]
    created_row = next(line for line in lines if "created" in line and "email" in line and "hour" not in line)
    assert re.findall(r"\w+", created_row) == ["email", "created", "1"]


async def test_status_watch_refreshes_until_interrupted(env: None, settings: Settings) -> None:
    # `settings` gives an empty Redis: no consumer group exists yet, which must not break the screen.
    calls = 0
    original = status.snapshot

    async def counting(redis: Redis, sessionmaker: async_sessionmaker[AsyncSession]) -> status.Snapshot:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return await original(redis, sessionmaker)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(status, "snapshot", counting)
        result = await asyncio.to_thread(CliRunner().invoke, cli, ["status", "--watch", "--interval", "0.05"])
    assert result.exit_code == 0, result.output
    assert calls == 3
    assert result.output.count("inbox:email:normal") >= 1

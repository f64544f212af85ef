"""Graceful worker shutdown: SIGTERM stops the inbox readers at once, nothing read is left half-handled."""

from __future__ import annotations

import asyncio
import signal

from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.context import WorkerContext
from notify.inbox import service as inbox_service
from notify.inbox.streams import GROUP, Stream
from notify.notifications.models import Notification
from notify.ops.shutdown import GracefulWorker
from notify.settings import Settings
from notify.worker import build_worker
from tests.factories import create_sample
from tests.ops.test_metrics import post_email

EMAIL_NORMAL = Stream("email", "normal")


async def saved_count(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Notification)) or 0)


async def test_beat_stops_reading_promptly_and_keeps_what_it_read(
    client: AsyncClient,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    worker_ctx: WorkerContext,
    redis: Redis,
) -> None:
    sample = await create_sample(sessionmaker, settings)
    loop = asyncio.get_running_loop()
    started = loop.time()
    beat = asyncio.create_task(inbox_service.beat(worker_ctx, EMAIL_NORMAL, 10.0))
    await post_email(client, sample)
    for _ in range(100):
        if await saved_count(sessionmaker) == 1:
            break
        await asyncio.sleep(0.02)

    worker_ctx.stopping.set()
    saved = await asyncio.wait_for(beat, timeout=2)

    assert loop.time() - started < 5, "the beat must not read for the rest of its 10 s"
    assert saved == 1
    await post_email(client, sample)  # arrives after the stop: left in the stream for the next worker
    assert await redis.xlen(EMAIL_NORMAL.inbox) == 1
    assert (await redis.xpending(EMAIL_NORMAL.inbox, GROUP))["pending"] == 0
    assert await inbox_service.beat(worker_ctx, EMAIL_NORMAL, 10.0) == 0
    assert await saved_count(sessionmaker) == 1


async def test_sigterm_stops_the_readers_and_waits_for_running_jobs(
    settings: Settings, worker_ctx: WorkerContext
) -> None:
    worker = build_worker(settings)
    assert isinstance(worker, GracefulWorker)
    assert worker._job_completion_wait == settings.worker.shutdown_grace_s
    worker.ctx["notify"] = worker_ctx
    try:
        worker.handle_sig_wait_for_completion(signal.SIGTERM)
        await asyncio.sleep(0.2)  # arq's wait-for-completion task runs; nothing is running, so it ends at once
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # the worker installed its handlers on the test loop
            asyncio.get_running_loop().remove_signal_handler(signum)

    assert worker_ctx.stopping.is_set()
    assert worker.allow_pick_jobs is False

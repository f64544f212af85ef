"""Each lane's beat reads until just after the next beat is due, so the lane is never left unread in between."""

from __future__ import annotations

import asyncio
import time

import pytest
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.context import WorkerContext
from notify.inbox import service as inbox_service
from notify.inbox.streams import Stream
from notify.inbox.tasks import beat_duration_s, make_beat
from notify.settings import Settings
from tests.factories import create_sample
from tests.ops.test_metrics import post_email
from tests.ops.test_shutdown import saved_count


@pytest.mark.parametrize(
    ("late_s", "expected_s"),
    [(0.0, 1.1), (0.05, 1.05), (0.3, 0.8), (0.6, 0.5), (5.0, 0.5), (-0.2, 1.1)],
    ids=["on-time", "a-poll-late", "late", "later", "very-late", "early"],
)
def test_a_beat_reads_until_the_overlap_after_the_next_beat_is_due(late_s: float, expected_s: float) -> None:
    due_ms = 1_700_000_000_000
    now = due_ms / 1000 + late_s
    assert beat_duration_s(due_ms, 1.0, 0.1, now=now) == pytest.approx(expected_s)


@pytest.mark.parametrize("due", [None, "soon", True])
def test_a_beat_without_a_due_time_reads_for_one_interval(due: object) -> None:
    assert beat_duration_s(due, 1.0, 0.1) == 1.0


async def test_a_notification_accepted_at_the_end_of_the_second_is_saved_by_that_seconds_beat(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], worker_ctx: WorkerContext
) -> None:
    sample = await create_sample(sessionmaker, settings)
    worker = settings.worker
    overlap_s = 2 * worker.poll_delay_s
    beat = make_beat(Stream("email", "normal"))
    started = time.monotonic()
    job = asyncio.create_task(beat({"notify": worker_ctx, "score": int(time.time() * 1000)}))  # as arq runs it
    # After 90 % of the interval (where a beat used to stop), before the next beat is due plus the overlap.
    await asyncio.sleep(worker.beat_interval_s + overlap_s / 2 - 0.05)
    await post_email(client, sample)
    assert await asyncio.wait_for(job, timeout=5) == 1
    assert time.monotonic() - started == pytest.approx(worker.beat_interval_s + overlap_s, abs=0.5)
    assert await saved_count(sessionmaker) == 1


async def test_a_beat_on_an_idle_lane_waits_in_few_reads(worker_ctx: WorkerContext, redis: Redis) -> None:
    """Each read blocks until an entry comes or 0.5 s pass: a quiet lane is not asked ten times a second."""
    before = (await redis.info("commandstats")).get("cmdstat_xreadgroup", {}).get("calls", 0)
    assert await inbox_service.beat(worker_ctx, Stream("sms", "bulk"), 1.2) == 0
    reads = (await redis.info("commandstats"))["cmdstat_xreadgroup"]["calls"] - before
    assert 1 <= reads <= 4, reads

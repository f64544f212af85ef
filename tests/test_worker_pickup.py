"""Job pick-up: a due job running in this worker is passed over without a command; the others go to one start script
each, pipelined, which passes over one running in another worker and takes a waiting one, never by arq's
WATCH/MULTI."""

from __future__ import annotations

import asyncio
from typing import Any

from arq import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.jobs import Job, JobStatus
from arq.worker import func
from redis.asyncio import Redis

from notify.settings import Settings
from notify.worker import NotifyWorker
from tests.test_job_queue import command_calls


async def _watches(redis: Redis) -> int:
    return await command_calls(redis, "watch")


async def test_running_jobs_are_passed_over_and_a_waiting_one_starts_once(
    settings: Settings, redis: Redis, queue: ArqRedis
) -> None:
    release = asyncio.Event()
    started: list[str] = []

    async def hold(ctx: dict[str, Any], label: str) -> str:
        started.append(label)
        await release.wait()
        return label

    worker = NotifyWorker(functions=[func(hold, name="hold")], redis_pool=queue, handle_signals=False, keep_result=60)
    for label in ("here", "elsewhere", "waiting"):
        await queue.enqueue_job("hold", label, _job_id=label)
    await worker.start_jobs([b"here"])
    await redis.psetex(in_progress_key_prefix + "elsewhere", 60_000, b"1")  # another worker runs it
    await asyncio.sleep(0.05)
    assert started == ["here"]

    watches, scripts = await _watches(redis), await command_calls(redis, "evalsha")
    await worker.start_jobs([b"here", b"elsewhere", b"waiting"])
    await worker.start_jobs([b"here", b"elsewhere", b"waiting"])  # the next poll: now all three are running
    await asyncio.sleep(0.05)

    assert started == ["here", "waiting"]
    assert await _watches(redis) == watches, "the waiting job is taken by the start script, without WATCH"
    assert await command_calls(redis, "evalsha") - scripts == 3, "elsewhere and waiting, then elsewhere: not 'here'"
    release.set()
    await asyncio.gather(*worker.tasks.values())
    assert await Job("waiting", queue).status() == JobStatus.complete
    assert await Job("here", queue).status() == JobStatus.complete
    assert await Job("elsewhere", queue).status() == JobStatus.in_progress  # still the other worker's

"""arq's queue in one round trip: `JobQueue.enqueue_job` and the worker's start script keep arq's semantics."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.jobs import Job, JobStatus
from arq.utils import timestamp_ms, to_unix_ms
from arq.worker import func
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from notify.job_queue import JobQueue, JobStarter, ScriptsFailed
from notify.worker import NotifyWorker


async def command_calls(redis: Redis, command: str) -> int:
    """How many times Redis has run `command` (INFO commandstats)."""
    stats = await redis.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def test_a_job_is_enqueued_once_in_arqs_format_without_watch(queue: JobQueue, redis: Redis) -> None:
    watches = await command_calls(redis, "watch")
    before = timestamp_ms()

    job = await queue.enqueue_job("deliver_email", ["a", "b"], _job_id="deliver:a:2", note="x")

    assert job is not None
    assert job.job_id == "deliver:a:2"
    info = await job.info()
    assert info is not None
    assert (info.function, info.args, info.kwargs) == ("deliver_email", (["a", "b"],), {"note": "x"})
    assert info.job_try is None
    assert info.score is not None
    assert before <= info.score <= timestamp_ms()
    assert await job.status() == JobStatus.queued
    assert 0 < await redis.pttl(job_key_prefix + "deliver:a:2") <= queue.expires_extra_ms
    assert await queue.enqueue_job("deliver_email", ["other"], _job_id="deliver:a:2") is None, "same id: not again"
    assert (await job.info()).args == (["a", "b"],)
    assert await redis.zcard(queue.default_queue_name) == 1
    assert await command_calls(redis, "watch") == watches


async def test_a_finished_jobs_result_keeps_its_id_from_being_enqueued_again(queue: JobQueue, redis: Redis) -> None:
    await redis.set(result_key_prefix + "done", b"result")

    assert await queue.enqueue_job("deliver_email", ["a"], _job_id="done") is None
    assert await redis.exists(job_key_prefix + "done") == 0
    assert await redis.zcard(queue.default_queue_name) == 0


async def test_deferred_and_expiring_jobs_get_arqs_score_and_expiry(queue: JobQueue, redis: Redis) -> None:
    until = datetime.now(UTC) + timedelta(seconds=30)
    at = await queue.enqueue_job("deliver_sms", ["a"], _job_id="at", _defer_until=until)
    later = await queue.enqueue_job("deliver_sms", ["b"], _job_id="later", _defer_by=timedelta(seconds=10))
    short = await queue.enqueue_job("deliver_sms", ["c"], _job_id="short", _expires=5, _job_try=3)

    assert at is not None
    assert later is not None
    assert short is not None
    assert await redis.zscore(queue.default_queue_name, "at") == to_unix_ms(until)
    score = await redis.zscore(queue.default_queue_name, "later")
    assert score is not None
    assert 9_000 <= score - timestamp_ms() <= 10_000
    assert await at.status() == JobStatus.deferred
    # The expiry counts from enqueueing: the deferral plus arq's extra day, or what `_expires` says.
    assert 30_000 + queue.expires_extra_ms - 2_000 < await redis.pttl(job_key_prefix + "at")
    assert 0 < await redis.pttl(job_key_prefix + "short") <= 5_000
    assert (await short.info()).job_try == 3  # type: ignore[union-attr]


async def test_the_start_script_takes_a_due_job_once(queue: JobQueue, redis: Redis) -> None:
    start = JobStarter(redis)
    name = queue.default_queue_name
    await queue.enqueue_job("deliver_email", ["a"], _job_id="due")
    await queue.enqueue_job("deliver_email", ["b"], _job_id="deferred", _defer_by=60)
    score = await redis.zscore(name, "due")

    assert await start(name, ["due", "deferred", "gone"], 30_000) == [score, None, None], "not due yet; not queued"
    assert 0 < await redis.pttl(in_progress_key_prefix + "due") <= 30_000
    assert await redis.exists(in_progress_key_prefix + "deferred", in_progress_key_prefix + "gone") == 0
    assert await start(name, ["due"], 30_000) == [None], "running: not taken twice"


async def test_the_start_scripts_are_loaded_again_after_a_redis_restart(queue: JobQueue, redis: Redis) -> None:
    start = JobStarter(redis)
    await queue.enqueue_job("deliver_email", ["a"], _job_id="first")
    await queue.enqueue_job("deliver_email", ["b"], _job_id="second")
    await redis.script_flush()  # as a restarted Redis has forgotten them

    scores = await start(queue.default_queue_name, ["first", "second"], 30_000)

    assert None not in scores
    assert await redis.exists(in_progress_key_prefix + "first", in_progress_key_prefix + "second") == 2


async def test_a_failed_start_script_is_raised_with_what_the_others_decided(queue: JobQueue, redis: Redis) -> None:
    await redis.set("not-a-queue", b"x")  # ZSCORE on a string fails inside the script

    with pytest.raises(ScriptsFailed) as failed:
        await JobStarter(redis)("not-a-queue", ["a", "b"], 30_000)

    assert failed.value.scores == [None, None]
    assert isinstance(failed.value.__cause__, ResponseError)
    assert "WRONGTYPE" in str(failed.value.__cause__)


async def test_two_workers_polling_at_once_run_a_job_once(queue: JobQueue) -> None:
    runs: list[str] = []

    async def record(ctx: dict[str, Any], label: str) -> str:
        runs.append(label)
        return label

    workers = [
        NotifyWorker(functions=[func(record, name="record")], redis_pool=queue, handle_signals=False, keep_result=60)
        for _ in range(2)
    ]
    for i in range(20):
        await queue.enqueue_job("record", f"job-{i}", _job_id=f"job-{i}")
    due = [f"job-{i}".encode() for i in range(20)]

    await asyncio.gather(*(worker.start_jobs(list(due)) for worker in workers))
    await asyncio.gather(*(task for worker in workers for task in worker.tasks.values()))

    assert sorted(runs) == sorted(f"job-{i}" for i in range(20))
    for i in range(20):
        assert await Job(f"job-{i}", queue).status() == JobStatus.complete


async def test_a_worker_runs_what_the_queue_enqueued(queue: JobQueue) -> None:
    async def add(ctx: dict[str, Any], a: int, b: int) -> int:
        return a + b

    job = await queue.enqueue_job("add", 2, 3, _job_id="sum")
    worker = NotifyWorker(functions=[func(add, name="add")], redis_pool=queue, burst=True, handle_signals=False)

    await worker.main()

    assert job is not None
    assert await job.result(timeout=5) == 5
    assert worker.jobs_complete == 1

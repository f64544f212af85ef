"""arq's job queue, with a job enqueued, and picked up, in one Redis round trip each.

arq enqueues a job with WATCH, EXISTS and MULTI/PSETEX/ZADD/EXEC, and picks one up with WATCH, EXISTS, ZSCORE and
MULTI/PSETEX/EXEC: three and four round trips, each waiting for the reply before the next is sent. Every inbox
batch goes through both before its first row is claimed, and on a busy box each round trip there waits its turn
for the CPU, a few milliseconds (BENCHMARKS.md, eleventh session). The two scripts below make the same checks and
writes atomically in one round trip each, and write arq's own keys and job format, so arq's workers, `Job` and
results read them unchanged.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis
from arq.connections import RedisSettings as ArqRedisSettings
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.jobs import Job, serialize_job
from arq.utils import timestamp_ms, to_ms, to_unix_ms
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

# KEYS: the job's key, its result key, the queue. ARGV: the job's expiry (ms), its data, its id, its score.
# As arq: a job whose key or result is still there is not enqueued again.
_ENQUEUE = """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('PSETEX', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
return 1
"""

# KEYS: the job's in-progress key, the queue. ARGV: the job id, now (ms), the in-progress timeout (ms).
# As arq: a job runs only if no worker runs it now, it is still queued, and it is due; the in-progress key then
# marks it as this worker's. Returns the job's score, or nil when it is not to be run here.
_START = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) == 0 or tonumber(score) > tonumber(ARGV[2]) then return false end
redis.call('PSETEX', KEYS[1], ARGV[3], '1')
return score
"""


class JobQueue(ArqRedis):
    """arq's `ArqRedis`, whose `enqueue_job` is one round trip."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._enqueue = self.register_script(_ENQUEUE)

    async def enqueue_job(
        self,
        function: str,
        *args: Any,
        _job_id: str | None = None,
        _queue_name: str | None = None,
        _defer_until: datetime | None = None,
        _defer_by: int | float | timedelta | None = None,
        _expires: int | float | timedelta | None = None,
        _job_try: int | None = None,
        **kwargs: Any,
    ) -> Job | None:
        """Enqueue a job as `ArqRedis.enqueue_job` does; return None if a job with this id exists already."""
        queue_name = self.default_queue_name if _queue_name is None else _queue_name
        job_id = _job_id or uuid.uuid4().hex
        if _defer_until and _defer_by:
            raise RuntimeError("use either 'defer_until' or 'defer_by' or neither, not both")
        enqueue_time_ms = timestamp_ms()
        defer_by_ms = to_ms(_defer_by)
        if _defer_until is not None:
            score = to_unix_ms(_defer_until)
        elif defer_by_ms:
            score = enqueue_time_ms + defer_by_ms
        else:
            score = enqueue_time_ms
        expires_ms = to_ms(_expires) or score - enqueue_time_ms + self.expires_extra_ms
        data = serialize_job(function, args, kwargs, _job_try, enqueue_time_ms, serializer=self.job_serializer)
        keys = [job_key_prefix + job_id, result_key_prefix + job_id, queue_name]
        if not await self._enqueue(keys=keys, args=[expires_ms, data, job_id, score]):
            return None
        return Job(job_id, redis=self, _queue_name=queue_name, _deserializer=self.job_deserializer)


def sharing(pool: ArqRedis) -> JobQueue:
    """A `JobQueue` over `pool`'s connections, with its serializers and queue name (closing it leaves them open)."""
    return JobQueue(
        pool.connection_pool,
        job_serializer=pool.job_serializer,
        job_deserializer=pool.job_deserializer,
        default_queue_name=pool.default_queue_name,
        expires_extra_ms=pool.expires_extra_ms,
    )


async def create_queue(settings: ArqRedisSettings | None, **kwargs: Any) -> JobQueue:
    """Open arq's `create_pool` (retrying the first connection as it does), as a `JobQueue` that owns the pool."""
    pool = sharing(await create_pool(settings, **kwargs))
    pool.auto_close_connection_pool = True  # `aclose()` closes the connections, as the pool arq opened would
    return pool


class JobStarter:
    """Marks due jobs as this worker's, as arq's pick-up does: the `_START` script for each, all in one round trip."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._sha = redis.register_script(_START).sha

    async def __call__(self, queue_name: str, job_ids: list[str], in_progress_timeout_ms: int) -> list[int | None]:
        """For each job, its score if this worker is now to run it, None if it is running, gone or not yet due.

        If any script failed, raises `ScriptsFailed` from the first error: its `scores` says which of the others
        were taken, and the caller must still run those.
        """
        now, timeout = timestamp_ms(), str(in_progress_timeout_ms)
        for _ in range(2):
            async with self._redis.pipeline(transaction=False) as pipe:
                for job_id in job_ids:
                    keys_and_args = (in_progress_key_prefix + job_id, queue_name, job_id, str(now), timeout)
                    pipe.evalsha(self._sha, 2, *keys_and_args)
                replies = await pipe.execute(raise_on_error=False)
            if not any(isinstance(reply, NoScriptError) for reply in replies):
                break
            await self._redis.script_load(_START)  # a restarted or flushed Redis: none of them ran; load, send again
        scores = [int(float(reply)) if isinstance(reply, bytes | str) else None for reply in replies]
        failures = [reply for reply in replies if isinstance(reply, Exception)]
        if failures:
            raise ScriptsFailed(scores) from failures[0]
        return scores


class ScriptsFailed(Exception):
    """Some start scripts failed; `scores` holds what the others decided (None where one failed)."""

    def __init__(self, scores: list[int | None]) -> None:
        super().__init__(f"{sum(score is not None for score in scores)} job(s) taken before a start script failed")
        self.scores = scores

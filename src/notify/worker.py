"""The arq worker: every job function and every cron job (DESIGN §1, §2.2, §2.3)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import uvloop
from arq import cron
from arq.connections import RedisSettings as ArqRedisSettings
from arq.worker import Worker, func

from notify import aws, job_queue, logging, sentry
from notify.attachments.storage import AttachmentStorage
from notify.callbacks import tasks as callback_tasks
from notify.context import WorkerContext
from notify.db import create_engine, create_save_engine, create_sessionmaker
from notify.delivery import lean
from notify.delivery import tasks as delivery_tasks
from notify.inbox import service as inbox_service
from notify.inbox import streams
from notify.inbox import tasks as inbox_tasks
from notify.jobs import tasks as job_tasks
from notify.ops import exporter, heap
from notify.ops.shutdown import GracefulWorker
from notify.receipts import sqs as receipts_sqs
from notify.receipts import tasks as receipt_tasks
from notify.recovery import tasks as recovery_tasks
from notify.redis import create_redis
from notify.settings import Settings

EVERY_SECOND = set(range(60))


class NotifyWorker(GracefulWorker):
    """arq's Worker, taking the due jobs it has room for with one script each, all in one round trip.

    Every poll (`NOTIFY_WORKER__POLL_DELAY_S`) arq reads the due job ids, and a job stays among them until it
    finishes. For each, arq opens a pipeline and sends WATCH, EXISTS and ZSCORE, one round trip each, before it
    learns the job is running, here or in another worker, then MULTI/PSETEX/EXEC to take it. The `beat-inbox-*`
    jobs run through every second, and delivery batches for tens of milliseconds, so most of those round trips
    found a running job: about 9 % of a worker's CPU in `bench e2e`. Here the jobs this worker runs are skipped
    outright, and the others go to one script each (`notify.job_queue.JobStarter`), pipelined: it makes arq's
    checks and write atomically, so two workers never start the same job, and a newly enqueued delivery batch
    is taken in the poll's second round trip instead of its sixth. Its pool is a `notify.job_queue.JobQueue`, so
    the jobs enqueue in one round trip too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._job_starter: job_queue.JobStarter | None = None

    async def main(self) -> None:
        """Open the pool as a `JobQueue` (arq would open a plain `ArqRedis`), then run arq's main loop."""
        if self._pool is None:
            self._pool = await job_queue.create_queue(
                self.redis_settings,
                job_deserializer=self.job_deserializer,
                job_serializer=self.job_serializer,
                default_queue_name=self.queue_name,
                expires_extra_ms=self.expires_extra_ms,
            )
        await super().main()

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """Take the due jobs not running here, as many as there is room for (`max_jobs`), and run them."""
        waiting = [job_id for due in job_ids if (job_id := due.decode()) not in self.tasks]
        if self._job_starter is None:
            self._job_starter = job_queue.JobStarter(self.pool)
        timeout_ms = int(self.in_progress_timeout_s * 1000)
        while waiting and (room := self.max_jobs - self.job_counter) > 0:
            chunk, waiting = waiting[:room], waiting[room:]
            try:
                scores = await self._job_starter(self.queue_name, chunk, timeout_ms)
            except job_queue.ScriptsFailed as failed:
                await self._run_taken(chunk, failed.scores)  # the in-progress keys of these are set: run them
                raise
            await self._run_taken(chunk, scores)

    async def _run_taken(self, job_ids: list[str], scores: list[int | None]) -> None:
        for job_id, score in zip(job_ids, scores, strict=True):
            if score is None:  # running in another worker, finished and gone, or deferred again
                continue
            await self.sem.acquire()  # never waits: `room` counted the free slots, and only finishing jobs change it
            self.job_counter += 1
            task = self.loop.create_task(self.run_job(job_id, score))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task


def arq_redis_settings(settings: Settings) -> ArqRedisSettings:
    """Translate our Redis settings for arq's own pool."""
    return ArqRedisSettings.from_dsn(settings.redis.url)


@asynccontextmanager
async def worker_resources(settings: Settings, queue: Any) -> AsyncIterator[WorkerContext]:
    """Open the worker's pools and clients (closed in reverse order on exit); `queue` is arq's pool."""
    async with AsyncExitStack() as stack:
        engine = create_engine(settings.db, application_name="notify.worker")
        stack.push_async_callback(engine.dispose)
        save_engine = create_save_engine(settings.db, application_name="notify.worker.save")
        if save_engine is not None:
            stack.push_async_callback(save_engine.dispose)
        redis = create_redis(settings.redis, client_name="notify.worker")
        stack.push_async_callback(redis.aclose)
        session = aws.create_session(settings.aws)
        email_sender, sms_sender = await lean.open_senders(stack, session, settings.aws)
        sqs = await stack.enter_async_context(session.client("sqs", **aws.client_kwargs(settings.aws)))
        receipt_sqs = await stack.enter_async_context(receipts_sqs.open_receipt_client(session, settings.aws, sqs))
        s3 = AttachmentStorage(settings.aws)
        stack.push_async_callback(s3.aclose)
        await streams.ensure_groups(redis)
        yield WorkerContext(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            redis=redis,
            queue=queue,
            email_sender=email_sender,
            sms_sender=sms_sender,
            consumer=streams.consumer_name(),
            send_semaphore=asyncio.Semaphore(settings.aws.send_concurrency),
            s3=s3,
            sqs=sqs,
            receipt_sqs=receipt_sqs,
            save_engine=save_engine,
        )


def recovery_cron_jobs(settings: Settings) -> list[Any]:
    """Return the recovery cron jobs of DESIGN §2.3, scheduled from the worker settings."""
    worker = settings.worker
    return [
        cron(
            recovery_tasks.move_in_flight_to_inbox,
            name="in-flight-to-inbox",
            run_at_startup=True,
            timeout=300,
            max_tries=1,
            **recovery_tasks.every(worker.inflight_check_interval_s),  # type: ignore[arg-type]
        ),
        cron(
            recovery_tasks.replay_created_notifications,
            name="replay-created-notifications",
            run_at_startup=True,
            timeout=300,
            max_tries=1,
            **recovery_tasks.every(worker.replay_interval_s),  # type: ignore[arg-type]
        ),
        cron(
            recovery_tasks.timeout_notifications,
            name="timeout-notifications",
            hour={worker.timeout_hour_utc},
            minute={0},
            second={0},
            timeout=3600,
            max_tries=1,
        ),
    ]


def receipt_cron_jobs(settings: Settings) -> list[Any]:
    """Return the receipt pollers (every minute, DESIGN §2.5) and hourly retention (§2.3)."""
    poll_timeout = int(settings.aws.receipt_poll_budget_s + settings.aws.receipt_wait_time_s) + 30
    jobs: list[Any] = [
        cron(poller, name=poller.__name__.replace("_", "-"), second={0}, timeout=poll_timeout, max_tries=1)
        for poller in receipt_tasks.POLLERS
    ]
    jobs.append(
        cron(
            receipt_tasks.delete_expired_notifications,
            name="delete-expired-notifications",
            minute={17},
            second={0},
            timeout=3600,
            max_tries=1,
        )
    )
    return jobs


def job_cron_jobs() -> list[Any]:
    """Return the bulk-job and scheduling cron jobs (DESIGN §2.3, §2.4): each runs every minute."""
    jobs = (
        (job_tasks.check_job_status, "check-job-status"),
        (job_tasks.run_scheduled_jobs, "run-scheduled-jobs"),
        (job_tasks.send_scheduled_notifications, "send-scheduled-notifications"),
    )
    return [cron(task, name=name, second={0}, timeout=120, max_tries=1) for task, name in jobs]


def build_worker(settings: Settings, *, burst: bool = False, with_cron: bool = True) -> Worker:
    """Build an arq Worker with notify's functions, cron jobs and resources."""

    async def startup(ctx: dict[str, Any]) -> None:
        sentry.init_sentry(settings, "worker")
        stack = AsyncExitStack()
        ctx["notify"] = await stack.enter_async_context(worker_resources(settings, ctx["redis"]))
        ctx["notify_stack"] = stack
        if settings.worker.metrics_port is not None:
            port = settings.worker.metrics_port
            await stack.enter_async_context(exporter.serve(settings.worker.metrics_host, port, ctx["notify"].redis))
        heap.tune_collector()

    async def shutdown(ctx: dict[str, Any]) -> None:
        stack = ctx.get("notify_stack")
        if isinstance(stack, AsyncExitStack):
            await stack.aclose()

    job_timeout = settings.worker.job_timeout_s
    functions = [
        func(
            delivery_tasks.deliver_email, name="deliver_email", timeout=job_timeout, max_tries=delivery_tasks.MAX_TRIES
        ),
        func(delivery_tasks.deliver_sms, name="deliver_sms", timeout=job_timeout, max_tries=delivery_tasks.MAX_TRIES),
        func(job_tasks.process_job, name="process_job", timeout=settings.worker.job_process_timeout_s, max_tries=3),
        func(
            callback_tasks.send_delivery_status,
            name="send_delivery_status",
            timeout=int(settings.worker.callback_timeout_s) + 30,
            max_tries=settings.worker.callback_max_retries + 1,
        ),
        func(
            callback_tasks.send_complaint,
            name="send_complaint",
            timeout=int(settings.worker.callback_timeout_s) + 30,
            max_tries=settings.worker.callback_max_retries + 1,
        ),
    ]
    cron_jobs = []
    if with_cron:
        cron_jobs = [
            cron(beat, name=beat.__name__.replace("_", "-"), second=EVERY_SECOND, timeout=30, max_tries=1)  # type: ignore[arg-type]
            for beat in inbox_tasks.BEATS
        ]
        cron_jobs += recovery_cron_jobs(settings)
        cron_jobs += receipt_cron_jobs(settings)
        cron_jobs += job_cron_jobs()
    return NotifyWorker(
        functions=functions,
        cron_jobs=cron_jobs,
        redis_settings=arq_redis_settings(settings),
        on_startup=startup,
        on_shutdown=shutdown,
        burst=burst,
        poll_delay=settings.worker.poll_delay_s,
        # Cron jobs come on top of the delivery jobs, and each lane's beat twice: two beats overlap for a moment.
        max_jobs=settings.worker.max_jobs + len(cron_jobs) + (len(inbox_tasks.BEATS) if with_cron else 0),
        job_timeout=job_timeout,
        handle_signals=not burst,
        job_completion_wait=settings.worker.shutdown_grace_s,
        keep_result=60,
    )


def run(settings: Settings, *, burst: bool = False) -> None:
    """Run one worker until it is stopped (or, with `burst`, until nothing is due)."""
    logging.configure(settings.log_format, settings.log_level)
    # uvloop, as the API runs on: cheaper socket writes and callbacks than the stdlib loop for the sending loop.
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)  # arq's Worker takes the current loop when it is built
    worker = build_worker(settings, burst=burst, with_cron=not burst)
    if burst:
        loop.run_until_complete(_drain_then_run(settings, worker))
        loop.close()
    else:
        worker.run()


async def _drain_then_run(settings: Settings, worker: Worker) -> None:
    """Burst mode: save everything waiting in the inbox streams, then run the jobs that are due."""
    pool = await job_queue.create_queue(arq_redis_settings(settings))
    try:
        async with worker_resources(settings, pool) as app:
            await inbox_service.drain(app)
    finally:
        await pool.aclose()
    await worker.async_run()
    await worker.close()

"""The arq worker: every job function and every cron job (DESIGN §1, §2.2, §2.3)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from arq import cron
from arq.connections import RedisSettings as ArqRedisSettings
from arq.worker import Worker, func

from notify import aws, logging
from notify.context import WorkerContext
from notify.db import create_engine, create_sessionmaker
from notify.delivery import tasks as delivery_tasks
from notify.delivery.senders import SesEmailSender, SnsSmsSender
from notify.inbox import service as inbox_service
from notify.inbox import streams
from notify.inbox import tasks as inbox_tasks
from notify.redis import create_redis
from notify.settings import Settings

EVERY_SECOND = set(range(60))


def arq_redis_settings(settings: Settings) -> ArqRedisSettings:
    """Translate our Redis settings for arq's own pool."""
    return ArqRedisSettings.from_dsn(settings.redis.url)


@asynccontextmanager
async def worker_resources(settings: Settings, queue: Any) -> AsyncIterator[WorkerContext]:
    """Open the worker's pools and clients (closed in reverse order on exit); `queue` is arq's pool."""
    async with AsyncExitStack() as stack:
        engine = create_engine(settings.db, application_name="notify.worker")
        stack.push_async_callback(engine.dispose)
        redis = create_redis(settings.redis, client_name="notify.worker")
        stack.push_async_callback(redis.aclose)
        session = aws.create_session(settings.aws)
        ses = await stack.enter_async_context(session.client("sesv2", **aws.client_kwargs(settings.aws)))
        sns = await stack.enter_async_context(session.client("sns", **aws.client_kwargs(settings.aws)))
        await streams.ensure_groups(redis)
        yield WorkerContext(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            redis=redis,
            queue=queue,
            email_sender=SesEmailSender(ses, settings.aws.ses_configuration_set),
            sms_sender=SnsSmsSender(sns, settings.aws.sms_sender_id),
            consumer=streams.consumer_name(),
            send_semaphore=asyncio.Semaphore(settings.aws.send_concurrency),
        )


def build_worker(settings: Settings, *, burst: bool = False, with_cron: bool = True) -> Worker:
    """Build an arq Worker with notify's functions, cron jobs and resources."""

    async def startup(ctx: dict[str, Any]) -> None:
        stack = AsyncExitStack()
        ctx["notify"] = await stack.enter_async_context(worker_resources(settings, ctx["redis"]))
        ctx["notify_stack"] = stack

    async def shutdown(ctx: dict[str, Any]) -> None:
        stack = ctx.get("notify_stack")
        if isinstance(stack, AsyncExitStack):
            await stack.aclose()

    job_timeout = settings.worker.job_timeout_s
    functions = [
        func(delivery_tasks.deliver_email, name="deliver_email", timeout=job_timeout, max_tries=3),
        func(delivery_tasks.deliver_sms, name="deliver_sms", timeout=job_timeout, max_tries=3),
    ]
    cron_jobs = []
    if with_cron:
        cron_jobs = [
            cron(beat, name=beat.__name__.replace("_", "-"), second=EVERY_SECOND, timeout=30, max_tries=1)  # type: ignore[arg-type]
            for beat in inbox_tasks.BEATS
        ]
    return Worker(
        functions=functions,
        cron_jobs=cron_jobs,
        redis_settings=arq_redis_settings(settings),
        on_startup=startup,
        on_shutdown=shutdown,
        burst=burst,
        poll_delay=settings.worker.poll_delay_s,
        max_jobs=settings.worker.max_jobs + len(cron_jobs),
        job_timeout=job_timeout,
        handle_signals=not burst,
        keep_result=60,
    )


def run(settings: Settings, *, burst: bool = False) -> None:
    """Run one worker until it is stopped (or, with `burst`, until nothing is due)."""
    logging.configure(settings.log_format, settings.log_level)
    worker = build_worker(settings, burst=burst, with_cron=not burst)
    if burst:
        asyncio.run(_drain_then_run(settings, worker))
    else:
        worker.run()


async def _drain_then_run(settings: Settings, worker: Worker) -> None:
    """Burst mode: save everything waiting in the inbox streams, then run the jobs that are due."""
    from arq import create_pool

    queue = await create_pool(arq_redis_settings(settings))
    try:
        async with worker_resources(settings, queue) as app:
            await inbox_service.drain(app)
    finally:
        await queue.aclose()
    await worker.async_run()
    await worker.close()

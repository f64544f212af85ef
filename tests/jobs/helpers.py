"""Shared steps of the bulk-job tests."""

from __future__ import annotations

import uuid
from typing import Any

from httpx import AsyncClient
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify import aws
from notify.context import WorkerContext
from notify.inbox import service as inbox_service
from notify.jobs.models import Job
from notify.notifications.models import Notification
from notify.settings import Settings


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"ApiKey-v1 {key}"}


async def post_bulk(client: AsyncClient, key: str, body: dict[str, Any]) -> Any:
    return await client.post("/v2/notifications/bulk", headers=auth(key), json=body)


async def run_worker(worker_ctx: WorkerContext, settings: Settings) -> None:
    """Save the inbox and run every queued job (process_job, deliver_*) until the queue is empty."""
    from notify.worker import build_worker

    await inbox_service.drain(worker_ctx)
    worker = build_worker(settings, burst=True, with_cron=False)
    worker.poll_delay_s = 0
    await worker.async_run()
    await worker.close()


async def verify_sender(settings: Settings) -> None:
    session = aws.create_session(settings.aws)
    async with session.client("sesv2", **aws.client_kwargs(settings.aws)) as ses:
        await ses.create_email_identity(EmailIdentity=settings.aws.email_domain)


async def job_notifications(sessionmaker: async_sessionmaker[AsyncSession], job_id: str) -> list[Notification]:
    async with sessionmaker() as session:
        query = (
            select(Notification).where(Notification.job_id == uuid.UUID(job_id)).order_by(Notification.job_row_number)
        )
        return list((await session.scalars(query)).all())


async def get_job(sessionmaker: async_sessionmaker[AsyncSession], job_id: str) -> Job:
    async with sessionmaker() as session:
        job = await session.get(Job, uuid.UUID(job_id))
    assert job is not None
    return job


async def count_rows(sessionmaker: async_sessionmaker[AsyncSession], table: str) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)


async def execute(sessionmaker: async_sessionmaker[AsyncSession], sql: str, **params: Any) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(text(sql), params)

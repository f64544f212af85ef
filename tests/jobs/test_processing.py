"""process_job under concurrency, interruption and resumption: exactly one notification per row, no gaps."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from arq.connections import ArqRedis
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.app import create_app
from notify.context import WorkerContext
from notify.db import transaction
from notify.embedded import sent_emails
from notify.inbox import repository as inbox_repository
from notify.inbox.schemas import InboxEntry
from notify.jobs import processing, repository
from notify.notifications import validation
from notify.notifications.models import Notification
from notify.settings import Settings, WorkerSettings
from notify.templates import rendering
from notify.templates.service import TemplateSnapshot
from notify.worker import worker_resources
from tests.conftest import REGION, make_settings
from tests.factories import Sample, create_sample
from tests.jobs.helpers import execute, get_job, job_notifications, post_bulk, run_worker, verify_sender
from tests.servers import Servers

ROWS = 5


def _small_chunks(servers: Servers, stall_after_s: int = 300) -> Settings:
    worker = WorkerSettings(
        batch_wait_ms=0,
        retry_base_delay_s=0.05,
        retry_max_delay_s=0.2,
        job_chunk_size=2,
        job_stall_after_s=stall_after_s,
    )
    return make_settings(servers, worker=worker)


async def _create_job(settings: Settings, sample: Sample) -> str:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http,
    ):
        rows = [["email address", "name", "code"]] + [[f"user{i}@example.com", f"U{i}", str(i)] for i in range(ROWS)]
        response = await post_bulk(
            http, sample.key, {"name": "j", "template_id": str(sample.email_template_id), "rows": rows}
        )
    assert response.status_code == 201, response.text
    job_id: str = response.json()["data"]["id"]
    return job_id


@asynccontextmanager
async def _job_worker(settings: Settings) -> AsyncIterator[tuple[WorkerContext, ArqRedis]]:
    """Open a worker's resources on an emptied arq queue: the test runs process_job's steps itself."""
    from arq import create_pool

    from notify.worker import arq_redis_settings

    queue = await create_pool(arq_redis_settings(settings))
    try:
        await queue.delete("arq:queue")  # the process_job the API enqueued
        async with worker_resources(settings, queue) as app:
            yield app, queue
    finally:
        await queue.aclose()


def _sent_to(since: int) -> list[str]:
    """Return the recipients of the emails the embedded SES received after the first `since`, sorted."""
    return sorted(m.destinations["ToAddresses"][0] for m in sent_emails(REGION)[since:])


def _assert_one_per_row(job_id: str, notifications: list[Notification]) -> None:
    numbers = [n.job_row_number for n in notifications]
    ids = [n.id for n in notifications]
    assert numbers == list(range(ROWS))
    assert ids == [uuid.uuid5(uuid.UUID(job_id), str(i)) for i in range(ROWS)]


async def test_two_concurrent_runs_make_one_notification_per_row(
    servers: Servers, clean: None, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    from arq import create_pool

    from notify.worker import arq_redis_settings

    settings = _small_chunks(servers)
    sample = await create_sample(sessionmaker, settings)
    job_id = await _create_job(settings, sample)
    queue = await create_pool(arq_redis_settings(settings))
    try:
        async with worker_resources(settings, queue) as first, worker_resources(settings, queue) as second:
            saved = await asyncio.gather(
                processing.process(first, uuid.UUID(job_id)), processing.process(second, uuid.UUID(job_id))
            )
            assert sorted(saved) == [0, ROWS], "only one run may start a pending job"
            # Even with the status guard out of the way (a resume racing a slow first run), ids stay unique.
            await execute(sessionmaker, "UPDATE jobs SET status = 'pending', rows_saved = 0")
            await execute(sessionmaker, "DELETE FROM notifications WHERE job_row_number IN (1, 3)")
            assert await processing.process(first, uuid.UUID(job_id), max_chunks=0) == 0
            await asyncio.gather(_force(first, job_id), _force(second, job_id))
    finally:
        await queue.aclose()
    _assert_one_per_row(job_id, list(await job_notifications(sessionmaker, job_id)))
    job = await get_job(sessionmaker, job_id)
    assert (job.status, job.rows_saved) == ("finished", ROWS)


async def _force(app: WorkerContext, job_id: str) -> None:
    """Run the chunk loop of a job another run has started, as a resumed duplicate would."""
    async with app.sessionmaker() as session:
        job = await repository.get_started(session, uuid.UUID(job_id))
        assert job is not None
        template = await app.template_versions.get(session, job.service_id, job.template_id, job.template_version)
    assert template is not None
    await processing.save_chunks(app, job, template, None)
    async with transaction(app.sessionmaker) as session:
        await repository.finish(session, job.id)


async def test_an_interrupted_job_resumes_without_duplicates_or_gaps(
    servers: Servers, clean: None, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    settings = _small_chunks(servers, stall_after_s=0)
    sample = await create_sample(sessionmaker, settings)
    await verify_sender(settings)
    job_id = await _create_job(settings, sample)
    sent_before = len(sent_emails(REGION))
    async with _job_worker(settings) as (app, _queue):  # this test plays the crashed worker
        assert await processing.process(app, uuid.UUID(job_id), max_chunks=1) == 2
        job = await get_job(sessionmaker, job_id)
        assert (job.status, job.rows_saved) == ("in progress", 2)
        assert len(await job_notifications(sessionmaker, job_id)) == 2

        assert await processing.resume_stalled(app) == 1
        assert (await get_job(sessionmaker, job_id)).status == "pending"
        await run_worker(app, settings)
        assert await processing.resume_stalled(app) == 0, "a finished job is never resumed"
    notifications = list(await job_notifications(sessionmaker, job_id))
    _assert_one_per_row(job_id, notifications)
    assert {n.status for n in notifications} == {"sending"}
    job = await get_job(sessionmaker, job_id)
    assert (job.status, job.rows_saved, job.notification_count) == ("finished", ROWS, ROWS)
    assert _sent_to(sent_before) == [f"user{i}@example.com" for i in range(ROWS)]


async def test_a_failed_chunk_rolls_back_the_chunk_written_beside_it_and_progress_stays_behind_both(
    servers: Servers, clean: None, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    settings = _small_chunks(servers, stall_after_s=0)  # chunks of rows 0-1, 2-3, 4
    sample = await create_sample(sessionmaker, settings)
    job_id = await _create_job(settings, sample)
    # A real database failure on row 2, slow to come: the third chunk is written (and would commit) before the
    # second one fails.
    await execute(
        sessionmaker,
        "CREATE FUNCTION fail_row_two() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_sleep(0.5); RAISE EXCEPTION 'disk full (test)'; END $$",
    )
    await execute(
        sessionmaker,
        "CREATE TRIGGER fail_row_two BEFORE INSERT ON notifications FOR EACH ROW "
        "WHEN (NEW.job_row_number = 2) EXECUTE FUNCTION fail_row_two()",
    )
    try:
        async with _job_worker(settings) as (app, _queue):
            with pytest.raises(DBAPIError, match="disk full"):
                await processing.process(app, uuid.UUID(job_id))
            job = await get_job(sessionmaker, job_id)
            assert (job.status, job.rows_saved) == ("in progress", 2)
            saved = [n.job_row_number for n in await job_notifications(sessionmaker, job_id)]
            assert saved == [0, 1], "the chunk after the failed one must not be committed either"
            await execute(sessionmaker, "DROP TRIGGER fail_row_two ON notifications")
            assert await processing.resume_stalled(app) == 1
            assert await processing.process(app, uuid.UUID(job_id)) == ROWS - 2
    finally:
        await execute(sessionmaker, "DROP TRIGGER IF EXISTS fail_row_two ON notifications")
        await execute(sessionmaker, "DROP FUNCTION IF EXISTS fail_row_two()")
    _assert_one_per_row(job_id, list(await job_notifications(sessionmaker, job_id)))
    job = await get_job(sessionmaker, job_id)
    assert (job.status, job.rows_saved) == ("finished", ROWS)


async def _chunk_scores(queue: ArqRedis, job_id: str) -> dict[int, float]:
    """Row number → arq queue score (ms when the delivery may start) of each chunk's waiting delivery."""
    prefix = f"{processing.DELIVERY_JOB_PREFIX}{job_id}:"
    entries = await queue.zrange("arq:queue", 0, -1, withscores=True)
    return {int(k.decode().removeprefix(prefix)): s for k, s in entries if k.decode().startswith(prefix)}


async def test_a_jobs_deliveries_wait_for_its_whole_save_then_run_in_row_order(
    servers: Servers, clean: None, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    settings = _small_chunks(servers, stall_after_s=0)
    assert settings.worker.job_send_hold_s == 60
    sample = await create_sample(sessionmaker, settings)
    await verify_sender(settings)
    job_id = await _create_job(settings, sample)
    sent_before = len(sent_emails(REGION))
    async with _job_worker(settings) as (app, queue):
        assert await processing.process(app, uuid.UUID(job_id), max_chunks=1) == 2
        (held,) = (await _chunk_scores(queue, job_id)).values()
        assert held / 1000 > time.time() + 50, "a saved chunk waits while the rest of its job is saved"

        assert await processing.resume_stalled(app) == 1
        (resume,) = [k for k in await queue.zrange("arq:queue", 0, -1) if k.startswith(b"process_job:")]
        await queue.zrem("arq:queue", resume)  # run here instead
        assert await processing.process(app, uuid.UUID(job_id)) == ROWS - 2
        scores = await _chunk_scores(queue, job_id)
        assert list(scores) == [0, 2, 4], "the earlier run's chunk is released too"
        assert max(scores.values()) / 1000 <= time.time(), "the finished save released every delivery"
        assert sorted(scores, key=scores.__getitem__) == [0, 2, 4], "released in row order"
        assert await processing.release_deliveries(queue, uuid.UUID(job_id)) == 3

        await run_worker(app, settings)
        assert await processing.release_deliveries(queue, uuid.UUID(job_id)) == 0, "a delivery that ran is gone"
        assert await _chunk_scores(queue, job_id) == {}
    assert _sent_to(sent_before) == [f"user{i}@example.com" for i in range(ROWS)]


async def test_without_a_hold_each_chunk_is_sendable_as_soon_as_it_is_saved(
    servers: Servers, clean: None, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    settings = _small_chunks(servers)
    settings.worker.job_send_hold_s = 0
    sample = await create_sample(sessionmaker, settings)
    job_id = await _create_job(settings, sample)
    async with _job_worker(settings) as (app, queue):
        before_ms = time.time() * 1000
        assert await processing.process(app, uuid.UUID(job_id), max_chunks=1) == 2
        (score,) = (await _chunk_scores(queue, job_id)).values()
        assert before_ms <= score <= time.time() * 1000


async def test_a_held_delivery_runs_when_its_hold_ends_if_the_save_never_finishes(
    servers: Servers, clean: None, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    settings = _small_chunks(servers)
    settings.worker.job_send_hold_s = 1
    sample = await create_sample(sessionmaker, settings)
    await verify_sender(settings)
    job_id = await _create_job(settings, sample)
    sent_before = len(sent_emails(REGION))
    async with _job_worker(settings) as (app, queue):
        # The save stops after its first chunk, as a killed worker's would: nothing releases the delivery.
        assert await processing.process(app, uuid.UUID(job_id), max_chunks=1) == 2
        (held,) = (await _chunk_scores(queue, job_id)).values()
        assert held / 1000 > time.time()
        await run_worker(app, settings)  # a burst worker waits for the deferred delivery, then runs it
    assert _sent_to(sent_before) == ["user0@example.com", "user1@example.com"]


@pytest.mark.parametrize("notification_type", ["email", "sms"])
async def test_a_jobs_rows_are_saved_as_the_inbox_would_save_the_same_notifications(
    servers: Servers, clean: None, sessionmaker: async_sessionmaker[AsyncSession], notification_type: str
) -> None:
    """The chunk INSERT copies recipient, personalisation and reference from `job_rows`: the general path agrees."""
    settings = _small_chunks(servers)
    sample = await create_sample(sessionmaker, settings)
    email = notification_type == "email"
    header = ["Email Address" if email else "phone number", "name", "code", "reference", "note"]
    rows = [
        header,
        [" Ada@Example.COM " if email else "+44 7911 123456", "Ada", "11", "ref-ada", "first"],
        ["bob@example.com" if email else "447911123457", "Bob", "22", "", ""],
        ["cy@example.com" if email else "+447911123458", "Cy <b>", "3&4", "r3", "é"],
    ]
    template_id = sample.email_template_id if email else sample.sms_template_id
    app_ = create_app(settings)
    async with (
        app_.router.lifespan_context(app_),
        AsyncClient(transport=ASGITransport(app=app_), base_url="http://t") as http,
    ):
        response = await post_bulk(http, sample.key, {"name": "j", "template_id": str(template_id), "rows": rows})
    assert response.status_code == 201, response.text
    job_id = uuid.UUID(response.json()["data"]["id"])
    async with _job_worker(settings) as (app, _queue):
        assert await processing.process(app, job_id) == 3
        await execute(sessionmaker, "UPDATE jobs SET status = 'in progress' WHERE id = :id", id=job_id)
        async with app.sessionmaker() as session:
            job = await repository.get_started(session, job_id)
            assert job is not None
            template = await app.template_versions.get(session, job.service_id, job.template_id, job.template_version)
        assert template is not None
        async with sessionmaker() as session, session.begin():
            saved = await _notification_columns(session, job_id)
            assert [row["to"] for row in saved] == [r[0].strip() for r in rows[1:]]
            # The general path: each row as a full inbox entry, through the inbox's INSERT.
            stored = (
                await session.execute(
                    text("SELECT row_number, recipient, personalisation, client_reference FROM job_rows ORDER BY 1")
                )
            ).all()
            entries = [_inbox_entry(app, job, template, row, saved[i]["created_at"]) for i, row in enumerate(stored)]
            await session.execute(text("DELETE FROM notifications WHERE job_id = :id"), {"id": job_id})
            assert len(await inbox_repository.insert_batch(session, entries)) == 3
            general = await _notification_columns(session, job_id)
            await session.rollback()
    assert general == saved


async def _notification_columns(session: AsyncSession, job_id: uuid.UUID) -> list[dict[str, object]]:
    """Every column of the job's notifications but `updated_at`, by row number."""
    query = text("SELECT * FROM notifications WHERE job_id = :id ORDER BY job_row_number")
    result = await session.execute(query, {"id": job_id})
    return [{k: v for k, v in row._mapping.items() if k != "updated_at"} for row in result]


def _inbox_entry(
    app: WorkerContext,
    job: repository.StartedJob,
    template: TemplateSnapshot,
    stored: Sequence[Any],
    created_at: Any,
) -> InboxEntry:
    row_number, recipient, personalisation, client_reference = stored
    if job.notification_type == "email":
        subject, body = rendering.fill_email(template.subject or "", template.content, personalisation)
        normalised, sender, reply_to = validation.check_email(recipient), None, job.sender
    else:
        subject, body = None, rendering.render_sms(template.content, personalisation).body
        normalised, reply_to = validation.check_phone(recipient), None
        sender = job.sender or job.sms_sender or app.settings.aws.sms_sender_id
    return InboxEntry(
        id=processing.notification_id(job.id, row_number),
        service_id=job.service_id,
        template_id=job.template_id,
        template_version=job.template_version,
        api_key_id=job.api_key_id,
        key_type=job.key_type,
        notification_type=job.notification_type,
        lane=processing.lane_for(template.process_type, job.notification_count),
        to=recipient,
        normalised_to=normalised,
        personalisation=personalisation,
        subject=subject,
        body=body,
        client_reference=client_reference,
        sender=sender,
        reply_to=reply_to,
        created_at=created_at,
        job_id=job.id,
        job_row_number=row_number,
    )

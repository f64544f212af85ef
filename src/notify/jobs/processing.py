"""Turn a job's rows into notifications, chunk by chunk, and run the scheduling crons (DESIGN §2.3, §2.4)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import structlog

from notify.context import WorkerContext
from notify.db import cache_foreign_key_check_plans, transaction
from notify.inbox.schemas import Lane
from notify.jobs import repository
from notify.jobs.models import CANCELLED, ERROR, IN_PROGRESS
from notify.jobs.repository import ChunkColumns, ChunkConstants, StartedJob, StoredRow
from notify.notifications import validation
from notify.templates import rendering
from notify.templates.service import TemplateSnapshot

log = structlog.get_logger(__name__)

# arq job id of a chunk's delivery, followed by "{job id}:{first row number}": a rerun cannot enqueue it twice.
DELIVERY_JOB_PREFIX = "deliver:job:"

# GC Notify sends big jobs through its bulk queues and lifts small "bulk" jobs to normal (CSV_BULK_REDIRECT_THRESHOLD).
BULK_THRESHOLD = 200


def notification_id(job_id: uuid.UUID, row_number: int) -> uuid.UUID:
    """Return the id of a job row's notification: the same for every run that processes that row."""
    return uuid.uuid5(job_id, str(row_number))


def lane_for(process_type: str, row_count: int) -> Lane:
    """Return the lane a job's notifications go to."""
    if row_count >= BULK_THRESHOLD:
        return "bulk"
    return "priority" if process_type == "priority" else "normal"


def _constants(app: WorkerContext, job: StartedJob, lane: Lane) -> ChunkConstants:
    if job.notification_type == "email":
        return ChunkConstants(job, lane, sender=None, reply_to=job.sender)
    sender = job.sender or job.sms_sender or app.settings.aws.sms_sender_id
    return ChunkConstants(job, lane, sender=sender, reply_to=None)


def _columns(job: StartedJob, template: TemplateSnapshot, rows: list[StoredRow]) -> ChunkColumns:
    """Compute each row's id, normalised recipient and filled subject and body (raises where a row fails a check)."""
    chunk = ChunkColumns(datetime.now(UTC), [], [], [], [], [])
    email = job.notification_type == "email"
    subject_template = template.subject or ""
    for row in rows:
        personalisation = row.personalisation or {}
        chunk.row_numbers.append(row.row_number)
        chunk.ids.append(notification_id(job.id, row.row_number))
        if email:
            chunk.normalised_to.append(validation.check_email(row.recipient))
            subject, body = rendering.fill_email(subject_template, template.content, personalisation)
            chunk.subjects.append(subject)
        else:
            chunk.normalised_to.append(validation.check_phone(row.recipient))
            body = rendering.render_sms(template.content, personalisation).body
            chunk.subjects.append(None)
        chunk.bodies.append(body)
    return chunk


async def process(app: WorkerContext, job_id: uuid.UUID, *, max_chunks: int | None = None) -> int:
    """Start a pending job and save its rows from `rows_saved` on; return how many rows this run saved.

    `max_chunks` stops early (as a crash would) and exists for recovery drills and tests.
    """
    async with transaction(app.sessionmaker) as session:
        job = await repository.start(session, job_id)
        if job is not None and not job.service_active:
            await repository.set_status(session, job_id, IN_PROGRESS, CANCELLED)
    if job is None:
        log.info("notify.job.not_pending", job_id=str(job_id))
        return 0
    if not job.service_active:
        log.warning("notify.job.cancelled_service_inactive", job_id=str(job_id))
        return 0
    async with app.sessionmaker() as session:
        template = await app.template_versions.get(session, job.service_id, job.template_id, job.template_version)
    if template is None:
        async with transaction(app.sessionmaker) as session:
            await repository.set_status(session, job_id, IN_PROGRESS, ERROR)
        log.error("notify.job.template_version_missing", job_id=str(job_id), version=job.template_version)
        return 0
    log.info("notify.job.started", job_id=str(job_id), rows=job.notification_count, resume_from=job.rows_saved)
    saved = await save_chunks(app, job, template, max_chunks)
    if max_chunks is None:
        async with transaction(app.sessionmaker) as session:
            finished = await repository.finish(session, job_id)
        # A job of one chunk never holds its delivery: no need to look through arq's queue.
        held = job.notification_count > app.settings.worker.job_chunk_size
        released = await release_deliveries(app.queue, job_id) if held else 0
        log.info(
            "notify.job.finished" if finished else "notify.job.incomplete",
            job_id=str(job_id),
            saved=saved,
            deliveries_released=released,
        )
    return saved


async def save_chunks(app: WorkerContext, job: StartedJob, template: TemplateSnapshot, max_chunks: int | None) -> int:
    """Save the job's rows from `job.rows_saved` on, chunk by chunk, enqueueing each chunk's delivery.

    Three chunks are in hand at once: the next one is read and built while this one is inserted, and this one is
    inserted while the one before commits and enqueues its delivery (a chunk's INSERT is most of its time, and
    two of them keep both PostgreSQL and the worker busy). A chunk records its progress and commits only after
    the chunk before has committed, so `rows_saved` never runs ahead of the saved rows, whatever fails.

    When more than one chunk is left, each chunk's delivery is enqueued held (deferred by JOB_SEND_HOLD_S):
    sending a row costs several times what saving it does, so sends that started with the first chunk would
    take most of the CPU and stretch the save of a 50,000-row job from seconds to the time it takes to send
    it. `release_deliveries` lets the held deliveries run once the save is done; if this run dies first,
    they run when the hold ends anyway.
    """
    chunk_size = app.settings.worker.job_chunk_size
    lane = lane_for(template.process_type, job.notification_count)
    start = job.rows_saved
    hold_s = app.settings.worker.job_send_hold_s if job.notification_count - start > chunk_size else 0
    saved = chunks = 0
    shared = _constants(app, job, lane)
    upcoming = asyncio.create_task(_prepare(app, job, template, start, chunk_size))
    writing: asyncio.Task[None] | None = None
    try:
        while max_chunks is None or chunks < max_chunks:
            chunk = await upcoming
            if not chunk.row_numbers:
                break
            start = chunk.row_numbers[-1] + 1
            upcoming = asyncio.create_task(_prepare(app, job, template, start, chunk_size))
            before = writing
            writing = asyncio.create_task(_save_chunk(app, shared, chunk, hold_s, before))
            if before is not None:
                await before  # at most two chunks written at once
            saved += len(chunk.row_numbers)
            chunks += 1
        if writing is not None:
            await writing
    finally:
        upcoming.cancel()
        if writing is not None:
            writing.cancel()  # only if something failed: it rolls back, and the next run saves it again
        left = [task for task in (upcoming, writing) if task is not None]
        await asyncio.wait(left)
        for task in left:
            if not task.cancelled():
                task.exception()  # retrieved, so that a failure nobody waits for is not reported as lost
    return saved


async def _save_chunk(
    app: WorkerContext, shared: ChunkConstants, chunk: ChunkColumns, hold_s: int, before: asyncio.Task[None] | None
) -> None:
    """Insert one chunk; once the chunk `before` it has committed, record the progress, commit, enqueue delivery."""
    job = shared.job
    end = chunk.row_numbers[-1] + 1
    # Insert and progress commit together: `rows_saved` never runs ahead of the saved rows.
    async with transaction(app.sessionmaker) as session:
        await cache_foreign_key_check_plans(session)
        await repository.insert_notifications(session, shared, chunk)
        if before is not None:
            await before  # its failure rolls this chunk back too
        await repository.record_progress(session, job.id, end)
    await app.queue.enqueue_job(
        f"deliver_{job.notification_type}",
        [str(id_) for id_ in chunk.ids],
        _job_id=f"{DELIVERY_JOB_PREFIX}{job.id}:{chunk.row_numbers[0]}",
        _defer_by=hold_s or None,
    )
    log.info("notify.job.chunk_saved", job_id=str(job.id), rows_saved=end)


async def _prepare(
    app: WorkerContext, job: StartedJob, template: TemplateSnapshot, start: int, chunk_size: int
) -> ChunkColumns:
    """Read up to `chunk_size` rows from row `start` on and compute their columns."""
    async with app.sessionmaker() as session:
        rows = await repository.rows(session, job.id, start, chunk_size)
    return _columns(job, template, rows)


async def release_deliveries(queue: Any, job_id: uuid.UUID) -> int:
    """Let every held delivery of a job's chunks run now, in row order; return how many were still waiting.

    arq keeps its queue as a sorted set scored by the time a job may start: rescoring a waiting delivery to
    now is what an undeferred enqueue would have written. `XX` never re-adds one that has already run.
    """
    name: str = queue.default_queue_name
    prefix = f"{DELIVERY_JOB_PREFIX}{job_id}:"
    waiting: list[tuple[int, str]] = []
    async for member, _score in queue.zscan_iter(name, match=prefix + "*", count=1000):
        job_key = member.decode() if isinstance(member, bytes) else str(member)
        waiting.append((int(job_key.removeprefix(prefix)), job_key))
    if not waiting:
        return 0
    waiting.sort()
    now_ms = int(time.time() * 1000) - len(waiting)
    await queue.zadd(name, {job_key: now_ms + i for i, (_row, job_key) in enumerate(waiting)}, xx=True)
    return len(waiting)


async def resume_stalled(app: WorkerContext) -> int:
    """Put in-progress jobs with no progress for JOB_STALL_AFTER back to pending and process them again."""
    async with transaction(app.sessionmaker) as session:
        stalled = await repository.requeue_stalled(session, app.settings.worker.job_stall_after_s)
    for job_id, rows_saved in stalled:
        await app.queue.enqueue_job(
            "process_job", str(job_id), _job_id=f"process_job:{job_id}:resume:{rows_saved}:{time.time_ns()}"
        )
        log.warning("notify.job.resumed", job_id=str(job_id), resume_from=rows_saved)
    return len(stalled)


async def start_scheduled(app: WorkerContext) -> int:
    """Start the scheduled jobs whose time has come."""
    async with transaction(app.sessionmaker) as session:
        due = await repository.start_due_scheduled(session)
    for job_id in due:
        await app.queue.enqueue_job("process_job", str(job_id), _job_id=f"process_job:{job_id}")
        log.info("notify.job.schedule_due", job_id=str(job_id))
    return len(due)


async def send_scheduled_notifications(app: WorkerContext) -> int:
    """Enqueue delivery of scheduled notifications that are due; the claim makes a repeat a no-op."""
    async with app.sessionmaker() as session:
        due = await repository.due_notifications(session, app.settings.worker.scheduled_batch_size)
    by_type: dict[str, list[uuid.UUID]] = defaultdict(list)
    for notification_id_, notification_type in due:
        by_type[notification_type].append(notification_id_)
    batch = app.settings.worker.batch_size
    for notification_type, ids in by_type.items():
        for i in range(0, len(ids), batch):
            chunk = ids[i : i + batch]
            await app.queue.enqueue_job(
                f"deliver_{notification_type}",
                [str(x) for x in chunk],
                _job_id=f"scheduled:{chunk[0]}:{len(chunk)}",
            )
    if due:
        log.info("notify.scheduled.enqueued", count=len(due))
    return len(due)

"""SQL of bulk jobs: store jobs and rows, move them through their statuses, save their notifications."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from notify.jobs.csv import CheckedRow
from notify.jobs.models import Job

_INSERT_ROWS = text(
    """
    INSERT INTO job_rows (job_id, row_number, recipient, personalisation, client_reference)
    SELECT CAST(:job_id AS uuid), u.*
    FROM unnest(CAST(:row_number AS int[]), CAST(:recipient AS text[]), CAST(:personalisation AS jsonb[]),
                CAST(:client_reference AS text[])) AS u
    """
)

# `pending → in progress` for exactly one caller: a second process_job for the same job finds nothing to start.
_START = text(
    """
    UPDATE jobs AS j
    SET status = 'in progress', processing_started = COALESCE(j.processing_started, now()), updated_at = now()
    FROM services AS s
    WHERE j.id = :id AND j.status = 'pending' AND s.id = j.service_id
    RETURNING j.id, j.service_id, j.template_id, j.template_version, j.api_key_id, j.key_type, j.notification_type,
              j.notification_count, j.rows_saved, j.sender, s.active AS service_active, s.sms_sender
    """
)

_STARTED = text(
    """
    SELECT j.id, j.service_id, j.template_id, j.template_version, j.api_key_id, j.key_type, j.notification_type,
           j.notification_count, j.rows_saved, j.sender, s.active AS service_active, s.sms_sender
    FROM jobs AS j JOIN services AS s ON s.id = j.service_id
    WHERE j.id = :id AND j.status = 'in progress'
    """
)

# A job's rows are numbered 0 to n - 1 (the POST numbers the rows it stores), so a chunk is a range of row numbers:
# bounded on both sides, the read finds the chunk's rows by key even in a table never analyzed, where the planner
# would otherwise fetch and sort the rest of the job for every chunk.
_ROWS = text(
    """
    SELECT row_number, recipient, personalisation FROM job_rows
    WHERE job_id = :job_id AND row_number >= :start AND row_number < :start + :limit
    ORDER BY row_number
    """
)

# A chunk's notifications: the worker sends only what it computes per row (id, normalised recipient, filled subject
# and body) and the job's constants; recipient, personalisation and reference are copied from `job_rows`, so they
# are neither read back into nor encoded again by the worker, nor parsed again by PostgreSQL. ON CONFLICT makes a
# chunk saved by an earlier run a no-op: a row's id is derived from the job and the row number.
_INSERT_NOTIFICATIONS = text(
    """
    INSERT INTO notifications (
        id, service_id, template_id, template_version, api_key_id, key_type, notification_type, lane,
        "to", normalised_to, personalisation, subject, body, client_reference, sender, reply_to,
        created_at, job_id, job_row_number, status, updated_at
    )
    SELECT u.id, CAST(:service_id AS uuid), CAST(:template_id AS uuid), CAST(:template_version AS int),
           CAST(:api_key_id AS uuid), CAST(:key_type AS text), CAST(:notification_type AS text), CAST(:lane AS text),
           r.recipient, u.normalised_to, r.personalisation, u.subject, u.body, r.client_reference,
           CAST(:sender AS text), CAST(:reply_to AS text), CAST(:created_at AS timestamptz), r.job_id, r.row_number,
           'created', now()
    FROM unnest(CAST(:row_number AS int[]), CAST(:id AS uuid[]), CAST(:normalised_to AS text[]),
                CAST(:subject AS text[]), CAST(:body AS text[])) AS u (row_number, id, normalised_to, subject, body)
    JOIN job_rows AS r ON r.job_id = CAST(:job_id AS uuid) AND r.row_number = u.row_number
        -- The chunk's range too: whatever the planner thinks of the job's size, it reads only the chunk's rows.
        AND r.row_number BETWEEN CAST(:first_row AS int) AND CAST(:last_row AS int)
    ON CONFLICT DO NOTHING
    """
)

_PROGRESS = text("UPDATE jobs SET rows_saved = GREATEST(rows_saved, :rows_saved), updated_at = now() WHERE id = :id")

_FINISH = text(
    """
    UPDATE jobs SET status = 'finished', processing_finished = now(), updated_at = now()
    WHERE id = :id AND status = 'in progress' AND rows_saved >= notification_count
    RETURNING id
    """
)

_SET_STATUS = text("UPDATE jobs SET status = :status, updated_at = now() WHERE id = :id AND status = :expected")

# A job with no progress for the stall time goes back to `pending`, so exactly one resumed process_job starts it.
_REQUEUE_STALLED = text(
    """
    UPDATE jobs SET status = 'pending', updated_at = now()
    WHERE status = 'in progress' AND updated_at <= now() - make_interval(secs => :stall_after_s)
    RETURNING id, rows_saved
    """
)

_START_DUE = text(
    """
    UPDATE jobs SET status = 'pending', updated_at = now()
    WHERE status = 'scheduled' AND scheduled_for <= now()
    RETURNING id
    """
)

_CANCEL_JOB = text(
    """
    UPDATE jobs SET status = 'cancelled', updated_at = now()
    WHERE id = :id AND service_id = :service_id AND status IN ('scheduled', 'pending')
    RETURNING id
    """
)

_STATUS_COUNTS = text(
    "SELECT status, count(*) FROM notifications WHERE job_id = :job_id GROUP BY status ORDER BY status"
)

# Scheduled single notifications (DESIGN §4.1 `scheduled_for`): saved at once, claimed only once due.
_DUE_NOTIFICATIONS = text(
    """
    SELECT id, notification_type FROM notifications
    WHERE status = 'created' AND scheduled_for IS NOT NULL AND scheduled_for <= now()
      AND (next_attempt_at IS NULL OR next_attempt_at <= now())
    ORDER BY scheduled_for
    LIMIT :limit
    """
)

_CANCEL_NOTIFICATION = text(
    """
    UPDATE notifications SET status = 'cancelled', completed_at = now(), updated_at = now()
    WHERE id = :id AND service_id = :service_id AND status = 'created'
      AND scheduled_for IS NOT NULL AND scheduled_for > now()
    RETURNING id
    """
)

_NOTIFICATION_EXISTS = text("SELECT 1 FROM notifications WHERE id = :id AND service_id = :service_id")


@dataclass(frozen=True, slots=True)
class StartedJob:
    """A job this worker has just moved to `in progress`, with what processing needs."""

    id: uuid.UUID
    service_id: uuid.UUID
    template_id: uuid.UUID
    template_version: int
    api_key_id: uuid.UUID | None
    key_type: str
    notification_type: str
    notification_count: int
    rows_saved: int
    sender: str | None
    service_active: bool
    sms_sender: str | None


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One row of a job, as processing reads it (its reference stays in the database)."""

    row_number: int
    recipient: str
    personalisation: dict[str, Any] | None


@dataclass(slots=True)
class ChunkColumns:
    """What processing computes for a chunk of rows, column by column: one list element per row."""

    created_at: datetime
    row_numbers: list[int]
    ids: list[uuid.UUID]
    normalised_to: list[str]
    subjects: list[str | None]
    bodies: list[str]


@dataclass(frozen=True, slots=True)
class ChunkConstants:
    """The columns every notification of a job's chunk shares."""

    job: StartedJob
    lane: str
    sender: str | None
    reply_to: str | None


def add_job(session: AsyncSession, job: Job) -> None:
    """Add a new job to the session."""
    session.add(job)


async def insert_rows(session: AsyncSession, job_id: uuid.UUID, rows: Sequence[CheckedRow]) -> None:
    """Insert a chunk of checked rows in one statement."""
    if not rows:
        return
    await session.execute(
        _INSERT_ROWS,
        {
            "job_id": job_id,
            "row_number": [r.row_number for r in rows],
            "recipient": [r.recipient for r in rows],
            "personalisation": [orjson.dumps(r.personalisation).decode() for r in rows],
            "client_reference": [r.client_reference for r in rows],
        },
    )


async def set_count(session: AsyncSession, job_id: uuid.UUID, count: int) -> None:
    """Record how many rows (notifications) the job has."""
    await session.execute(
        text("UPDATE jobs SET notification_count = :count WHERE id = :id"), {"id": job_id, "count": count}
    )


async def get(session: AsyncSession, service_id: uuid.UUID, job_id: uuid.UUID) -> Job | None:
    """Return the service's job, or None."""
    return await session.scalar(select(Job).where(Job.id == job_id, Job.service_id == service_id))


async def start(session: AsyncSession, job_id: uuid.UUID) -> StartedJob | None:
    """Move a `pending` job to `in progress`; None when it is not pending (already taken, cancelled, done)."""
    row = (await session.execute(_START, {"id": job_id})).first()
    return StartedJob(**row._mapping) if row else None


async def get_started(session: AsyncSession, job_id: uuid.UUID) -> StartedJob | None:
    """Return an in-progress job as processing sees it (drills and tests re-run its chunks), or None."""
    row = (await session.execute(_STARTED, {"id": job_id})).first()
    return StartedJob(**row._mapping) if row else None


async def rows(session: AsyncSession, job_id: uuid.UUID, start: int, limit: int) -> list[StoredRow]:
    """Return up to `limit` rows from row number `start` on."""
    result = await session.execute(_ROWS, {"job_id": job_id, "start": start, "limit": limit})
    return [StoredRow(row[0], row[1], row[2]) for row in result]


def insert_parameters(shared: ChunkConstants, chunk: ChunkColumns) -> dict[str, Any]:
    """Return the parameters of a chunk's INSERT."""
    job = shared.job
    return {
        "job_id": job.id,
        "service_id": job.service_id,
        "template_id": job.template_id,
        "template_version": job.template_version,
        "api_key_id": job.api_key_id,
        "key_type": job.key_type,
        "notification_type": job.notification_type,
        "lane": shared.lane,
        "sender": shared.sender,
        "reply_to": shared.reply_to,
        "created_at": chunk.created_at,
        "row_number": chunk.row_numbers,
        "first_row": chunk.row_numbers[0],
        "last_row": chunk.row_numbers[-1],
        "id": chunk.ids,
        "normalised_to": chunk.normalised_to,
        "subject": chunk.subjects,
        "body": chunk.bodies,
    }


async def insert_notifications(session: AsyncSession, shared: ChunkConstants, chunk: ChunkColumns) -> None:
    """Insert a chunk's notifications in one statement (rows saved before are skipped)."""
    await session.execute(_INSERT_NOTIFICATIONS, insert_parameters(shared, chunk))


async def record_progress(session: AsyncSession, job_id: uuid.UUID, rows_saved: int) -> None:
    """Record that the rows before `rows_saved` are saved (never moves backwards)."""
    await session.execute(_PROGRESS, {"id": job_id, "rows_saved": rows_saved})


async def finish(session: AsyncSession, job_id: uuid.UUID) -> bool:
    """Mark an in-progress job whose rows are all saved `finished`; return whether this call did it."""
    return (await session.execute(_FINISH, {"id": job_id})).first() is not None


async def set_status(session: AsyncSession, job_id: uuid.UUID, expected: str, status: str) -> None:
    """Move a job from `expected` to `status`."""
    await session.execute(_SET_STATUS, {"id": job_id, "expected": expected, "status": status})


async def requeue_stalled(session: AsyncSession, stall_after_s: float) -> list[tuple[uuid.UUID, int]]:
    """Put in-progress jobs without progress for `stall_after_s` back to pending; return `(id, rows_saved)`."""
    result = await session.execute(_REQUEUE_STALLED, {"stall_after_s": stall_after_s})
    return [(row[0], row[1]) for row in result]


async def start_due_scheduled(session: AsyncSession) -> list[uuid.UUID]:
    """Move scheduled jobs whose time has come to pending; return their ids."""
    return [row[0] for row in await session.execute(_START_DUE)]


async def cancel(session: AsyncSession, service_id: uuid.UUID, job_id: uuid.UUID) -> bool:
    """Cancel a job that has not started; return whether it was cancelled."""
    return (await session.execute(_CANCEL_JOB, {"id": job_id, "service_id": service_id})).first() is not None


async def status_counts(session: AsyncSession, job_id: uuid.UUID) -> list[tuple[str, int]]:
    """Return `(status, count)` of the job's notifications."""
    return [(row[0], row[1]) for row in await session.execute(_STATUS_COUNTS, {"job_id": job_id})]


async def due_notifications(session: AsyncSession, limit: int) -> list[tuple[uuid.UUID, str]]:
    """Return `(id, type)` of scheduled notifications that are due and still waiting."""
    return [(row[0], row[1]) for row in await session.execute(_DUE_NOTIFICATIONS, {"limit": limit})]


async def cancel_notification(session: AsyncSession, service_id: uuid.UUID, notification_id: uuid.UUID) -> bool:
    """Cancel a scheduled notification that is not due yet; return whether it was cancelled."""
    params = {"id": notification_id, "service_id": service_id}
    return (await session.execute(_CANCEL_NOTIFICATION, params)).first() is not None


async def notification_exists(session: AsyncSession, service_id: uuid.UUID, notification_id: uuid.UUID) -> bool:
    """Return whether the service has that notification."""
    params = {"id": notification_id, "service_id": service_id}
    return (await session.execute(_NOTIFICATION_EXISTS, params)).first() is not None

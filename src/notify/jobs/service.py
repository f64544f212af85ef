"""Create, read and cancel bulk jobs from the API (DESIGN §2.4); processing lives in `processing.py`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pydantic
import redis.exceptions
import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from notify.auth.service import Caller
from notify.db import cache_foreign_key_check_plans, transaction
from notify.errors import BadRequestError, NotFoundError, ServiceUnavailableError, ValidationError
from notify.job_queue import JobQueue
from notify.jobs import csv, repository
from notify.jobs.models import PENDING, SCHEDULED, Job
from notify.jobs.schemas import ApiKeyRef, JobResponse, PostBulkRequest, ServiceName, StatusCount
from notify.limits import service as limits
from notify.notifications import reads, validation
from notify.notifications.schemas import NotificationResponse
from notify.services import senders
from notify.services.safelist import check_recipient
from notify.state import ApiState

log = structlog.get_logger(__name__)

_INSERT_CHUNK = 1000


def queue_for(redis: Redis) -> JobQueue:
    """Return an arq queue handle sharing the API's Redis connection pool."""
    return JobQueue(redis.connection_pool)


def process_job_id(job_id: uuid.UUID) -> str:
    """Return the arq job id that makes the first `process_job` of a job enqueue once."""
    return f"process_job:{job_id}"


def parse_request(raw: bytes) -> PostBulkRequest:
    """Validate the body straight from bytes: orjson's parse arena for a 50,000-row CSV is ~13 times the file."""
    try:
        return PostBulkRequest.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        # Invalid bodies take the shared path, which words the v2 errors; it raises for anything invalid here.
        validation.parse_body(raw, PostBulkRequest)
        raise ValidationError([str(exc)]) from exc


def _lines(request: PostBulkRequest) -> Iterator[list[str]]:
    if (request.rows is None) == (request.csv is None):
        raise BadRequestError("You should specify either rows or csv")
    if request.csv is not None:
        return csv.iter_csv(request.csv)
    return csv.iter_rows(request.rows or [])


def _safelist(caller: Caller) -> Callable[[str], str | None]:
    """Return the team-key / trial-mode recipient rule of the hot path, as a row check."""

    def refuse(normalised: str) -> str | None:
        try:
            check_recipient(caller.service, caller.key.key_type, normalised)
        except BadRequestError as exc:
            return exc.message
        return None

    return refuse


async def create_job(state: ApiState, caller: Caller, request: PostBulkRequest) -> JobResponse:
    """Check every row, store the job and its rows in one transaction, then enqueue its processing."""
    now = datetime.now(UTC)
    lines = _lines(request)
    max_rows = state.settings.limits.bulk_max_rows
    if request.rows is not None and len(request.rows) - 1 > max_rows:
        raise BadRequestError(f"Too many rows. Maximum number of rows allowed is {max_rows}")
    scheduled_for = validation.check_scheduled_for(request.scheduled_for, now)
    template = await state.templates.usable(caller.service.id, request.template_id)
    if template.template_type == "email":
        sender = senders.resolve_reply_to(caller.service, request.reply_to_id, "reply_to_id")
    else:
        sender = senders.resolve_sms_sender(
            caller.service, request.reply_to_id, state.settings.aws.sms_sender_id, "reply_to_id"
        )
    header = next((line for line in lines if not csv.is_blank(line)), None)
    if header is None:
        raise ValidationError(["rows is too short"])
    checker = csv.RowChecker(
        template.template_type,
        template.subject,
        template.content,
        header,
        state.settings.limits.sms_max_chars,
        refuse_recipient=_safelist(caller),
    )
    job = Job(
        id=uuid.uuid4(),
        service_id=caller.service.id,
        template_id=template.id,
        template_version=template.version,
        api_key_id=caller.key.id,
        key_type=caller.key.key_type,
        original_file_name=request.name,
        notification_type=template.template_type,
        status=SCHEDULED if scheduled_for else PENDING,
        notification_count=0,
        rows_saved=0,
        reference=request.reference,
        reply_to_id=uuid.UUID(request.reply_to_id) if request.reply_to_id else None,
        sender=sender,
        scheduled_for=scheduled_for,
        created_at=now,
        updated_at=now,
    )
    async with transaction(state.sessionmaker) as session:
        repository.add_job(session, job)
        await session.flush()
        await cache_foreign_key_check_plans(session)
        count, units = await _store_rows(state, session, job.id, checker, lines)
        await _count_against_limits(state, caller, job, units, now)
    job.notification_count = count  # the session is closed: this only updates the response
    if job.status == PENDING:
        await queue_for(state.redis).enqueue_job("process_job", str(job.id), _job_id=process_job_id(job.id))
    log.info("notify.job.created", job_id=str(job.id), rows=job.notification_count, status=job.status)
    return serialise(job, caller, [])


async def _store_rows(
    state: ApiState, session: AsyncSession, job_id: uuid.UUID, checker: csv.RowChecker, lines: Iterator[list[str]]
) -> tuple[int, int]:
    """Check the rows as they stream in, inserting valid chunks; raise (rolling back) on any error.

    Returns the number of rows and what they cost against the daily limit.
    """
    max_rows = state.settings.limits.bulk_max_rows
    errors: list[str] = []
    writer = _RowWriter(session, job_id)
    count = units = 0
    try:
        for line in lines:
            if csv.is_blank(line):
                continue
            if count >= max_rows:
                raise BadRequestError(f"Too many rows. Maximum number of rows allowed is {max_rows}")
            checked = checker.check(count, line)
            count += 1
            if isinstance(checked, list):
                errors.extend(checked)
            elif not errors:
                units += checked.units
                await writer.add(checked)
            if count % _INSERT_CHUNK == 0:
                await asyncio.sleep(0)  # a 50,000-row file must not hold the event loop for its whole check
        if count == 0:
            raise ValidationError(["rows is too short"])
        if errors:
            raise BadRequestError(csv.row_errors_message(errors, len(errors)))
        await writer.finish()
    finally:
        await writer.settle()
    await repository.set_count(session, job_id, count)
    return count, units


class _RowWriter:
    """Inserts checked rows chunk by chunk, one chunk's INSERT running while the caller checks the next.

    The API's CPU and PostgreSQL's overlap; the session's connection still runs one statement at a time.
    """

    def __init__(self, session: AsyncSession, job_id: uuid.UUID) -> None:
        self._session = session
        self._job_id = job_id
        self._chunk: list[csv.CheckedRow] = []
        self._inserting: asyncio.Task[None] | None = None

    async def add(self, row: csv.CheckedRow) -> None:
        """Take one checked row; start its chunk's INSERT once the chunk is full."""
        self._chunk.append(row)
        if len(self._chunk) >= _INSERT_CHUNK:
            await self._start_insert()

    async def finish(self) -> None:
        """Insert what is left and wait until every INSERT is done (raising what one raised)."""
        await self._start_insert()
        if self._inserting is not None:
            await self._inserting

    async def settle(self) -> None:
        """Wait for an INSERT still running (the caller is failing and its transaction rolls back)."""
        if self._inserting is not None:
            await asyncio.wait([self._inserting])
            if not self._inserting.cancelled():
                self._inserting.exception()  # retrieved: the error that is propagating matters more

    async def _start_insert(self) -> None:
        if self._inserting is not None:
            await self._inserting
        chunk, self._chunk = self._chunk, []
        self._inserting = asyncio.create_task(repository.insert_rows(self._session, self._job_id, chunk))


async def _count_against_limits(state: ApiState, caller: Caller, job: Job, units: int, now: datetime) -> None:
    """Take the whole job from today's limit (GC Notify: not when it is scheduled for a later day)."""
    later_day = job.scheduled_for is not None and job.scheduled_for.date() > now.date()
    try:
        await limits.enforce(
            state.redis,
            caller.service,
            job.key_type,
            job.notification_type,
            units,
            interval_s=state.settings.limits.rate_interval_s,
            count_daily=not later_day,
            now=now,
        )
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise ServiceUnavailableError(
            "Service temporarily unavailable, the job was not accepted: try again",
            retry_after_s=state.settings.redis.retry_after_s,
        ) from exc


def serialise(job: Job, caller: Caller, counts: list[tuple[str, int]]) -> JobResponse:
    """Return the public view of a job."""
    return JobResponse(
        id=str(job.id),
        api_key=ApiKeyRef(id=str(caller.key.id), name=caller.key.name, key_type=caller.key.key_type),
        created_at=_iso(job.created_at) or "",
        job_status=job.status,
        notification_count=job.notification_count,
        original_file_name=job.original_file_name,
        processing_started=_iso(job.processing_started),
        processing_finished=_iso(job.processing_finished),
        scheduled_for=_iso(job.scheduled_for),
        sender_id=str(job.reply_to_id) if job.reply_to_id else None,
        service=str(job.service_id),
        service_name=ServiceName(name=caller.service.name),
        template=str(job.template_id),
        template_version=job.template_version,
        template_type=job.notification_type,
        updated_at=_iso(job.updated_at),
        reference=job.reference,
        rows_saved=job.rows_saved or 0,
        statistics=[StatusCount(status=status, count=count) for status, count in counts],
    )


def _iso(value: datetime | None) -> str | None:
    return reads.format_datetime(value)


async def get_job(state: ApiState, caller: Caller, job_id: str) -> JobResponse:
    """Return one of the caller's jobs with its progress and per-status counts, or raise 404."""
    wanted = validation.check_uuid("job_id", job_id)
    async with state.sessionmaker() as session:
        job = await repository.get(session, caller.service.id, wanted)
        if job is None:
            raise NotFoundError("No result found")
        counts = await repository.status_counts(session, job.id)
    return serialise(job, caller, counts)


async def cancel_job(state: ApiState, caller: Caller, job_id: str) -> JobResponse:
    """Cancel a job that has not started yet (scheduled or pending); 400 once it has."""
    wanted = validation.check_uuid("job_id", job_id)
    async with transaction(state.sessionmaker) as session:
        cancelled = await repository.cancel(session, caller.service.id, wanted)
    async with state.sessionmaker() as session:
        job = await repository.get(session, caller.service.id, wanted)
    if job is None:
        raise NotFoundError("No result found")
    if not cancelled:
        raise BadRequestError(f"Job cannot be cancelled: its status is {job.status}")
    log.info("notify.job.cancelled", job_id=str(job.id))
    return serialise(job, caller, [])


async def cancel_notification(
    state: ApiState, caller: Caller, notification_id: str, base_url: str
) -> NotificationResponse:
    """Cancel a scheduled notification that is not due yet; 400 once it is due or sent."""
    wanted = validation.check_uuid("notification_id", notification_id)
    async with transaction(state.sessionmaker) as session:
        cancelled = await repository.cancel_notification(session, caller.service.id, wanted)
        exists = cancelled or await repository.notification_exists(session, caller.service.id, wanted)
    if not exists:
        raise NotFoundError("No result found")
    if not cancelled:
        raise BadRequestError("Notification cannot be cancelled: only scheduled notifications not yet due can be")
    log.info("notify.notification.cancelled", notification_id=str(wanted))
    return await reads.get_one(state, caller, str(wanted), base_url)

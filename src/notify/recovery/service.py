"""Recovery: save what a crash left in flight, replay what never got sent, time out what never will (DESIGN §2.3)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from redis.asyncio import Redis

from notify import metrics, sentry
from notify.callbacks import service as callback_service
from notify.context import WorkerContext
from notify.db import transaction
from notify.inbox import service as inbox_service
from notify.inbox.streams import ALL_STREAMS, RawEntry, Stream, bury
from notify.notifications import statuses
from notify.receipts.schemas import Applied
from notify.recovery import repository, streams
from notify.recovery.streams import DeadLetter

log = structlog.get_logger(__name__)

TIMEOUT_CHUNK = 10_000
REQUEUE_CHUNK = 500


@dataclass
class InFlightReport:
    """What one in-flight-to-inbox run did."""

    saved: int = 0
    dead_lettered: int = 0
    failed: int = 0
    vanished: int = 0


async def move_in_flight_to_inbox(app: WorkerContext) -> InFlightReport:
    """Save again every inbox entry in flight for longer than the timeout; bury those that failed too often."""
    report = InFlightReport()
    for stream in ALL_STREAMS:
        await _reclaim_lane(app, stream, report)
    if report.saved or report.dead_lettered or report.failed or report.vanished:
        log.info(
            "notify.recovery.in_flight_reclaimed",
            saved=report.saved,
            dead_lettered=report.dead_lettered,
            failed=report.failed,
            vanished=report.vanished,
        )
    return report


async def _reclaim_lane(app: WorkerContext, stream: Stream, report: InFlightReport) -> None:
    worker = app.settings.worker
    min_idle_ms = worker.inflight_timeout_s * 1000
    seen: set[bytes] = set()
    while True:
        reclaimed = await streams.reclaim(app.redis, stream, app.consumer, min_idle_ms, worker.batch_size)
        report.vanished += reclaimed.vanished
        # An entry that failed earlier in this run stays pending for the next run, not for another lap of this one.
        fresh = [(raw, delivered) for raw, delivered in reclaimed.entries if raw[0] not in seen]
        if not fresh:
            return
        seen.update(raw[0] for raw, _ in fresh)
        exhausted = [raw for raw, delivered in fresh if delivered >= worker.max_save_attempts]
        retry = [raw for raw, delivered in fresh if delivered < worker.max_save_attempts]
        report.dead_lettered += await _bury_exhausted(app, stream, exhausted)
        if retry and not await _save_again(app, stream, retry, report):
            return  # the database is probably down: the entries stay pending for the next run
        if len(reclaimed.entries) < worker.batch_size:
            return


async def _bury_exhausted(app: WorkerContext, stream: Stream, raw: Sequence[RawEntry]) -> int:
    if not raw:
        return 0
    ids = [entry_id for entry_id, _ in raw]
    errors = await streams.last_errors(app.redis, stream, ids)
    attempts = app.settings.worker.max_save_attempts
    dead = [
        (entry_id, fields.get(b"n", b""), f"not saved after {attempts} attempts: {error or 'worker stopped'}")
        for (entry_id, fields), error in zip(raw, errors, strict=True)
    ]
    await bury(app.redis, stream, dead)
    await streams.forget_errors(app.redis, stream, ids)
    for entry_id, _, reason in dead:
        metrics.count_recovery("dead_lettered", 1)
        log.error("notify.recovery.dead_lettered", stream=stream.inbox, entry_id=entry_id.decode(), reason=reason)
    sentry.capture_final_failures(
        "notify.recovery.dead_lettered",
        [(entry_id.decode(), reason) for entry_id, _, reason in dead],
        stream=stream.dead,
    )
    return len(dead)


async def _save_again(app: WorkerContext, stream: Stream, raw: Sequence[RawEntry], report: InFlightReport) -> bool:
    """Save reclaimed entries as one batch; when that fails, one by one, so one bad entry cannot sink the rest.

    Return False when nothing could be saved (the database is probably down): the caller stops for this run.
    """
    error = await _try_save(app, stream, raw, report)
    if error is None:
        return True
    if len(raw) == 1:
        return False
    saved_any = False
    for number, entry in enumerate(raw):
        single_error = await _try_save(app, stream, [entry], report)
        saved_any = saved_any or single_error is None
        if not saved_any and number >= 2:
            return False  # three failures in a row and no success: not a bad entry, the database is away
    return saved_any


async def _try_save(app: WorkerContext, stream: Stream, raw: Sequence[RawEntry], report: InFlightReport) -> str | None:
    ids = [entry_id for entry_id, _ in raw]
    try:
        saved = await inbox_service.save_batch(app, stream, raw)
    except Exception as exc:  # any failure keeps the entries pending; the reason is kept for the dead letter
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
        report.failed += len(ids)
        await streams.record_errors(app.redis, stream, ids, error)
        metrics.count_recovery("save_failed", len(ids))
        log.warning("notify.recovery.save_failed", stream=stream.inbox, count=len(ids), error=error)
        return error
    report.saved += len(saved)
    await streams.forget_errors(app.redis, stream, ids)
    metrics.count_recovery("in_flight_saved", len(saved))
    log.info("notify.recovery.in_flight_saved", stream=stream.inbox, count=len(saved))
    return None


async def replay_created_notifications(app: WorkerContext, now: datetime | None = None) -> int:
    """Release expired send leases, then enqueue delivery again for rows waiting too long; return how many."""
    worker = app.settings.worker
    async with transaction(app.sessionmaker) as session:
        released = await repository.release_expired_leases(session, worker.send_lease_s)
        waiting = await repository.waiting_rows(session, worker.replay_after_s, worker.replay_max_rows)
    if released:
        metrics.count_recovery("lease_released", len(released))
        log.warning("notify.recovery.leases_released", count=len(released), lease_s=worker.send_lease_s)
    by_type: dict[str, dict[uuid.UUID, None]] = defaultdict(dict)
    for notification_id, notification_type in [*released, *waiting]:
        by_type[notification_type][notification_id] = None
    # One job id per chunk and replay window: two workers replaying in the same window enqueue each chunk once.
    window = int((now or datetime.now(UTC)).timestamp() // max(worker.replay_interval_s, 1))
    size = max(worker.replay_chunk_size, 1)
    replayed = 0
    for notification_type, ids in by_type.items():
        ordered = list(ids)
        for number, start in enumerate(range(0, len(ordered), size)):
            chunk = ordered[start : start + size]
            await app.queue.enqueue_job(
                f"deliver_{notification_type}",
                [str(i) for i in chunk],
                _job_id=f"replay:{notification_type}:{window}:{number}:{chunk[0]}",
            )
            replayed += len(chunk)
        metrics.count_recovery("replayed", len(ordered))
        log.info("notify.recovery.replayed", notification_type=notification_type, count=len(ordered))
    return replayed


async def timeout_notifications(app: WorkerContext) -> dict[str, int]:
    """Fail rows still `created` (technical-failure) or `sending` (temporary-failure) past their lifetime.

    Each chunk's delivery-status callbacks are enqueued after it commits; return how many rows moved, by status.
    """
    after_s = app.settings.worker.timeout_after_s
    days = after_s / 86_400
    moves = (
        (statuses.CREATED, statuses.TECHNICAL_FAILURE, f"Not sent within {days:g} days"),
        (statuses.SENDING, statuses.TEMPORARY_FAILURE, f"No delivery receipt within {days:g} days"),
    )
    counts: dict[str, int] = {}
    for old_status, new_status, reason in moves:
        total = 0
        while True:
            async with transaction(app.sessionmaker) as session:
                ids = await repository.time_out(session, old_status, new_status, after_s, reason, TIMEOUT_CHUNK)
            await callback_service.enqueue_delivery_status(app, [Applied(i, new_status) for i in ids])
            total += len(ids)
            if len(ids) < TIMEOUT_CHUNK:
                break
        counts[new_status] = total
        if total:
            metrics.count_recovery("timed_out", total)
            log.warning("notify.recovery.timed_out", from_status=old_status, to_status=new_status, count=total)
    return counts


async def list_dead_letters(redis: Redis, stream: str | None = None, limit: int = 100) -> list[DeadLetter]:
    """Return up to `limit` dead letters per lane (of one dead stream, or of all)."""
    letters: list[DeadLetter] = []
    for lane in streams.dead_streams(stream):
        letters += await streams.list_dead(redis, lane, limit)
    return letters


async def requeue_dead_letters(redis: Redis, stream: str | None = None) -> int:
    """Add every dead letter (of one dead stream, or of all) back to its inbox; return how many were requeued."""
    requeued = 0
    for lane in streams.dead_streams(stream):
        # Stop at the newest letter present now, so entries buried again while this runs are not looped over.
        newest = await redis.xrevrange(lane.dead, count=1)
        if not newest:
            continue
        last_id = newest[0][0]
        count = 0
        while letters := await streams.list_dead(redis, lane, REQUEUE_CHUNK, until=last_id):
            await streams.requeue_dead(redis, lane, letters)
            count += len(letters)
        metrics.count_recovery("dead_letter_requeued", count)
        log.warning("notify.recovery.dead_letters_requeued", stream=lane.dead, count=count)
        requeued += count
    return requeued

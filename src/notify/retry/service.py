"""Send failed or bounced notifications again through the normal delivery path (`notify retry`, DESIGN §1)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.db import transaction
from notify.errors import BadRequestError
from notify.notifications import statuses
from notify.retry import repository
from notify.retry.repository import Candidate

log = structlog.get_logger(__name__)

BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class ByIds:
    """Retry these notifications (those not in a failure status are left alone)."""

    ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True, slots=True)
class ByFilter:
    """Retry a service's notifications in one failure status, created in [since, until)."""

    service_id: uuid.UUID
    status: str
    since: datetime
    until: datetime


Selection = ByIds | ByFilter


def by_ids(ids: list[uuid.UUID]) -> ByIds:
    """Select notifications by id (duplicates ignored)."""
    if not ids:
        raise BadRequestError("Give at least one --id, or --service with --status, --since and --until")
    return ByIds(tuple(dict.fromkeys(ids)))


def by_filter(service_id: uuid.UUID, status: str, since: datetime, until: datetime) -> ByFilter:
    """Select a service's notifications by failure status and creation time; naive times are UTC."""
    if status not in statuses.FAILED:
        raise BadRequestError(f"--status must be one of {', '.join(statuses.FAILED)}")
    since, until = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (since, until))
    if since >= until:
        raise BadRequestError("--since must be before --until")
    return ByFilter(service_id, status, since, until)


async def count(sessionmaker: async_sessionmaker[AsyncSession], selection: Selection) -> int:
    """Return how many notifications the selection would retry now."""
    async with sessionmaker() as session:
        if isinstance(selection, ByIds):
            return len(await repository.failed_by_ids(session, selection.ids))
        return await repository.count_by_filter(
            session,
            service_id=selection.service_id,
            status=selection.status,
            since=selection.since,
            until=selection.until,
        )


async def sample(
    sessionmaker: async_sessionmaker[AsyncSession], selection: Selection, limit: int = 10
) -> list[Candidate]:
    """Return up to `limit` of the notifications the selection would retry."""
    async with sessionmaker() as session:
        if isinstance(selection, ByIds):
            return (await repository.failed_by_ids(session, selection.ids))[:limit]
        return await _page(session, selection, None, limit)


async def _page(session: AsyncSession, selection: ByFilter, after: uuid.UUID | None, limit: int) -> list[Candidate]:
    return await repository.failed_by_filter(
        session,
        service_id=selection.service_id,
        status=selection.status,
        since=selection.since,
        until=selection.until,
        after=after,
        limit=limit,
    )


async def _reset_batches(
    sessionmaker: async_sessionmaker[AsyncSession], selection: Selection, batch_size: int
) -> AsyncIterator[list[tuple[uuid.UUID, str]]]:
    """Reset the selection batch by batch, one committed transaction each; yield each batch after its commit."""
    if isinstance(selection, ByIds):
        for start in range(0, len(selection.ids), batch_size):
            async with transaction(sessionmaker) as session:
                reset = await repository.reset(session, selection.ids[start : start + batch_size])
            yield reset
        return
    after: uuid.UUID | None = None
    while True:
        async with transaction(sessionmaker) as session:
            page = await _page(session, selection, after, batch_size)
            reset = await repository.reset(session, [c.id for c in page])
        if not page:
            return
        yield reset
        after = page[-1].id


async def retry(
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: Any,
    selection: Selection,
    *,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Reset the selected failed notifications to `created` and enqueue their delivery; return how many.

    `queue` is an arq pool. Delivery is enqueued after each batch commits, so a crash half way leaves reset rows
    that replay-created-notifications picks up, never a job for a row that rolled back.
    """
    run = uuid.uuid4().hex[:12]
    total = 0
    number = 0
    async for reset in _reset_batches(sessionmaker, selection, max(batch_size, 1)):
        by_type: dict[str, list[str]] = defaultdict(list)
        for notification_id, notification_type in reset:
            by_type[notification_type].append(str(notification_id))
        for notification_type, ids in by_type.items():
            await queue.enqueue_job(f"deliver_{notification_type}", ids, _job_id=f"resend:{run}:{number}:{ids[0]}")
        number += 1
        total += len(reset)
        if on_batch is not None:
            on_batch(len(reset))
    log.info("notify.retry.done", run=run, count=total)
    return total

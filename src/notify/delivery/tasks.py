"""arq jobs that deliver batches of notifications."""

from __future__ import annotations

import uuid
from typing import Any

import redis.exceptions
import sqlalchemy.exc
import structlog
from arq import Retry

from notify.context import from_ctx
from notify.delivery import service

log = structlog.get_logger(__name__)

# Runs of one delivery job, the first included. The retries cover a short database or Redis outage (or a
# pool that had no connection free) in seconds; a longer one is left to replay-created-notifications.
MAX_TRIES = 5
RETRY_BASE_DELAY_S = 1.0
RETRY_MAX_DELAY_S = 30.0

# What a batch meets when PostgreSQL or Redis is down, restarting, or out of connections for a while.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.TimeoutError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OSError,
)


async def deliver_email(ctx: dict[str, Any], ids: list[str]) -> int:
    """Send the emails among `ids` that are still waiting; return how many were sent."""
    return await _deliver(ctx, "email", ids)


async def deliver_sms(ctx: dict[str, Any], ids: list[str]) -> int:
    """Send the text messages among `ids` that are still waiting; return how many were sent."""
    return await _deliver(ctx, "sms", ids)


async def _deliver(ctx: dict[str, Any], notification_type: str, ids: list[str]) -> int:
    """Deliver the batch; if PostgreSQL or Redis is unavailable, run the whole job again after a backoff.

    Running it again is safe: only rows still `created` are claimed, so rows this run already claimed are
    not sent twice (they come back through the send lease if this run stopped before sending them).
    """
    try:
        outcome = await service.deliver(from_ctx(ctx), notification_type, [uuid.UUID(i) for i in ids])
    except UNAVAILABLE as exc:
        job_try = int(ctx.get("job_try", 1))
        if job_try >= MAX_TRIES:
            raise
        delay = service.retry_delay_s(job_try, RETRY_BASE_DELAY_S, RETRY_MAX_DELAY_S)
        log.warning(
            "notify.delivery.batch_retry",
            notification_type=notification_type,
            count=len(ids),
            error=type(exc).__name__,
            job_try=job_try,
            delay_s=round(delay, 2),
        )
        raise Retry(defer=delay) from exc
    return len(outcome.sent)

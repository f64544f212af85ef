"""Account-level sending pauses: when the provider stops the whole account, every worker stops asking."""

from __future__ import annotations

import structlog
from redis.asyncio import Redis

from notify import metrics

log = structlog.get_logger(__name__)


def pause_key(notification_type: str) -> str:
    """Name the Redis key that pauses all sending of one notification type while it exists."""
    return f"notify:sending-paused:{notification_type}"


async def pause(redis: Redis, notification_type: str, seconds: int, reason: str) -> None:
    """Pause sending of `notification_type` for every worker for `seconds`; a later pause extends it."""
    await redis.set(pause_key(notification_type), reason[:500], ex=max(1, seconds))
    metrics.count_recovery("sending_paused")
    log.warning("notify.delivery.sending_paused", notification_type=notification_type, seconds=seconds, reason=reason)


async def paused_for_s(redis: Redis, notification_type: str) -> float:
    """Return how many seconds sending of `notification_type` stays paused (0 when it is not paused)."""
    remaining_ms = int(await redis.pttl(pause_key(notification_type)))
    # -2: no key; -1: a key without expiry (set by hand), treated as a one-minute pause re-checked later.
    if remaining_ms == -2:
        return 0.0
    if remaining_ms == -1:
        return 60.0
    return max(remaining_ms, 0) / 1000


async def resume(redis: Redis, notification_type: str) -> None:
    """Lift a pause before its expiry (operators, tests)."""
    await redis.delete(pause_key(notification_type))

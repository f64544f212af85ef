"""arq cron jobs of recovery (DESIGN §2.3); their schedules are built from the worker settings."""

from __future__ import annotations

from typing import Any

from notify.context import from_ctx
from notify.recovery import service


async def move_in_flight_to_inbox(ctx: dict[str, Any]) -> int:
    """Save inbox entries stuck in flight again (in-flight-to-inbox); return how many were saved."""
    report = await service.move_in_flight_to_inbox(from_ctx(ctx))
    return report.saved


async def replay_created_notifications(ctx: dict[str, Any]) -> int:
    """Enqueue delivery again for rows stuck in `created` or an expired `sending` lease; return how many."""
    return await service.replay_created_notifications(from_ctx(ctx))


async def timeout_notifications(ctx: dict[str, Any]) -> int:
    """Fail rows past their lifetime (nightly); return how many changed."""
    return sum((await service.timeout_notifications(from_ctx(ctx))).values())


def every(interval_s: int) -> dict[str, set[int]]:
    """Return arq cron `second`/`minute` sets for "every `interval_s` seconds" (divisors of 60, or whole minutes)."""
    if interval_s < 60:
        step = max(interval_s, 1)
        return {"second": set(range(0, 60, step))}
    minutes = max(interval_s // 60, 1)
    return {"second": {0}, "minute": set(range(0, 60, minutes))}

"""arq jobs that deliver batches of notifications."""

from __future__ import annotations

import uuid
from typing import Any

from notify.context import from_ctx
from notify.delivery import service


async def deliver_email(ctx: dict[str, Any], ids: list[str]) -> int:
    """Send the emails among `ids` that are still waiting; return how many were sent."""
    outcome = await service.deliver(from_ctx(ctx), "email", [uuid.UUID(i) for i in ids])
    return len(outcome.sent)


async def deliver_sms(ctx: dict[str, Any], ids: list[str]) -> int:
    """Send the text messages among `ids` that are still waiting; return how many were sent."""
    outcome = await service.deliver(from_ctx(ctx), "sms", [uuid.UUID(i) for i in ids])
    return len(outcome.sent)

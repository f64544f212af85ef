"""arq jobs that call the services' callback URLs."""

from __future__ import annotations

import uuid
from typing import Any

from notify.callbacks import service
from notify.context import from_ctx


async def send_delivery_status(ctx: dict[str, Any], notification_id: str, status: str) -> str:
    """POST the notification's status to its service's callback URL; return how it ended."""
    result = await service.send_delivery_status(
        from_ctx(ctx), uuid.UUID(notification_id), status, int(ctx.get("job_try", 1))
    )
    return result.value


async def send_complaint(ctx: dict[str, Any], complaint_id: str) -> str:
    """POST a complaint to its service's complaint callback URL; return how it ended."""
    result = await service.send_complaint(from_ctx(ctx), uuid.UUID(complaint_id), int(ctx.get("job_try", 1)))
    return result.value

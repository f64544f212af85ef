"""arq cron jobs: the receipt pollers and retention (DESIGN §2.3, §2.5)."""

from __future__ import annotations

from typing import Any

from notify.context import from_ctx
from notify.receipts import parsing, service


async def receive_bounces(ctx: dict[str, Any]) -> int:
    """Drain the bounces/complaints/rejects queue; return how many messages were received."""
    app = from_ctx(ctx)
    return (await service.poll(app, app.settings.aws.bounce_queue, parsing.parse_ses)).received


async def receive_deliveries(ctx: dict[str, Any]) -> int:
    """Drain the SES deliveries queue; return how many messages were received."""
    app = from_ctx(ctx)
    return (await service.poll(app, app.settings.aws.delivery_queue, parsing.parse_ses)).received


async def receive_sms_receipts(ctx: dict[str, Any]) -> int:
    """Drain the SMS delivery events queue; return how many messages were received."""
    app = from_ctx(ctx)
    return (await service.poll(app, app.settings.aws.sms_receipt_queue, parsing.parse_sms)).received


async def delete_expired_notifications(ctx: dict[str, Any]) -> int:
    """Delete notifications past their service's retention; return how many."""
    return await service.delete_expired_notifications(from_ctx(ctx))


POLLERS = (receive_bounces, receive_deliveries, receive_sms_receipts)

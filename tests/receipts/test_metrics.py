"""The receipt pollers record notify_receipts_total and accepted → delivered (DESIGN §8)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.context import WorkerContext
from notify.metrics import REGISTRY
from notify.receipts import tasks
from notify.settings import Settings
from tests.factories import create_sample
from tests.receipts.conftest import bounce_event, create_notification, delivery_event, send_to_queue, sns_envelope


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_applied_receipts_are_counted_and_deliveries_timed(
    receipt_settings: Settings, receipt_ctx: WorkerContext, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, receipt_settings)
    for reference in ("ses-m1", "ses-m2", "ses-m3"):
        await create_notification(
            sessionmaker, sample.service_id, sample.email_template_id, reference=reference, age=timedelta(minutes=10)
        )
    delivered_before = _value("notify_receipts_total", notification_type="email", outcome="delivered")
    bounced_before = _value("notify_receipts_total", notification_type="email", outcome="permanent-failure")
    timed_before = _value("notify_accepted_to_delivered_seconds_count", notification_type="email")
    seconds_before = _value("notify_accepted_to_delivered_seconds_sum", notification_type="email")
    sent_to_delivered_before = _value("notify_sent_to_delivered_seconds_count", notification_type="email")
    aws = receipt_settings.aws
    await send_to_queue(
        receipt_settings,
        aws.delivery_queue,
        sns_envelope(delivery_event("ses-m1")),
        sns_envelope(delivery_event("ses-m2")),
        sns_envelope(delivery_event("ses-m1")),  # a repeat changes nothing and is not counted twice
    )
    await send_to_queue(receipt_settings, aws.bounce_queue, sns_envelope(bounce_event("ses-m3")))

    await tasks.receive_deliveries({"notify": receipt_ctx})
    await tasks.receive_bounces({"notify": receipt_ctx})

    assert _value("notify_receipts_total", notification_type="email", outcome="delivered") - delivered_before == 2
    assert _value("notify_receipts_total", notification_type="email", outcome="permanent-failure") == bounced_before + 1
    assert _value("notify_accepted_to_delivered_seconds_count", notification_type="email") - timed_before == 2
    elapsed = _value("notify_accepted_to_delivered_seconds_sum", notification_type="email") - seconds_before
    assert 2 * 600 <= elapsed < 2 * 700
    assert _value("notify_sent_to_delivered_seconds_count", notification_type="email") - sent_to_delivered_before == 2

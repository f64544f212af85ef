"""Complaint callbacks (DESIGN §2.6): a recorded complaint is POSTed to the service's complaint callback URL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.callbacks.models import ServiceCallback
from notify.context import WorkerContext
from notify.receipts import service as receipt_service
from notify.receipts.models import Complaint
from notify.receipts.schemas import ComplaintReceipt
from notify.settings import Settings
from notify.worker import build_worker
from tests.callbacks.conftest import TOKEN, Endpoint, register
from tests.factories import create_sample
from tests.receipts.conftest import create_notification

COMPLAINED_AT = datetime(2026, 11, 23, 12, 5, tzinfo=UTC)


async def _complain(app: WorkerContext, reference: str, feedback_id: str) -> None:
    """Record a complaint as the bounce poller does (which enqueues the callback) and run the worker."""
    await receipt_service.apply_receipts(app, [], [ComplaintReceipt(reference, feedback_id, "abuse", COMPLAINED_AT)])
    worker = build_worker(app.settings, burst=True, with_cron=False)
    worker.poll_delay_s = 0
    await worker.async_run()
    await worker.close()


async def test_a_complaint_is_called_back_with_gc_notify_fields_after_retries(
    callback_settings: Settings,
    app: WorkerContext,
    sessionmaker: async_sessionmaker[AsyncSession],
    endpoint: Endpoint,
) -> None:
    sample = await create_sample(sessionmaker, callback_settings)
    await register(sessionmaker, callback_settings, sample, endpoint.url, "complaint")
    notification_id = await create_notification(
        sessionmaker, sample.service_id, sample.email_template_id, reference="ses-c", client_reference="my-ref"
    )
    endpoint.answers = [503, 429]

    await _complain(app, "ses-c", "feedback-1")

    async with sessionmaker() as session:
        complaint = (await session.scalars(select(Complaint))).one()
    assert len(endpoint.requests) == 3
    assert {auth for auth, _ in endpoint.requests} == {f"Bearer {TOKEN}"}
    assert endpoint.requests[-1][1] == {
        "notification_id": str(notification_id),
        "complaint_id": str(complaint.id),
        "reference": "my-ref",
        "to": "ada@example.com",
        "complaint_date": "2026-11-23T12:05:00.000000Z",
    }

    await _complain(app, "ses-c", "feedback-1")  # the same SES event again: no second complaint, no second POST

    assert len(endpoint.requests) == 3


async def test_only_a_complaint_callback_hears_of_complaints(
    callback_settings: Settings,
    app: WorkerContext,
    sessionmaker: async_sessionmaker[AsyncSession],
    endpoint: Endpoint,
) -> None:
    sample = await create_sample(sessionmaker, callback_settings)
    await register(sessionmaker, callback_settings, sample, endpoint.url, "delivery_status")
    await create_notification(sessionmaker, sample.service_id, sample.email_template_id, reference="ses-d")

    await _complain(app, "ses-d", "feedback-2")

    assert endpoint.requests == []
    assert await app.queue.queued_jobs() == []


async def test_a_complaint_callback_that_keeps_failing_is_suspended(
    callback_settings: Settings,
    app: WorkerContext,
    sessionmaker: async_sessionmaker[AsyncSession],
    endpoint: Endpoint,
) -> None:
    sample = await create_sample(sessionmaker, callback_settings)
    await register(sessionmaker, callback_settings, sample, endpoint.url, "complaint")
    await create_notification(sessionmaker, sample.service_id, sample.email_template_id, reference="ses-e")
    endpoint.answers = [500] * 20

    await _complain(app, "ses-e", "feedback-3")
    await _complain(app, "ses-e", "feedback-4")

    async with sessionmaker() as session:
        callback = (await session.scalars(select(ServiceCallback))).one()
    assert callback.suspended_at is not None
    assert len(endpoint.requests) == 5, "suspended after 5 consecutive failures; nothing sent afterwards"

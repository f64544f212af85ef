"""Delivery-status callbacks POSTed to a real HTTP server on 127.0.0.1 (DESIGN §2.6)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.auth.keys import SecretBox
from notify.callbacks import service as callback_service
from notify.callbacks.models import ServiceCallback
from notify.context import WorkerContext
from notify.db import transaction
from notify.errors import BadRequestError
from notify.receipts import service as receipt_service
from notify.receipts.schemas import StatusReceipt
from notify.settings import Settings
from notify.worker import build_worker
from tests.callbacks.conftest import TOKEN, Endpoint, register
from tests.factories import create_sample
from tests.receipts.conftest import create_notification


async def _deliver_receipt(app: WorkerContext, reference: str, status: str = "delivered") -> None:
    """Apply a receipt as the pollers do (which enqueues the callback) and run the worker until it is done."""
    await receipt_service.apply_receipts(app, [StatusReceipt(reference, status)])
    worker = build_worker(app.settings, burst=True, with_cron=False)
    worker.poll_delay_s = 0
    await worker.async_run()
    await worker.close()


async def _callback_row(sessionmaker: async_sessionmaker[AsyncSession]) -> ServiceCallback:
    from sqlalchemy import select

    async with sessionmaker() as session:
        return (await session.scalars(select(ServiceCallback))).one()


async def test_callback_is_retried_after_5xx_and_delivered_once(
    callback_settings: Settings,
    app: WorkerContext,
    sessionmaker: async_sessionmaker[AsyncSession],
    endpoint: Endpoint,
) -> None:
    sample = await create_sample(sessionmaker, callback_settings)
    await register(sessionmaker, callback_settings, sample, endpoint.url)
    notification_id = await create_notification(
        sessionmaker, sample.service_id, sample.email_template_id, reference="ses-cb", client_reference="my-ref"
    )
    endpoint.answers = [500, 503, 500]

    await _deliver_receipt(app, "ses-cb")

    assert len(endpoint.requests) == 4
    assert {auth for auth, _ in endpoint.requests} == {f"Bearer {TOKEN}"}
    body = endpoint.requests[-1][1]
    assert body["id"] == str(notification_id)
    assert body["reference"] == "my-ref"
    assert body["to"] == "ada@example.com"
    assert body["status"] == "delivered"
    assert body["status_description"] == "Delivered"
    assert body["notification_type"] == "email"
    assert body["provider_response"] is None
    assert body["created_at"].endswith("Z")
    assert body["completed_at"] is not None
    assert set(body) == {
        "id",
        "reference",
        "to",
        "status",
        "status_description",
        "provider_response",
        "created_at",
        "completed_at",
        "sent_at",
        "notification_type",
    }
    assert (await _callback_row(sessionmaker)).failures == 0


async def test_a_4xx_answer_is_not_retried(
    callback_settings: Settings,
    app: WorkerContext,
    sessionmaker: async_sessionmaker[AsyncSession],
    endpoint: Endpoint,
) -> None:
    sample = await create_sample(sessionmaker, callback_settings)
    await register(sessionmaker, callback_settings, sample, endpoint.url)
    await create_notification(sessionmaker, sample.service_id, sample.email_template_id, reference="ses-400")
    endpoint.answers = [400]

    await _deliver_receipt(app, "ses-400", "permanent-failure")

    assert [body["status"] for _, body in endpoint.requests] == ["permanent-failure"]
    assert (await _callback_row(sessionmaker)).failures == 1


async def test_a_callback_that_keeps_failing_is_suspended(
    callback_settings: Settings,
    app: WorkerContext,
    sessionmaker: async_sessionmaker[AsyncSession],
    endpoint: Endpoint,
) -> None:
    sample = await create_sample(sessionmaker, callback_settings)
    await register(sessionmaker, callback_settings, sample, endpoint.url)
    await create_notification(sessionmaker, sample.service_id, sample.email_template_id, reference="ses-a")
    await create_notification(sessionmaker, sample.service_id, sample.email_template_id, reference="ses-b")
    endpoint.answers = [500] * 20

    await _deliver_receipt(app, "ses-a")
    await _deliver_receipt(app, "ses-b")

    row = await _callback_row(sessionmaker)
    assert row.suspended_at is not None
    assert len(endpoint.requests) == 5, "suspended after 5 consecutive failures; nothing sent afterwards"


async def test_no_callback_without_a_registered_url(
    callback_settings: Settings, app: WorkerContext, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, callback_settings)
    notification_id = await create_notification(
        sessionmaker, sample.service_id, sample.email_template_id, reference="ses-none"
    )
    _, applied = await receipt_service.apply_receipts(app, [StatusReceipt("ses-none", "delivered")])

    assert [a.notification_id for a in applied] == [notification_id]
    assert await app.queue.queued_jobs() == []


async def test_callback_urls_must_be_https(
    callback_settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, callback_settings)
    box = SecretBox(callback_settings.api.secret_key.get_secret_value())
    async with sessionmaker() as session:
        with pytest.raises(BadRequestError):
            await callback_service.set_callback(
                session, box, sample.service_id, url="http://example.com/cb", bearer_token=TOKEN
            )
        callback_id = await callback_service.set_callback(
            session, box, sample.service_id, url="https://example.com/cb", bearer_token=TOKEN
        )
    assert isinstance(callback_id, uuid.UUID)


async def test_a_technical_failure_in_delivery_is_called_back(
    callback_settings: Settings,
    app: WorkerContext,
    sessionmaker: async_sessionmaker[AsyncSession],
    endpoint: Endpoint,
) -> None:
    from sqlalchemy import update

    from notify.delivery import service as delivery_service
    from notify.services.models import Service

    sample = await create_sample(sessionmaker, callback_settings)
    async with transaction(sessionmaker) as session:
        # SES (moto) rejects a From domain that was never verified: a permanent provider error.
        await session.execute(
            update(Service).where(Service.id == sample.service_id).values(sending_domain="unverified.invalid")
        )
    await register(sessionmaker, callback_settings, sample, endpoint.url)
    notification_id = await create_notification(
        sessionmaker,
        sample.service_id,
        sample.email_template_id,
        reference=None,
        status="created",
        personalisation={"name": "Ada", "code": "1"},
    )

    outcome = await delivery_service.deliver(app, "email", [notification_id])
    worker = build_worker(app.settings, burst=True, with_cron=False)
    worker.poll_delay_s = 0
    await worker.async_run()
    await worker.close()

    assert [failed_id for failed_id, _ in outcome.failed] == [notification_id]
    assert [body["status"] for _, body in endpoint.requests] == ["technical-failure"]
    assert endpoint.requests[0][1]["provider_response"]

"""The happy path end to end with the real Notify Python client: POST → stream → PostgreSQL → SES/SNS."""

from __future__ import annotations

import asyncio

from notifications_python_client.notifications import NotificationsAPIClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.context import WorkerContext
from notify.embedded import sent_emails, sns_published
from notify.inbox import service as inbox_service
from notify.notifications.models import Notification
from notify.settings import Settings
from tests.conftest import REGION
from tests.factories import create_sample
from tests.live_server import live_server


async def run_worker(worker_ctx: WorkerContext, settings: Settings) -> None:
    """Save what is in the inbox and run the delivery jobs, as the worker would."""
    from notify.worker import build_worker

    await inbox_service.drain(worker_ctx)
    worker = build_worker(settings, burst=True, with_cron=False)
    worker.poll_delay_s = 0
    await worker.async_run()
    await worker.close()


async def test_python_client_sends_email_and_sms_end_to_end(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], worker_ctx: WorkerContext
) -> None:
    sample = await create_sample(sessionmaker, settings)
    emails_before = len(sent_emails(REGION))
    sms_before = len(sns_published(REGION))
    await _verify_sender(worker_ctx)
    with live_server(settings) as base_url:
        client = NotificationsAPIClient(sample.key, base_url=base_url)  # type: ignore[no-untyped-call]
        email = await asyncio.to_thread(
            client.send_email_notification,
            email_address="ada@example.com",
            template_id=str(sample.email_template_id),
            personalisation={"name": "Ada", "code": "1234"},
            reference="ref-email",
        )
        sms = await asyncio.to_thread(
            client.send_sms_notification,
            phone_number="+447911123456",
            template_id=str(sample.sms_template_id),
            personalisation={"code": "5678"},
        )
        assert email["content"] == {
            "subject": "Code for Ada",
            "body": "Hello Ada, your code is 1234.",
            "from_email": "sample@notify.test",
        }
        assert email["reference"] == "ref-email"
        assert email["template"]["id"] == str(sample.email_template_id)
        assert email["template"]["version"] == 1
        assert email["uri"].endswith(f"/v2/notifications/{email['id']}")
        assert sms["content"]["body"] == "Your code is 5678"

        await run_worker(worker_ctx, settings)

        saved_email = await asyncio.to_thread(client.get_notification_by_id, email["id"])
        saved_sms = await asyncio.to_thread(client.get_notification_by_id, sms["id"])
    assert saved_email["status"] == "sending"
    assert saved_email["status_description"] == "In transit"
    assert saved_email["email_address"] == "ada@example.com"
    assert saved_email["subject"] == "Code for Ada"
    assert saved_email["reference"] == "ref-email"
    assert saved_email["sent_at"] is not None
    assert saved_sms["status"] == "sent"
    assert saved_sms["phone_number"] == "+447911123456"

    new_emails = sent_emails(REGION)[emails_before:]
    assert len(new_emails) == 1
    assert new_emails[0].subject == "Code for Ada"
    assert "Hello Ada, your code is 1234." in new_emails[0].body
    assert new_emails[0].destinations["ToAddresses"] == ["ada@example.com"]
    new_sms = sns_published(REGION)[sms_before:]
    assert [(number, text) for number, text, *_ in new_sms] == [("+447911123456", "Your code is 5678")]

    async with sessionmaker() as session:
        rows = (await session.scalars(select(Notification).order_by(Notification.notification_type))).all()
    assert {row.id.hex for row in rows} == {email["id"].replace("-", ""), sms["id"].replace("-", "")}
    assert all(row.reference for row in rows), "the provider message id is stored as the reference"


async def test_a_batch_saved_twice_makes_one_row_and_one_send(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], worker_ctx: WorkerContext
) -> None:
    from httpx import ASGITransport, AsyncClient

    from notify.app import create_app
    from notify.inbox.streams import Stream

    sample = await create_sample(sessionmaker, settings)
    await _verify_sender(worker_ctx)
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http,
    ):
        for n in range(3):
            response = await http.post(
                "/v2/notifications/email",
                headers={"Authorization": f"ApiKey-v1 {sample.key}"},
                json={
                    "email_address": f"user{n}@example.com",
                    "template_id": str(sample.email_template_id),
                    "personalisation": {"name": "N", "code": str(n)},
                },
            )
            assert response.status_code == 201, response.text
    stream = Stream("email", "normal")
    raw = await worker_ctx.redis.xreadgroup("savers", "c1", {stream.inbox: ">"}, count=10)
    batch = raw[0][1]
    emails_before = len(sent_emails(REGION))
    await inbox_service.save_batch(worker_ctx, stream, batch)
    await inbox_service.save_batch(worker_ctx, stream, batch)
    worker = __import__("notify.worker", fromlist=["build_worker"]).build_worker(settings, burst=True, with_cron=False)
    worker.poll_delay_s = 0
    await worker.async_run()
    await worker.close()
    async with sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(Notification))
        statuses = set((await session.scalars(select(Notification.status))).all())
    assert count == 3
    assert statuses == {"sending"}
    assert len(sent_emails(REGION)) - emails_before == 3
    assert await worker_ctx.redis.xlen(stream.inbox) == 0


async def _verify_sender(worker_ctx: WorkerContext) -> None:
    from notify import aws

    session = aws.create_session(worker_ctx.settings.aws)
    async with session.client("sesv2", **aws.client_kwargs(worker_ctx.settings.aws)) as ses:
        await ses.create_email_identity(EmailIdentity=worker_ctx.settings.aws.email_domain)

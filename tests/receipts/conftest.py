"""Fixtures for the receipt pollers: per-test queues on the moto server and notification rows to receive for."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify import aws
from notify.context import WorkerContext
from notify.db import transaction
from notify.notifications.models import Notification
from notify.receipts import setup
from notify.settings import Settings
from notify.testing.receipts import delivery_event as delivery_event
from notify.testing.receipts import ses_mail
from notify.testing.receipts import sns_envelope as sns_envelope
from notify.worker import worker_resources
from tests.conftest import make_settings
from tests.servers import Servers


@pytest.fixture
async def receipt_settings(servers: Servers, clean: None) -> Settings:
    """Settings with queues of this test only (moto keeps state for the session) and fast polling."""
    base = make_settings(servers)
    suffix = uuid.uuid4().hex[:8]
    aws_settings = base.aws.model_copy(
        update={
            "ses_bounce_topic": f"bounces-{suffix}",
            "ses_delivery_topic": f"deliveries-{suffix}",
            "sms_receipt_topic": f"sms-{suffix}",
            "bounce_queue": f"bounces-{suffix}",
            "delivery_queue": f"deliveries-{suffix}",
            "sms_receipt_queue": f"sms-{suffix}",
            "receipt_wait_time_s": 0,
            "receipt_visibility_timeout_s": 1,
            "receipt_poll_budget_s": 10.0,
            # moto's ReceiveMessage takes no lock: concurrent receives can hand out one message twice (SQS may too),
            # which would make exact counts flaky. Tests of concurrent rounds raise this themselves.
            "receipt_receive_concurrency": 1,
        }
    )
    await setup.ensure_receipt_wiring(aws_settings)
    return make_settings(servers, aws=aws_settings)


@pytest.fixture
async def receipt_ctx(receipt_settings: Settings, queue: ArqRedis) -> AsyncIterator[WorkerContext]:
    async with worker_resources(receipt_settings, queue) as context:
        yield context


async def send_to_queue(settings: Settings, queue_name: str, *bodies: str) -> None:
    """Put raw bodies on a queue, as SNS would."""
    session = aws.create_session(settings.aws)
    async with session.client("sqs", **aws.client_kwargs(settings.aws)) as sqs:
        url = (await sqs.get_queue_url(QueueName=queue_name))["QueueUrl"]
        for body in bodies:
            await sqs.send_message(QueueUrl=url, MessageBody=body)


async def queue_bodies(settings: Settings, queue_name: str) -> list[str]:
    """Receive what is visible on a queue (making it invisible for a moment)."""
    session = aws.create_session(settings.aws)
    async with session.client("sqs", **aws.client_kwargs(settings.aws)) as sqs:
        url = (await sqs.get_queue_url(QueueName=queue_name))["QueueUrl"]
        response = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [m["Body"] for m in response.get("Messages", [])]


def bounce_event(message_id: str, bounce_type: str = "Permanent", sub_type: str = "General") -> dict[str, Any]:
    """A realistic SES Bounce event."""
    return {
        "eventType": "Bounce",
        "mail": ses_mail(message_id),
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": sub_type,
            "bouncedRecipients": [
                {
                    "emailAddress": "ada@example.com",
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": "2026-11-23T12:00:02.000Z",
            "feedbackId": f"feedback-{uuid.uuid4()}",
            "reportingMTA": "dsn; e226-55.smtp-out.amazonses.com",
        },
    }


def complaint_event(message_id: str, feedback_id: str) -> dict[str, Any]:
    """A realistic SES Complaint event."""
    return {
        "eventType": "Complaint",
        "mail": ses_mail(message_id),
        "complaint": {
            "complainedRecipients": [{"emailAddress": "ada@example.com"}],
            "timestamp": "2026-11-23T12:05:00.000Z",
            "feedbackId": feedback_id,
            "userAgent": "Mozilla/5.0",
            "complaintFeedbackType": "abuse",
            "arrivalDate": "2026-11-23T12:04:59.000Z",
        },
    }


async def create_notification(
    sessionmaker: async_sessionmaker[AsyncSession],
    service_id: uuid.UUID,
    template_id: uuid.UUID,
    *,
    reference: str | None,
    status: str = "sending",
    notification_type: str = "email",
    age: timedelta = timedelta(0),
    client_reference: str | None = None,
    personalisation: dict[str, Any] | None = None,
) -> uuid.UUID:
    """Insert a notification as delivery would have left it."""
    now = datetime.now(UTC)
    notification = Notification(
        id=uuid.uuid4(),
        service_id=service_id,
        template_id=template_id,
        template_version=1,
        key_type="normal",
        notification_type=notification_type,
        lane="normal",
        to="ada@example.com" if notification_type == "email" else "+15145550100",
        normalised_to="ada@example.com" if notification_type == "email" else "+15145550100",
        body="Hello",
        status=status,
        reference=reference,
        client_reference=client_reference,
        personalisation=personalisation,
        created_at=now - age,
        sent_at=now - age if reference else None,
    )
    async with transaction(sessionmaker) as session:
        session.add(notification)
    return notification.id

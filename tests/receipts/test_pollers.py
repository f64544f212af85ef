"""SES events on the moto SQS queues → pollers → notification statuses and complaints (DESIGN §2.5)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import uuid
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify import aws
from notify.context import WorkerContext
from notify.notifications.models import Notification
from notify.receipts import parsing, service, tasks
from notify.receipts.models import Complaint
from notify.receipts.service import dead_letter_name
from notify.receipts.sqs import ReceiptQueueClient
from notify.settings import Settings
from tests.factories import Sample, create_sample
from tests.jobs.helpers import execute
from tests.receipts.conftest import (
    bounce_event,
    complaint_event,
    create_notification,
    delivery_event,
    queue_bodies,
    send_to_queue,
    sns_envelope,
)


async def _row(sessionmaker: async_sessionmaker[AsyncSession], notification_id: uuid.UUID) -> Notification:
    async with sessionmaker() as session:
        row = await session.get(Notification, notification_id)
    assert row is not None
    return row


async def _sent_email(
    sessionmaker: async_sessionmaker[AsyncSession], sample: Sample, reference: str, status: str = "sending"
) -> uuid.UUID:
    return await create_notification(
        sessionmaker, sample.service_id, sample.email_template_id, reference=reference, status=status
    )


def _ctx(app: WorkerContext) -> dict[str, Any]:
    return {"notify": app}


async def test_wiring_creates_queues_with_dead_letter_redrive(receipt_settings: Settings) -> None:
    from notify.receipts.setup import ensure_receipt_wiring

    await ensure_receipt_wiring(receipt_settings.aws)  # a second run changes nothing and does not fail
    session = aws.create_session(receipt_settings.aws)
    async with session.client("sqs", **aws.client_kwargs(receipt_settings.aws)) as sqs:
        for name in (
            receipt_settings.aws.bounce_queue,
            receipt_settings.aws.delivery_queue,
            receipt_settings.aws.sms_receipt_queue,
        ):
            url = (await sqs.get_queue_url(QueueName=name))["QueueUrl"]
            attributes = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]))["Attributes"]
            redrive = json.loads(attributes["RedrivePolicy"])
            assert int(redrive["maxReceiveCount"]) == 4
            assert redrive["deadLetterTargetArn"].endswith(dead_letter_name(name))
    async with session.client("sns", **aws.client_kwargs(receipt_settings.aws)) as sns:
        subscriptions = (await sns.list_subscriptions())["Subscriptions"]
    endpoints = {s["Endpoint"].rsplit(":", 1)[-1] for s in subscriptions if s["Protocol"] == "sqs"}
    assert {receipt_settings.aws.bounce_queue, receipt_settings.aws.delivery_queue} <= endpoints


async def test_delivery_and_bounces_set_statuses_and_feedback(
    receipt_settings: Settings, receipt_ctx: WorkerContext, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, receipt_settings)
    delivered = await _sent_email(sessionmaker, sample, "ses-delivered")
    permanent = await _sent_email(sessionmaker, sample, "ses-permanent")
    transient = await _sent_email(sessionmaker, sample, "ses-transient")
    untouched = await _sent_email(sessionmaker, sample, "ses-untouched")
    await send_to_queue(
        receipt_settings, receipt_settings.aws.delivery_queue, sns_envelope(delivery_event("ses-delivered"))
    )
    permanent_event = bounce_event("ses-permanent", "Permanent", "NoEmail")
    await send_to_queue(
        receipt_settings,
        receipt_settings.aws.bounce_queue,
        sns_envelope(permanent_event),
        sns_envelope(bounce_event("ses-transient", "Transient", "MailboxFull")),
    )

    assert await tasks.receive_deliveries(_ctx(receipt_ctx)) == 1
    assert await tasks.receive_bounces(_ctx(receipt_ctx)) == 2

    assert (await _row(sessionmaker, delivered)).status == "delivered"
    perm = await _row(sessionmaker, permanent)
    assert (perm.status, perm.feedback_type, perm.feedback_subtype) == ("permanent-failure", "Permanent", "NoEmail")
    assert perm.feedback_id == permanent_event["bounce"]["feedbackId"]
    assert perm.completed_at is not None
    temp = await _row(sessionmaker, transient)
    assert (temp.status, temp.feedback_subtype) == ("temporary-failure", "MailboxFull")
    assert (await _row(sessionmaker, untouched)).status == "sending"
    assert await queue_bodies(receipt_settings, receipt_settings.aws.delivery_queue) == []
    assert await queue_bodies(receipt_settings, receipt_settings.aws.bounce_queue) == []


async def test_reject_is_a_permanent_failure(
    receipt_settings: Settings, receipt_ctx: WorkerContext, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, receipt_settings)
    rejected = await _sent_email(sessionmaker, sample, "ses-rejected")
    event = {"eventType": "Reject", "mail": {"messageId": "ses-rejected"}, "reject": {"reason": "Bad content"}}
    await send_to_queue(receipt_settings, receipt_settings.aws.bounce_queue, sns_envelope(event))

    await tasks.receive_bounces(_ctx(receipt_ctx))

    row = await _row(sessionmaker, rejected)
    assert (row.status, row.feedback_subtype) == ("permanent-failure", "Rejected")


async def test_out_of_order_events_end_in_failure(
    receipt_settings: Settings, receipt_ctx: WorkerContext, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, receipt_settings)
    bounce_first = await _sent_email(sessionmaker, sample, "ses-bounce-first")
    delivery_first = await _sent_email(sessionmaker, sample, "ses-delivery-first")
    aws_settings = receipt_settings.aws

    await send_to_queue(receipt_settings, aws_settings.bounce_queue, sns_envelope(bounce_event("ses-bounce-first")))
    await send_to_queue(
        receipt_settings, aws_settings.delivery_queue, sns_envelope(delivery_event("ses-delivery-first"))
    )
    await tasks.receive_bounces(_ctx(receipt_ctx))
    await tasks.receive_deliveries(_ctx(receipt_ctx))
    await send_to_queue(receipt_settings, aws_settings.delivery_queue, sns_envelope(delivery_event("ses-bounce-first")))
    await send_to_queue(receipt_settings, aws_settings.bounce_queue, sns_envelope(bounce_event("ses-delivery-first")))
    await tasks.receive_deliveries(_ctx(receipt_ctx))
    await tasks.receive_bounces(_ctx(receipt_ctx))

    assert (await _row(sessionmaker, bounce_first)).status == "permanent-failure"
    assert (await _row(sessionmaker, delivery_first)).status == "permanent-failure"
    assert await queue_bodies(receipt_settings, aws_settings.delivery_queue) == []


async def test_a_repeated_event_changes_nothing(
    receipt_settings: Settings, receipt_ctx: WorkerContext, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, receipt_settings)
    notification_id = await _sent_email(sessionmaker, sample, "ses-twice")
    body = sns_envelope(bounce_event("ses-twice", "Transient", "General"))
    await send_to_queue(receipt_settings, receipt_settings.aws.bounce_queue, body)
    await tasks.receive_bounces(_ctx(receipt_ctx))
    first = await _row(sessionmaker, notification_id)

    await send_to_queue(receipt_settings, receipt_settings.aws.bounce_queue, body)

    stats = await service.poll(receipt_ctx, receipt_settings.aws.bounce_queue, parsing.parse_ses)

    second = await _row(sessionmaker, notification_id)
    assert (stats.received, stats.applied, stats.deleted) == (1, 0, 1)
    assert second.status == "temporary-failure"
    assert second.updated_at == first.updated_at


async def test_complaints_are_recorded_once_and_leave_the_status(
    receipt_settings: Settings, receipt_ctx: WorkerContext, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, receipt_settings)
    notification_id = await _sent_email(sessionmaker, sample, "ses-complained", status="delivered")
    body = sns_envelope(complaint_event("ses-complained", "complaint-feedback-1"))
    await send_to_queue(receipt_settings, receipt_settings.aws.bounce_queue, body, body)

    await tasks.receive_bounces(_ctx(receipt_ctx))

    async with sessionmaker() as session:
        complaints = (await session.scalars(select(Complaint))).all()
    assert [(c.notification_id, c.service_id, c.feedback_id, c.complaint_type) for c in complaints] == [
        (notification_id, sample.service_id, "complaint-feedback-1", "abuse")
    ]
    assert (await _row(sessionmaker, notification_id)).status == "delivered"
    assert await queue_bodies(receipt_settings, receipt_settings.aws.bounce_queue) == []


async def test_a_receipt_before_its_notification_is_applied_on_a_later_poll(
    receipt_settings: Settings, receipt_ctx: WorkerContext, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, receipt_settings)
    await send_to_queue(
        receipt_settings, receipt_settings.aws.delivery_queue, sns_envelope(delivery_event("ses-early"))
    )

    first = await service.poll(receipt_ctx, receipt_settings.aws.delivery_queue, parsing.parse_ses)
    assert (first.received, first.unknown, first.deleted) == (1, 1, 0)

    notification_id = await _sent_email(sessionmaker, sample, "ses-early")
    await asyncio.sleep(1.2)  # the 1 s visibility timeout of these test queues
    second = await service.poll(receipt_ctx, receipt_settings.aws.delivery_queue, parsing.parse_ses)

    assert (second.received, second.applied, second.deleted) == (1, 1, 1)
    assert (await _row(sessionmaker, notification_id)).status == "delivered"


async def test_malformed_messages_go_to_the_dead_letter_queue_at_once(
    receipt_settings: Settings, receipt_ctx: WorkerContext, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, receipt_settings)
    good = await _sent_email(sessionmaker, sample, "ses-good")
    queue_name = receipt_settings.aws.bounce_queue
    await send_to_queue(
        receipt_settings,
        queue_name,
        "this is not json",
        sns_envelope({"eventType": "Bounce", "mail": {"messageId": "ses-x"}}),
        sns_envelope(bounce_event("ses-good")),
    )

    await tasks.receive_bounces(_ctx(receipt_ctx))

    assert (await _row(sessionmaker, good)).status == "permanent-failure"
    assert await queue_bodies(receipt_settings, queue_name) == []
    dead = await queue_bodies(receipt_settings, dead_letter_name(queue_name))
    assert len(dead) == 2
    assert "this is not json" in dead


async def test_sms_receipts_set_statuses(
    receipt_settings: Settings, receipt_ctx: WorkerContext, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, receipt_settings)
    ids = {}
    for reference in ("sms-delivered", "sms-blocked", "sms-unreachable", "sms-pending"):
        ids[reference] = await create_notification(
            sessionmaker,
            sample.service_id,
            sample.sms_template_id,
            reference=reference,
            status="sent",
            notification_type="sms",
        )
    events = [
        ("sms-delivered", "TEXT_DELIVERED", "DELIVERED"),
        ("sms-blocked", "TEXT_BLOCKED", "BLOCKED"),
        ("sms-unreachable", "TEXT_UNREACHABLE", "UNREACHABLE"),
        ("sms-pending", "TEXT_PENDING", "PENDING"),
    ]
    await send_to_queue(
        receipt_settings,
        receipt_settings.aws.sms_receipt_queue,
        *(
            sns_envelope(
                {
                    "eventType": event_type,
                    "eventVersion": 1,
                    "messageId": reference,
                    "messageStatus": status,
                    "messageStatusDescription": "status",
                    "destinationPhoneNumber": "+15145550100",
                    "isFinal": status != "PENDING",
                }
            )
            for reference, event_type, status in events
        ),
    )

    assert await tasks.receive_sms_receipts(_ctx(receipt_ctx)) == 4

    statuses = {reference: (await _row(sessionmaker, i)).status for reference, i in ids.items()}
    assert statuses == {
        "sms-delivered": "delivered",
        "sms-blocked": "permanent-failure",
        "sms-unreachable": "temporary-failure",
        "sms-pending": "sent",
    }
    assert await queue_bodies(receipt_settings, receipt_settings.aws.sms_receipt_queue) == []


async def test_one_poll_drains_more_than_one_round_of_concurrent_receives(
    receipt_settings: Settings, receipt_ctx: WorkerContext, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    concurrency = 3
    aws_settings = receipt_settings.aws.model_copy(update={"receipt_receive_concurrency": concurrency})
    app = dataclasses.replace(receipt_ctx, settings=receipt_settings.model_copy(update={"aws": aws_settings}))
    sample = await create_sample(sessionmaker, receipt_settings)
    count = concurrency * 10 * 2 + 5  # two full rounds, then a round where some receives come back empty
    ids = [await _sent_email(sessionmaker, sample, f"ses-round-{i}") for i in range(count)]
    await send_to_queue(
        receipt_settings,
        aws_settings.delivery_queue,
        *(sns_envelope(delivery_event(f"ses-round-{i}")) for i in range(count)),
    )

    stats = await service.poll(app, aws_settings.delivery_queue, parsing.parse_ses)

    assert (stats.applied, stats.unknown, stats.malformed) == (count, 0, 0)
    # moto, like SQS, may hand one message to two concurrent receives: at least once, and every copy deleted.
    assert stats.deleted == stats.received >= count
    async with sessionmaker() as session:
        rows = (
            await session.execute(select(Notification.status, Notification.updated_at).where(Notification.id.in_(ids)))
        ).all()
    assert [status for status, _ in rows] == ["delivered"] * count
    # now() is the transaction's start time: one distinct updated_at per transaction, i.e. per round. The first
    # round is one call (an idle queue costs one); it came back full, so the next ones make `concurrency` calls.
    assert len({updated_at for _, updated_at in rows}) == 1 + math.ceil((count - 10) / (concurrency * 10))
    assert await queue_bodies(receipt_settings, aws_settings.delivery_queue) == []


class _RecordingReceives:
    """The poller's SQS calls, noting each ReceiveMessage as it starts."""

    def __init__(self, inner: ReceiptQueueClient, events: list[str]) -> None:
        self._inner = inner
        self._events = events

    async def receive_message(self, **params: Any) -> dict[str, Any]:
        self._events.append("receive")
        return await self._inner.receive_message(**params)

    async def delete_message_batch(self, **params: Any) -> dict[str, Any]:
        return await self._inner.delete_message_batch(**params)


async def test_the_next_round_is_received_while_a_round_is_applied(
    receipt_settings: Settings, receipt_ctx: WorkerContext, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, receipt_settings)
    count = 25  # rounds of 10, 10 and 5 (one call a round), then an empty one
    for i in range(count):
        await _sent_email(sessionmaker, sample, f"ses-ahead-{i}")
    queue_name = receipt_settings.aws.delivery_queue
    await send_to_queue(
        receipt_settings, queue_name, *(sns_envelope(delivery_event(f"ses-ahead-{i}")) for i in range(count))
    )
    events: list[str] = []
    assert receipt_ctx.receipt_sqs is not None
    app = dataclasses.replace(receipt_ctx, receipt_sqs=_RecordingReceives(receipt_ctx.receipt_sqs, events))

    def committed(_: Any) -> None:
        events.append("commit")

    event.listen(app.engine.sync_engine, "commit", committed)
    try:
        stats = await service.poll(app, queue_name, parsing.parse_ses)
    finally:
        event.remove(app.engine.sync_engine, "commit", committed)

    assert (stats.applied, stats.deleted) == (count, count)
    # Each round's receive starts before the round before it commits; the last (empty) one ends the run.
    assert events == ["receive", "receive", "commit", "receive", "commit", "receive", "commit"]


async def test_a_round_that_fails_to_apply_loses_no_receipt(
    receipt_settings: Settings, receipt_ctx: WorkerContext, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, receipt_settings)
    count = 25
    ids = [await _sent_email(sessionmaker, sample, f"ses-fail-{i}") for i in range(count)]
    queue_name = receipt_settings.aws.delivery_queue
    await send_to_queue(
        receipt_settings, queue_name, *(sns_envelope(delivery_event(f"ses-fail-{i}")) for i in range(count))
    )
    # A real database failure while a round is applied, with the next round already received.
    await execute(
        sessionmaker,
        "CREATE FUNCTION fail_receipt() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'disk full (test)'; END $$",
    )
    await execute(
        sessionmaker,
        "CREATE TRIGGER fail_receipt BEFORE UPDATE ON notifications FOR EACH ROW "
        "WHEN (NEW.reference = 'ses-fail-12') EXECUTE FUNCTION fail_receipt()",
    )
    try:
        with pytest.raises(DBAPIError, match="disk full"):
            await service.poll(receipt_ctx, queue_name, parsing.parse_ses)
        await execute(sessionmaker, "DROP TRIGGER fail_receipt ON notifications")
        await asyncio.sleep(receipt_settings.aws.receipt_visibility_timeout_s + 0.2)  # the unapplied ones come back
        await service.poll(receipt_ctx, queue_name, parsing.parse_ses)
    finally:
        await execute(sessionmaker, "DROP TRIGGER IF EXISTS fail_receipt ON notifications")
        await execute(sessionmaker, "DROP FUNCTION IF EXISTS fail_receipt()")

    async with sessionmaker() as session:
        found = (await session.execute(select(Notification.status).where(Notification.id.in_(ids)))).scalars().all()
    assert list(found) == ["delivered"] * count
    assert await queue_bodies(receipt_settings, queue_name) == []

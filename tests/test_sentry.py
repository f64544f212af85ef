"""Sentry reporting (DESIGN §2.7): final failures are captured, and no email address or phone number leaves."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, cast

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport
from sentry_sdk.types import Event
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.context import WorkerContext
from notify.db import transaction
from notify.delivery import service as delivery_service
from notify.sentry import before_send, init_sentry
from notify.services.models import Service
from notify.settings import SentrySettings, Settings
from tests.factories import create_sample
from tests.receipts.conftest import create_notification

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


class CollectingTransport(Transport):
    """Keeps every envelope instead of sending it."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def events(self) -> list[dict[str, Any]]:
        return [dict(event) for envelope in self.envelopes if (event := envelope.get_event()) is not None]


@pytest.fixture
def transport(settings: Settings) -> Iterator[CollectingTransport]:
    collecting = CollectingTransport()
    with_dsn = settings.model_copy(update={"sentry": SentrySettings(dsn="https://public@sentry.example/1")})
    assert init_sentry(with_dsn, "worker", transport=collecting)
    yield collecting
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


async def test_a_final_delivery_failure_is_reported_without_addresses(
    settings: Settings,
    worker_ctx: WorkerContext,
    sessionmaker: async_sessionmaker[AsyncSession],
    transport: CollectingTransport,
) -> None:
    sample = await create_sample(sessionmaker, settings)
    async with transaction(sessionmaker) as session:
        # SES (moto) rejects a From domain that was never verified, naming the address: a permanent provider error.
        await session.execute(
            update(Service).where(Service.id == sample.service_id).values(sending_domain="unverified.invalid")
        )
    notification_ids = [
        await create_notification(
            sessionmaker,
            sample.service_id,
            sample.email_template_id,
            reference=None,
            status="created",
            personalisation={"name": "Ada", "code": "1"},
        )
        for _ in range(2)
    ]

    outcome = await delivery_service.deliver(worker_ctx, "email", notification_ids)

    assert len(outcome.failed) == 2
    assert "@unverified.invalid" in outcome.failed[0][1], "the provider's reason names the From address"
    [event] = transport.events()  # one event per distinct reason, not one per notification
    assert event["tags"]["event"] == "notify.delivery.failed"
    assert event["tags"]["component"] == "worker"
    assert event["level"] == "error"
    assert event["extra"]["count"] == 2
    assert sorted(event["extra"]["ids"]) == sorted(str(i) for i in notification_ids)
    assert "[email]" in event["message"]
    wire = b"".join(envelope.serialize() for envelope in transport.envelopes).decode()
    assert not EMAIL.search(wire), wire


def test_before_send_scrubs_every_part_that_carries_text() -> None:
    event: dict[str, Any] = {
        "event_id": "0123456789abcdef0123456789abcdef",
        "timestamp": "2026-11-23T12:00:00.000000Z",
        "message": "could not send 69852edd-9bd2-4603-8941-2eff3f8002f6 to ada@example.com on 2026-11-23T12:00:00Z",
        "logentry": {"message": "sms to %s", "params": ["+447911123456"]},
        "exception": {
            "values": [
                {
                    "type": "ValueError",
                    "value": "bad recipient bob@example.org / +1 514 555 0100",
                    "stacktrace": {"frames": [{"filename": "a.py", "lineno": 12, "vars": {"to": "ada@example.com"}}]},
                }
            ]
        },
        "extra": {"rows": [{"email_address": "ada@example.com"}, ("+15145550100",)]},
        "breadcrumbs": {"values": [{"message": "POST for eve@example.net", "data": {"phone": "+447911123456"}}]},
        "request": {
            "data": {"email_address": "ada@example.com"},
            "query_string": "to=%2B447911123456&x=ada@example.com",
        },
    }

    scrubbed: dict[str, Any] = dict(before_send(cast("Event", event), {}))

    text = repr(scrubbed)
    assert not EMAIL.search(text), text
    assert "+447911123456" not in text
    assert "5145550100" not in text.replace(" ", "")
    assert (
        scrubbed["message"] == "could not send 69852edd-9bd2-4603-8941-2eff3f8002f6 to [email] on 2026-11-23T12:00:00Z"
    )
    assert scrubbed["exception"]["values"][0]["value"] == "bad recipient [email] / [phone]"
    assert scrubbed["exception"]["values"][0]["stacktrace"]["frames"][0]["lineno"] == 12
    assert scrubbed["timestamp"] == "2026-11-23T12:00:00.000000Z", "ids and timestamps are left intact"
    assert scrubbed["event_id"] == "0123456789abcdef0123456789abcdef"


def test_nothing_is_reported_without_a_dsn(settings: Settings) -> None:
    assert not init_sentry(settings, "worker")
    assert not sentry_sdk.is_initialized()

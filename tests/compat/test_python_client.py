"""What `notifications-python-client` gets back from us, method by method (its README's calls, unchanged)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from notifications_python_client.errors import HTTPError
from notifications_python_client.notifications import NotificationsAPIClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.admin import service as admin
from notify.context import WorkerContext
from notify.db import transaction
from notify.inbox import repository as inbox_repository
from notify.inbox import service as inbox_service
from notify.inbox.schemas import InboxEntry
from notify.settings import ApiSettings, Settings
from tests.conftest import make_settings
from tests.factories import Sample, create_sample
from tests.live_server import live_server
from tests.servers import Servers

T = TypeVar("T")
PAGE_SIZE = 3


@pytest.fixture
def settings(servers: Servers, clean: None) -> Settings:
    """Small pages, so the iterator has to follow `links.next` without hundreds of rows."""
    return make_settings(
        servers, api=ApiSettings(base_url="http://test", secret_key="test-secret-key-of-enough-length", page_size=3)
    )


async def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a (blocking, requests-based) client method off the event loop the live server shares."""
    return await asyncio.to_thread(function, *args, **kwargs)


def older_email(sample: Sample, minutes: int) -> InboxEntry:
    return InboxEntry(
        id=uuid.uuid4(),
        service_id=sample.service_id,
        template_id=sample.email_template_id,
        template_version=1,
        api_key_id=sample.key_id,
        key_type="normal",
        notification_type="email",
        lane="normal",
        to=f"old{minutes}@example.com",
        normalised_to=f"old{minutes}@example.com",
        subject="Code for Old",
        body="Hello Old",
        created_at=datetime.now(UTC) - timedelta(minutes=minutes),
    )


async def seed_older(sessionmaker: async_sessionmaker[AsyncSession], sample: Sample, count: int) -> list[InboxEntry]:
    """Save `count` older emails directly: [delivered, permanent-failure, from a bulk job, created, ...]."""
    entries = [older_email(sample, minutes) for minutes in range(1, count + 1)]
    async with transaction(sessionmaker) as session:
        await inbox_repository.insert_batch(session, entries)
        update = text("UPDATE notifications SET status = :status WHERE id = :id")
        await session.execute(update, {"status": "delivered", "id": entries[0].id})
        await session.execute(update, {"status": "permanent-failure", "id": entries[1].id})
        await session.execute(
            text("UPDATE notifications SET job_id = :job, job_row_number = 0 WHERE id = :id"),
            {"job": uuid.uuid4(), "id": entries[2].id},
        )
    return entries


async def test_sending_and_reading_notifications(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], worker_ctx: WorkerContext
) -> None:
    sample = await create_sample(sessionmaker, settings)
    older = await seed_older(sessionmaker, sample, 5)
    with live_server(settings) as base_url:
        client = NotificationsAPIClient(sample.key, base_url=base_url)  # type: ignore[no-untyped-call]
        email = await call(
            client.send_email_notification,
            email_address="ada@example.com",
            template_id=str(sample.email_template_id),
            personalisation={"name": "Ada", "code": "1234"},
            reference="ref-email",
        )
        sms = await call(
            client.send_sms_notification,
            phone_number="+447911123456",
            template_id=str(sample.sms_template_id),
            personalisation={"code": "5678"},
            reference="ref-sms",
        )
        assert await inbox_service.drain(worker_ctx) == 2

        one = await call(client.get_notification_by_id, email["id"])
        first_page = await call(client.get_all_notifications)
        delivered = await call(client.get_all_notifications, status="delivered")
        failed = await call(client.get_all_notifications, status="failed")
        texts = await call(client.get_all_notifications, template_type="sms")
        by_reference = await call(client.get_all_notifications, reference="ref-email")
        before = await call(client.get_all_notifications, older_than=str(older[0].id))
        with_jobs = await call(client.get_all_notifications, older_than=str(older[1].id), include_jobs=True)
        everything = await call(lambda: list(client.get_all_notifications_iterator()))  # type: ignore[no-untyped-call]
        every_email = await call(lambda: list(client.get_all_notifications_iterator(template_type="email")))  # type: ignore[no-untyped-call]
        with pytest.raises(HTTPError) as missing:
            await call(client.get_notification_by_id, str(uuid.uuid4()))

    assert sms["reference"] == "ref-sms"
    assert sms["content"] == {"body": "Your code is 5678", "from_number": None}
    assert email["content"]["subject"] == "Code for Ada"
    assert one["id"] == email["id"]
    assert (one["type"], one["status"], one["reference"]) == ("email", "created", "ref-email")
    assert one["email_address"] == "ada@example.com"
    assert one["phone_number"] is None
    assert one["body"] == "Hello Ada, your code is 1234."
    assert one["template"] == {
        "id": str(sample.email_template_id),
        "version": 1,
        "uri": f"{base_url}/v2/template/{sample.email_template_id}/version/1",
    }
    assert one["created_at"].endswith("Z")

    newest_two = {email["id"], sms["id"]}
    assert len(first_page["notifications"]) == PAGE_SIZE
    assert {n["id"] for n in first_page["notifications"][:2]} == newest_two
    assert first_page["notifications"][2]["id"] == str(older[0].id)
    assert f"older_than={older[0].id}" in first_page["links"]["next"]

    assert [n["id"] for n in delivered["notifications"]] == [str(older[0].id)]
    assert [n["id"] for n in failed["notifications"]] == [str(older[1].id)]
    assert [(n["id"], n["phone_number"]) for n in texts["notifications"]] == [(sms["id"], "+447911123456")]
    assert [n["id"] for n in by_reference["notifications"]] == [email["id"]]
    assert [n["id"] for n in before["notifications"]] == [str(older[1].id), str(older[3].id), str(older[4].id)]
    assert [n["id"] for n in with_jobs["notifications"]] == [str(e.id) for e in older[2:5]]

    # The iterator follows links.next over three pages of three; the bulk-job row is left out by default.
    expected_older = [str(older[i].id) for i in (0, 1, 3, 4)]
    assert len(everything) == 6
    assert {n["id"] for n in everything[:2]} == newest_two
    assert [n["id"] for n in everything[2:]] == expected_older
    assert [n["id"] for n in every_email] == [email["id"], *expected_older]

    assert missing.value.status_code == 404


async def test_templates(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    sample = await create_sample(sessionmaker, settings)
    async with transaction(sessionmaker) as session:
        await admin.update_template(session, None, sample.email_template_id, content="Dear ((name)), **((code))**")
    with live_server(settings) as base_url:
        client = NotificationsAPIClient(sample.key, base_url=base_url)  # type: ignore[no-untyped-call]
        current = await call(client.get_template, str(sample.email_template_id))
        first = await call(client.get_template_version, str(sample.email_template_id), 1)
        every = await call(client.get_all_templates)
        sms_only = await call(client.get_all_templates, template_type="sms")
        preview = await call(
            client.post_template_preview, str(sample.email_template_id), personalisation={"name": "Ada", "code": 7}
        )
        sms_preview = await call(client.post_template_preview, str(sample.sms_template_id), {"code": "9"})
        with pytest.raises(HTTPError) as missing:
            await call(client.post_template_preview, str(sample.email_template_id), personalisation={"name": "Ada"})
        with pytest.raises(HTTPError) as not_found:
            await call(client.get_template, str(uuid.uuid4()))

    assert (current["version"], current["body"], current["type"]) == (2, "Dear ((name)), **((code))**", "email")
    assert current["subject"] == "Code for ((name))"
    assert current["name"] == "email"
    assert current["personalisation"] == {"name": {"required": True}, "code": {"required": True}}
    assert {"created_at", "updated_at", "created_by", "postage"} <= current.keys()
    assert (first["version"], first["body"]) == (1, "Hello ((name)), your code is ((code)).")
    assert sorted(t["type"] for t in every["templates"]) == ["email", "sms"]
    assert [t["id"] for t in sms_only["templates"]] == [str(sample.sms_template_id)]
    assert preview == {
        "id": str(sample.email_template_id),
        "type": "email",
        "version": 2,
        "body": "Dear Ada, **7**",
        "html": "<p>Dear Ada, <strong>7</strong></p>\n",
        "subject": "Code for Ada",
        "postage": None,
    }
    assert (sms_preview["body"], sms_preview["html"], sms_preview["subject"]) == ("Your code is 9", None, None)
    assert missing.value.status_code == 400
    assert missing.value.message == [{"error": "BadRequestError", "message": "Missing personalisation: code"}]
    assert not_found.value.status_code == 404

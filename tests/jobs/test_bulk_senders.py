"""A bulk job's `reply_to_id` chooses the reply-to address (email) or SMS sender (text) of all its notifications."""

from __future__ import annotations

import uuid

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.admin import senders as admin_senders
from notify.context import WorkerContext
from notify.db import transaction
from notify.settings import Settings
from tests.factories import create_sample
from tests.jobs.helpers import count_rows, job_notifications, post_bulk, run_worker, verify_sender


async def test_reply_to_id_and_sms_sender_go_to_every_notification_of_the_job(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    worker_ctx: WorkerContext,
) -> None:
    sample = await create_sample(sessionmaker, settings)
    await verify_sender(settings)
    async with transaction(sessionmaker) as session:
        await admin_senders.add_reply_to(session, None, sample.service_id, "default@example.com")
        chosen = await admin_senders.add_reply_to(session, None, sample.service_id, "desk@example.com")
        await admin_senders.add_sms_sender(session, None, sample.service_id, "NotifyDesk")
    email_job = await post_bulk(
        client,
        sample.key,
        {
            "name": "with reply-to",
            "template_id": str(sample.email_template_id),
            "reply_to_id": str(chosen.id),
            "rows": [["email address", "name", "code"], ["a@example.com", "A", "1"], ["b@example.com", "B", "2"]],
        },
    )
    default_job = await post_bulk(
        client,
        sample.key,
        {
            "name": "default reply-to",
            "template_id": str(sample.email_template_id),
            "rows": [["email address", "name", "code"], ["c@example.com", "C", "3"]],
        },
    )
    sms_job = await post_bulk(
        client,
        sample.key,
        {
            "name": "texts",
            "template_id": str(sample.sms_template_id),
            "rows": [["phone number", "code"], ["+16135550123", "4"]],
        },
    )
    for response in (email_job, default_job, sms_job):
        assert response.status_code == 201, response.text
    await run_worker(worker_ctx, settings)

    emails = await job_notifications(sessionmaker, email_job.json()["data"]["id"])
    assert [(n.reply_to, n.status) for n in emails] == [("desk@example.com", "sending")] * 2
    [default] = await job_notifications(sessionmaker, default_job.json()["data"]["id"])
    assert default.reply_to == "default@example.com"
    [text] = await job_notifications(sessionmaker, sms_job.json()["data"]["id"])
    assert text.sender == "NotifyDesk"


async def test_an_unknown_reply_to_id_is_refused_and_creates_nothing(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], client: AsyncClient
) -> None:
    sample = await create_sample(sessionmaker, settings)
    unknown = uuid.uuid4()
    response = await post_bulk(
        client,
        sample.key,
        {
            "name": "bad reply-to",
            "template_id": str(sample.email_template_id),
            "reply_to_id": str(unknown),
            "rows": [["email address", "name", "code"], ["a@example.com", "A", "1"]],
        },
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == (
        f"reply_to_id {unknown} does not exist in database for service id {sample.service_id}"
    )
    assert await count_rows(sessionmaker, "jobs") == 0

"""Files end to end: POST → S3 → stream → PostgreSQL → SES raw message or pre-signed link (DESIGN §2.8)."""

from __future__ import annotations

import base64
import email
import email.policy
import html
import re
import uuid
from email.message import EmailMessage
from typing import Any

import httpx
import orjson
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.attachments import repository as attachment_repository
from notify.attachments import service as attachment_service
from notify.context import WorkerContext
from notify.delivery import service as delivery_service
from notify.embedded import sent_emails
from notify.inbox import service as inbox_service
from notify.notifications.models import Notification
from notify.settings import Settings
from tests.attachments.conftest import bucket_keys
from tests.conftest import REGION
from tests.factories import Sample, create_sample
from tests.test_walking_skeleton import run_worker

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
CONTENT = "Hello ((name)), your document: ((doc))"


def _file(data: bytes, filename: str | None, method: str) -> dict[str, Any]:
    return {"file": base64.b64encode(data).decode(), "filename": filename, "sending_method": method}


async def _post(client: AsyncClient, sample: Sample, personalisation: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/v2/notifications/email",
        headers={"Authorization": f"ApiKey-v1 {sample.key}"},
        json={
            "email_address": "ada@example.com",
            "template_id": str(sample.email_template_id),
            "personalisation": personalisation,
        },
    )


async def _row(sessionmaker: async_sessionmaker[AsyncSession], notification_id: str) -> Notification:
    async with sessionmaker() as session:
        row = await session.scalar(select(Notification).where(Notification.id == uuid.UUID(notification_id)))
    assert row is not None
    return row


async def test_an_attached_pdf_reaches_ses_byte_for_byte_in_a_raw_message(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    worker_ctx: WorkerContext,
    redis: Redis,
    s3: Any,
) -> None:
    sample = await create_sample(sessionmaker, settings, email_content=CONTENT)
    response = await _post(client, sample, {"name": "Ada", "doc": _file(PDF, "report 2026.pdf", "attach")})
    assert response.status_code == 201, response.text
    notification_id = response.json()["id"]
    # The 201 body shows the filename where the file goes.
    assert response.json()["content"]["body"] == "Hello Ada, your document: report 2026.pdf"

    key = f"{sample.service_id}/{notification_id}/doc/report 2026.pdf"
    stored = await s3.get_object(Bucket=settings.aws.attachments_bucket, Key=key)
    assert await stored["Body"].read() == PDF
    assert stored["ServerSideEncryption"] == "AES256"
    # Only metadata travels through Redis.
    entries = await redis.xrange("inbox:email:normal")
    assert len(entries) == 1
    raw_entry = next(iter(entries[0][1].values()))
    assert base64.b64encode(PDF)[:64] not in raw_entry
    assert orjson.loads(raw_entry)["personalisation"]["doc"] == {
        "s3_key": key,
        "filename": "report 2026.pdf",
        "content_type": "application/pdf",
        "size": len(PDF),
        "sending_method": "attach",
    }

    before = len(sent_emails(REGION))
    await run_worker(worker_ctx, settings)
    new = sent_emails(REGION)[before:]
    assert len(new) == 1
    message = email.message_from_string(new[0].raw_data, _class=EmailMessage, policy=email.policy.default)
    assert message.get_content_type() == "multipart/mixed"
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Code for Ada"
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    assert "your document: report 2026.pdf" in body.get_content()
    assert message.get_body(preferencelist=("html",)) is not None
    attachments = list(message.iter_attachments())
    assert [(a.get_filename(), a.get_content_type()) for a in attachments] == [("report 2026.pdf", "application/pdf")]
    assert attachments[0].get_content() == PDF

    row = await _row(sessionmaker, notification_id)
    assert row.status == "sending"
    assert row.personalisation is not None
    assert row.personalisation["doc"]["s3_key"] == key
    assert "file" not in row.personalisation["doc"]


async def test_a_link_file_becomes_a_presigned_url_that_downloads_it(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    worker_ctx: WorkerContext,
    s3: Any,
) -> None:
    sample = await create_sample(sessionmaker, settings, email_content=CONTENT)
    data = b"name,amount\nAda,12\nGrace,7\n"
    response = await _post(client, sample, {"name": "Ada", "doc": _file(data, "amounts.csv", "link")})
    assert response.status_code == 201, response.text
    assert response.json()["content"]["body"] == "Hello Ada, your document: amounts.csv"

    before = len(sent_emails(REGION))
    await run_worker(worker_ctx, settings)
    new = sent_emails(REGION)[before:]
    assert len(new) == 1
    assert not hasattr(new[0], "raw_data"), "a link needs no raw message"
    urls = re.findall(r"https?://[^\s<\"']+", new[0].body)
    assert len(urls) == 1
    url = html.unescape(urls[0])
    assert url.startswith(settings.aws.endpoint_url or "")
    assert "X-Amz-Expires=604800" in url
    async with httpx.AsyncClient() as http:
        download = await http.get(url)
    assert download.status_code == 200
    assert download.content == data
    assert "amounts.csv" in download.headers["content-disposition"]
    row = await _row(sessionmaker, response.json()["id"])
    assert row.status == "sending"
    assert row.personalisation is not None
    assert row.personalisation["doc"]["content_type"] == "text/csv"


async def test_a_missing_object_is_a_technical_failure_naming_the_file(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    worker_ctx: WorkerContext,
    s3: Any,
) -> None:
    sample = await create_sample(sessionmaker, settings, email_content=CONTENT)
    response = await _post(client, sample, {"name": "Ada", "doc": _file(PDF, "report.pdf", "attach")})
    assert response.status_code == 201, response.text
    for key in await bucket_keys(s3, settings):
        await s3.delete_object(Bucket=settings.aws.attachments_bucket, Key=key)
    before = len(sent_emails(REGION))
    await run_worker(worker_ctx, settings)
    assert len(sent_emails(REGION)) == before
    row = await _row(sessionmaker, response.json()["id"])
    assert row.status == "technical-failure"
    assert row.provider_response == "Attachment not found: report.pdf"


async def test_an_s3_outage_while_fetching_is_retried(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    worker_ctx: WorkerContext,
    s3: Any,
) -> None:
    sample = await create_sample(sessionmaker, settings, email_content=CONTENT)
    response = await _post(client, sample, {"name": "Ada", "doc": _file(PDF, "report.pdf", "attach")})
    assert response.status_code == 201, response.text
    notification_id = uuid.UUID(response.json()["id"])
    await inbox_service.drain(worker_ctx)
    for key in await bucket_keys(s3, settings):
        await s3.delete_object(Bucket=settings.aws.attachments_bucket, Key=key)
    await s3.delete_bucket(Bucket=settings.aws.attachments_bucket)

    outcome = await delivery_service.deliver(worker_ctx, "email", [notification_id])
    assert [item[0] for item in outcome.retry] == [notification_id]
    assert outcome.failed == []
    row = await _row(sessionmaker, str(notification_id))
    assert row.status == "created"
    assert row.provider_response is not None
    assert row.provider_response.startswith("S3 NoSuchBucket")


async def test_retention_can_find_and_delete_a_notifications_files(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    worker_ctx: WorkerContext,
    s3: Any,
) -> None:
    sample = await create_sample(sessionmaker, settings, email_content=CONTENT)
    first = await _post(client, sample, {"name": "Ada", "doc": _file(PDF, "one.pdf", "attach")})
    second = await _post(client, sample, {"name": "Bo", "doc": _file(b"plain text", "two.txt", "link")})
    plain = await _post(client, sample, {"name": "Cy", "doc": "no file here"})
    assert {first.status_code, second.status_code, plain.status_code} == {201}
    await inbox_service.drain(worker_ctx)
    ids = [uuid.UUID(r.json()["id"]) for r in (first, second, plain)]

    async with sessionmaker() as session:
        keys = await attachment_repository.attachment_keys(session, ids)
    assert sorted(keys) == sorted(await bucket_keys(s3, settings))
    assert len(keys) == 2
    assert worker_ctx.s3 is not None
    assert await attachment_service.delete_for_notifications(worker_ctx.s3, keys) == 2
    assert await bucket_keys(s3, settings) == []


def test_contains_files_spots_uploads_and_stored_metadata() -> None:
    assert attachment_service.contains_files({"doc": {"file": "JVBERi0="}})
    assert attachment_service.contains_files({"doc": {"s3_key": "a/b/c/d.pdf"}})
    assert not attachment_service.contains_files({"name": "Ada", "items": ["a", "b"], "meta": {"x": 1}})
    assert not attachment_service.contains_files(None)

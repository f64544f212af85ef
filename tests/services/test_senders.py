"""Reply-to addresses and SMS senders: stored per service, cached with it, chosen by id or by default, sent to AWS."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from arq.connections import ArqRedis
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.admin import senders
from notify.db import transaction
from notify.errors import BadRequestError, NotFoundError
from notify.inbox.schemas import InboxEntry
from notify.inbox.streams import FIELD
from notify.notifications.models import Notification
from notify.settings import Settings
from notify.testing.fake_aws import FakeAwsServer
from notify.worker import worker_resources
from tests.cli_runner import invoke
from tests.factories import Sample, create_sample
from tests.recovery.conftest import fake_aws_settings, run_worker
from tests.servers import Servers


@pytest.fixture
def fake_aws() -> Iterator[FakeAwsServer]:
    with FakeAwsServer() as server:
        yield server


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"ApiKey-v1 {key}"}


def email(sample: Sample, address: str, reply_to_id: object = None) -> dict[str, object]:
    body: dict[str, object] = {
        "email_address": address,
        "template_id": str(sample.email_template_id),
        "personalisation": {"name": "N", "code": "1"},
    }
    if reply_to_id is not None:
        body["email_reply_to_id"] = str(reply_to_id)
    return body


def sms(sample: Sample, number: str, sender_id: object = None) -> dict[str, object]:
    body: dict[str, object] = {
        "phone_number": number,
        "template_id": str(sample.sms_template_id),
        "personalisation": {"code": "1"},
    }
    if sender_id is not None:
        body["sms_sender_id"] = str(sender_id)
    return body


async def _rows(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, Notification]:
    async with sessionmaker() as session:
        return {row.to: row for row in (await session.scalars(select(Notification))).all()}


async def test_reply_to_addresses_reach_ses_by_id_or_by_default(
    servers: Servers,
    clean: None,
    fake_aws: FakeAwsServer,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    queue: ArqRedis,
) -> None:
    settings = fake_aws_settings(servers, fake_aws)
    sample = await create_sample(sessionmaker, settings)
    async with transaction(sessionmaker) as session:
        default = await senders.add_reply_to(session, None, sample.service_id, "help@example.com")
        other = await senders.add_reply_to(session, None, sample.service_id, "Other.Desk@example.com")
    assert (default.is_default, other.is_default) == (True, False), "the first address becomes the default"

    for address, reply_to_id in (("a@example.com", None), ("b@example.com", other.id)):
        response = await client.post(
            "/v2/notifications/email", headers=auth(sample.key), json=email(sample, address, reply_to_id)
        )
        assert response.status_code == 201, response.text
    async with worker_resources(settings, queue) as context:
        await run_worker(context, settings)

    sent = {message["to"][0]: message["reply_to"] for message in fake_aws.fake.recorded_emails()}
    assert sent == {"a@example.com": ["help@example.com"], "b@example.com": ["Other.Desk@example.com"]}
    rows = await _rows(sessionmaker)
    assert (rows["a@example.com"].reply_to, rows["b@example.com"].reply_to) == (
        "help@example.com",
        "Other.Desk@example.com",
    )


async def test_sms_senders_reach_sns_by_id_or_by_default(
    servers: Servers,
    clean: None,
    fake_aws: FakeAwsServer,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    queue: ArqRedis,
) -> None:
    settings = fake_aws_settings(servers, fake_aws)
    sample = await create_sample(sessionmaker, settings)
    async with transaction(sessionmaker) as session:
        number = await senders.add_sms_sender(session, None, sample.service_id, "1 613 555 0199")
        named = await senders.add_sms_sender(session, None, sample.service_id, "MyService", is_default=True)
    assert number.sms_sender == "+16135550199"

    default = await client.post("/v2/notifications/sms", headers=auth(sample.key), json=sms(sample, "+447911123456"))
    chosen = await client.post(
        "/v2/notifications/sms", headers=auth(sample.key), json=sms(sample, "+447911123457", number.id)
    )
    assert default.status_code == 201, default.text
    assert chosen.status_code == 201, chosen.text
    assert default.json()["content"]["from_number"] == named.sms_sender
    assert chosen.json()["content"]["from_number"] == "+16135550199"
    async with worker_resources(settings, queue) as context:
        await run_worker(context, settings)

    sent = {
        message["phone_number"]: message["attributes"].get("AWS.SNS.SMS.SenderID")
        for message in fake_aws.fake.recorded_sms()
    }
    assert sent == {"+447911123456": "MyService", "+447911123457": "+16135550199"}


async def test_a_service_without_senders_sends_with_neither(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    sample = await create_sample(sessionmaker, settings)
    sent_sms = await client.post("/v2/notifications/sms", headers=auth(sample.key), json=sms(sample, "+447911123456"))
    sent_email = await client.post("/v2/notifications/email", headers=auth(sample.key), json=email(sample, "a@e.com"))
    assert sent_sms.status_code == 201, sent_sms.text
    assert sent_email.status_code == 201, sent_email.text
    assert sent_sms.json()["content"]["from_number"] is None
    [(_, sms_fields)] = await redis.xrange("inbox:sms:normal")
    [(_, email_fields)] = await redis.xrange("inbox:email:normal")
    assert InboxEntry.from_bytes(sms_fields[FIELD]).sender is None
    assert InboxEntry.from_bytes(email_fields[FIELD]).reply_to is None


@pytest.mark.parametrize(
    ("path", "field", "body"),
    [
        ("/v2/notifications/email", "email_reply_to_id", email),
        ("/v2/notifications/sms", "sms_sender_id", sms),
    ],
)
async def test_an_unknown_or_foreign_sender_id_is_refused(
    client: AsyncClient,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    path: str,
    field: str,
    body: object,
) -> None:
    sample = await create_sample(sessionmaker, settings)
    other = await create_sample(sessionmaker, settings, name="Other service")
    async with transaction(sessionmaker) as session:
        foreign_reply_to = await senders.add_reply_to(session, None, other.service_id, "them@example.com")
        foreign_sender = await senders.add_sms_sender(session, None, other.service_id, "Them")
    foreign = foreign_reply_to.id if field == "email_reply_to_id" else foreign_sender.id
    recipient = "x@example.com" if field == "email_reply_to_id" else "+447911123456"
    assert callable(body)

    for unknown in (uuid.uuid4(), foreign):
        response = await client.post(path, headers=auth(sample.key), json=body(sample, recipient, unknown))
        assert response.status_code == 400
        assert response.json()["errors"] == [
            {
                "error": "BadRequestError",
                "message": f"{field} {unknown} does not exist in database for service id {sample.service_id}",
            }
        ]
    malformed = await client.post(path, headers=auth(sample.key), json=body(sample, recipient, "nope"))
    assert malformed.json()["errors"] == [{"error": "ValidationError", "message": f"{field} is not a valid UUID"}]
    assert await redis.xlen("inbox:email:normal") + await redis.xlen("inbox:sms:normal") == 0


async def test_a_new_default_reaches_a_warm_cache_through_invalidation(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    sample = await create_sample(sessionmaker, settings)
    first = await client.post("/v2/notifications/email", headers=auth(sample.key), json=email(sample, "a@example.com"))
    assert first.status_code == 201  # the service is now cached, with no reply-to
    async with transaction(sessionmaker) as session:
        added = await senders.add_reply_to(session, redis, sample.service_id, "new@example.com")

    for _ in range(100):
        response = await client.post(
            "/v2/notifications/email", headers=auth(sample.key), json=email(sample, "b@example.com", added.id)
        )
        if response.status_code == 201:
            break
        await asyncio.sleep(0.02)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("GOVCA", "GOVCA"),
        ("Notify2026", "Notify2026"),
        ("+1 613 555 0199", "+16135550199"),
        ("16135550199", "+16135550199"),
    ],
)
def test_sms_sender_accepts_sender_ids_and_numbers(given: str, stored: str) -> None:
    assert senders.check_sms_sender(given) == stored


@pytest.mark.parametrize("given", ["", "TwelveChars1", "has space", "12345", "Ünicode", "+1234"])
def test_sms_sender_refuses_anything_else(given: str) -> None:
    with pytest.raises(BadRequestError):
        senders.check_sms_sender(given)


async def test_adding_to_a_missing_service_or_a_bad_address_fails(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, settings)
    with pytest.raises(NotFoundError):
        async with transaction(sessionmaker) as session:
            await senders.add_reply_to(session, None, uuid.uuid4(), "a@example.com")
    with pytest.raises(BadRequestError):
        async with transaction(sessionmaker) as session:
            await senders.add_reply_to(session, None, sample.service_id, "not an address")


async def test_cli_adds_and_lists_reply_tos_and_sms_senders(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = await create_sample(sessionmaker, settings)
    monkeypatch.setenv("DATABASE_URL", settings.db.url)
    monkeypatch.setenv("REDIS_URL", settings.redis.url)
    service = str(sample.service_id)

    first = await asyncio.to_thread(invoke, "admin", "reply-to", "add", "--service", service, "a@example.com")
    second = await asyncio.to_thread(
        invoke, "admin", "reply-to", "add", "--service", service, "b@example.com", "--default"
    )
    sender = await asyncio.to_thread(invoke, "admin", "sms-sender", "add", "--service", service, "GOVCA")
    bad = await asyncio.to_thread(invoke, "admin", "sms-sender", "add", "--service", service, "bad sender!")
    listed = await asyncio.to_thread(invoke, "admin", "reply-to", "list", "--service", service)
    listed_sms = await asyncio.to_thread(invoke, "admin", "sms-sender", "list", "--service", service)

    assert (first.exit_code, second.exit_code, sender.exit_code, bad.exit_code) == (0, 0, 0, 1)
    async with sessionmaker() as session:
        reply_tos = {r.email_address: r.is_default for r in await senders.list_reply_tos(session, sample.service_id)}
        [sms_sender] = await senders.list_sms_senders(session, sample.service_id)
    assert reply_tos == {"a@example.com": False, "b@example.com": True}
    assert str(sms_sender.id) == sender.output.strip()
    assert sms_sender.is_default
    assert "a@example.com" in listed.output
    assert "b@example.com" in listed.output
    assert "GOVCA" in listed_sms.output

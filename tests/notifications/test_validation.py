"""Validation of POST /v2/notifications/email and /sms: every bad field is a 400 and nothing reaches the stream."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.settings import Settings
from tests.factories import Sample, create_sample


@pytest.fixture
async def sample(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> Sample:
    return await create_sample(sessionmaker, settings)


def email(sample: Sample, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email_address": "someone@example.com",
        "template_id": str(sample.email_template_id),
        "personalisation": {"name": "A", "code": "1"},
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


def sms(sample: Sample, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "phone_number": "+16135550123",
        "template_id": str(sample.sms_template_id),
        "personalisation": {"code": "1"},
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


EMAIL_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "unknown field",
        {"colour": "blue"},
        "ValidationError",
        "Additional properties are not allowed (colour was unexpected)",
    ),
    ("missing address", {"email_address": ...}, "ValidationError", "email_address is a required property"),
    ("missing template", {"template_id": ...}, "ValidationError", "template_id is a required property"),
    ("bad uuid", {"template_id": "not-a-uuid"}, "ValidationError", "template_id is not a valid UUID"),
    ("bad address", {"email_address": "not-an-address"}, "ValidationError", "email_address Not a valid email address"),
    ("address without domain", {"email_address": "a@"}, "ValidationError", "email_address Not a valid email address"),
    ("wrong type", {"personalisation": "x"}, "ValidationError", 'personalisation "x" is not of type object'),
    ("reference not a string", {"reference": 5}, "ValidationError", "reference 5 is not of type string"),
    (
        "unknown template",
        {"template_id": "11111111-1111-1111-1111-111111111111"},
        "BadRequestError",
        "Template not found",
    ),
    ("bad reply-to uuid", {"email_reply_to_id": "nope"}, "ValidationError", "email_reply_to_id is not a valid UUID"),
    (
        "scheduled in the past",
        {"scheduled_for": "2020-01-01T00:00:00Z"},
        "ValidationError",
        "scheduled_for datetime cannot be in the past",
    ),
]


@pytest.mark.parametrize(("case", "changes", "error", "message"), EMAIL_CASES, ids=[c[0] for c in EMAIL_CASES])
async def test_bad_email_requests(
    client: AsyncClient, redis: Redis, sample: Sample, case: str, changes: dict[str, Any], error: str, message: str
) -> None:
    response = await client.post(
        "/v2/notifications/email", json=email(sample, **changes), headers={"Authorization": f"ApiKey-v1 {sample.key}"}
    )
    assert response.status_code == 400, response.text
    assert response.json() == {"status_code": 400, "errors": [{"error": error, "message": message}]}
    assert await redis.xlen("inbox:email:normal") == 0


SMS_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("missing number", {"phone_number": ...}, "ValidationError", "phone_number is a required property"),
    ("bad number", {"phone_number": "12345"}, "ValidationError", "phone_number Not a valid international number"),
    ("letters", {"phone_number": "call me"}, "ValidationError", "phone_number Not a valid international number"),
    ("bad sender uuid", {"sms_sender_id": "x"}, "ValidationError", "sms_sender_id is not a valid UUID"),
]


@pytest.mark.parametrize(("case", "changes", "error", "message"), SMS_CASES, ids=[c[0] for c in SMS_CASES])
async def test_bad_sms_requests(
    client: AsyncClient, redis: Redis, sample: Sample, case: str, changes: dict[str, Any], error: str, message: str
) -> None:
    response = await client.post(
        "/v2/notifications/sms", json=sms(sample, **changes), headers={"Authorization": f"ApiKey-v1 {sample.key}"}
    )
    assert response.status_code == 400, response.text
    assert response.json() == {"status_code": 400, "errors": [{"error": error, "message": message}]}
    assert await redis.xlen("inbox:sms:normal") == 0


async def test_template_of_the_wrong_type(client: AsyncClient, redis: Redis, sample: Sample) -> None:
    response = await client.post(
        "/v2/notifications/sms",
        json=sms(sample, template_id=str(sample.email_template_id)),
        headers={"Authorization": f"ApiKey-v1 {sample.key}"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "email template is not suitable for sms notification"
    assert await redis.xlen("inbox:sms:normal") == 0


async def test_missing_personalisation_names_every_placeholder(
    client: AsyncClient, redis: Redis, sample: Sample
) -> None:
    response = await client.post(
        "/v2/notifications/email",
        json=email(sample, personalisation={"Name": "A"}),
        headers={"Authorization": f"ApiKey-v1 {sample.key}"},
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "error": "BadRequestError",
            "message": f"Missing personalisation for template ID {sample.email_template_id}: code",
        }
    ]
    assert await redis.xlen("inbox:email:normal") == 0


async def test_invalid_json_and_non_object_bodies(client: AsyncClient, redis: Redis, sample: Sample) -> None:
    headers = {"Authorization": f"ApiKey-v1 {sample.key}", "Content-Type": "application/json"}
    broken = await client.post("/v2/notifications/email", content=b"{not json", headers=headers)
    listed = await client.post("/v2/notifications/email", content=b"[1, 2]", headers=headers)
    assert broken.status_code == 400
    assert broken.json()["errors"][0]["message"].startswith("Error decoding arguments")
    assert listed.status_code == 400
    assert await redis.xlen("inbox:email:normal") == 0


async def test_sms_over_612_characters(
    client: AsyncClient, redis: Redis, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    sample = await create_sample(sessionmaker, settings, sms_content="((text))")
    response = await client.post(
        "/v2/notifications/sms",
        json=sms(sample, personalisation={"text": "a" * 613}),
        headers={"Authorization": f"ApiKey-v1 {sample.key}"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == (
        "Content for template has a character count greater than the limit of 612"
    )
    assert await redis.xlen("inbox:sms:normal") == 0


async def test_get_with_a_bad_id(client: AsyncClient, sample: Sample) -> None:
    headers = {"Authorization": f"ApiKey-v1 {sample.key}"}
    bad = await client.get("/v2/notifications/not-a-uuid", headers=headers)
    missing = await client.get(f"/v2/notifications/{uuid.uuid4()}", headers=headers)
    assert bad.status_code == 400
    assert bad.json()["errors"] == [{"error": "ValidationError", "message": "notification_id is not a valid UUID"}]
    assert missing.status_code == 404


async def test_list_rejects_unknown_parameters(client: AsyncClient, sample: Sample) -> None:
    response = await client.get("/v2/notifications?colour=red", headers={"Authorization": f"ApiKey-v1 {sample.key}"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "Additional properties are not allowed (colour was unexpected)"


async def test_accepted_entry_carries_the_rendered_notification(
    client: AsyncClient, redis: Redis, sample: Sample
) -> None:
    from notify.inbox.schemas import InboxEntry

    response = await client.post(
        "/v2/notifications/email",
        json=email(sample, email_address=" Someone@Example.COM ", reference="r1"),
        headers={"Authorization": f"ApiKey-v1 {sample.key}"},
    )
    assert response.status_code == 201
    entries = await redis.xrange("inbox:email:normal")
    assert len(entries) == 1
    entry = InboxEntry.from_bytes(entries[0][1][b"n"])
    assert str(entry.id) == response.json()["id"]
    assert entry.normalised_to == "someone@example.com"
    assert entry.subject == "Code for A"
    assert entry.client_reference == "r1"
    assert entry.lane == "normal"

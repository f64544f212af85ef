"""Authentication of DESIGN §4.2: Bearer JWT and ApiKey-v1, 401/403 in the v2 error shape, service scoping."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import jwt
import pytest
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.admin import service as admin
from notify.auth.models import ApiKey
from notify.db import transaction
from notify.settings import Settings
from tests.factories import Sample, create_sample


def bearer(key: str, *, iat: float | None = None, iss: str | None = None, secret: str | None = None) -> dict[str, str]:
    token = jwt.encode(
        {"iss": iss or key[-73:-37], "iat": int(iat if iat is not None else time.time())},
        secret or key[-36:],
        algorithm="HS256",
    )
    return {"Authorization": f"Bearer {token}"}


def email_body(sample: Sample) -> dict[str, Any]:
    return {
        "email_address": "someone@example.com",
        "template_id": str(sample.email_template_id),
        "personalisation": {"name": "A", "code": "1"},
    }


@pytest.fixture
async def sample(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> Sample:
    return await create_sample(sessionmaker, settings)


async def test_no_credentials_is_401(client: AsyncClient, sample: Sample) -> None:
    response = await client.post("/v2/notifications/email", json=email_body(sample))
    assert response.status_code == 401
    assert response.json() == {
        "status_code": 401,
        "errors": [{"error": "AuthError", "message": "Unauthorized, authentication token must be provided"}],
    }


async def test_unknown_scheme_is_401(client: AsyncClient, sample: Sample) -> None:
    response = await client.post(
        "/v2/notifications/email", json=email_body(sample), headers={"Authorization": "Basic x"}
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["error"] == "AuthError"


async def test_jwt_and_api_key_are_both_accepted(client: AsyncClient, sample: Sample) -> None:
    by_jwt = await client.post("/v2/notifications/email", json=email_body(sample), headers=bearer(sample.key))
    by_key = await client.post(
        "/v2/notifications/email", json=email_body(sample), headers={"Authorization": f"ApiKey-v1 {sample.key}"}
    )
    assert by_jwt.status_code == 201, by_jwt.text
    assert by_key.status_code == 201, by_key.text


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("wrong signature", "Invalid token: API key not found"),
        ("iat 31 s old", "Error: Your system clock must be accurate to within 30 seconds"),
        ("iat 32 s ahead", "Error: Your system clock must be accurate to within 30 seconds"),
        ("unknown service", "Invalid token: service not found"),
        ("no iss", "Invalid token: iss field not provided"),
        ("not a jwt", "Invalid token: signature, api token is not valid"),
    ],
)
async def test_bad_tokens_are_403(client: AsyncClient, redis: Redis, sample: Sample, case: str, message: str) -> None:
    headers = {
        "wrong signature": bearer(sample.key, secret=str(uuid.uuid4())),
        "iat 31 s old": bearer(sample.key, iat=time.time() - 31),
        "iat 32 s ahead": bearer(sample.key, iat=time.time() + 32),
        "unknown service": bearer(sample.key, iss=str(uuid.uuid4())),
        "no iss": {"Authorization": "Bearer " + jwt.encode({"iat": int(time.time())}, "x" * 32, algorithm="HS256")},
        "not a jwt": {"Authorization": "Bearer not-a-token"},
    }[case]
    response = await client.post("/v2/notifications/email", json=email_body(sample), headers=headers)
    assert response.status_code == 403
    assert response.json() == {"status_code": 403, "errors": [{"error": "AuthError", "message": message}]}
    assert await redis.xlen("inbox:email:normal") == 0


async def test_api_key_of_unknown_service_or_secret_is_403(client: AsyncClient, sample: Sample) -> None:
    wrong_secret = sample.key[:-36] + str(uuid.uuid4())
    wrong_service = sample.key[:-73] + str(uuid.uuid4()) + sample.key[-37:]
    for key in (wrong_secret, wrong_service, "notify-short"):
        response = await client.post(
            "/v2/notifications/email", json=email_body(sample), headers={"Authorization": f"ApiKey-v1 {key}"}
        )
        assert response.status_code == 403, key


async def test_revoked_key_is_refused(
    client: AsyncClient, sample: Sample, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    headers = {"Authorization": f"ApiKey-v1 {sample.key}"}
    assert (await client.post("/v2/notifications/email", json=email_body(sample), headers=headers)).status_code == 201
    async with transaction(sessionmaker) as session:
        await admin.revoke_key(session, redis, sample.key_id)
    # The revocation reaches the API's cache through Redis pub/sub; it must take effect promptly.
    for _ in range(50):
        response = await client.post("/v2/notifications/email", json=email_body(sample), headers=bearer(sample.key))
        if response.status_code == 403:
            break
        await asyncio.sleep(0.05)
    assert response.status_code == 403
    assert response.json()["errors"][0]["message"] == "Invalid token: API key not found"


async def test_any_active_key_of_the_service_may_sign(
    client: AsyncClient, sample: Sample, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    from notify.auth.keys import SecretBox

    async with transaction(sessionmaker) as session:
        second = await admin.create_key(
            session, SecretBox(settings.api.secret_key.get_secret_value()), sample.service_id, name="second"
        )
    response = await client.post("/v2/notifications/email", json=email_body(sample), headers=bearer(second.key))
    assert response.status_code == 201, response.text


async def test_key_secrets_are_not_stored_in_plaintext(
    sample: Sample, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with sessionmaker() as session:
        stored = (await session.scalars(select(ApiKey.secret_encrypted))).all()
    assert stored
    assert all(sample.key[-36:].encode() not in value for value in stored)


async def test_suspended_service_is_refused(
    client: AsyncClient, sample: Sample, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    async with transaction(sessionmaker) as session:
        await admin.update_service(session, redis, sample.service_id, active=False)
    for _ in range(50):
        response = await client.post("/v2/notifications/email", json=email_body(sample), headers=bearer(sample.key))
        if response.status_code == 403:
            break
        await asyncio.sleep(0.05)
    assert response.json()["errors"][0]["message"] == "Service is suspended"


async def test_one_service_cannot_read_another_services_notification(
    client: AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    from sqlalchemy import text

    a = await create_sample(sessionmaker, settings, name="Service A")
    b = await create_sample(sessionmaker, settings, name="Service B")
    notification_id = uuid.uuid4()
    async with transaction(sessionmaker) as session:
        await session.execute(
            text(
                """INSERT INTO notifications (id, service_id, template_id, template_version, key_type,
                   notification_type, lane, "to", normalised_to, body)
                   VALUES (:id, :service, :template, 1, 'normal', 'email', 'normal', 'x@example.com',
                   'x@example.com', 'hi')"""
            ),
            {"id": notification_id, "service": b.service_id, "template": b.email_template_id},
        )
    as_a = await client.get(f"/v2/notifications/{notification_id}", headers=bearer(a.key))
    as_b = await client.get(f"/v2/notifications/{notification_id}", headers=bearer(b.key))
    assert as_a.status_code == 404
    assert as_a.json() == {"status_code": 404, "errors": [{"error": "NoResultFound", "message": "No result found"}]}
    assert as_b.status_code == 200
    assert as_b.json()["id"] == str(notification_id)
    listed_by_a = await client.get("/v2/notifications", headers=bearer(a.key))
    assert listed_by_a.json()["notifications"] == []

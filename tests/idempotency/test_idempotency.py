"""`Idempotency-Key` on POST: a retry replays the first response and enqueues nothing new (DESIGN §11)."""

from __future__ import annotations

import asyncio

import orjson
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.idempotency import service as idempotency
from notify.settings import Settings
from tests.factories import Sample, create_sample


def headers(sample: Sample, key: str | None = None) -> dict[str, str]:
    found = {"Authorization": f"ApiKey-v1 {sample.key}"}
    if key is not None:
        found["Idempotency-Key"] = key
    return found


def email(sample: Sample, **extra: object) -> dict[str, object]:
    return {
        "email_address": "ada@example.com",
        "template_id": str(sample.email_template_id),
        "personalisation": {"name": "Ada", "code": "1"},
        **extra,
    }


async def test_a_retried_post_returns_the_first_response_and_enqueues_once(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    sample = await create_sample(sessionmaker, settings)
    first = await client.post("/v2/notifications/email", headers=headers(sample, "order-42"), json=email(sample))
    retry = await client.post("/v2/notifications/email", headers=headers(sample, "order-42"), json=email(sample))
    sms = {"phone_number": "+447911123456", "template_id": str(sample.sms_template_id), "personalisation": {"code": 1}}
    sms_first = await client.post("/v2/notifications/sms", headers=headers(sample, "sms-1"), json=sms)
    sms_retry = await client.post("/v2/notifications/sms", headers=headers(sample, "sms-1"), json=sms)
    other = await client.post("/v2/notifications/email", headers=headers(sample, "order-43"), json=email(sample))
    plain = await client.post("/v2/notifications/email", headers=headers(sample), json=email(sample))

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert sms_retry.json()["id"] == sms_first.json()["id"]
    assert len({first.json()["id"], other.json()["id"], plain.json()["id"]}) == 3
    assert await redis.xlen("inbox:email:normal") == 3
    assert await redis.xlen("inbox:sms:normal") == 1


async def test_keys_are_scoped_to_the_service(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    one = await create_sample(sessionmaker, settings, name="One")
    two = await create_sample(sessionmaker, settings, name="Two")
    first = await client.post("/v2/notifications/email", headers=headers(one, "same"), json=email(one))
    second = await client.post("/v2/notifications/email", headers=headers(two, "same"), json=email(two))
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert await redis.xlen("inbox:email:normal") == 2


async def test_a_key_reused_for_another_request_is_422(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, settings)
    await client.post("/v2/notifications/email", headers=headers(sample, "k"), json=email(sample))
    reused = await client.post(
        "/v2/notifications/email", headers=headers(sample, "k"), json=email(sample, reference="other")
    )
    assert reused.status_code == 422
    assert reused.json()["errors"][0]["message"] == "This Idempotency-Key was already used for a different request"


async def test_an_error_is_not_stored_so_a_corrected_retry_runs(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    sample = await create_sample(sessionmaker, settings)
    bad = await client.post(
        "/v2/notifications/email", headers=headers(sample, "k"), json=email(sample, personalisation={})
    )
    good = await client.post("/v2/notifications/email", headers=headers(sample, "k"), json=email(sample))
    again = await client.post("/v2/notifications/email", headers=headers(sample, "k"), json=email(sample))
    assert bad.status_code == 400
    assert good.status_code == 201, good.text
    assert again.json()["id"] == good.json()["id"]
    assert await redis.xlen("inbox:email:normal") == 1


async def test_a_duplicate_while_the_first_is_in_flight_is_409(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    sample = await create_sample(sessionmaker, settings)
    body = orjson.dumps(email(sample))
    claim = b"P" + idempotency.fingerprint("POST", "/v2/notifications/email", body)
    await redis.set(idempotency.redis_key(sample.service_id, "busy"), claim, ex=30)
    response = await client.post(
        "/v2/notifications/email",
        headers={**headers(sample, "busy"), "Content-Type": "application/json"},
        content=body,
    )
    assert response.status_code == 409
    assert response.json()["errors"][0]["error"] == "ConflictError"
    assert response.headers["Retry-After"] == "1"
    assert await redis.xlen("inbox:email:normal") == 0


async def test_concurrent_duplicates_enqueue_once(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    sample = await create_sample(sessionmaker, settings)
    responses = await asyncio.gather(
        *(client.post("/v2/notifications/email", headers=headers(sample, "race"), json=email(sample)) for _ in range(5))
    )
    accepted = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(accepted) == 1
    assert {r.status_code for r in responses} <= {201, 409}
    assert await redis.xlen("inbox:email:normal") == 1


async def test_an_overlong_key_is_400(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, settings)
    response = await client.post("/v2/notifications/email", headers=headers(sample, "k" * 256), json=email(sample))
    assert response.status_code == 400

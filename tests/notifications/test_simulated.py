"""Simulated recipients get a normal 201 and are never stored, sent, counted against daily limits or safelisted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.app import create_app
from notify.limits.service import daily_key, rate_key
from notify.settings import ApiSettings, Settings
from tests.conftest import make_settings
from tests.factories import Sample, create_sample
from tests.servers import Servers


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"ApiKey-v1 {key}"}


def email(sample: Sample, address: str) -> dict[str, object]:
    return {
        "email_address": address,
        "template_id": str(sample.email_template_id),
        "personalisation": {"name": "Ada", "code": "1"},
        "reference": "smoke",
    }


def sms(sample: Sample, number: str) -> dict[str, object]:
    return {"phone_number": number, "template_id": str(sample.sms_template_id), "personalisation": {"code": "7"}}


def today() -> str:
    return datetime.now(UTC).date().isoformat()


@pytest.mark.parametrize(
    "address", ["simulate-delivered@notification.canada.ca", " Simulate-Delivered-3@Notification.Canada.ca"]
)
async def test_a_simulated_email_is_accepted_but_never_queued_or_counted(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis, address: str
) -> None:
    sample = await create_sample(sessionmaker, settings)

    response = await client.post("/v2/notifications/email", headers=auth(sample.key), json=email(sample, address))

    assert response.status_code == 201, response.text
    body = response.json()
    uuid.UUID(body["id"])
    assert body["reference"] == "smoke"
    assert body["content"] == {
        "subject": "Code for Ada",
        "body": "Hello Ada, your code is 1.",
        "from_email": "sample@notify.test",
    }
    assert body["uri"].endswith(f"/v2/notifications/{body['id']}")
    assert await redis.xlen("inbox:email:normal") == 0
    assert await redis.get(daily_key(sample.service_id, "email", today())) is None
    assert await redis.zcard(rate_key(sample.service_id, "normal")) == 1, "simulated requests do count as requests"
    assert (await client.get(f"/v2/notifications/{body['id']}", headers=auth(sample.key))).status_code == 404


async def test_a_simulated_number_is_accepted_but_never_queued_or_counted(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    sample = await create_sample(sessionmaker, settings)

    response = await client.post(
        "/v2/notifications/sms", headers=auth(sample.key), json=sms(sample, "1 (613) 253-2223")
    )

    assert response.status_code == 201, response.text
    assert response.json()["content"]["body"] == "Your code is 7"
    assert await redis.xlen("inbox:sms:normal") == 0
    assert await redis.get(daily_key(sample.service_id, "sms", today())) is None


async def test_a_real_recipient_is_queued_and_counted(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    sample = await create_sample(sessionmaker, settings)

    response = await client.post("/v2/notifications/sms", headers=auth(sample.key), json=sms(sample, "+16132532225"))

    assert response.status_code == 201, response.text
    assert await redis.xlen("inbox:sms:normal") == 1
    assert await redis.get(daily_key(sample.service_id, "sms", today())) == b"1"


async def test_simulated_recipients_skip_the_team_safelist(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    sample = await create_sample(sessionmaker, settings, key_type="team")

    simulated = await client.post("/v2/notifications/sms", headers=auth(sample.key), json=sms(sample, "+16132532224"))
    real = await client.post("/v2/notifications/sms", headers=auth(sample.key), json=sms(sample, "+16132532225"))

    assert simulated.status_code == 201, simulated.text
    assert real.status_code == 400
    assert await redis.xlen("inbox:sms:normal") == 0


async def test_a_simulated_recipient_is_still_validated(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, settings)
    body = email(sample, "simulate-delivered@notification.canada.ca")
    body["personalisation"] = {"name": "Ada"}

    response = await client.post("/v2/notifications/email", headers=auth(sample.key), json=body)

    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith("Missing personalisation for template ID")


async def test_the_simulated_lists_are_configurable(
    servers: Servers, clean: None, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    settings = make_settings(
        servers,
        api=ApiSettings(
            base_url="http://test",
            secret_key="test-secret-key-of-enough-length",
            simulated_emails=["Smoke@Example.com"],
            simulated_numbers=["+447911123456"],
        ),
    )
    sample = await create_sample(sessionmaker, settings)
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http,
    ):
        configured = await http.post(
            "/v2/notifications/email", headers=auth(sample.key), json=email(sample, "smoke@example.com")
        )
        configured_sms = await http.post(
            "/v2/notifications/sms", headers=auth(sample.key), json=sms(sample, "447911123456")
        )
        default = await http.post(
            "/v2/notifications/email",
            headers=auth(sample.key),
            json=email(sample, "simulate-delivered@notification.canada.ca"),
        )

    assert [configured.status_code, configured_sms.status_code, default.status_code] == [201, 201, 201]
    assert await redis.xlen("inbox:email:normal") == 1, "only the address no longer on the list is queued"
    assert await redis.xlen("inbox:sms:normal") == 0

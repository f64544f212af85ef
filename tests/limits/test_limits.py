"""Rate limits per key type and daily limits per service, enforced in Redis on POST (DESIGN §4.4)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.admin import service as admin
from notify.app import create_app
from notify.auth.keys import SecretBox
from notify.db import transaction
from notify.embedded import free_port
from notify.limits import service as limits
from notify.limits.exceptions import RequestRateLimitError, TooManyRequestsError
from notify.redis import CommandBatcher
from notify.services.context import ServiceContext
from notify.settings import RedisSettings, Settings
from tests.conftest import make_settings
from tests.factories import Sample, create_sample
from tests.servers import Servers

# 170 GSM-7 characters: two fragments.
TWO_FRAGMENTS = "x" * 170


@pytest.fixture(params=[True, False], ids=["append-in-script", "xadd-after-script"])
def settings(servers: Servers, clean: None, request: pytest.FixtureRequest) -> Settings:
    """Every HTTP test here runs with the inbox entry added by the limits script, and by an XADD of its own."""
    return make_settings(servers, redis=RedisSettings(url=servers.redis_url, append_in_limits_script=request.param))


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"ApiKey-v1 {key}"}


def email(sample: Sample, n: int = 0) -> dict[str, object]:
    return {
        "email_address": f"user{n}@example.com",
        "template_id": str(sample.email_template_id),
        "personalisation": {"name": "N", "code": str(n)},
    }


def sms(sample: Sample, code: str = "1") -> dict[str, object]:
    return {
        "phone_number": "+447911123456",
        "template_id": str(sample.sms_template_id),
        "personalisation": {"code": code},
    }


async def set_limits(
    sessionmaker: async_sessionmaker[AsyncSession],
    sample: Sample,
    *,
    rate_limit: int | None = None,
    email_daily_limit: int | None = None,
    sms_daily_limit: int | None = None,
) -> None:
    async with transaction(sessionmaker) as session:
        await admin.update_service(
            session,
            None,
            sample.service_id,
            rate_limit=rate_limit,
            email_daily_limit=email_daily_limit,
            sms_daily_limit=sms_daily_limit,
        )


async def add_key(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, sample: Sample, key_type: str
) -> str:
    async with transaction(sessionmaker) as session:
        box = SecretBox(settings.api.secret_key.get_secret_value())
        return (await admin.create_key(session, box, sample.service_id, name=key_type, key_type=key_type)).key


async def test_the_request_over_the_rate_limit_is_429_per_key_type(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    sample = await create_sample(sessionmaker, settings)
    await set_limits(sessionmaker, sample, rate_limit=5)
    test_key = await add_key(sessionmaker, settings, sample, "test")
    for n in range(5):
        response = await client.post("/v2/notifications/email", headers=auth(sample.key), json=email(sample, n))
        assert response.status_code == 201, response.text
    refused = await client.post("/v2/notifications/email", headers=auth(sample.key), json=email(sample, 5))
    also_refused = await client.post("/v2/notifications/sms", headers=auth(sample.key), json=sms(sample))
    other_key_type = await client.post("/v2/notifications/email", headers=auth(test_key), json=email(sample))

    assert refused.status_code == 429
    assert refused.json() == {
        "status_code": 429,
        "errors": [
            {"error": "RateLimitError", "message": "Exceeded rate limit for key type LIVE of 5 requests per 60 seconds"}
        ],
    }
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert also_refused.status_code == 429
    assert other_key_type.status_code == 201, "each key type has a window of its own"
    assert await redis.xlen("inbox:email:normal") == 6, "refused requests enqueue nothing"


async def test_the_window_slides() -> None:
    service = _service(rate_limit=3)
    redis = Redis.from_url(_redis_url)
    try:
        start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
        for second in (0, 10, 20):
            await limits.enforce(redis, service, "normal", "email", 1, now=start + timedelta(seconds=second))
        with pytest.raises(RequestRateLimitError) as refused:
            await limits.enforce(redis, service, "normal", "email", 1, now=start + timedelta(seconds=30))
        # The refusal counted too: the window holds 0, 10, 20, 30, so a slot frees when 0 and 10 have left it.
        assert refused.value.headers["Retry-After"] == "40"
        usage = await limits.enforce(redis, service, "normal", "email", 1, now=start + timedelta(seconds=71))
        assert usage.requests_in_window == 3
    finally:
        await redis.aclose()


async def test_daily_email_limit_is_429_until_midnight(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    sample = await create_sample(sessionmaker, settings)
    await set_limits(sessionmaker, sample, email_daily_limit=2)
    for n in range(2):
        response = await client.post("/v2/notifications/email", headers=auth(sample.key), json=email(sample, n))
        assert response.status_code == 201, response.text
    refused = await client.post("/v2/notifications/email", headers=auth(sample.key), json=email(sample, 2))
    an_sms = await client.post("/v2/notifications/sms", headers=auth(sample.key), json=sms(sample))
    assert refused.status_code == 429
    assert refused.json()["errors"] == [
        {"error": "LiveServiceTooManyEmailRequestsError", "message": "Exceeded email daily sending limit of 2 messages"}
    ]
    now = datetime.now(UTC)
    to_midnight = (datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC) - now).total_seconds()
    assert abs(int(refused.headers["Retry-After"]) - to_midnight) <= 5
    assert an_sms.status_code == 201
    assert (await redis.xlen("inbox:email:normal"), await redis.xlen("inbox:sms:normal")) == (2, 1)


async def test_daily_sms_limit_counts_fragments(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, settings)
    await set_limits(sessionmaker, sample, sms_daily_limit=3)
    first = await client.post("/v2/notifications/sms", headers=auth(sample.key), json=sms(sample, TWO_FRAGMENTS))
    second = await client.post("/v2/notifications/sms", headers=auth(sample.key), json=sms(sample, TWO_FRAGMENTS))
    short = await client.post("/v2/notifications/sms", headers=auth(sample.key), json=sms(sample, "1"))
    assert first.status_code == 201, first.text
    assert second.status_code == 429
    assert second.json()["errors"] == [
        {"error": "LiveServiceTooManySMSRequestsError", "message": "Exceeded SMS daily sending limit of 3 fragments"}
    ]
    assert short.status_code == 201, "a refused message takes nothing from the day's allowance"


async def test_test_keys_do_not_count_against_daily_limits(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, settings, key_type="test")
    await set_limits(sessionmaker, sample, email_daily_limit=1)
    for n in range(3):
        response = await client.post("/v2/notifications/email", headers=auth(sample.key), json=email(sample, n))
        assert response.status_code == 201, response.text


async def test_redis_down_is_503_with_retry_after(
    servers: Servers, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, settings)
    down = make_settings(servers, redis=RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0", socket_timeout_s=0.5))
    app: FastAPI = create_app(down)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http,
    ):
        response = await http.post("/v2/notifications/email", headers=auth(sample.key), json=email(sample))
    assert response.status_code == 503
    assert response.json()["errors"][0]["error"] == "ServiceUnavailableError"
    assert response.headers["Retry-After"] == str(down.redis.retry_after_s)


def test_error_wording_matches_gc_notify() -> None:
    assert RequestRateLimitError("team", 1000, 60, 1).message == (
        "Exceeded rate limit for key type TEAM of 1000 requests per 60 seconds"
    )
    trial = TooManyRequestsError("sms", 50, restricted=True, retry_after_s=1)
    assert (trial.error, trial.status_code) == ("TrialServiceTooManySMSRequestsError", 429)


_redis_url = ""


@pytest.fixture(autouse=True)
def _remember_redis(servers: Servers, redis: Redis) -> None:
    global _redis_url
    _redis_url = servers.redis_url


def _service(rate_limit: int) -> ServiceContext:
    return ServiceContext(
        id=uuid.uuid4(),
        name="s",
        active=True,
        restricted=False,
        email_from="s",
        sending_domain=None,
        sms_sender=None,
        rate_limit=rate_limit,
        email_daily_limit=10,
        sms_daily_limit=10,
        keys=(),
    )


async def test_limits_reload_their_script_after_a_flush_and_race_safely_in_one_batch(redis: Redis, clean: None) -> None:
    await redis.script_flush()
    service = _service(rate_limit=3)
    now = datetime.now(UTC)
    async with CommandBatcher(redis) as batcher:
        results = await asyncio.gather(
            *(limits.enforce(batcher, service, "normal", "email", 1, now=now, append=_append(n)) for n in range(5)),
            return_exceptions=True,
        )
    accepted = [r for r in results if isinstance(r, limits.Usage)]
    refused = [r for r in results if isinstance(r, RequestRateLimitError)]
    assert (len(accepted), len(refused)) == (3, 2), results
    assert (await redis.script_exists(limits.SCRIPT_SHA)) == [True], "EVAL cached the script again"
    assert int(await redis.get(limits.daily_key(service.id, "email", now.date().isoformat())) or 0) == 3
    added = await redis.xrange("stream:test")
    assert len(added) == 3, "the script added an entry for each accepted request, through EVAL too"
    assert {fields[b"n"] for _, fields in added} <= {b"entry-0", b"entry-1", b"entry-2", b"entry-3", b"entry-4"}


def _append(n: int) -> limits.Append:
    return limits.Append("stream:test", b"n", f"entry-{n}".encode())


async def test_the_script_adds_the_entry_only_when_the_request_is_accepted(redis: Redis, clean: None) -> None:
    service = _service(rate_limit=2)  # daily limit 10
    now = datetime.now(UTC)
    day_key = limits.daily_key(service.id, "sms", now.date().isoformat())
    await limits.enforce(redis, service, "normal", "sms", 9, now=now, append=_append(0))
    with pytest.raises(TooManyRequestsError):
        await limits.enforce(redis, service, "normal", "sms", 2, now=now, append=_append(1))
    with pytest.raises(RequestRateLimitError):
        await limits.enforce(redis, service, "normal", "sms", 1, now=now, append=_append(2))
    test_key = await limits.enforce(redis, service, "test", "sms", 5, now=now, append=_append(3))

    assert [fields[b"n"] for _, fields in await redis.xrange("stream:test")] == [b"entry-0", b"entry-3"]
    assert int(await redis.get(day_key) or 0) == 9, "neither refusal nor the test key moved today's counter"
    assert test_key.requests_in_window == 1

"""The fast lane answers exactly as the FastAPI routes do (the general path), and really bypasses them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.app import create_app
from notify.dependencies import get_caller
from notify.errors import AuthError
from notify.notifications.schemas import PostNotificationResponse
from notify.settings import ApiSettings, Settings
from tests.conftest import make_settings
from tests.factories import Sample, create_sample
from tests.servers import Servers

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _settings(servers: Servers, fast_lane: bool) -> Settings:
    return make_settings(
        servers,
        api=ApiSettings(base_url="http://test", secret_key="test-secret-key-of-enough-length", fast_lane=fast_lane),
    )


@pytest.fixture
async def clients(servers: Servers, clean: None) -> AsyncIterator[tuple[AsyncClient, AsyncClient]]:
    fast_app, general_app = create_app(_settings(servers, True)), create_app(_settings(servers, False))
    async with (
        fast_app.router.lifespan_context(fast_app),
        general_app.router.lifespan_context(general_app),
        AsyncClient(transport=ASGITransport(app=fast_app), base_url="http://test") as fast,
        AsyncClient(transport=ASGITransport(app=general_app), base_url="http://test") as general,
    ):
        yield fast, general


def _requests(sample: Sample) -> list[tuple[str, str, dict[str, str], Any]]:
    key = {"Authorization": f"ApiKey-v1 {sample.key}"}
    email = {"email_address": "a@example.com", "template_id": str(sample.email_template_id)}
    personalised = {**email, "personalisation": {"name": "A", "code": "1"}}
    sms = {"phone_number": "+16135550123", "template_id": str(sample.sms_template_id), "personalisation": {"code": "7"}}
    return [
        ("email accepted", "/v2/notifications/email", key, personalised),
        ("sms accepted", "/v2/notifications/sms", key, sms),
        ("no credentials", "/v2/notifications/email", {}, personalised),
        ("bad key", "/v2/notifications/email", {"Authorization": "ApiKey-v1 nope"}, personalised),
        ("missing personalisation", "/v2/notifications/email", key, email),
        ("unknown field", "/v2/notifications/sms", key, {**sms, "colour": "red"}),
        ("not json", "/v2/notifications/email", key, b"{oops"),
        ("idempotent first", "/v2/notifications/email", {**key, "Idempotency-Key": "k1"}, personalised),
        ("idempotent replay", "/v2/notifications/email", {**key, "Idempotency-Key": "k1"}, personalised),
    ]


async def test_both_paths_answer_alike(
    clients: tuple[AsyncClient, AsyncClient],
    redis: Redis,
    sessionmaker: async_sessionmaker[AsyncSession],
    servers: Servers,
) -> None:
    fast, general = clients
    sample = await create_sample(sessionmaker, _settings(servers, True))
    ids: dict[int, str] = {}
    for case, path, shared_headers, body in _requests(sample):
        answers = []
        for index, client in enumerate((fast, general)):
            headers = dict(shared_headers)
            if "Idempotency-Key" in headers:  # each path gets its own key: they share one service and Redis
                headers["Idempotency-Key"] += f"-{index}"
            if isinstance(body, bytes):
                response = await client.post(
                    path, headers={**headers, "Content-Type": "application/json"}, content=body
                )
            else:
                response = await client.post(path, headers=headers, json=body)
            answers.append((response.status_code, UUID.sub("<id>", response.text), response.headers.get("retry-after")))
            if case == "idempotent first":
                ids[index] = response.json()["id"]
            if case == "idempotent replay":
                assert response.json()["id"] == ids[index]
                assert response.headers["idempotent-replayed"] == "true"
        assert answers[0] == answers[1], case
    accepted_per_path = 3  # email, sms, the first idempotent email
    assert await redis.xlen("inbox:email:normal") + await redis.xlen("inbox:sms:normal") == 2 * accepted_per_path


async def test_the_fast_lane_does_not_go_through_fastapi(
    clients: tuple[AsyncClient, AsyncClient], sessionmaker: async_sessionmaker[AsyncSession], servers: Servers
) -> None:
    fast, general = clients

    def refuse() -> None:
        raise AuthError("went through FastAPI")

    for client in (fast, general):
        app = client._transport.app  # type: ignore[attr-defined]
        app.dependency_overrides[get_caller] = refuse
    sample = await create_sample(sessionmaker, _settings(servers, True))
    body = {
        "email_address": "a@example.com",
        "template_id": str(sample.email_template_id),
        "personalisation": {"name": "A", "code": "1"},
    }
    headers = {"Authorization": f"ApiKey-v1 {sample.key}"}
    assert (await fast.post("/v2/notifications/email", headers=headers, json=body)).status_code == 201
    refused = await general.post("/v2/notifications/email", headers=headers, json=body)
    assert refused.json()["errors"][0]["message"] == "went through FastAPI"
    # Every other route still goes through FastAPI in both apps.
    listed = await fast.get("/v2/notifications", headers=headers)
    assert listed.json()["errors"][0]["message"] == "went through FastAPI"


async def test_the_201_body_is_a_post_notification_response_whose_uris_follow_the_host_asked(
    clients: tuple[AsyncClient, AsyncClient], sessionmaker: async_sessionmaker[AsyncSession], servers: Servers
) -> None:
    fast, _ = clients
    sample = await create_sample(sessionmaker, _settings(servers, True))
    key = {"Authorization": f"ApiKey-v1 {sample.key}"}
    email: dict[str, Any] = {
        "email_address": "a@example.com",
        "template_id": str(sample.email_template_id),
        "personalisation": {"name": "A", "code": "1"},
    }
    sms: dict[str, Any] = {
        "phone_number": "+16135550123",
        "template_id": str(sample.sms_template_id),
        "personalisation": {"code": "7"},
    }
    for host in ("test", "notify.example:8443", "other.example", "test"):  # the base URL is remembered per Host
        for path, body in (("/v2/notifications/email", email), ("/v2/notifications/sms", sms)):
            response = await fast.post(path, headers={**key, "Host": host}, json=body)
            assert response.status_code == 201, response.text
            answer = response.json()
            assert PostNotificationResponse.model_validate(answer).model_dump() == answer
            assert answer["uri"] == f"http://{host}/v2/notifications/{answer['id']}"
            template_id = body["template_id"]
            assert answer["template"]["uri"] == f"http://{host}/services/{sample.service_id}/templates/{template_id}"

"""The admin HTTP API: the operator's `notify admin` over HTTP, behind a bearer token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.app import create_app
from notify.settings import ApiSettings, Settings
from tests.conftest import make_settings
from tests.factories import create_sample
from tests.servers import Servers

TOKEN = "admin-token-for-tests-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def admin_settings(servers: Servers, token: str | None = TOKEN) -> Settings:
    api = ApiSettings(base_url="http://test", secret_key="test-secret-key-of-enough-length", admin_token=token)
    return make_settings(servers, api=api)


@pytest.fixture
async def admin_app(servers: Servers, clean: None) -> AsyncIterator[FastAPI]:
    application = create_app(admin_settings(servers))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(admin_app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=admin_app), base_url="http://test") as client:
        yield client


def key_auth(key: str) -> dict[str, str]:
    return {"Authorization": f"ApiKey-v1 {key}"}


async def created(response: Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def eventually(request: Any, status_code: int) -> Response:
    """Repeat a request until it answers `status_code` (cache invalidation arrives through Redis pub/sub)."""
    for _ in range(100):
        response: Response = await request()
        if response.status_code == status_code:
            return response
        await asyncio.sleep(0.02)
    return response


async def test_a_service_set_up_through_admin_sends_through_v2(http: AsyncClient, redis: Redis) -> None:
    service = await created(await http.post("/admin/services", headers=ADMIN, json={"name": "Admin made"}))
    sid = service["id"]
    key = await created(await http.post(f"/admin/services/{sid}/api-keys", headers=ADMIN, json={"name": "live"}))
    template = await created(
        await http.post(
            f"/admin/services/{sid}/templates",
            headers=ADMIN,
            json={"type": "email", "name": "hello", "subject": "Hi ((name))", "content": "Hello ((name))"},
        )
    )
    reply_to = await created(
        await http.post(f"/admin/services/{sid}/reply-to", headers=ADMIN, json={"email_address": "desk@example.com"})
    )

    sent = await http.post(
        "/v2/notifications/email",
        headers=key_auth(key["key"]),
        json={
            "email_address": "ada@example.com",
            "template_id": template["id"],
            "personalisation": {"name": "Ada"},
            "email_reply_to_id": reply_to["id"],
        },
    )

    assert service["name"] == "Admin made"
    assert service["email_from"] == "admin.made"
    assert key["key_type"] == "normal"
    assert key["key"].endswith(key["key"][-36:])
    assert sid in key["key"]
    assert (template["version"], reply_to["is_default"]) == (1, True)
    assert sent.status_code == 201, sent.text
    assert sent.json()["content"]["subject"] == "Hi Ada"
    assert await redis.xlen("inbox:email:normal") == 1
    listed = (await http.get("/admin/services", headers=ADMIN)).json()["data"]
    assert [s["id"] for s in listed] == [sid]
    assert "key" not in str(listed).lower().replace("_key", "")


async def test_revoking_a_key_and_suspending_a_service_take_effect_at_once(http: AsyncClient) -> None:
    sid = (await created(await http.post("/admin/services", headers=ADMIN, json={"name": "S"})))["id"]
    first = await created(await http.post(f"/admin/services/{sid}/api-keys", headers=ADMIN, json={"name": "a"}))
    second = await created(await http.post(f"/admin/services/{sid}/api-keys", headers=ADMIN, json={"name": "b"}))
    tid = (
        await created(
            await http.post(
                f"/admin/services/{sid}/templates", headers=ADMIN, json={"type": "sms", "name": "t", "content": "Hi"}
            )
        )
    )["id"]

    def send(key: str) -> Any:
        return lambda: http.post(
            "/v2/notifications/sms", headers=key_auth(key), json={"phone_number": "+447911123456", "template_id": tid}
        )

    assert (await send(first["key"])()).status_code == 201  # the service and its keys are now cached
    revoked = await http.delete(f"/admin/api-keys/{first['id']}", headers=ADMIN)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    assert (await eventually(send(first["key"]), 403)).status_code == 403
    assert (await send(second["key"])()).status_code == 201

    patched = await http.patch(f"/admin/services/{sid}", headers=ADMIN, json={"active": False, "rate_limit": 5})
    assert (patched.status_code, patched.json()["active"], patched.json()["rate_limit"]) == (200, False, 5)
    suspended = await eventually(send(second["key"]), 403)
    assert suspended.json()["errors"] == [{"error": "AuthError", "message": "Service is suspended"}]


async def test_templates_are_listed_and_versioned(http: AsyncClient) -> None:
    sid = (await created(await http.post("/admin/services", headers=ADMIN, json={"name": "T"})))["id"]
    tid = (
        await created(
            await http.post(
                f"/admin/services/{sid}/templates",
                headers=ADMIN,
                json={"type": "sms", "name": "code", "content": "v1", "process_type": "priority"},
            )
        )
    )["id"]

    patched = await http.patch(f"/admin/templates/{tid}", headers=ADMIN, json={"content": "v2"})
    listed = await http.get(f"/admin/services/{sid}/templates", headers=ADMIN)

    assert patched.status_code == 200, patched.text
    assert (patched.json()["version"], patched.json()["content"]) == (2, "v2")
    assert [(t["id"], t["version"], t["process_type"]) for t in listed.json()["data"]] == [(tid, 2, "priority")]


async def test_safelist_callbacks_and_sms_senders(http: AsyncClient) -> None:
    sid = (await created(await http.post("/admin/services", headers=ADMIN, json={"name": "X"})))["id"]

    safelist = await created(
        await http.post(f"/admin/services/{sid}/safelist", headers=ADMIN, json={"recipient": "Ada@Example.com"})
    )
    callback = await created(
        await http.post(
            f"/admin/services/{sid}/callbacks",
            headers=ADMIN,
            json={"url": "https://example.com/hook", "bearer_token": "a-long-enough-token"},
        )
    )
    sender = await created(
        await http.post(f"/admin/services/{sid}/sms-senders", headers=ADMIN, json={"sms_sender": "GOVCA"})
    )
    http_callback = await http.post(
        f"/admin/services/{sid}/callbacks",
        headers=ADMIN,
        json={"url": "http://example.com/hook", "bearer_token": "a-long-enough-token"},
    )

    assert safelist == {"data": ["ada@example.com"]}
    assert callback["callback_type"] == "delivery_status"
    assert (sender["sms_sender"], sender["is_default"]) == ("GOVCA", True)
    assert (await http.get(f"/admin/services/{sid}/sms-senders", headers=ADMIN)).json()["data"] == [sender]
    assert http_callback.status_code == 400
    assert http_callback.json()["errors"][0]["message"] == "Callback URL must be an https:// URL"


@pytest.mark.parametrize(
    ("headers", "status_code", "message"),
    [
        ({}, 401, "Unauthorized: admin token must be provided"),
        ({"Authorization": "Bearer wrong-token"}, 403, "Invalid token: admin token is not valid"),
        ({"Authorization": f"Basic {TOKEN}"}, 403, "Invalid token: admin token is not valid"),
        ({"Authorization": f"Bearer {TOKEN}x"}, 403, "Invalid token: admin token is not valid"),
    ],
)
async def test_a_missing_or_wrong_token_is_refused(
    http: AsyncClient, headers: dict[str, str], status_code: int, message: str
) -> None:
    response = await http.post("/admin/services", headers=headers, json={"name": "Nope"})
    listed = await http.get("/admin/services", headers=headers)

    assert response.status_code == status_code
    assert response.json() == {"status_code": status_code, "errors": [{"error": "AuthError", "message": message}]}
    assert listed.status_code == status_code


async def test_with_no_admin_token_the_admin_api_is_disabled(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    assert settings.api.admin_token is None
    sample = await create_sample(sessionmaker, settings)
    for method, path in [
        ("GET", "/admin/services"),
        ("POST", "/admin/services"),
        ("DELETE", f"/admin/api-keys/{sample.key_id}"),
    ]:
        response = await client.request(method, path, headers=ADMIN, json={"name": "x"})
        assert response.status_code == 404, (method, path)
        assert response.json()["errors"][0]["message"].startswith("admin API disabled")
    assert (await client.post("/v2/notifications/sms", headers=key_auth(sample.key), json={})).status_code == 400


async def test_bad_bodies_and_unknown_ids(http: AsyncClient) -> None:
    unknown = await http.post("/admin/services", headers=ADMIN, json={"name": "A", "colour": "red"})
    duplicate_first = await http.post("/admin/services", headers=ADMIN, json={"name": "Dup"})
    duplicate = await http.post("/admin/services", headers=ADMIN, json={"name": "Dup"})
    missing = await http.post(
        "/admin/services/00000000-0000-0000-0000-000000000000/api-keys", headers=ADMIN, json={"name": "k"}
    )
    bad_type = await http.post(
        f"/admin/services/{duplicate_first.json()['id']}/templates",
        headers=ADMIN,
        json={"type": "letter", "name": "t", "content": "c"},
    )

    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["error"] == "ValidationError"
    assert "colour" in unknown.json()["errors"][0]["message"]
    assert (duplicate.status_code, duplicate.json()["errors"][0]["message"]) == (
        400,
        "A service named 'Dup' already exists",
    )
    assert (missing.status_code, missing.json()["errors"][0]["error"]) == (404, "NoResultFound")
    assert bad_type.status_code == 400


async def test_the_admin_api_is_documented_with_its_own_security(http: AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    admin_operations = [
        operation
        for path, operations in document["paths"].items()
        if path.startswith("/admin/")
        for operation in operations.values()
    ]

    assert len(admin_operations) >= 15
    assert all(operation["tags"] == ["admin"] for operation in admin_operations)
    assert all(operation["security"] == [{"adminBearerAuth": []}] for operation in admin_operations)
    assert all("422" not in operation["responses"] for operation in admin_operations)
    assert document["components"]["securitySchemes"]["adminBearerAuth"]["scheme"] == "bearer"
    assert "admin" in {tag["name"] for tag in document["tags"]}

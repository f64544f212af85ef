"""Team keys send only to the safelist; trial (restricted) services likewise with live keys (GC Notify)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from notify.admin import safelist
from notify.admin import service as admin
from notify.auth.keys import SecretBox
from notify.cli import app
from notify.db import transaction
from notify.services.models import Service
from notify.settings import Settings
from tests.factories import Sample, create_sample

TEAM_ERROR = {"error": "BadRequestError", "message": "Can\u2019t send to this recipient using a team-only API key"}
TRIAL_ERROR = {"error": "BadRequestError", "message": "Can\u2019t send to this recipient when service is in trial mode"}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"ApiKey-v1 {key}"}


def email(sample: Sample, address: str) -> dict[str, object]:
    return {
        "email_address": address,
        "template_id": str(sample.email_template_id),
        "personalisation": {"name": "N", "code": "1"},
    }


def sms(sample: Sample, number: str) -> dict[str, object]:
    return {"phone_number": number, "template_id": str(sample.sms_template_id), "personalisation": {"code": "1"}}


async def add(sessionmaker: async_sessionmaker[AsyncSession], service_id: uuid.UUID, *recipients: str) -> None:
    async with transaction(sessionmaker) as session:
        for recipient in recipients:
            await safelist.add(session, None, service_id, recipient)


async def test_team_key_sends_only_to_the_safelist(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    sample = await create_sample(sessionmaker, settings, key_type="team")
    await add(sessionmaker, sample.service_id, "Team@Example.com", "+44 7911 123456")
    inside = await client.post(
        "/v2/notifications/email", headers=auth(sample.key), json=email(sample, "team@example.COM")
    )
    inside_sms = await client.post("/v2/notifications/sms", headers=auth(sample.key), json=sms(sample, "447911123456"))
    outside = await client.post(
        "/v2/notifications/email", headers=auth(sample.key), json=email(sample, "x@example.com")
    )
    outside_sms = await client.post(
        "/v2/notifications/sms", headers=auth(sample.key), json=sms(sample, "+447911123457")
    )
    assert inside.status_code == 201, inside.text
    assert inside_sms.status_code == 201, inside_sms.text
    assert (outside.status_code, outside.json()["errors"]) == (400, [TEAM_ERROR])
    assert (outside_sms.status_code, outside_sms.json()["errors"]) == (400, [TEAM_ERROR])
    assert await redis.xlen("inbox:email:normal") == 1


async def test_trial_service_live_key_is_refused_outside_the_safelist(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, settings)
    box = SecretBox(settings.api.secret_key.get_secret_value())
    async with transaction(sessionmaker) as session:
        test_key = (await admin.create_key(session, box, sample.service_id, name="t", key_type="test")).key
        service = await session.get(Service, sample.service_id)
        assert service is not None
        service.restricted = True  # a live service put back into trial mode keeps its live key
    await add(sessionmaker, sample.service_id, "team@example.com")
    refused = await client.post(
        "/v2/notifications/email", headers=auth(sample.key), json=email(sample, "x@example.com")
    )
    allowed = await client.post(
        "/v2/notifications/email", headers=auth(sample.key), json=email(sample, "team@example.com")
    )
    test_key_anywhere = await client.post(
        "/v2/notifications/email", headers=auth(test_key), json=email(sample, "x@example.com")
    )
    assert (refused.status_code, refused.json()["errors"]) == (400, [TRIAL_ERROR])
    assert allowed.status_code == 201, allowed.text
    assert test_key_anywhere.status_code == 201, test_key_anywhere.text


async def test_live_key_of_a_live_service_sends_anywhere(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, settings)
    response = await client.post("/v2/notifications/email", headers=auth(sample.key), json=email(sample, "x@e.com"))
    assert response.status_code == 201, response.text


async def test_cli_adds_lists_and_removes_safelist_entries(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = await create_sample(sessionmaker, settings)
    monkeypatch.setenv("DATABASE_URL", settings.db.url)
    monkeypatch.setenv("REDIS_URL", settings.redis.url)
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["admin", "safelist", *args])
        return result.exit_code, result.output

    added = await asyncio.to_thread(run, "add", "--service", str(sample.service_id), "Ada@Example.com")
    listed = await asyncio.to_thread(run, "list", "--service", str(sample.service_id))
    bad = await asyncio.to_thread(run, "add", "--service", str(sample.service_id), "nonsense")
    removed = await asyncio.to_thread(run, "remove", "--service", str(sample.service_id), "ada@example.com")
    async with sessionmaker() as session:
        left = await safelist.list_entries(session, sample.service_id)
    assert added == (0, "ada@example.com\n")
    assert listed == (0, "ada@example.com\n")
    assert bad[0] == 1
    assert removed[0] == 0
    assert left == []

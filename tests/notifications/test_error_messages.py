"""The DESIGN §4 / GC Notify error messages of the POST routes not covered elsewhere, each through the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.admin import service as admin
from notify.db import transaction
from notify.settings import Settings
from tests.factories import Sample, create_sample

Maker = async_sessionmaker[AsyncSession]


async def _archive_email_template(sessionmaker: Maker, sample: Sample) -> str:
    async with transaction(sessionmaker) as session:
        await admin.update_template(session, None, sample.email_template_id, archived=True)
    return f"Template {sample.email_template_id} has been deleted"


async def _nothing(sessionmaker: Maker, sample: Sample) -> str:
    return ""


CASES: list[tuple[str, str, dict[str, Any], Callable[[Maker, Sample], Awaitable[str]], str, str]] = [
    # (id, path, personalisation, set-up returning the expected message or "", error class, message)
    ("deleted", "email", {"name": "A", "code": "1"}, _archive_email_template, "BadRequestError", ""),
    ("empty", "sms", {"code": "   "}, _nothing, "BadRequestError", "Message is empty or just whitespace"),
    (
        "too-big",
        "email",
        {"name": "A", "code": "x" * 51_200},
        _nothing,
        "ValidationError",
        "Personalisation variables size of 51222 bytes is greater than allowed limit of 51200 bytes.",
    ),
]


@pytest.mark.parametrize(
    ("kind", "personalisation", "setup", "error", "message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_post_error_messages(
    client: AsyncClient,
    settings: Settings,
    sessionmaker: Maker,
    redis: Redis,
    kind: str,
    personalisation: dict[str, Any],
    setup: Callable[[Maker, Sample], Awaitable[str]],
    error: str,
    message: str,
) -> None:
    sample = await create_sample(sessionmaker, settings, sms_content="((code))")
    message = await setup(sessionmaker, sample) or message
    if kind == "email":
        body = {"email_address": "a@example.com", "template_id": str(sample.email_template_id)}
    else:
        body = {"phone_number": "+447911123456", "template_id": str(sample.sms_template_id)}

    response = await client.post(
        f"/v2/notifications/{kind}",
        headers={"Authorization": f"ApiKey-v1 {sample.key}"},
        json={**body, "personalisation": personalisation},
    )

    assert response.json() == {"status_code": 400, "errors": [{"error": error, "message": message}]}
    assert await redis.xlen(f"inbox:{kind}:normal") == 0

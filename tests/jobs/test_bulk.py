"""POST /v2/notifications/bulk end to end: validation, storage, processing, delivery through moto."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.app import create_app
from notify.context import WorkerContext
from notify.embedded import sent_emails, sns_published
from notify.settings import LimitsSettings, Settings
from tests.conftest import REGION, make_settings
from tests.factories import create_sample
from tests.jobs.helpers import auth, count_rows, get_job, job_notifications, post_bulk, run_worker, verify_sender
from tests.servers import Servers


async def test_rows_job_becomes_one_delivered_email_per_row(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    worker_ctx: WorkerContext,
) -> None:
    sample = await create_sample(sessionmaker, settings)
    await verify_sender(settings)
    sent_before = len(sent_emails(REGION))
    response = await post_bulk(
        client,
        sample.key,
        {
            "name": "november.csv",
            "template_id": str(sample.email_template_id),
            "rows": [
                ["Email Address", "name", "code", "reference"],
                ["ada@example.com", "Ada", "11", "ref-ada"],
                ["bob@example.com", "Bob", 22, ""],
            ],
        },
    )
    assert response.status_code == 201, response.text
    job = response.json()["data"]
    assert job["job_status"] == "pending"
    assert job["notification_count"] == 2
    assert job["original_file_name"] == "november.csv"
    assert job["template"] == str(sample.email_template_id)
    assert job["template_type"] == "email"
    assert job["api_key"]["id"] == str(sample.key_id)
    assert job["service"] == str(sample.service_id)

    await run_worker(worker_ctx, settings)

    rows = await job_notifications(sessionmaker, job["id"])
    assert [(n.job_row_number, n.to, n.client_reference) for n in rows] == [
        (0, "ada@example.com", "ref-ada"),
        (1, "bob@example.com", None),
    ]
    assert [n.id for n in rows] == [uuid.uuid5(uuid.UUID(job["id"]), str(i)) for i in (0, 1)]
    assert rows[0].personalisation == {"name": "Ada", "code": "11"}
    assert rows[1].subject == "Code for Bob"
    assert {n.status for n in rows} == {"sending"}
    new = sent_emails(REGION)[sent_before:]
    assert sorted(m.destinations["ToAddresses"][0] for m in new) == ["ada@example.com", "bob@example.com"]
    assert any("Hello Ada, your code is 11." in m.body for m in new)

    stored = await get_job(sessionmaker, job["id"])
    assert (stored.status, stored.rows_saved, stored.notification_count) == ("finished", 2, 2)
    assert stored.processing_started is not None
    assert stored.processing_finished is not None
    status = await client.get(f"/v2/jobs/{job['id']}", headers=auth(sample.key))
    assert status.status_code == 200
    data = status.json()["data"]
    assert data["job_status"] == "finished"
    assert data["rows_saved"] == 2
    assert data["statistics"] == [{"status": "sending", "count": 2}]


async def test_csv_job_sends_text_messages(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    worker_ctx: WorkerContext,
) -> None:
    sample = await create_sample(sessionmaker, settings)
    sms_before = len(sns_published(REGION))
    csv_text = 'phone_number,Code,reference\r\n+447911123456,"1,234",first\r\n\r\n+447911123457, 5678 ,\r\n'
    response = await post_bulk(
        client, sample.key, {"name": "sms.csv", "template_id": str(sample.sms_template_id), "csv": csv_text}
    )
    assert response.status_code == 201, response.text
    job_id = response.json()["data"]["id"]

    await run_worker(worker_ctx, settings)

    rows = await job_notifications(sessionmaker, job_id)
    assert [(n.job_row_number, n.normalised_to, n.body, n.client_reference) for n in rows] == [
        (0, "+447911123456", "Your code is 1,234", "first"),
        (1, "+447911123457", "Your code is 5678", None),
    ]
    assert {n.status for n in rows} == {"sent"}
    published = [(number, body) for number, body, *_ in sns_published(REGION)[sms_before:]]
    assert sorted(published) == [("+447911123456", "Your code is 1,234"), ("+447911123457", "Your code is 5678")]


def _rows(*data: list[Any], header: list[Any] | None = None) -> list[list[Any]]:
    return [header or ["email address", "name", "code"], *data]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"rows": _rows(["a@example.com", "A", "1"]), "csv": "x"}, "You should specify either rows or csv"),
        ({}, "You should specify either rows or csv"),
        (
            {"rows": _rows(["a@example.com", "A", "1"]), "colour": "red"},
            "Additional properties are not allowed (colour was unexpected)",
        ),
        ({"rows": _rows(["a@example.com", "A"], header=["email address", "name"])}, "Missing column headers: code"),
        ({"rows": _rows(["A", "1"], header=["name", "code"])}, "Missing column headers: email address"),
        (
            {
                "rows": _rows(
                    ["a@example.com", "b@example.com", "A", "1"],
                    header=["email address", "Email_Address", "name", "code"],
                )
            },
            "Duplicate column headers: Email_Address, email address",
        ),
        (
            {"rows": _rows(["a@example.com", "A", "1"], ["not an email", "B", "2"], ["c@example.com", "", "3"])},
            "Some rows have errors. Row 1 - `email address`: invalid recipient. Row 2 - `name`: Missing.",
        ),
        ({"rows": [["email address", "name", "code"]]}, "rows is too short"),
        (
            {
                "csv": "email address,name,code\n",
            },
            "rows is too short",
        ),
        (
            {"rows": _rows(["a@example.com", "A", "1"]), "scheduled_for": "2000-01-01T00:00:00"},
            "scheduled_for datetime cannot be in the past",
        ),
        (
            {"rows": _rows(["a@example.com", "A", "1"]), "template_id": str(uuid.uuid4())},
            "Template not found",
        ),
    ],
)
async def test_invalid_bulk_request_is_rejected_and_creates_nothing(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    body: dict[str, Any],
    message: str,
) -> None:
    sample = await create_sample(sessionmaker, settings)
    response = await post_bulk(
        client, sample.key, {"name": "bad", "template_id": str(sample.email_template_id), **body}
    )
    assert response.status_code == 400, response.text
    assert message in [error["message"] for error in response.json()["errors"]]
    assert await count_rows(sessionmaker, "jobs") == 0
    assert await count_rows(sessionmaker, "job_rows") == 0


async def test_too_many_rows_is_rejected(
    servers: Servers, clean: None, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    settings = make_settings(servers, limits=LimitsSettings(bulk_max_rows=2))
    sample = await create_sample(sessionmaker, settings)
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http,
    ):
        ok_csv = "email address,name,code\na@example.com,A,1\nb@example.com,B,2\n"
        too_many = ok_csv + "c@example.com,C,3\n"
        template_id = str(sample.email_template_id)
        response = await post_bulk(http, sample.key, {"name": "big", "template_id": template_id, "csv": too_many})
        assert response.status_code == 400
        assert response.json()["errors"][0]["message"] == "Too many rows. Maximum number of rows allowed is 2"
        assert await count_rows(sessionmaker, "jobs") == 0
        assert await count_rows(sessionmaker, "job_rows") == 0
        response = await post_bulk(http, sample.key, {"name": "ok", "template_id": template_id, "csv": ok_csv})
        assert response.status_code == 201
        assert await count_rows(sessionmaker, "job_rows") == 2


async def test_a_job_is_only_visible_to_its_service(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], client: AsyncClient
) -> None:
    mine = await create_sample(sessionmaker, settings)
    other = await create_sample(sessionmaker, settings, name="Other service")
    response = await post_bulk(
        client,
        mine.key,
        {"name": "j", "template_id": str(mine.email_template_id), "rows": _rows(["a@example.com", "A", "1"])},
    )
    job_id = response.json()["data"]["id"]
    assert (await client.get(f"/v2/jobs/{job_id}", headers=auth(mine.key))).status_code == 200
    assert (await client.get(f"/v2/jobs/{job_id}", headers=auth(other.key))).status_code == 404
    assert (await client.post(f"/v2/jobs/{job_id}/cancel", headers=auth(other.key))).status_code == 404


async def test_scheduled_job_waits_for_its_time_and_can_be_cancelled(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    worker_ctx: WorkerContext,
) -> None:
    from notify.jobs import processing
    from tests.jobs.helpers import execute

    sample = await create_sample(sessionmaker, settings)
    await verify_sender(settings)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    ids = []
    for name in ("kept", "cancelled"):
        response = await post_bulk(
            client,
            sample.key,
            {
                "name": name,
                "template_id": str(sample.email_template_id),
                "rows": _rows([f"{name}@example.com", "A", "1"]),
                "scheduled_for": later,
            },
        )
        assert response.status_code == 201, response.text
        assert response.json()["data"]["job_status"] == "scheduled"
        ids.append(response.json()["data"]["id"])
    kept, cancelled = ids

    await run_worker(worker_ctx, settings)
    assert await processing.start_scheduled(worker_ctx) == 0
    assert await job_notifications(sessionmaker, kept) == []

    response = await client.post(f"/v2/jobs/{cancelled}/cancel", headers=auth(sample.key))
    assert response.status_code == 200
    assert response.json()["data"]["job_status"] == "cancelled"
    await execute(sessionmaker, "UPDATE jobs SET scheduled_for = now() - interval '1 second'")
    sent_before = len(sent_emails(REGION))
    assert await processing.start_scheduled(worker_ctx) == 1
    await run_worker(worker_ctx, settings)

    assert [n.to for n in await job_notifications(sessionmaker, kept)] == ["kept@example.com"]
    assert (await get_job(sessionmaker, kept)).status == "finished"
    assert await job_notifications(sessionmaker, cancelled) == []
    assert [m.destinations["ToAddresses"][0] for m in sent_emails(REGION)[sent_before:]] == ["kept@example.com"]
    response = await client.post(f"/v2/jobs/{kept}/cancel", headers=auth(sample.key))
    assert response.status_code == 400


async def test_a_job_beyond_the_daily_limit_is_refused_whole(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], client: AsyncClient
) -> None:
    from tests.jobs.helpers import execute

    sample = await create_sample(sessionmaker, settings)
    await execute(sessionmaker, "UPDATE services SET email_daily_limit = 2")
    three = _rows(["a@example.com", "A", "1"], ["b@example.com", "B", "2"], ["c@example.com", "C", "3"])
    template_id = str(sample.email_template_id)
    response = await post_bulk(client, sample.key, {"name": "big", "template_id": template_id, "rows": three})
    assert response.status_code == 429, response.text
    assert response.json()["errors"][0]["message"] == "Exceeded email daily sending limit of 2 messages"
    assert await count_rows(sessionmaker, "jobs") == 0
    assert await count_rows(sessionmaker, "job_rows") == 0
    response = await post_bulk(client, sample.key, {"name": "ok", "template_id": template_id, "rows": three[:3]})
    assert response.status_code == 201, response.text


async def test_a_team_key_job_may_only_go_to_the_safelist(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], client: AsyncClient
) -> None:
    sample = await create_sample(sessionmaker, settings, key_type="team")
    body = {"name": "team", "template_id": str(sample.email_template_id), "rows": _rows(["a@example.com", "A", "1"])}
    response = await post_bulk(client, sample.key, body)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["message"] == (
        "Some rows have errors. Row 0 - `email address`: Can\u2019t send to this recipient using a team-only API key."
    )
    assert await count_rows(sessionmaker, "jobs") == 0

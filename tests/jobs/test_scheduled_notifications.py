"""Single notifications with `scheduled_for`: saved at once, sent only once due, cancellable until then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.context import WorkerContext
from notify.embedded import sent_emails
from notify.jobs import processing
from notify.settings import Settings
from tests.conftest import REGION
from tests.factories import create_sample
from tests.jobs.helpers import auth, execute, run_worker, verify_sender


async def test_scheduled_email_is_sent_when_due_and_a_cancelled_one_never(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    worker_ctx: WorkerContext,
) -> None:
    sample = await create_sample(sessionmaker, settings)
    await verify_sender(settings)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    ids = {}
    for name in ("kept", "cancelled"):
        response = await client.post(
            "/v2/notifications/email",
            headers=auth(sample.key),
            json={
                "email_address": f"{name}@example.com",
                "template_id": str(sample.email_template_id),
                "personalisation": {"name": name, "code": "1"},
                "scheduled_for": later,
            },
        )
        assert response.status_code == 201, response.text
        assert response.json()["scheduled_for"] is not None
        ids[name] = response.json()["id"]
    sent_before = len(sent_emails(REGION))

    await run_worker(worker_ctx, settings)
    assert await processing.send_scheduled_notifications(worker_ctx) == 0
    kept = await client.get(f"/v2/notifications/{ids['kept']}", headers=auth(sample.key))
    assert kept.json()["status"] == "created"
    assert len(sent_emails(REGION)) == sent_before

    response = await client.post(f"/v2/notifications/{ids['cancelled']}/cancel", headers=auth(sample.key))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"

    await execute(sessionmaker, "UPDATE notifications SET scheduled_for = now() - interval '1 second'")
    assert await processing.send_scheduled_notifications(worker_ctx) == 1
    await run_worker(worker_ctx, settings)

    kept = await client.get(f"/v2/notifications/{ids['kept']}", headers=auth(sample.key))
    assert kept.json()["status"] == "sending"
    cancelled = await client.get(f"/v2/notifications/{ids['cancelled']}", headers=auth(sample.key))
    assert cancelled.json()["status"] == "cancelled"
    assert [m.destinations["ToAddresses"][0] for m in sent_emails(REGION)[sent_before:]] == ["kept@example.com"]
    assert await processing.send_scheduled_notifications(worker_ctx) == 0

    too_late = await client.post(f"/v2/notifications/{ids['kept']}/cancel", headers=auth(sample.key))
    assert too_late.status_code == 400
    other = await create_sample(sessionmaker, settings, name="Other service")
    hidden = await client.post(f"/v2/notifications/{ids['kept']}/cancel", headers=auth(other.key))
    assert hidden.status_code == 404

"""`notify retry`: failed and bounced notifications sent again through the normal delivery path."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from arq.connections import ArqRedis
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify import aws
from notify.context import WorkerContext
from notify.embedded import sent_emails
from notify.notifications.models import Notification
from notify.receipts import service as receipt_service
from notify.receipts.schemas import StatusReceipt
from notify.retry import service as retry_service
from notify.settings import Settings
from tests.cli_runner import invoke
from tests.conftest import REGION
from tests.factories import create_sample
from tests.receipts.conftest import create_notification
from tests.recovery.conftest import post_emails, run_worker
from tests.servers import Servers


@pytest.fixture
def cli_env(servers: Servers, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", servers.database_url)
    monkeypatch.setenv("REDIS_URL", servers.redis_url)
    monkeypatch.chdir(servers.root)  # no stray .env


async def _row(sessionmaker: async_sessionmaker[AsyncSession], notification_id: uuid.UUID) -> Notification:
    async with sessionmaker() as session:
        row = await session.get(Notification, notification_id)
    assert row is not None
    return row


async def _all(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[uuid.UUID, tuple[str, str | None]]:
    async with sessionmaker() as session:
        rows = (await session.scalars(select(Notification))).all()
    return {row.id: (row.status, row.reference) for row in rows}


@pytest.mark.usefixtures("cli_env")
async def test_a_bounced_email_is_sent_again_with_a_new_reference(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    worker_ctx: WorkerContext,
) -> None:
    session = aws.create_session(settings.aws)
    async with session.client("sesv2", **aws.client_kwargs(settings.aws)) as ses:
        await ses.create_email_identity(EmailIdentity=settings.aws.email_domain)
    sample = await create_sample(sessionmaker, settings)
    emails_before = len(sent_emails(REGION))
    [notification_id] = [uuid.UUID(i) for i in await post_emails(client, sample, 1)]
    await run_worker(worker_ctx, settings)
    first = await _row(sessionmaker, notification_id)
    assert first.status == "sending"
    assert first.reference is not None
    await receipt_service.apply_receipts(
        worker_ctx, [StatusReceipt(first.reference, "permanent-failure", "Permanent", "General", "feedback-1")]
    )
    bounced = await _row(sessionmaker, notification_id)
    assert bounced.status == "permanent-failure"
    assert bounced.feedback_subtype == "General"

    result = invoke("retry", "--id", str(notification_id))
    assert result.exit_code == 0, result.output
    assert "Retried 1 notification(s)" in result.output
    await run_worker(worker_ctx, settings)

    resent = await _row(sessionmaker, notification_id)
    assert resent.status == "sending"
    assert resent.reference is not None
    assert resent.reference != first.reference
    assert resent.feedback_type is None
    assert resent.feedback_subtype is None
    assert resent.feedback_id is None
    assert resent.attempts == 1
    new_emails = sent_emails(REGION)[emails_before:]
    assert len(new_emails) == 2
    assert [m.destinations["ToAddresses"] for m in new_emails] == [["user0@example.com"]] * 2


@pytest.mark.usefixtures("cli_env")
async def test_dry_run_counts_and_shows_but_changes_nothing(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], queue: ArqRedis
) -> None:
    sample = await create_sample(sessionmaker, settings)
    bounced = [
        await create_notification(
            sessionmaker,
            sample.service_id,
            sample.email_template_id,
            reference=f"ses-{n}",
            status="permanent-failure",
            age=timedelta(hours=1),
        )
        for n in range(3)
    ]
    await create_notification(
        sessionmaker, sample.service_id, sample.email_template_id, reference="ses-t", status="temporary-failure"
    )
    before = await _all(sessionmaker)
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    until = datetime.now(UTC).isoformat()

    result = invoke(
        "retry", "--service", str(sample.service_id), "--status", "permanent-failure",
        "--since", since, "--until", until, "--dry-run",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "3 notification(s) would be retried" in result.output
    assert str(bounced[0])[:8] in result.output
    assert await _all(sessionmaker) == before
    assert await queue.queued_jobs() == []


@pytest.mark.usefixtures("cli_env")
async def test_a_delivered_notification_is_never_retried(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], queue: ArqRedis
) -> None:
    sample = await create_sample(sessionmaker, settings)
    delivered = await create_notification(
        sessionmaker, sample.service_id, sample.email_template_id, reference="ses-ok", status="delivered"
    )
    failed = await create_notification(
        sessionmaker, sample.service_id, sample.email_template_id, reference="ses-bad", status="technical-failure"
    )

    result = invoke("retry", "--id", str(delivered), "--id", str(failed))

    assert result.exit_code == 0, result.output
    assert "Retried 1 notification(s)" in result.output
    assert (await _row(sessionmaker, delivered)).status == "delivered"
    assert (await _row(sessionmaker, delivered)).reference == "ses-ok"
    reset = await _row(sessionmaker, failed)
    assert (reset.status, reset.reference, reset.completed_at) == ("created", None, None)
    jobs = await queue.queued_jobs()
    assert [(job.function, job.args) for job in jobs] == [("deliver_email", ([str(failed)],))]
    refused = invoke(
        "retry", "--service", str(sample.service_id), "--status", "delivered",
        "--since", "2026-01-01", "--until", "2030-01-01",
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "--status must be one of" in refused.output


async def test_rows_are_reset_and_enqueued_in_batches(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], queue: ArqRedis
) -> None:
    sample = await create_sample(sessionmaker, settings)
    ids = {
        await create_notification(
            sessionmaker, sample.service_id, sample.email_template_id, reference=f"ses-{n}", status="temporary-failure"
        )
        for n in range(5)
    }
    selection = retry_service.by_filter(
        sample.service_id, "temporary-failure", datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC)
    )
    progress: list[int] = []

    retried = await retry_service.retry(sessionmaker, queue, selection, batch_size=2, on_batch=progress.append)

    assert retried == 5
    assert progress == [2, 2, 1]
    jobs = await queue.queued_jobs()
    assert sorted(len(job.args[0]) for job in jobs) == [1, 2, 2]
    assert {uuid.UUID(i) for job in jobs for i in job.args[0]} == ids
    assert {status for status, _ in (await _all(sessionmaker)).values()} == {"created"}
    assert await retry_service.retry(sessionmaker, queue, selection) == 0

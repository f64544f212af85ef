"""Provider failures: transient ones are retried, permanent ones fail at once, account pauses stop everyone."""

from __future__ import annotations

import time

import pytest
import sqlalchemy.exc
from arq import Retry
from arq.connections import ArqRedis
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.delivery import pause
from notify.delivery import service as delivery
from notify.delivery import tasks as delivery_tasks
from notify.delivery.exceptions import TransientProviderError
from notify.delivery.senders import EmailMessage
from notify.embedded import free_port
from notify.inbox import service as inbox_service
from notify.notifications.models import Notification
from notify.settings import AwsSettings, DbSettings
from notify.testing.fake_aws import FakeAwsServer
from notify.worker import worker_resources
from tests.conftest import REGION, make_settings
from tests.factories import create_sample
from tests.recovery.conftest import as_uuids, fake_aws_settings, post_emails, run_worker, save_without_delivery
from tests.servers import Servers


async def _rows(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Notification]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(Notification).order_by(Notification.created_at))).all())


async def test_throttled_sends_are_retried_with_backoff_then_sent_once(
    servers: Servers,
    clean: None,
    fake_aws: FakeAwsServer,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    queue: ArqRedis,
) -> None:
    settings = fake_aws_settings(servers, fake_aws)
    # More failures than botocore's own quick retries absorb, so the worker's retry with backoff must step in.
    fake_aws.fake.configure(fail_first_n=6)
    sample = await create_sample(sessionmaker, settings)
    await post_emails(client, sample, 1)

    async with worker_resources(settings, queue) as context:
        await run_worker(context, settings)

    [row] = await _rows(sessionmaker)
    assert row.status == "sending"
    assert row.attempts >= 2
    assert fake_aws.fake.counters.errors_returned == 6
    assert [email["message_id"] for email in fake_aws.fake.recorded_emails()] == [row.reference]


async def test_throttling_past_the_retry_budget_is_a_technical_failure(
    servers: Servers,
    clean: None,
    fake_aws: FakeAwsServer,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    queue: ArqRedis,
) -> None:
    settings = fake_aws_settings(servers, fake_aws, retry_budget_s=0)
    fake_aws.fake.configure(fail_first_n=10)
    sample = await create_sample(sessionmaker, settings)
    await post_emails(client, sample, 1)

    async with worker_resources(settings, queue) as context:
        await run_worker(context, settings)

    [row] = await _rows(sessionmaker)
    assert row.status == "technical-failure"
    assert row.provider_response is not None
    assert "TooManyRequestsException" in row.provider_response
    assert fake_aws.fake.counters.sent_emails == 0


async def test_a_message_ses_rejects_is_a_technical_failure_without_retry(
    servers: Servers,
    clean: None,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    queue: ArqRedis,
) -> None:
    # moto answers MessageRejected for a sender whose domain was never verified, as SES does.
    aws = AwsSettings(
        endpoint_url=servers.aws_url,
        region=REGION,
        access_key_id="testing",
        secret_access_key="testing",
        email_domain="never-verified.test",
    )
    settings = make_settings(servers, aws=aws)
    sample = await create_sample(sessionmaker, settings)
    await post_emails(client, sample, 1)

    async with worker_resources(settings, queue) as context:
        await run_worker(context, settings)

    [row] = await _rows(sessionmaker)
    assert row.status == "technical-failure"
    assert row.provider_response is not None
    assert row.provider_response.startswith("MessageRejected")
    assert row.attempts == 1
    assert row.reference is None


class PausedAccount:
    """An email provider whose account is paused: every send is refused as SES does (SendingPausedException)."""

    def __init__(self) -> None:
        self.calls = 0

    async def send_email(self, message: EmailMessage) -> str:
        """Refuse the send."""
        self.calls += 1
        raise TransientProviderError("SendingPausedException: sending is paused for this account", account_paused=True)


async def test_an_account_pause_stops_sending_for_everyone_until_it_lifts(
    servers: Servers,
    clean: None,
    fake_aws: FakeAwsServer,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    queue: ArqRedis,
) -> None:
    settings = fake_aws_settings(servers, fake_aws, sending_pause_s=30)
    sample = await create_sample(sessionmaker, settings)
    first = as_uuids(await post_emails(client, sample, 1))
    others = as_uuids(await post_emails(client, sample, 3, start=1))
    async with worker_resources(settings, queue) as context:
        await inbox_service.drain(context)
        await queue.delete("arq:queue")  # deliver() is called by hand below
        real_sender = context.email_sender
        paused = PausedAccount()
        context.email_sender = paused

        outcome = await delivery.deliver(context, "email", first)
        assert [row_id for row_id, _, _ in outcome.retry] == first
        remaining = await pause.paused_for_s(context.redis, "email")
        assert 25 < remaining <= 30
        assert await pause.paused_for_s(context.redis, "sms") == 0

        deferred = await delivery.deliver(context, "email", others)
        assert paused.calls == 1, "no provider call while the account is paused"
        assert {row.status for row in await _rows(sessionmaker) if row.id in others} == {"created"}, "claim undone"
        assert (deferred.sent, deferred.failed, deferred.retry) == ([], [], [])
        jobs = {tuple(job.args[0]): job for job in await queue.queued_jobs()}
        assert set(jobs) == {(str(first[0]),), tuple(str(i) for i in others)}, "the retry, and the deferred batch"
        for job in jobs.values():
            assert job.function == "deliver_email"
            assert job.score is not None
            assert job.score / 1000 >= time.time() + 25, "nothing runs before the pause lifts"

        await pause.resume(context.redis, "email")
        context.email_sender = real_sender
        await delivery.deliver(context, "email", others)

    rows = {row.id: row for row in await _rows(sessionmaker)}
    assert {rows[i].status for i in others} == {"sending"}
    assert rows[first[0]].status == "created"
    assert rows[first[0]].next_attempt_at is not None
    assert fake_aws.fake.counters.sent_emails == 3


async def test_a_batch_that_finds_no_database_connection_runs_again_in_seconds_and_is_sent_once(
    servers: Servers,
    clean: None,
    fake_aws: FakeAwsServer,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    queue: ArqRedis,
) -> None:
    # A pool of one connection, held elsewhere: the delivery job cannot reach PostgreSQL, as in an outage.
    db = DbSettings(url=servers.database_url, pool_size=1, max_overflow=0, pool_timeout_s=0.2)
    settings = fake_aws_settings(servers, fake_aws).model_copy(update={"db": db})
    sample = await create_sample(sessionmaker, settings)
    async with worker_resources(settings, queue) as context:
        ids = await save_without_delivery(client, sample, context, 2)
        ctx = {"notify": context, "job_try": 1}
        async with context.engine.connect() as held:
            await held.execute(text("SELECT 1"))
            with pytest.raises(Retry) as retry:
                await delivery_tasks.deliver_email(ctx, ids)
            # arq defers the next run by this many milliseconds: the first backoff step, not the 10-minute replay.
            assert 500 <= retry.value.defer_score <= 1000  # type: ignore[operator]
            with pytest.raises(sqlalchemy.exc.TimeoutError):  # out of tries: left to replay-created-notifications
                await delivery_tasks.deliver_email({**ctx, "job_try": delivery_tasks.MAX_TRIES}, ids)
        assert {row.status for row in await _rows(sessionmaker)} == {"created"}, "nothing claimed, nothing lost"

        assert await delivery_tasks.deliver_email({**ctx, "job_try": 2}, ids) == 2

    rows = await _rows(sessionmaker)
    assert {row.status for row in rows} == {"sending"}
    assert sorted(str(row.id) for row in rows) == sorted(ids)
    assert fake_aws.fake.counters.sent_emails == 2


async def test_a_batch_whose_pause_check_finds_no_redis_rolls_its_claim_back_and_runs_again(
    servers: Servers,
    clean: None,
    fake_aws: FakeAwsServer,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    queue: ArqRedis,
) -> None:
    # The pause check goes out beside the claim: when it cannot reach Redis, the claim it raced must not stand.
    settings = fake_aws_settings(servers, fake_aws)
    sample = await create_sample(sessionmaker, settings)
    async with worker_resources(settings, queue) as context:
        ids = await save_without_delivery(client, sample, context, 2)
        ctx = {"notify": context, "job_try": 1}
        reachable = context.redis
        context.redis = Redis(port=free_port(), socket_connect_timeout=0.5)  # nothing listens there
        try:
            with pytest.raises(Retry):
                await delivery_tasks.deliver_email(ctx, ids)
        finally:
            await context.redis.aclose()
            context.redis = reachable
        assert {row.status for row in await _rows(sessionmaker)} == {"created"}, "the claim was rolled back"
        assert fake_aws.fake.counters.sent_emails == 0

        assert await delivery_tasks.deliver_email({**ctx, "job_try": 2}, ids) == 2

    assert {row.status for row in await _rows(sessionmaker)} == {"sending"}
    assert fake_aws.fake.counters.sent_emails == 2

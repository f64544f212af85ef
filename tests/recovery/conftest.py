"""Fixtures and helpers for the recovery tests: short recovery timings and a worker run in-line."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from arq.connections import ArqRedis
from httpx import AsyncClient

from notify.context import WorkerContext
from notify.db import transaction
from notify.inbox import repository as inbox_repository
from notify.inbox import service as inbox_service
from notify.inbox.schemas import InboxEntry
from notify.inbox.streams import FIELD, GROUP, Stream, acknowledge
from notify.settings import AwsSettings, Settings, WorkerSettings
from notify.testing.fake_aws import FakeAwsServer
from notify.worker import build_worker, worker_resources
from tests.conftest import REGION, make_settings
from tests.factories import Sample
from tests.servers import Servers

FAST_WORKER = {"batch_wait_ms": 0, "retry_base_delay_s": 0.05, "retry_max_delay_s": 0.2}


@pytest.fixture
def fake_aws() -> Iterator[FakeAwsServer]:
    """A fake SES/SNS endpoint that counts and records every send."""
    with FakeAwsServer() as server:
        yield server


def fake_aws_settings(servers: Servers, fake_aws: FakeAwsServer, **worker: Any) -> Settings:
    """Test settings that send through `fake_aws`, with fast retries and `worker` overrides."""
    aws = AwsSettings(
        endpoint_url=fake_aws.url,
        region=REGION,
        access_key_id="testing",
        secret_access_key="testing",
        email_domain="notify.test",
    )
    return make_settings(servers, aws=aws, worker=WorkerSettings(**{**FAST_WORKER, **worker}))


@pytest.fixture
def recovery_settings(servers: Servers, clean: None, fake_aws: FakeAwsServer) -> Settings:
    """Settings whose in-flight timeout is zero, whose entries are buried after two attempts, sending to fake AWS."""
    return fake_aws_settings(servers, fake_aws, inflight_timeout_s=0, max_save_attempts=2)


@pytest.fixture
async def recovery_ctx(recovery_settings: Settings, queue: ArqRedis) -> AsyncIterator[WorkerContext]:
    async with worker_resources(recovery_settings, queue) as context:
        yield context


async def post_emails(client: AsyncClient, sample: Sample, count: int, *, start: int = 0) -> list[str]:
    """POST `count` emails through the API; return their ids."""
    ids: list[str] = []
    for n in range(start, start + count):
        response = await client.post(
            "/v2/notifications/email",
            headers={"Authorization": f"ApiKey-v1 {sample.key}"},
            json={
                "email_address": f"user{n}@example.com",
                "template_id": str(sample.email_template_id),
                "personalisation": {"name": f"N{n}", "code": str(n)},
            },
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def run_jobs(settings: Settings) -> None:
    """Run every arq job that is due, and any deferred one, until the queue is empty (burst)."""
    worker = build_worker(settings, burst=True, with_cron=False)
    worker.poll_delay_s = 0
    try:
        await worker.async_run()
    finally:
        await worker.close()


async def run_worker(context: WorkerContext, settings: Settings) -> None:
    """Save what is in the inbox, then deliver it."""
    await inbox_service.drain(context)
    await run_jobs(settings)


def as_uuids(ids: list[str]) -> list[uuid.UUID]:
    """Parse API ids."""
    return [uuid.UUID(i) for i in ids]


async def save_without_delivery(client: AsyncClient, sample: Sample, context: WorkerContext, count: int) -> list[str]:
    """POST emails and save their rows, as if the delivery job was then lost; return their ids."""
    ids = await post_emails(client, sample, count)
    stream = Stream("email", "normal")
    response = await context.redis.xreadgroup(GROUP, "test", {stream.inbox: ">"}, count=count)
    raw = response[0][1]
    async with transaction(context.sessionmaker) as session:
        await inbox_repository.insert_batch(session, [InboxEntry.from_bytes(fields[FIELD]) for _, fields in raw])
    await acknowledge(context.redis, stream, [entry_id for entry_id, _ in raw])
    return ids

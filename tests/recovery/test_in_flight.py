"""in-flight-to-inbox: entries a worker read but never saved are saved again, or buried with the reason."""

from __future__ import annotations

import uuid

import orjson
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.context import WorkerContext
from notify.db import transaction
from notify.inbox import repository as inbox_repository
from notify.inbox import service as inbox_service
from notify.inbox.schemas import InboxEntry
from notify.inbox.streams import FIELD, GROUP, Stream
from notify.notifications.models import Notification
from notify.recovery import service as recovery
from notify.settings import Settings
from notify.testing.fake_aws import FakeAwsServer
from tests.factories import create_sample
from tests.recovery.conftest import fake_aws_settings, post_emails, run_jobs
from tests.servers import Servers

STREAM = Stream("email", "normal")


async def _crash_after_read(redis: Redis, count: int) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Read entries as a worker that then dies: they stay pending for a consumer that never comes back."""
    response = await redis.xreadgroup(GROUP, "crashed-worker", {STREAM.inbox: ">"}, count=count)
    entries: list[tuple[bytes, dict[bytes, bytes]]] = response[0][1] if response else []
    return entries


async def _rows(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Notification]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(Notification))).all())


async def test_entries_left_in_flight_by_a_crashed_worker_are_saved_and_sent_once(
    recovery_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    recovery_ctx: WorkerContext,
    fake_aws: FakeAwsServer,
) -> None:
    sample = await create_sample(sessionmaker, recovery_settings)
    ids = await post_emails(client, sample, 5)
    assert len(await _crash_after_read(recovery_ctx.redis, 100)) == 5
    assert await inbox_service.drain(recovery_ctx) == 0, "in-flight entries are not new: a plain read misses them"

    report = await recovery.move_in_flight_to_inbox(recovery_ctx)
    await run_jobs(recovery_settings)

    assert report.saved == 5
    assert (await recovery_ctx.redis.xpending(STREAM.inbox, GROUP))["pending"] == 0
    assert await recovery_ctx.redis.xlen(STREAM.inbox) == 0
    rows = await _rows(sessionmaker)
    assert sorted(str(row.id) for row in rows) == sorted(ids)
    assert {row.status for row in rows} == {"sending"}
    sent = fake_aws.fake.recorded_emails()
    assert len(sent) == 5
    assert {row.reference for row in rows} == {email["message_id"] for email in sent}
    assert (await recovery.move_in_flight_to_inbox(recovery_ctx)).saved == 0


async def test_a_batch_saved_but_not_acknowledged_makes_no_second_row_or_send(
    recovery_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    recovery_ctx: WorkerContext,
    fake_aws: FakeAwsServer,
) -> None:
    sample = await create_sample(sessionmaker, recovery_settings)
    await post_emails(client, sample, 3)
    raw = await _crash_after_read(recovery_ctx.redis, 100)
    # The worker committed the rows and they were delivered, but it died before XACK.
    entries = [InboxEntry.from_bytes(fields[FIELD]) for _, fields in raw]
    async with transaction(recovery_ctx.sessionmaker) as session:
        await inbox_repository.insert_batch(session, entries)
    await recovery_ctx.queue.enqueue_job("deliver_email", [str(entry.id) for entry in entries])
    await run_jobs(recovery_settings)
    assert fake_aws.fake.counters.sent_emails == 3

    report = await recovery.move_in_flight_to_inbox(recovery_ctx)
    await run_jobs(recovery_settings)

    assert report.saved == 3
    assert len(await _rows(sessionmaker)) == 3
    assert fake_aws.fake.counters.sent_emails == 3
    assert (await recovery_ctx.redis.xpending(STREAM.inbox, GROUP))["pending"] == 0


async def test_an_entry_that_cannot_be_saved_goes_to_the_dead_letters_with_the_error_the_rest_are_saved(
    recovery_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    recovery_ctx: WorkerContext,
) -> None:
    sample = await create_sample(sessionmaker, recovery_settings)
    good = await post_emails(client, sample, 2)
    first = (await recovery_ctx.redis.xrange(STREAM.inbox, count=1))[0][1][FIELD]
    orphan = InboxEntry.from_bytes(first).model_copy(update={"id": uuid.uuid4(), "service_id": uuid.uuid4()})
    await recovery_ctx.redis.xadd(STREAM.inbox, {FIELD: orphan.to_bytes()})
    assert len(await _crash_after_read(recovery_ctx.redis, 100)) == 3

    first_run = await recovery.move_in_flight_to_inbox(recovery_ctx)
    assert first_run.saved == 2
    assert first_run.dead_lettered == 0
    assert sorted(str(row.id) for row in await _rows(sessionmaker)) == sorted(good)
    assert (await recovery_ctx.redis.xpending(STREAM.inbox, GROUP))["pending"] == 1, "kept for another attempt"

    second_run = await recovery.move_in_flight_to_inbox(recovery_ctx)

    assert second_run.dead_lettered == 1
    assert (await recovery_ctx.redis.xpending(STREAM.inbox, GROUP))["pending"] == 0
    letters = await recovery.list_dead_letters(recovery_ctx.redis)
    assert len(letters) == 1
    assert letters[0].stream == STREAM.dead
    assert "not saved after 2 attempts" in letters[0].reason
    assert "foreign key" in letters[0].reason
    assert InboxEntry.from_bytes(letters[0].payload).id == orphan.id

    assert await recovery.requeue_dead_letters(recovery_ctx.redis, STREAM.dead) == 1
    assert await recovery_ctx.redis.xlen(STREAM.dead) == 0
    requeued = await recovery_ctx.redis.xrange(STREAM.inbox)
    assert [orjson.loads(fields[FIELD])["id"] for _, fields in requeued] == [str(orphan.id)]


async def test_an_unparseable_entry_is_buried_on_its_first_recovery(
    recovery_settings: Settings, recovery_ctx: WorkerContext
) -> None:
    await recovery_ctx.redis.xadd(STREAM.inbox, {FIELD: b"{not json"})
    await _crash_after_read(recovery_ctx.redis, 10)

    report = await recovery.move_in_flight_to_inbox(recovery_ctx)

    assert report.saved == 0
    letters = await recovery.list_dead_letters(recovery_ctx.redis, STREAM.dead)
    assert [letter.payload for letter in letters] == [b"{not json"]
    assert letters[0].reason.startswith("unparseable entry")
    assert (await recovery_ctx.redis.xpending(STREAM.inbox, GROUP))["pending"] == 0


async def test_entries_a_live_worker_read_recently_are_left_alone(
    servers: Servers,
    clean: None,
    fake_aws: FakeAwsServer,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    queue: object,
) -> None:
    from notify.worker import worker_resources

    settings = fake_aws_settings(servers, fake_aws, inflight_timeout_s=60)
    sample = await create_sample(sessionmaker, settings)
    await post_emails(client, sample, 1)
    async with worker_resources(settings, queue) as context:
        await _crash_after_read(context.redis, 10)
        report = await recovery.move_in_flight_to_inbox(context)
        pending = await context.redis.xpending_range(STREAM.inbox, GROUP, min="-", max="+", count=10)
    assert report.saved == 0
    assert [item["consumer"] for item in pending] == [b"crashed-worker"]
    assert await _rows(sessionmaker) == []


async def test_an_entry_deleted_while_in_flight_is_acknowledged(recovery_ctx: WorkerContext) -> None:
    entry_id = await recovery_ctx.redis.xadd(STREAM.inbox, {FIELD: b"{}"})
    await _crash_after_read(recovery_ctx.redis, 10)
    await recovery_ctx.redis.xdel(STREAM.inbox, entry_id)

    report = await recovery.move_in_flight_to_inbox(recovery_ctx)

    assert report.vanished == 1
    assert (await recovery_ctx.redis.xpending(STREAM.inbox, GROUP))["pending"] == 0
    assert await recovery_ctx.redis.xlen(STREAM.dead) == 0

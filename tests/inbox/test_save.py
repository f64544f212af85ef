"""An inbox batch is saved by one INSERT in autocommit, on connections of the worker's own that cache the plans of
its foreign-key checks; with those connections off, in a transaction on the worker's main pool."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from notify.context import WorkerContext
from notify.db import create_save_engine
from notify.inbox import repository, streams
from notify.inbox import service as inbox_service
from notify.inbox.streams import Stream
from notify.job_queue import JobQueue
from notify.settings import DbSettings, Settings
from notify.worker import worker_resources
from tests.factories import create_sample
from tests.ops.test_metrics import post_email
from tests.ops.test_shutdown import saved_count

EMAIL = Stream("email", "normal")


def _record(engine: AsyncEngine) -> list[str]:
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split())[:40])

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    return statements


async def test_a_batch_is_one_insert_on_the_save_connections(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], worker_ctx: WorkerContext
) -> None:
    sample = await create_sample(sessionmaker, settings)
    for _ in range(3):
        await post_email(client, sample)
    raw = await streams.read(worker_ctx.redis, EMAIL, worker_ctx.consumer, 10, None)
    assert worker_ctx.save_engine is not None
    saves, others = _record(worker_ctx.save_engine), _record(worker_ctx.engine)

    assert len(await inbox_service.save_batch(worker_ctx, EMAIL, raw)) == 3

    assert saves == ["INSERT INTO notifications ( id, service_"], "no BEGIN, SET LOCAL or COMMIT around it"
    assert others == []
    assert await saved_count(sessionmaker) == 3
    assert await worker_ctx.redis.xpending(EMAIL.inbox, streams.GROUP) == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }


async def test_the_insert_commits_on_its_own_with_foreign_key_plans_cached(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], worker_ctx: WorkerContext
) -> None:
    sample = await create_sample(sessionmaker, settings)
    await post_email(client, sample)
    parsed, _ = inbox_service.parse(await streams.read(worker_ctx.redis, EMAIL, worker_ctx.consumer, 10, None))
    assert worker_ctx.save_engine is not None

    async with worker_ctx.save_engine.connect() as connection:
        assert await connection.scalar(text("SHOW plan_cache_mode")) == "auto"
        assert len(await repository.insert_batch(connection, [entry for _, entry in parsed])) == 1
        # Committed by the time it returns: another session sees it, and this connection is in no transaction.
        assert await saved_count(sessionmaker) == 1
        assert await connection.scalar(text("SELECT pg_current_xact_id_if_assigned()")) is None
        assert await repository.insert_batch(connection, [entry for _, entry in parsed]) == [], "saved twice: a no-op"
    assert await saved_count(sessionmaker) == 1


async def test_without_save_connections_a_batch_is_saved_in_a_transaction_on_the_main_pool(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], queue: JobQueue
) -> None:
    settings = settings.model_copy(update={"db": settings.db.model_copy(update={"save_pool_size": 0})})
    sample = await create_sample(sessionmaker, settings)
    for _ in range(2):
        await post_email(client, sample)
    async with worker_resources(settings, queue) as app:
        assert app.save_engine is None
        statements = _record(app.engine)
        raw = await streams.read(app.redis, EMAIL, app.consumer, 10, None)
        assert len(await inbox_service.save_batch(app, EMAIL, raw)) == 2
    assert statements[0] == "SET LOCAL plan_cache_mode = auto"
    assert statements[1].startswith("INSERT INTO notifications")
    assert await saved_count(sessionmaker) == 2


@pytest.mark.parametrize(
    ("update", "opened"), [({}, True), ({"save_pool_size": 0}, False), ({"plan_cache_mode": ""}, False)]
)
async def test_save_connections_are_opened_only_when_they_can_set_their_plans(
    update: dict[str, Any], opened: bool
) -> None:
    engine = create_save_engine(DbSettings(**update), "test.save")
    assert (engine is not None) == opened
    if engine is not None:
        await engine.dispose()

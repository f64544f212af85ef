"""The process engine's pool: no round trips on checkout, and connections the server closed are replaced."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from notify.db import create_engine, create_sessionmaker, transaction
from notify.settings import Settings


async def _backend_pid(engine: AsyncEngine) -> int:
    async with transaction(create_sessionmaker(engine)) as session:
        pid = await session.scalar(text("SELECT pg_backend_pid()"))
    assert isinstance(pid, int)
    return pid


async def test_a_checkout_sends_nothing_to_the_server(one_connection_engine: AsyncEngine) -> None:
    """A transaction of one statement is BEGIN, the statement and COMMIT: no ping (BEGIN; ; ROLLBACK) before it."""
    await _backend_pid(one_connection_engine)  # the pool now holds one connection that is no longer fresh
    async with one_connection_engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
    queries: list[str] = []

    def record(query: Any) -> None:
        queries.append(query.query)

    raw.add_query_logger(record)
    try:
        await _backend_pid(one_connection_engine)
    finally:
        raw.remove_query_logger(record)
    assert [q for q in queries if "pg_backend_pid" not in q and not q.startswith(("BEGIN", "COMMIT"))] == []


async def test_a_connection_the_server_ended_is_replaced_at_checkout(
    one_connection_engine: AsyncEngine, engine: AsyncEngine
) -> None:
    """pg_terminate_backend (what a restart or an idle timeout does to every connection): the next transaction runs."""
    first = await _backend_pid(one_connection_engine)
    async with one_connection_engine.connect() as connection:
        pooled = (await connection.get_raw_connection()).driver_connection
    assert pooled is not None
    async with engine.connect() as admin:
        assert await admin.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    for _ in range(200):  # the pooled connection's side of the event loop reads the server's goodbye
        if pooled.is_closed():
            break
        await asyncio.sleep(0.01)
    assert pooled.is_closed()

    second = await _backend_pid(one_connection_engine)
    assert second != first


@pytest.mark.parametrize(("lifo", "reused"), [(True, "returned last"), (False, "returned first")])
async def test_the_pool_hands_out_the_connection_returned_last_when_lifo(
    settings: Settings, lifo: bool, reused: str
) -> None:
    """LIFO keeps the busiest few connections (and their server processes) in use; FIFO takes every one in turn."""
    db = settings.db.model_copy(update={"pool_size": 2, "max_overflow": 0, "pool_use_lifo": lifo})
    engine = create_engine(db, "test.pool_order")
    try:
        first, second = engine.connect(), engine.connect()
        pids = []
        for connection in (first, second):
            await connection.start()
            pids.append(await connection.scalar(text("SELECT pg_backend_pid()")))
        for connection in (first, second):  # returned in this order
            await connection.close()
        expected = pids[1] if reused == "returned last" else pids[0]
        assert await _backend_pid(engine) == expected
    finally:
        await engine.dispose()

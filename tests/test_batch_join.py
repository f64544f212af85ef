"""BatchJoin: nested loops are off for its statement only, and the commit puts them back after a last statement."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from notify.db import batch_join, create_sessionmaker, transaction

_COUNT = batch_join("SELECT count(*) FROM unnest(CAST(:ids AS int[])) AS u(id)")
_SHOW = text("SHOW enable_nestloop")


def _record(engine: AsyncEngine) -> list[str]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    return statements


async def _count(session: AsyncSession, *, last: bool) -> int:
    result = await _COUNT.execute(session, {"ids": [1, 2, 3]}, last=last)
    return int(result.scalar_one())


async def test_nested_loops_are_back_on_for_the_next_statement(one_connection_engine: AsyncEngine) -> None:
    statements = _record(one_connection_engine)
    async with transaction(create_sessionmaker(one_connection_engine)) as session:
        assert await _count(session, last=False) == 3
        assert await session.scalar(_SHOW) == "on"
    assert statements[2] == "SET LOCAL enable_nestloop TO DEFAULT"


async def test_after_a_last_statement_the_commit_puts_them_back(one_connection_engine: AsyncEngine) -> None:
    sessionmaker = create_sessionmaker(one_connection_engine)
    statements = _record(one_connection_engine)
    async with transaction(sessionmaker) as session:
        assert await _count(session, last=True) == 3
    assert statements == ["SET LOCAL enable_nestloop = off", "SELECT count(*) FROM unnest(CAST($1 AS int[])) AS u(id)"]
    async with transaction(sessionmaker) as session:  # the same, only, connection
        assert await session.scalar(_SHOW) == "on"

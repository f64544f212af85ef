"""`bench all` settles the database between benches: VACUUM ANALYZE of the tables they write."""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from notify.bench.stack import BenchStack

_LAST = text(
    "SELECT relname, last_vacuum IS NOT NULL AND last_analyze IS NOT NULL FROM pg_stat_user_tables"
    " WHERE relname IN ('notifications', 'jobs', 'job_rows') ORDER BY relname"
)


async def test_settle_vacuums_and_analyzes_the_tables_the_benches_write(engine: AsyncEngine) -> None:
    await BenchStack.settle(SimpleNamespace(engine=engine))  # type: ignore[arg-type]  # only its engine is used
    async with engine.connect() as connection:
        rows = (await connection.execute(_LAST)).all()
    assert [tuple(row) for row in rows] == [("job_rows", True), ("jobs", True), ("notifications", True)]

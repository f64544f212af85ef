"""Migrations on a database of their own: the partial indexes of 0007 go up, down and up again, and match the models."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from notify import migrations
from notify.models import Base
from tests.servers import Servers

INDEXES = """
SELECT indexname, indexdef FROM pg_indexes
WHERE tablename = 'notifications'
  AND indexname IN ('ix_notifications_reference', 'uq_notifications_job_id_job_row_number')
ORDER BY indexname
"""


@pytest.fixture
async def scratch_url(servers: Servers) -> AsyncIterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    name = f"migrations_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(servers.database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(servers.database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        await admin.dispose()


async def _indexes(engine: AsyncEngine) -> dict[str, str]:
    async with engine.connect() as connection:
        rows = (await connection.execute(text(INDEXES))).all()
    return {str(name): str(definition) for name, definition in rows}


async def _job_row_constraints(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        sql = "SELECT conname FROM pg_constraint WHERE conrelid = 'notifications'::regclass AND contype = 'u'"
        return list((await connection.scalars(text(sql))).all())


def _differences(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def test_partial_indexes_upgrade_downgrade_and_match_the_models(scratch_url: str) -> None:
    engine = create_async_engine(scratch_url)
    try:
        migrations.upgrade(scratch_url, "0006_job_sender")
        before = await _indexes(engine)
        assert "WHERE" not in before["ix_notifications_reference"]
        assert await _job_row_constraints(engine) == ["uq_notifications_job_id_job_row_number"]

        migrations.upgrade(scratch_url)
        after = await _indexes(engine)
        assert after["ix_notifications_reference"].endswith("(reference) WHERE (reference IS NOT NULL)")
        assert after["uq_notifications_job_id_job_row_number"].startswith("CREATE UNIQUE INDEX")
        assert after["uq_notifications_job_id_job_row_number"].endswith("WHERE (job_id IS NOT NULL)")
        assert await _job_row_constraints(engine) == []
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []

        migrations.downgrade(scratch_url, "0006_job_sender")
        assert await _indexes(engine) == before
        assert await _job_row_constraints(engine) == ["uq_notifications_job_id_job_row_number"]

        migrations.upgrade(scratch_url)
        assert await _indexes(engine) == after
    finally:
        await engine.dispose()

"""The batch statements find their rows by key, whatever the statistics say about statuses.

The states that broke them:
- a table analyzed while nearly every row was `delivered`, then a bulk job's rows saved (`created`) and a backlog
  of emails waiting for receipts (`sending`): a plan that starts from the status index walks all of those rows
  for every 500-row batch;
- a table never analyzed (a new install, or a new bench database, filled by a bulk job): a plan that believes it
  small checks every row of the table against every id of the batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.context import WorkerContext
from notify.db import BatchJoin, create_engine
from notify.delivery import repository as delivery
from notify.jobs import repository as jobs
from notify.receipts import repository as receipts
from notify.retry import repository as retry
from notify.settings import Settings
from tests.factories import create_sample
from tests.jobs.helpers import auth, execute, post_bulk, run_worker
from tests.servers import Servers

BATCH = 500

_FILL = text(
    """
    INSERT INTO notifications (id, service_id, template_id, template_version, key_type, notification_type, lane,
                               "to", normalised_to, body, status, reference, created_at, updated_at)
    SELECT gen_random_uuid(), :service_id, :template_id, 1, 'normal', 'email', 'bulk', 'a@example.com',
           'a@example.com', 'Hello', s.status, CASE WHEN s.status = 'created' THEN NULL ELSE 'ref-' || i END,
           now(), now()
    FROM generate_series(1, CAST(:count AS integer)) AS i, (SELECT CAST(:status AS text) AS status) AS s
    """
)


async def _ids(session: AsyncSession, status: str) -> list[uuid.UUID]:
    result = await session.execute(
        text("SELECT id FROM notifications WHERE status = :status LIMIT :limit"), {"status": status, "limit": BATCH}
    )
    return [row[0] for row in result]


async def _plan(
    session: AsyncSession, statement: TextClause | BatchJoin, params: Mapping[str, Any], mode: str
) -> dict[str, Any]:
    """Run the statement under EXPLAIN ANALYZE, as the hot path plans it (custom or generic), and undo it."""
    await session.execute(text(f"SET LOCAL plan_cache_mode = {mode}"))
    savepoint = await session.begin_nested()
    # A BatchJoin runs with nested loops off: as it does in `BatchJoin.execute`.
    await session.execute(text(f"SET LOCAL enable_nestloop = {'off' if isinstance(statement, BatchJoin) else 'on'}"))
    sql = statement.statement if isinstance(statement, BatchJoin) else statement
    result = await session.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + str(sql)), dict(params))
    await savepoint.rollback()
    plan: dict[str, Any] = result.scalar_one()[0]["Plan"]
    return plan


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in _nodes(child))]


def _shapes(nodes: list[dict[str, Any]]) -> list[tuple[str, str | None, int]]:
    """Each node's type, index and loops: what an assertion message shows of a plan."""
    return [(node["Node Type"], node.get("Index Name"), node["Actual Loops"]) for node in nodes]


def _rows_read(scans: list[dict[str, Any]]) -> int:
    return sum(node["Actual Rows"] * node["Actual Loops"] for node in scans)


def _statements(
    created: list[uuid.UUID], sending: list[uuid.UUID], failed: list[uuid.UUID]
) -> dict[str, tuple[TextClause | BatchJoin, dict[str, Any]]]:
    """Every batch statement with its parameters, over the given rows."""
    now = datetime.now(UTC)
    n = len(sending)
    references = [f"ref-{i}" for i in range(1, n + 1)]
    return {
        "claim": (delivery._CLAIM, {"ids": created, "notification_type": "email"}),
        "mark sent": (
            delivery._MARK_SENT,
            {
                "ids": sending,
                "references": references,
                "sent_at": [now] * n,
                "sent_by": ["ses"] * n,
                "statuses": ["sending"] * n,
            },
        ),
        "mark failed": (delivery._MARK_FAILED, {"ids": sending, "responses": ["x"] * n}),
        "release": (delivery._RELEASE, {"ids": sending, "responses": ["x"] * n, "next_attempt_at": [now] * n}),
        "retry reset": (retry._RESET, {"ids": failed, "failed": ["permanent-failure", "temporary-failure"]}),
        "receipts": (
            receipts._APPLY,
            {
                "references": references,
                "statuses": ["delivered"] * n,
                "feedback_types": [None] * n,
                "feedback_subtypes": [None] * n,
                "feedback_ids": [None] * n,
            },
        ),
    }


def _per_row_batch_read(node: dict[str, Any]) -> bool:
    if node["Actual Loops"] <= 1:
        return False
    conditions = " ".join(str(node.get(key, "")) for key in ("Index Cond", "Recheck Cond", "Filter"))
    return node["Node Type"] == "Function Scan" or "ANY" in conditions


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize("analyzed", [True, False], ids=["analyzed-before-the-batch-rows", "never-analyzed"])
async def test_batch_statements_find_their_rows_by_key(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], mode: str, analyzed: bool
) -> None:
    sample = await create_sample(sessionmaker, settings)
    fill = {"service_id": sample.service_id, "template_id": sample.email_template_id}
    async with sessionmaker() as session:
        # A table of our own, never analyzed unless this test says so; everything is rolled back at the end.
        await session.execute(text("CREATE SCHEMA plans"))
        await session.execute(text("CREATE TABLE plans.notifications (LIKE public.notifications INCLUDING ALL)"))
        await session.execute(text("SET LOCAL search_path = plans, public"))
        await session.execute(_FILL, {**fill, "status": "delivered", "count": 40_000})
        if analyzed:
            await session.execute(text("ANALYZE notifications"))
        for status in ("created", "sending", "permanent-failure"):
            await session.execute(_FILL, {**fill, "status": status, "count": 10_000})

        created, sending = await _ids(session, "created"), await _ids(session, "sending")
        failed = await _ids(session, "permanent-failure")
        # A full batch, and the small ones a sent-writer flush or a quiet inbox makes.
        for size in (BATCH, 150, 20):
            for name, (statement, params) in _statements(created[:size], sending[:size], failed[:size]).items():
                nodes = _nodes(await _plan(session, statement, params, mode))
                shapes = _shapes(nodes)
                indexes = [node.get("Index Name") or "" for node in nodes]
                name = f"{name} of {size}"
                assert not any("status" in index for index in indexes), f"{name}: status index {shapes}"
                # A node run once per row of the table (rather than per row of the batch) makes a batch cost seconds.
                assert max(node["Actual Loops"] for node in nodes) <= BATCH, f"{name}: per row of the table {shapes}"
                # A node that reads the whole batch (its ids in an index condition, or its arrays unnested) once per
                # row of the batch makes a batch cost its size squared: the ids sorted again for every row.
                rereads = [shape for node, shape in zip(nodes, shapes, strict=True) if _per_row_batch_read(node)]
                assert not rereads, f"{name}: reads the batch once per row {shapes}"
                if analyzed:
                    scans = [node for node in nodes if node.get("Relation Name") == "notifications"]
                    assert all(node["Node Type"] != "Seq Scan" for node in scans), f"{name}: reads the table {shapes}"
        await session.rollback()


@pytest.mark.parametrize(("mode", "generic"), [("force_custom_plan", False), ("", True)])
async def test_the_engine_plans_each_statement_for_the_table_as_it_is_now(
    settings: Settings, servers: Servers, mode: str, generic: bool
) -> None:
    """A generic plan cached while the table was empty (a nested loop of sequential scans) would outlive a bulk job."""
    engine = create_engine(settings.db.model_copy(update={"plan_cache_mode": mode}), "test.plans")
    try:
        async with engine.connect() as connection:
            session = AsyncSession(bind=connection)
            for _ in range(8):
                assert await delivery.claim(session, "email", [uuid.uuid4()]) == []
            plans = await session.execute(
                text("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE :claim"),
                {"claim": "%UPDATE notifications AS n%"},
            )
            generic_plans, custom_plans = (int(count) for count in plans.one())
            await session.rollback()
    finally:
        await engine.dispose()
    assert generic_plans + custom_plans == 8
    assert (generic_plans > 0) is generic


_FILL_JOB_ROWS = text(
    """
    INSERT INTO job_rows (job_id, row_number, recipient, personalisation, client_reference)
    SELECT j.id, i, 'user' || i || '@example.com', jsonb_build_object('name', 'U' || i), NULL
    FROM unnest(CAST(:job_ids AS uuid[])) AS j (id), generate_series(0, CAST(:rows AS integer) - 1) AS i
    """
)


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize("analyzed", [True, False], ids=["analyzed", "never-analyzed"])
async def test_a_job_chunk_insert_reads_its_rows_by_key(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], mode: str, analyzed: bool
) -> None:
    """A chunk's read and INSERT of `job_rows` find the chunk's rows by key: never the job's other rows."""
    sample = await create_sample(sessionmaker, settings)
    job_ids = [uuid.uuid4() for _ in range(3)]
    job = jobs.StartedJob(
        id=job_ids[1],
        service_id=sample.service_id,
        template_id=sample.email_template_id,
        template_version=1,
        api_key_id=None,
        key_type="normal",
        notification_type="email",
        notification_count=20_000,
        rows_saved=0,
        sender=None,
        service_active=True,
        sms_sender=None,
    )
    async with sessionmaker() as session:
        await session.execute(text("CREATE SCHEMA plans"))
        for table in ("notifications", "job_rows"):
            await session.execute(text(f"CREATE TABLE plans.{table} (LIKE public.{table} INCLUDING ALL)"))
        await session.execute(text("SET LOCAL search_path = plans, public"))
        await session.execute(_FILL_JOB_ROWS, {"job_ids": job_ids, "rows": 20_000})
        if analyzed:
            await session.execute(text("ANALYZE job_rows"))
        shared = jobs.ChunkConstants(job, "bulk", sender=None, reply_to=None)
        for start in (0, 10_000):
            numbers = list(range(start, start + BATCH))
            chunk = jobs.ChunkColumns(
                datetime.now(UTC),
                numbers,
                [uuid.uuid4() for _ in numbers],
                [f"user{i}@example.com" for i in numbers],
                ["Hello"] * BATCH,
                ["Body"] * BATCH,
            )
            params = jobs.insert_parameters(shared, chunk)
            nodes = _nodes(await _plan(session, jobs._INSERT_NOTIFICATIONS, params, mode))
            shapes = _shapes(nodes)
            scans = [node for node in nodes if node.get("Relation Name") == "job_rows"]
            assert scans, shapes
            assert all(node["Node Type"] != "Seq Scan" for node in scans), f"reads every job's rows {shapes}"
            assert max(node["Actual Loops"] for node in nodes) <= BATCH, f"per row of the table {shapes}"
            assert _rows_read(scans) == BATCH, shapes
            # The read that comes before: the chunk's rows in order, not the rest of the job sorted.
            read = {"job_id": job.id, "start": start, "limit": BATCH}
            nodes = _nodes(await _plan(session, jobs._ROWS, read, mode))
            scans = [node for node in nodes if node.get("Relation Name") == "job_rows"]
            assert _rows_read(scans) == BATCH, _shapes(nodes)
        await session.rollback()


async def test_batch_inserts_plan_foreign_key_checks_once_and_the_setting_stays_in_their_transaction(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    worker_ctx: WorkerContext,
) -> None:
    """A bulk POST's rows, a job's chunks and an inbox batch are inserted with their foreign-key checks' plans cached.

    A statement trigger records the mode in force when the rows are checked (as the check runs, at the end of the
    statement); the pooled connections are back to `force_custom_plan` afterwards.
    """
    sample = await create_sample(sessionmaker, settings)
    await execute(sessionmaker, "CREATE TABLE plan_modes_seen (table_name text, mode text)")
    await execute(
        sessionmaker,
        "CREATE FUNCTION record_plan_mode() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO plan_modes_seen VALUES (TG_TABLE_NAME, current_setting('plan_cache_mode')); RETURN NULL; END $$",
    )
    try:
        for table in ("job_rows", "notifications"):
            await execute(
                sessionmaker,
                f"CREATE TRIGGER record_plan_mode AFTER INSERT ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION record_plan_mode()",
            )
        rows = [["email address", "name", "code"], ["ada@example.com", "Ada", "1"], ["bob@example.com", "Bob", "2"]]
        body = {"name": "j", "template_id": str(sample.email_template_id), "rows": rows}
        job = await post_bulk(client, sample.key, body)
        assert job.status_code == 201, job.text
        single = await client.post(
            "/v2/notifications/email",
            headers=auth(sample.key),
            json={
                "email_address": "cy@example.com",
                "template_id": str(sample.email_template_id),
                "personalisation": {"name": "Cy", "code": "3"},
            },
        )
        assert single.status_code == 201, single.text
        await run_worker(worker_ctx, settings)
        async with sessionmaker() as session:
            seen = (await session.execute(text("SELECT table_name, mode FROM plan_modes_seen"))).all()
            assert await session.scalar(text("SELECT count(*) FROM notifications")) == 3
        async with worker_ctx.sessionmaker() as session:
            after = await session.scalar(text("SHOW plan_cache_mode"))
    finally:
        for table in ("job_rows", "notifications"):
            await execute(sessionmaker, f"DROP TRIGGER IF EXISTS record_plan_mode ON {table}")
        await execute(sessionmaker, "DROP FUNCTION IF EXISTS record_plan_mode()")
        await execute(sessionmaker, "DROP TABLE IF EXISTS plan_modes_seen")
    # The job's rows, its one chunk, and the inbox batch with the single notification.
    assert sorted(seen) == [("job_rows", "auto"), ("notifications", "auto"), ("notifications", "auto")]
    assert after == "force_custom_plan"

"""The batch statements find their rows by key, whatever the statistics say about statuses.

The state that broke them: a table analyzed while nearly every row was `delivered`, then a bulk job's rows
saved (`created`) and a backlog of emails waiting for receipts (`sending`). A plan that starts from the status
index walks all of those rows for every 500-row batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.db import transaction
from notify.delivery import repository as delivery
from notify.receipts import repository as receipts
from notify.retry import repository as retry
from notify.settings import Settings
from tests.factories import create_sample
from tests.servers import Servers

STATUS_INDEX = "ix_notifications_status_created_at"
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


async def _plan(session: AsyncSession, statement: TextClause, params: Mapping[str, Any], mode: str) -> str:
    """EXPLAIN the statement as the hot path runs it: a custom plan, or the generic plan a cached one becomes."""
    await session.execute(text(f"SET LOCAL plan_cache_mode = {mode}"))
    result = await session.execute(text("EXPLAIN " + str(statement)), dict(params))
    return "\n".join(row[0] for row in result)


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
async def test_batch_statements_never_start_from_the_status_index(
    settings: Settings, clean: None, sessionmaker: async_sessionmaker[AsyncSession], servers: Servers, mode: str
) -> None:
    sample = await create_sample(sessionmaker, settings)
    fill = {"service_id": sample.service_id, "template_id": sample.email_template_id}
    async with transaction(sessionmaker) as session:
        await session.execute(_FILL, {**fill, "status": "delivered", "count": 40_000})
    async with sessionmaker() as session:
        await session.execute(text("ANALYZE notifications"))
        await session.commit()
    async with transaction(sessionmaker) as session:
        for status in ("created", "sending", "permanent-failure"):
            await session.execute(_FILL, {**fill, "status": status, "count": 10_000})

    now = datetime.now(UTC)
    async with sessionmaker() as session:
        created, sending = await _ids(session, "created"), await _ids(session, "sending")
        failed = await _ids(session, "permanent-failure")
        n = len(sending)
        references = [f"ref-{i}" for i in range(1, n + 1)]
        statements: dict[str, tuple[TextClause, dict[str, Any]]] = {
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
        for name, (statement, params) in statements.items():
            plan = await _plan(session, statement, params, mode)
            assert STATUS_INDEX not in plan, f"{name} ({mode}) walks every row of a status:\n{plan}"
        await session.rollback()

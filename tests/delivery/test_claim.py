"""The claim statement: what it returns about each row, read from the row as the claim found it."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.db import transaction
from notify.delivery import repository
from notify.settings import Settings
from tests.factories import create_sample

_INSERT = text(
    """
    INSERT INTO notifications (id, service_id, template_id, template_version, key_type, notification_type, lane,
                               "to", normalised_to, body, created_at, updated_at)
    VALUES (:id, :service_id, :template_id, 1, 'normal', 'email', 'normal', 'a@example.com', 'a@example.com',
            'Hello', :created_at, :updated_at)
    """
)


async def test_a_claim_reports_when_each_row_started_waiting_and_stamps_the_row_now(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, settings)
    created_at = datetime.now(UTC) - timedelta(hours=2)
    waiting_since = {uuid.uuid4(): datetime.now(UTC) - timedelta(minutes=minutes) for minutes in (1, 30, 60)}
    async with transaction(sessionmaker) as session:
        for notification_id, updated_at in waiting_since.items():
            await session.execute(
                _INSERT,
                {
                    "id": notification_id,
                    "service_id": sample.service_id,
                    "template_id": sample.email_template_id,
                    "created_at": created_at,
                    "updated_at": updated_at,
                },
            )

    async with transaction(sessionmaker) as session:
        claimed = await repository.claim(session, "email", [*waiting_since, uuid.uuid4()])
        claimed_again = await repository.claim(session, "email", list(waiting_since))

    assert {row.id: row.queued_at for row in claimed} == waiting_since
    assert {row.attempts for row in claimed} == {1}
    assert claimed_again == []
    async with sessionmaker() as session:
        rows = await session.execute(
            text("SELECT status, updated_at, sending_started_at FROM notifications WHERE id = ANY(:ids)"),
            {"ids": list(waiting_since)},
        )
        for status, stamped_at, sending_started_at in rows:
            assert status == "sending"
            assert isinstance(stamped_at, datetime)
            assert stamped_at == sending_started_at
            assert stamped_at > max(waiting_since.values())


async def test_the_claim_returns_its_columns_in_the_order_of_claimed_row_fields(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """`claim` builds each ClaimedRow by position: the RETURNING list and the dataclass must agree."""
    async with transaction(sessionmaker) as session:
        result = await session.execute(repository._CLAIM, {"ids": [], "notification_type": "email"})
        assert list(result.keys()) == [field.name for field in dataclasses.fields(repository.ClaimedRow)]

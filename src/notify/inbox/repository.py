"""Set-based SQL that turns a batch of inbox entries into notification rows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from notify.inbox.schemas import InboxEntry

# One statement per batch, whatever its size: arrays in, ON CONFLICT makes a re-saved entry a no-op (an id
# saved before, or a bulk job's row saved before: their ids are derived from the job and row).
_INSERT = text(
    """
    INSERT INTO notifications (
        id, service_id, template_id, template_version, api_key_id, key_type, notification_type, lane,
        "to", normalised_to, personalisation, subject, body, client_reference, sender, reply_to,
        created_at, scheduled_for, job_id, job_row_number, status, updated_at
    )
    SELECT u.*, 'created', now()
    FROM unnest(
        CAST(:id AS uuid[]), CAST(:service_id AS uuid[]), CAST(:template_id AS uuid[]),
        CAST(:template_version AS int[]), CAST(:api_key_id AS uuid[]), CAST(:key_type AS text[]),
        CAST(:notification_type AS text[]), CAST(:lane AS text[]), CAST(:to AS text[]),
        CAST(:normalised_to AS text[]), CAST(:personalisation AS jsonb[]), CAST(:subject AS text[]),
        CAST(:body AS text[]), CAST(:client_reference AS text[]), CAST(:sender AS text[]),
        CAST(:reply_to AS text[]), CAST(:created_at AS timestamptz[]), CAST(:scheduled_for AS timestamptz[]),
        CAST(:job_id AS uuid[]), CAST(:job_row_number AS int[])
    ) AS u
    ON CONFLICT DO NOTHING
    RETURNING id
    """
)


async def insert_batch(session: AsyncSession | AsyncConnection, entries: Sequence[InboxEntry]) -> list[uuid.UUID]:
    """Insert the entries that are not saved yet; return the ids of the rows this call created."""
    if not entries:
        return []
    params = {
        "id": [e.id for e in entries],
        "service_id": [e.service_id for e in entries],
        "template_id": [e.template_id for e in entries],
        "template_version": [e.template_version for e in entries],
        "api_key_id": [e.api_key_id for e in entries],
        "key_type": [e.key_type for e in entries],
        "notification_type": [e.notification_type for e in entries],
        "lane": [e.lane for e in entries],
        "to": [e.to for e in entries],
        "normalised_to": [e.normalised_to for e in entries],
        "personalisation": [
            orjson.dumps(e.personalisation).decode() if e.personalisation is not None else None for e in entries
        ],
        "subject": [e.subject for e in entries],
        "body": [e.body for e in entries],
        "client_reference": [e.client_reference for e in entries],
        "sender": [e.sender for e in entries],
        "reply_to": [e.reply_to for e in entries],
        "created_at": [e.created_at for e in entries],
        "scheduled_for": [e.scheduled_for for e in entries],
        "job_id": [e.job_id for e in entries],
        "job_row_number": [e.job_row_number for e in entries],
    }
    result = await session.execute(_INSERT, params)
    return [row[0] for row in result.all()]

"""Register callbacks and POST delivery statuses and complaints to them (DESIGN §2.6)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import structlog
from arq import Retry
from sqlalchemy.ext.asyncio import AsyncSession

from notify import sentry
from notify.auth.keys import SecretBox
from notify.callbacks import repository
from notify.callbacks.models import CALLBACK_TYPES
from notify.context import WorkerContext
from notify.db import transaction
from notify.errors import BadRequestError
from notify.notifications import statuses
from notify.receipts.schemas import Applied

log = structlog.get_logger(__name__)

SEND_DELIVERY_STATUS = "send_delivery_status"
SEND_COMPLAINT = "send_complaint"


class Result(StrEnum):
    """How one callback attempt ended."""

    SENT = "sent"
    SKIPPED = "skipped"
    REJECTED = "rejected"
    GAVE_UP = "gave-up"


async def set_callback(
    session: AsyncSession,
    box: SecretBox,
    service_id: uuid.UUID,
    *,
    url: str,
    bearer_token: str,
    callback_type: str = "delivery_status",
    allow_http: bool = False,
) -> uuid.UUID:
    """Create or replace a service's callback; the URL must be https (`allow_http` is for local tests only)."""
    if callback_type not in CALLBACK_TYPES:
        raise BadRequestError(f"callback_type must be one of {', '.join(CALLBACK_TYPES)}")
    parts = urlsplit(url)
    if not parts.netloc or parts.scheme not in (("https", "http") if allow_http else ("https",)):
        raise BadRequestError("Callback URL must be an https:// URL")
    if len(bearer_token) < 10:
        raise BadRequestError("Callback bearer token must be at least 10 characters")
    return await repository.upsert(session, service_id, callback_type, url, box.encrypt(bearer_token))


async def enqueue_delivery_status(app: WorkerContext, applied: Sequence[Applied]) -> int:
    """Enqueue one callback per final status change whose service has an active callback (call after commit)."""
    final = [a for a in applied if a.status in statuses.FINAL]
    if not final:
        return 0
    async with app.sessionmaker() as session:
        due = await repository.with_callback(session, [a.notification_id for a in final])
    for change in final:
        if change.notification_id in due:
            await app.queue.enqueue_job(
                SEND_DELIVERY_STATUS,
                str(change.notification_id),
                change.status,
                _job_id=f"callback:{change.notification_id}:{change.status}",
            )
    return len(due)


async def enqueue_complaints(app: WorkerContext, complaint_ids: Sequence[uuid.UUID]) -> int:
    """Enqueue one callback per new complaint whose service has an active complaint callback (call after commit)."""
    if not complaint_ids:
        return 0
    async with app.sessionmaker() as session:
        due = await repository.complaints_with_callback(session, complaint_ids)
    for complaint_id in complaint_ids:
        if complaint_id in due:
            await app.queue.enqueue_job(SEND_COMPLAINT, str(complaint_id), _job_id=f"complaint-callback:{complaint_id}")
    return len(due)


def _format(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None


def payload(target: repository.DeliveryTarget, status: str) -> dict[str, str | None]:
    """Build the GC Notify delivery-status body."""
    return {
        "id": str(target.id),
        "reference": target.client_reference,
        "to": target.to,
        "status": status,
        "status_description": statuses.describe(target.notification_type, status),
        "provider_response": target.provider_response if status == statuses.TECHNICAL_FAILURE else None,
        "created_at": _format(target.created_at),
        "completed_at": _format(target.completed_at),
        "sent_at": _format(target.sent_at),
        "notification_type": target.notification_type,
    }


def complaint_payload(target: repository.ComplaintTarget) -> dict[str, str | None]:
    """Build the GC Notify complaint body."""
    return {
        "notification_id": str(target.notification_id),
        "complaint_id": str(target.complaint_id),
        "reference": target.client_reference,
        "to": target.to,
        "complaint_date": _format(target.complaint_date),
    }


class _Callback(Protocol):
    """Where to POST: the callback columns both targets carry."""

    @property
    def callback_id(self) -> uuid.UUID: ...
    @property
    def url(self) -> str: ...
    @property
    def bearer_token(self) -> bytes: ...
    @property
    def suspended_at(self) -> datetime | None: ...


async def send_delivery_status(app: WorkerContext, notification_id: uuid.UUID, status: str, job_try: int) -> Result:
    """POST one delivery status; raise arq Retry on network errors, 5xx and 429 until the retries are spent."""
    async with app.sessionmaker() as session:
        target = await repository.delivery_target(session, notification_id)
    if target is None:
        return Result.SKIPPED
    bound = log.bind(callback_type="delivery_status", notification_id=str(notification_id), status=status)
    return await _post(app, target, payload(target, status), bound, job_try)


async def send_complaint(app: WorkerContext, complaint_id: uuid.UUID, job_try: int) -> Result:
    """POST one complaint; retried, rejected and suspended by the same rules as delivery statuses."""
    async with app.sessionmaker() as session:
        target = await repository.complaint_target(session, complaint_id)
    if target is None:
        return Result.SKIPPED
    bound = log.bind(
        callback_type="complaint", complaint_id=str(complaint_id), notification_id=str(target.notification_id)
    )
    return await _post(app, target, complaint_payload(target), bound, job_try)


async def _post(app: WorkerContext, target: _Callback, body: dict[str, Any], bound: Any, job_try: int) -> Result:
    """POST `body` to the callback; raise arq Retry on network errors, 5xx and 429 until the retries are spent."""
    worker = app.settings.worker
    if target.suspended_at is not None:
        return Result.SKIPPED
    token = SecretBox(app.settings.api.secret_key.get_secret_value()).decrypt(target.bearer_token)
    if token is None:
        log.error("notify.callback.token_undecryptable", callback_id=str(target.callback_id))
        return Result.SKIPPED
    bound = bound.bind(attempt=job_try)
    retryable: str | None = None
    try:
        async with httpx.AsyncClient(timeout=worker.callback_timeout_s) as http:
            response = await http.post(target.url, json=body, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        retryable = type(exc).__name__
    else:
        if response.is_success:
            async with transaction(app.sessionmaker) as session:
                await repository.record_success(session, target.callback_id)
            bound.info("notify.callback.sent", http_status=response.status_code)
            return Result.SENT
        if response.status_code >= 500 or response.status_code == 429:
            retryable = f"HTTP {response.status_code}"
        else:
            await _record_failure(app, target.callback_id)
            bound.warning("notify.callback.rejected", http_status=response.status_code)
            return Result.REJECTED
    suspended = await _record_failure(app, target.callback_id)
    if suspended or job_try > worker.callback_max_retries:
        bound.error("notify.callback.failed", reason=retryable, suspended=suspended)
        sentry.capture_final_failure(
            "notify.callback.failed", retryable or "", callback_id=str(target.callback_id), suspended=suspended
        )
        return Result.GAVE_UP
    delay = worker.callback_retry_base_delay_s * 2 ** (job_try - 1)
    bound.info("notify.callback.retry_scheduled", reason=retryable, delay_s=delay)
    raise Retry(defer=delay)


async def _record_failure(app: WorkerContext, callback_id: uuid.UUID) -> bool:
    async with transaction(app.sessionmaker) as session:
        suspended = await repository.record_failure(session, callback_id, app.settings.worker.callback_suspend_after)
    if suspended:
        log.warning("notify.callback.suspended", callback_id=str(callback_id))
    return suspended

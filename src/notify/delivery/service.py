"""Send a batch of saved notifications: claim, render, call the provider, record the outcome (DESIGN §2.2)."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from notify.context import WorkerContext
from notify.db import transaction
from notify.delivery import repository
from notify.delivery.exceptions import PermanentProviderError, ProviderError, TransientProviderError
from notify.delivery.repository import ClaimedRow
from notify.delivery.senders import EmailMessage, SmsMessage
from notify.templates import rendering

log = structlog.get_logger(__name__)


@dataclass
class Outcome:
    """What happened to one batch."""

    sent: list[tuple[uuid.UUID, str, datetime, str, str]] = field(default_factory=list)
    failed: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    retry: list[tuple[uuid.UUID, str, datetime]] = field(default_factory=list)


def retry_delay_s(attempts: int, base_s: float, max_s: float) -> float:
    """Exponential backoff with full jitter: a random wait in [0, min(max, base * 2^(attempts-1))]."""
    ceiling = min(max_s, base_s * (2 ** max(attempts - 1, 0)))
    return random.uniform(ceiling / 2, ceiling)


async def deliver(app: WorkerContext, notification_type: str, ids: list[uuid.UUID]) -> Outcome:
    """Deliver the given notifications that are still `created`; safe to run twice for the same ids."""
    async with transaction(app.sessionmaker) as session:
        rows = await repository.claim(session, notification_type, ids)
        emails = await _render_emails(app, session, rows) if notification_type == "email" else {}
    outcome = Outcome()
    if not rows:
        return outcome
    results = await asyncio.gather(*(_send_one(app, notification_type, row, emails.get(row.id)) for row in rows))
    now = datetime.now(UTC)
    budget = timedelta(seconds=app.settings.worker.retry_budget_s)
    for row, result in zip(rows, results, strict=True):
        if isinstance(result, str):
            is_test = row.key_type == "test"
            status = "delivered" if is_test else ("sending" if notification_type == "email" else "sent")
            outcome.sent.append((row.id, result, now, "test" if is_test else _provider(notification_type), status))
        elif isinstance(result, PermanentProviderError) or now - row.created_at > budget:
            outcome.failed.append((row.id, result.message))
        else:
            delay = retry_delay_s(
                row.attempts, app.settings.worker.retry_base_delay_s, app.settings.worker.retry_max_delay_s
            )
            outcome.retry.append((row.id, result.message, now + timedelta(seconds=delay)))
    async with transaction(app.sessionmaker) as session:
        await repository.mark_sent(session, outcome.sent)
        await repository.mark_failed(session, outcome.failed)
        await repository.release(session, outcome.retry)
    for notification_id, reason, next_attempt_at in outcome.retry:
        await app.queue.enqueue_job(
            f"deliver_{notification_type}",
            [str(notification_id)],
            _job_id=f"retry:{notification_id}:{next_attempt_at.timestamp():.0f}",
            _defer_until=next_attempt_at,
        )
        log.info("notify.delivery.retry_scheduled", notification_id=str(notification_id), reason=reason)
    for notification_id, reason in outcome.failed:
        log.warning("notify.delivery.failed", notification_id=str(notification_id), reason=reason)
    log.info(
        "notify.delivery.batch",
        notification_type=notification_type,
        sent=len(outcome.sent),
        failed=len(outcome.failed),
        retry=len(outcome.retry),
    )
    return outcome


def _provider(notification_type: str) -> str:
    return "ses" if notification_type == "email" else "sns"


async def _render_emails(
    app: WorkerContext, session: AsyncSession, rows: list[ClaimedRow]
) -> dict[uuid.UUID, EmailMessage]:
    messages: dict[uuid.UUID, EmailMessage] = {}
    default_domain = app.settings.aws.email_domain
    for row in rows:
        template = await app.template_versions.get(session, row.service_id, row.template_id, row.template_version)
        if template is None:
            continue
        rendered = rendering.render_email(template.subject or "", template.content, row.personalisation or {})
        address = f"{row.email_from}@{row.sending_domain or default_domain}"
        messages[row.id] = EmailMessage(
            to=row.to,
            from_address=f'"{row.service_name}" <{address}>',
            subject=row.subject or rendered.subject,
            html=rendered.html,
            text=rendered.text,
            reply_to=row.reply_to,
        )
    return messages


async def _send_one(
    app: WorkerContext, notification_type: str, row: ClaimedRow, email: EmailMessage | None
) -> str | ProviderError:
    """Send one row; return the provider reference, or the error that stopped it."""
    async with app.send_semaphore:
        try:
            async with asyncio.timeout(app.settings.aws.send_timeout_s):
                if notification_type == "email":
                    if email is None:
                        return PermanentProviderError("Template version not found")
                    sender = app.fake_sender if row.key_type == "test" else app.email_sender
                    return await sender.send_email(email)
                sms_sender = app.fake_sender if row.key_type == "test" else app.sms_sender
                return await sms_sender.send_sms(SmsMessage(to=row.to, body=row.body, sender=row.sender))
        except ProviderError as exc:
            return exc
        except TimeoutError:
            return TransientProviderError(f"Timed out after {app.settings.aws.send_timeout_s} s")

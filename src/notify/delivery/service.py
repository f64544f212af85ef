"""Send a batch of saved notifications: claim, render, call the provider, record the outcome (DESIGN §2.2)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from notify import metrics, sentry
from notify.attachments import service as attachments
from notify.callbacks import service as callback_service
from notify.context import WorkerContext
from notify.db import transaction
from notify.delivery import pause, repository
from notify.delivery.exceptions import PermanentProviderError, ProviderError, TransientProviderError
from notify.delivery.repository import ClaimedRow
from notify.delivery.senders import EmailMessage, SmsMessage
from notify.notifications import statuses
from notify.receipts import service as receipt_service
from notify.receipts.schemas import Applied, StatusReceipt
from notify.receipts.simulated import simulated_receipt
from notify.templates import rendering

log = structlog.get_logger(__name__)


@dataclass
class Outcome:
    """What happened to one batch."""

    sent: list[tuple[uuid.UUID, str, datetime, str, str]] = field(default_factory=list)
    failed: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    retry: list[tuple[uuid.UUID, str, datetime]] = field(default_factory=list)
    account_paused: str | None = None


def retry_delay_s(attempts: int, base_s: float, max_s: float) -> float:
    """Exponential backoff with full jitter: a random wait in [0, min(max, base * 2^(attempts-1))]."""
    ceiling = min(max_s, base_s * (2 ** max(attempts - 1, 0)))
    return random.uniform(ceiling / 2, ceiling)


class _Paused(Exception):
    """Sending of the batch's type is paused: the claim is rolled back and the batch deferred."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


async def deliver(app: WorkerContext, notification_type: str, ids: list[uuid.UUID]) -> Outcome:
    """Deliver the given notifications that are still `created`; safe to run twice for the same ids."""
    started = time.perf_counter()
    try:
        async with transaction(app.sessionmaker) as session:
            rows = await _claim_unless_paused(app, session, notification_type, ids)
            emails = await _render_emails(app, session, rows) if notification_type == "email" else {}
    except _Paused as paused:
        await _defer_paused(app, notification_type, ids, paused.seconds)
        return Outcome()
    if not rows:
        return Outcome()
    outcome = Outcome()
    writer = SentWriter(app)
    flusher = asyncio.create_task(writer.run())
    try:
        results = await asyncio.gather(
            *(_send_and_record(app, notification_type, row, emails.get(row.id), writer, outcome) for row in rows)
        )
    finally:
        await writer.stop(flusher)
    test_receipts = _classify_failures(app, notification_type, rows, results, outcome)
    if outcome.account_paused is not None:
        await pause.pause(app.redis, notification_type, app.settings.worker.sending_pause_s, outcome.account_paused)
    async with transaction(app.sessionmaker) as session:
        await repository.mark_failed(session, outcome.failed)
        await repository.release(session, outcome.retry)
    metrics.observe_delivery(notification_type, rows, results, outcome, started)
    await receipt_service.apply_receipts(app, test_receipts)
    await callback_service.enqueue_delivery_status(
        app, [Applied(notification_id, statuses.TECHNICAL_FAILURE) for notification_id, _ in outcome.failed]
    )
    await _schedule_retries(app, notification_type, outcome)
    log.info(
        "notify.delivery.batch",
        notification_type=notification_type,
        sent=len(outcome.sent),
        failed=len(outcome.failed),
        retry=len(outcome.retry),
    )
    return outcome


async def _claim_unless_paused(
    app: WorkerContext, session: AsyncSession, notification_type: str, ids: list[uuid.UUID]
) -> list[ClaimedRow]:
    """Claim the rows in the session's transaction; raise `_Paused`, which rolls the claim back, if sending is paused.

    The pause check goes out beside the claim rather than before it: one round trip fewer between a batch's
    pick-up and its sends, which on a busy box each wait their turn for the CPU (BENCHMARKS.md, eleventh session).
    """
    check = asyncio.create_task(pause.paused_for_s(app.redis, notification_type))
    try:
        rows = await repository.claim(session, notification_type, ids)
    except BaseException:
        check.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await check
        raise
    paused_s = await check
    if paused_s > 0:
        raise _Paused(paused_s)
    return rows


class SentWriter:
    """Records provider references while a batch is still sending, every `FLUSH_INTERVAL_S`.

    A worker killed mid-batch then leaves only the sends of the last few milliseconds without a reference,
    and only those can be sent again once their send lease expires.
    """

    FLUSH_INTERVAL_S = 0.05

    def __init__(self, app: WorkerContext) -> None:
        self._app = app
        self._pending: list[tuple[uuid.UUID, str, datetime, str, str]] = []
        self._stopping = asyncio.Event()

    def add(self, sent: tuple[uuid.UUID, str, datetime, str, str]) -> None:
        """Queue one sent notification for the next flush."""
        self._pending.append(sent)

    async def run(self) -> None:
        """Flush every interval until `stop()`; a flush is never interrupted half way."""
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.FLUSH_INTERVAL_S)
            try:
                await self.flush()
            except Exception as exc:  # the next flush tries again; until then the rows stay leased
                log.warning("notify.delivery.flush_failed", error=type(exc).__name__)

    async def stop(self, flusher: asyncio.Task[None]) -> None:
        """Let the flusher finish its last flush, then write anything still pending."""
        self._stopping.set()
        await flusher
        await self.flush()

    async def flush(self) -> None:
        """Write what was sent since the last flush; on a database error keep it for the next one."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            async with transaction(self._app.sessionmaker) as session:
                await repository.mark_sent(session, batch, last=True)
        except Exception:
            self._pending = batch + self._pending
            raise


async def _send_and_record(
    app: WorkerContext,
    notification_type: str,
    row: ClaimedRow,
    email: EmailMessage | None,
    writer: SentWriter,
    outcome: Outcome,
) -> str | ProviderError:
    result = await _send_one(app, notification_type, row, email)
    if isinstance(result, str):
        is_test = row.key_type == "test"
        status = "sending" if notification_type == "email" else "sent"
        sent = (row.id, result, datetime.now(UTC), "test" if is_test else _provider(notification_type), status)
        outcome.sent.append(sent)
        writer.add(sent)
    return result


def _classify_failures(
    app: WorkerContext,
    notification_type: str,
    rows: list[ClaimedRow],
    results: list[str | ProviderError],
    outcome: Outcome,
) -> list[StatusReceipt]:
    """Sort failed sends into final failures and retries; return the simulated receipts of test-key sends."""
    now = datetime.now(UTC)
    budget = timedelta(seconds=app.settings.worker.retry_budget_s)
    test_receipts: list[StatusReceipt] = []
    for row, result in zip(rows, results, strict=True):
        if isinstance(result, str):
            if row.key_type == "test":
                # Test keys get their final status through the receipt path, like real sends (DESIGN §4.6).
                test_receipts.append(simulated_receipt(notification_type, row.to, result))
        elif isinstance(result, PermanentProviderError) or now - row.created_at > budget:
            outcome.failed.append((row.id, result.message))
        else:
            delay = retry_delay_s(
                row.attempts, app.settings.worker.retry_base_delay_s, app.settings.worker.retry_max_delay_s
            )
            if isinstance(result, TransientProviderError) and result.account_paused:
                outcome.account_paused = result.message
                delay = max(delay, app.settings.worker.sending_pause_s + random.uniform(0, 1))
            outcome.retry.append((row.id, result.message, now + timedelta(seconds=delay)))
    return test_receipts


async def _schedule_retries(app: WorkerContext, notification_type: str, outcome: Outcome) -> None:
    for notification_id, reason, next_attempt_at in outcome.retry:
        await app.queue.enqueue_job(
            f"deliver_{notification_type}",
            [str(notification_id)],
            _job_id=f"retry:{notification_id}:{next_attempt_at.timestamp():.6f}",
            _defer_until=next_attempt_at,
        )
        log.info("notify.delivery.retry_scheduled", notification_id=str(notification_id), reason=reason)
    for notification_id, reason in outcome.failed:
        log.warning("notify.delivery.failed", notification_id=str(notification_id), reason=reason)
    sentry.capture_final_failures("notify.delivery.failed", outcome.failed, notification_type=notification_type)


async def _defer_paused(app: WorkerContext, notification_type: str, ids: list[uuid.UUID], paused_s: float) -> None:
    """Put the whole batch back on the queue for when the pause lifts, without touching the provider or rows."""
    if not ids:
        return
    # Jitter spreads the deferred batches so they do not all hit the provider the instant the pause lifts.
    until = datetime.now(UTC) + timedelta(seconds=paused_s + random.uniform(0, min(paused_s, 5.0)))
    await app.queue.enqueue_job(
        f"deliver_{notification_type}",
        [str(i) for i in ids],
        _job_id=f"paused:{notification_type}:{ids[0]}:{len(ids)}:{until.timestamp():.6f}",
        _defer_until=until,
    )
    log.info("notify.delivery.batch_deferred", notification_type=notification_type, count=len(ids), seconds=paused_s)


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
        personalisation, attach = await attachments.for_delivery(
            app.s3,
            service_id=row.service_id,
            notification_id=row.id,
            personalisation=row.personalisation,
            link_expiry_s=app.settings.aws.attachment_link_expiry_s,
        )
        rendered = rendering.render_email(template.subject or "", template.content, personalisation)
        address = f"{row.email_from}@{row.sending_domain or default_domain}"
        messages[row.id] = EmailMessage(
            to=row.to,
            from_address=f'"{row.service_name}" <{address}>',
            subject=row.subject or rendered.subject,
            html=rendered.html,
            text=rendered.text,
            reply_to=row.reply_to,
            attachment_refs=attach,
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
                    return await sender.send_email(await attachments.attach_files(app.s3, email))
                sms_sender = app.fake_sender if row.key_type == "test" else app.sms_sender
                return await sms_sender.send_sms(SmsMessage(to=row.to, body=row.body, sender=row.sender))
        except ProviderError as exc:
            return exc
        except TimeoutError:
            return TransientProviderError(f"Timed out after {app.settings.aws.send_timeout_s} s")

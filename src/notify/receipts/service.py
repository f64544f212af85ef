"""Apply receipts and drain the receipt queues (DESIGN §2.5), and delete expired notifications (§2.3)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from notify import metrics, sentry
from notify.callbacks import service as callback_service
from notify.context import WorkerContext
from notify.db import transaction
from notify.notifications import statuses
from notify.receipts import repository
from notify.receipts.parsing import MalformedReceiptError, Receipt
from notify.receipts.schemas import Applied, ComplaintReceipt, StatusReceipt
from notify.receipts.sqs import ReceiptQueueClient

log = structlog.get_logger(__name__)

Parser = Callable[[str], Receipt | None]

_SQS_BATCH = 10  # SQS's cap on ReceiveMessage's MaxNumberOfMessages and on DeleteMessageBatch entries


@dataclass
class PollStats:
    """What one poller run did."""

    received: int = 0
    applied: int = 0
    deleted: int = 0
    unknown: int = 0
    malformed: int = 0
    applied_ids: list[Applied] = field(default_factory=list)


async def apply_receipts(
    app: WorkerContext, receipts: Sequence[StatusReceipt], complaints: Sequence[ComplaintReceipt] = ()
) -> tuple[set[str], list[Applied]]:
    """Apply status receipts and complaints in one transaction; return the known references and what changed.

    Callbacks for the changed notifications are enqueued after the commit.
    """
    references = [r.reference for r in receipts] + [c.reference for c in complaints]
    async with transaction(app.sessionmaker) as session:
        known = await repository.known_references(session, references)
        applied = await repository.apply_statuses(session, _strongest(receipts))
        complaint_ids = await repository.insert_complaints(session, complaints)
    _observe(applied)
    await callback_service.enqueue_delivery_status(app, applied)
    await callback_service.enqueue_complaints(app, complaint_ids)
    return known, applied


def _observe(applied: Sequence[Applied]) -> None:
    """Count the applied receipts by outcome, and time accepted → delivered for deliveries."""
    for change in applied:
        notification_type = change.notification_type or "unknown"
        metrics.RECEIPTS.labels(notification_type, change.status).inc()
        if change.status == statuses.DELIVERED and change.created_at is not None:
            metrics.observe_delivered(notification_type, change.created_at, change.sent_at)


def _strongest(receipts: Sequence[StatusReceipt]) -> list[StatusReceipt]:
    """Keep one receipt per reference (a failure beats a delivery): UPDATE … FROM needs one source row per target."""
    best: dict[str, StatusReceipt] = {}
    for receipt in receipts:
        current = best.get(receipt.reference)
        if current is None or receipt.rank > current.rank:
            best[receipt.reference] = receipt
    return list(best.values())


async def poll(app: WorkerContext, queue_name: str, parse: Parser) -> PollStats:
    """Receive from `queue_name` until it is empty, the time budget is spent or only retried messages come back.

    A run starts with one ReceiveMessage call; once a round comes back full (10 messages a call, SQS's cap), rounds
    make `receipt_receive_concurrency` calls at once, so an idle queue costs one call a minute and a busy one is
    drained fast. The next round is received while a round's receipts are applied (in one transaction), and its
    messages are deleted in concurrent batches after that commit: they stay invisible until deleted, so a later
    round cannot bring them back.
    """
    aws = app.settings.aws
    queue_url = (await app.sqs.get_queue_url(QueueName=queue_name))["QueueUrl"]
    deadline = time.monotonic() + aws.receipt_poll_budget_s
    stats = PollStats()
    seen: set[str] = set()
    deleting: asyncio.Task[int] | None = None
    calls = 1
    receiving: asyncio.Task[list[dict[str, Any]]] | None = asyncio.create_task(_receive_round(app, queue_url, calls))
    try:
        while receiving is not None:
            messages = await receiving
            receiving = None
            if not messages or all(m["MessageId"] in seen for m in messages):
                break
            if len(messages) >= calls * _SQS_BATCH:
                calls = aws.receipt_receive_concurrency
            seen.update(m["MessageId"] for m in messages)
            stats.received += len(messages)
            if time.monotonic() < deadline:
                receiving = asyncio.create_task(_receive_round(app, queue_url, calls))
            done = await _process(app, queue_name, messages, parse, stats)
            if deleting is not None:
                stats.deleted += await deleting
            deleting = asyncio.create_task(_delete_all(app, queue_url, done))
    finally:
        if receiving is not None:
            # Applying a round failed: what the next round received comes back after the visibility timeout.
            receiving.cancel()
            receiving.add_done_callback(_retrieve)
        if deleting is not None:
            stats.deleted += await deleting
    log.info(
        "notify.receipts.polled",
        queue=queue_name,
        received=stats.received,
        applied=stats.applied,
        deleted=stats.deleted,
        unknown=stats.unknown,
        malformed=stats.malformed,
    )
    return stats


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark an abandoned task's failure as seen (asyncio would log it as never retrieved)."""
    if not task.cancelled():
        task.exception()


async def _receive_round(app: WorkerContext, queue_url: str, calls: int) -> list[dict[str, Any]]:
    """Make `calls` concurrent ReceiveMessage calls; return every message they brought, in call order."""
    aws = app.settings.aws
    sqs = _receipt_sqs(app)
    responses = await asyncio.gather(
        *(
            sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=_SQS_BATCH,
                WaitTimeSeconds=aws.receipt_wait_time_s,
                VisibilityTimeout=aws.receipt_visibility_timeout_s,
            )
            for _ in range(calls)
        )
    )
    return [message for response in responses for message in response.get("Messages", [])]


async def _process(
    app: WorkerContext, queue_name: str, messages: list[dict[str, Any]], parse: Parser, stats: PollStats
) -> list[dict[str, Any]]:
    """Apply a round's receipts in one transaction; return the messages that are done with (to delete)."""
    done: list[dict[str, Any]] = []
    pending: list[tuple[dict[str, Any], Receipt]] = []
    for message in messages:
        try:
            receipt = parse(message["Body"])
        except MalformedReceiptError as exc:
            await _dead_letter(app, queue_name, message, str(exc))
            stats.malformed += 1
            done.append(message)
            continue
        if receipt is None:
            done.append(message)
        else:
            pending.append((message, receipt))
    known, applied = await apply_receipts(
        app,
        [r for _, r in pending if isinstance(r, StatusReceipt)],
        [r for _, r in pending if isinstance(r, ComplaintReceipt)],
    )
    stats.applied += len(applied)
    stats.applied_ids.extend(applied)
    for message, receipt in pending:
        if receipt.reference in known:
            done.append(message)
        else:
            # Not saved yet, or already deleted: leave it for the visibility timeout, then the DLQ (DESIGN §2.5).
            stats.unknown += 1
            log.warning("notify.receipts.unknown_reference", queue=queue_name, reference=receipt.reference)
    return done


async def _delete_all(app: WorkerContext, queue_url: str, messages: list[dict[str, Any]]) -> int:
    """Delete messages in concurrent batches of 10; return how many SQS confirmed."""
    chunks = [messages[i : i + _SQS_BATCH] for i in range(0, len(messages), _SQS_BATCH)]
    return sum(await asyncio.gather(*(_delete(app, queue_url, chunk) for chunk in chunks)))


async def _dead_letter(app: WorkerContext, queue_name: str, message: dict[str, Any], reason: str) -> None:
    """Move a message we can never process to the dead-letter queue at once, instead of after N receives."""
    log.error("notify.receipts.malformed", queue=queue_name, sqs_message_id=message["MessageId"], reason=reason)
    sentry.capture_final_failure(
        "notify.receipts.malformed", reason, queue=queue_name, sqs_message_id=message["MessageId"]
    )
    dlq_url = (await app.sqs.get_queue_url(QueueName=dead_letter_name(queue_name)))["QueueUrl"]
    await app.sqs.send_message(QueueUrl=dlq_url, MessageBody=message["Body"])


async def _delete(app: WorkerContext, queue_url: str, messages: list[dict[str, Any]]) -> int:
    """Delete up to 10 messages in one DeleteMessageBatch; return how many SQS confirmed."""
    entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
    response = await _receipt_sqs(app).delete_message_batch(QueueUrl=queue_url, Entries=entries)
    for failure in response.get("Failed", []):
        log.warning("notify.receipts.delete_failed", code=failure.get("Code"), message=failure.get("Message"))
    return len(response.get("Successful", []))


def _receipt_sqs(app: WorkerContext) -> ReceiptQueueClient:
    """The client of a round's receives and deletes: the lean calls, or the aioboto3 client if none were opened."""
    return app.sqs if app.receipt_sqs is None else app.receipt_sqs


def dead_letter_name(queue_name: str) -> str:
    """Return the dead-letter queue name of a receipt queue."""
    return f"{queue_name}-dlq"


async def delete_expired_notifications(app: WorkerContext) -> int:
    """Delete notifications past their service's retention, in bounded batches; return how many."""
    total = 0
    limit = app.settings.worker.retention_batch_size
    while True:
        async with transaction(app.sessionmaker) as session:
            deleted = await repository.delete_expired(session, limit)
        total += deleted
        if deleted < limit:
            break
    log.info("notify.retention.deleted", deleted=total)
    return total

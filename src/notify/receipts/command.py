"""What `notify receipts poll` runs and prints: the receipt pollers once, now, with a line per queue."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import orjson

from notify.context import WorkerContext
from notify.receipts import parsing, service
from notify.settings import AwsSettings


class ReceiptQueue(StrEnum):
    """The receipt queues, by the name the command line uses."""

    BOUNCES = "bounces"
    DELIVERIES = "deliveries"
    SMS = "sms"


@dataclass(frozen=True, slots=True)
class QueueRun:
    """What one poller run did to one queue, and what it cost this process."""

    queue: ReceiptQueue
    queue_name: str
    stats: service.PollStats
    elapsed_s: float
    cpu_s: float


def targets(aws: AwsSettings) -> dict[ReceiptQueue, tuple[str, service.Parser]]:
    """Return each queue's SQS name and the parser of its bodies (as the cron pollers use them)."""
    return {
        ReceiptQueue.BOUNCES: (aws.bounce_queue, parsing.parse_ses),
        ReceiptQueue.DELIVERIES: (aws.delivery_queue, parsing.parse_ses),
        ReceiptQueue.SMS: (aws.sms_receipt_queue, parsing.parse_sms),
    }


async def poll_queues(app: WorkerContext, queues: Sequence[ReceiptQueue]) -> list[QueueRun]:
    """Drain `queues` one after the other, timing each (wall clock and this process's CPU)."""
    by_queue = targets(app.settings.aws)
    runs: list[QueueRun] = []
    for queue in dict.fromkeys(queues):
        queue_name, parse = by_queue[queue]
        cpu_start, start = time.process_time(), time.perf_counter()
        stats = await service.poll(app, queue_name, parse)
        elapsed_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
        runs.append(QueueRun(queue, queue_name, stats, elapsed_s, cpu_s))
    return runs


def text_line(run: QueueRun) -> str:
    """Describe one queue's run for a person."""
    stats = run.stats
    return (
        f"{run.queue} ({run.queue_name}): received {stats.received}, applied {stats.applied}, "
        f"deleted {stats.deleted}, unknown {stats.unknown}, malformed {stats.malformed} in {run.elapsed_s:.2f} s"
    )


def json_line(run: QueueRun) -> str:
    """Describe one queue's run as one JSON object (for scripts and `notify bench receipts`)."""
    stats = run.stats
    return orjson.dumps(
        {
            "queue": run.queue.value,
            "queue_name": run.queue_name,
            "received": stats.received,
            "applied": stats.applied,
            "deleted": stats.deleted,
            "unknown": stats.unknown,
            "malformed": stats.malformed,
            "elapsed_s": round(run.elapsed_s, 6),
            "cpu_s": round(run.cpu_s, 6),
        }
    ).decode()

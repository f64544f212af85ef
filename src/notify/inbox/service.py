"""Move accepted notifications from the inbox streams into PostgreSQL and on to delivery (DESIGN §2.2)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence

import orjson
import pydantic
import structlog

from notify import metrics, sentry
from notify.context import WorkerContext
from notify.db import cache_foreign_key_check_plans, transaction
from notify.inbox import repository, streams
from notify.inbox.schemas import InboxEntry
from notify.inbox.streams import ALL_STREAMS, RawEntry, Stream

log = structlog.get_logger(__name__)


def parse(raw: Sequence[RawEntry]) -> tuple[list[tuple[bytes, InboxEntry]], list[tuple[bytes, bytes, str]]]:
    """Split raw stream entries into parsed ones and poison ones `(entry id, payload, reason)`."""
    parsed: list[tuple[bytes, InboxEntry]] = []
    poison: list[tuple[bytes, bytes, str]] = []
    for entry_id, fields in raw:
        payload = fields.get(streams.FIELD, b"")
        try:
            parsed.append((entry_id, InboxEntry.from_bytes(payload)))
        except (pydantic.ValidationError, orjson.JSONDecodeError, ValueError) as exc:
            poison.append((entry_id, payload, f"unparseable entry: {type(exc).__name__}: {str(exc)[:500]}"))
    return parsed, poison


async def save_batch(app: WorkerContext, stream: Stream, raw: Sequence[RawEntry]) -> list[uuid.UUID]:
    """Save one batch in one statement, enqueue its delivery, then acknowledge it; return the saved ids.

    The order matters for "nothing lost": the entries stay pending (in flight) until the rows are committed
    and their delivery is enqueued, so a crash anywhere before the XACK means the batch is saved again
    (a no-op for rows that exist) and delivery is enqueued again (a no-op for rows already claimed).
    """
    started = time.perf_counter()
    parsed, poison = parse(raw)
    if poison:
        await streams.bury(app.redis, stream, poison)
        for entry_id, _, reason in poison:
            log.error("notify.inbox.dead_lettered", stream=stream.inbox, entry_id=entry_id.decode(), reason=reason)
        sentry.capture_final_failures(
            "notify.inbox.dead_lettered", [(e.decode(), reason) for e, _, reason in poison], stream=stream.dead
        )
    if not parsed:
        return []
    entries = [entry for _, entry in parsed]
    if app.save_engine is not None:
        async with app.save_engine.connect() as connection:  # autocommit: the INSERT is its own transaction
            await repository.insert_batch(connection, entries)
    else:
        async with transaction(app.sessionmaker) as session:
            await cache_foreign_key_check_plans(session)
            await repository.insert_batch(session, entries)
    ids = [entry.id for entry in entries]
    await app.queue.enqueue_job(
        f"deliver_{stream.notification_type}", [str(i) for i in ids], _job_id=f"deliver:{ids[0]}:{len(ids)}"
    )
    await streams.acknowledge(app.redis, stream, [entry_id for entry_id, _ in parsed])
    log.info("notify.inbox.saved", stream=stream.inbox, count=len(ids))
    metrics.observe_save(stream.notification_type, started, [entry.created_at for entry in entries])
    return ids


# How long one read waits for a lane with nothing in it. A read returns as soon as an entry arrives, so this
# costs no latency; it bounds how soon a stopping worker's beats return, and how often an idle lane is asked
# again: an idle worker spent 39-45 ms of CPU a second at 0.1 s, 30-31 ms at 0.5 s (BENCHMARKS.md, tenth session).
IDLE_BLOCK_S = 0.5


async def beat(app: WorkerContext, stream: Stream, duration_s: float) -> int:
    """Read the lane for about `duration_s`, saving full-ish batches as they come; return how many were saved.

    A short wait tops up a small batch before writing, because tiny batches multiply database cost.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration_s
    batch_size = app.settings.worker.batch_size
    wait_s = app.settings.worker.batch_wait_ms / 1000
    saved = 0
    while not app.stopping.is_set() and (remaining := deadline - loop.time()) > 0:
        block_ms = max(1, int(min(remaining, IDLE_BLOCK_S) * 1000))
        raw = await streams.read(app.redis, stream, app.consumer, batch_size, block_ms)
        if not raw:
            continue
        if len(raw) < batch_size and wait_s > 0 and not app.stopping.is_set():
            await asyncio.sleep(wait_s)
            raw += await streams.read(app.redis, stream, app.consumer, batch_size - len(raw), None)
        saved += len(await save_batch(app, stream, raw))
    return saved


async def drain(app: WorkerContext) -> int:
    """Save everything waiting in every lane now, without blocking; return how many were saved."""
    saved = 0
    for stream in ALL_STREAMS:
        while raw := await streams.read(app.redis, stream, app.consumer, app.settings.worker.batch_size, None):
            saved += len(await save_batch(app, stream, raw))
    return saved

"""arq cron jobs reading the inbox streams: one per notification type and lane (`beat-inbox-*`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

from notify.context import from_ctx
from notify.inbox import service
from notify.inbox.streams import ALL_STREAMS, Stream

BeatJob = Callable[[dict[str, Any]], Coroutine[Any, Any, int]]


def beat_duration_s(due_ms: object, interval_s: float, overlap_s: float, now: float | None = None) -> float:
    """How long a beat reads: until `overlap_s` after the next beat is due, so its lane is never left unread.

    arq starts a cron job at the first poll after it is due (`due_ms`, arq's `score`), a poll or more late under
    load. A beat that read for a fixed 90 % of the interval from whenever it started left its lane unread from
    its end until the next beat's start, up to about 150 ms every second: the notifications accepted then waited,
    and made most of the accepted → sent p99 (BENCHMARKS.md, sixth session). Reading on into the next interval
    overlaps the two beats for a moment instead; they share the consumer group, so each entry is still read once.
    A beat that starts very late still reads for half an interval, and one without a due time for one interval.
    """
    if not isinstance(due_ms, int | float) or isinstance(due_ms, bool):
        return interval_s
    now = time.time() if now is None else now
    remaining = due_ms / 1000 + interval_s + overlap_s - now
    return min(max(remaining, interval_s / 2), interval_s + overlap_s)


def make_beat(stream: Stream) -> BeatJob:
    """Build the cron job for one lane; it reads until just after the next beat is due."""

    async def beat_inbox(ctx: dict[str, Any]) -> int:
        app = from_ctx(ctx)
        worker = app.settings.worker
        # Two polls: time enough for some worker to have started the next beat.
        duration_s = beat_duration_s(ctx.get("score"), worker.beat_interval_s, 2 * worker.poll_delay_s)
        return await service.beat(app, stream, duration_s)

    beat_inbox.__qualname__ = beat_inbox.__name__ = f"beat_inbox_{stream.notification_type}_{stream.lane}"
    return beat_inbox


BEATS: tuple[BeatJob, ...] = tuple(make_beat(stream) for stream in ALL_STREAMS)
